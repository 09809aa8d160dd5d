//! Members of a distribution list (contact group) as canonical text, one entry per member:
//! `Name <ROUTING:address>`, e.g. `Alice Wilson <SMTP:alice@contoso.test>`, in the list's order.
//!
//! A member that points at a contact of the same mailbox (`MailboxType` `Contact` with an `ItemId`)
//! is kept by name and address only: item ids are per mailbox, so copies are written as one-off
//! members, which every client shows the same way. Members without an address (a contact reference
//! the server could not resolve) are skipped.

use crate::xml::{Element, XmlWriter};

/// The canonical entries of a `t:Members` element.
pub(crate) fn read(members: &Element) -> Option<Vec<String>> {
    let list: Vec<String> = members
        .children
        .iter()
        .filter(|m| m.name == "Member")
        .filter_map(|m| {
            let mailbox = m.child("Mailbox")?;
            let address = mailbox.child_text("EmailAddress").map(str::trim).filter(|a| !a.is_empty())?;
            let routing = mailbox.child_text("RoutingType").map(str::trim).filter(|r| !r.is_empty()).unwrap_or("SMTP");
            let name = mailbox.child_text("Name").map(str::trim).unwrap_or("");
            let routing = routing.to_ascii_uppercase();
            Some(if name.is_empty() {
                format!("<{routing}:{address}>")
            } else {
                format!("{name} <{routing}:{address}>")
            })
        })
        .collect();
    (!list.is_empty()).then_some(list)
}

/// Splits a canonical entry into (name, routing type, address); `None` if malformed.
fn parse(entry: &str) -> Option<(&str, &str, &str)> {
    let inner = entry.trim().strip_suffix('>')?;
    let open = inner.rfind('<')?;
    let (name, bracket) = (inner[..open].trim(), &inner[open + 1..]);
    let (routing, address) = bracket.split_once(':')?;
    let valid_routing = !routing.is_empty() && routing.chars().all(|c| c.is_ascii_alphanumeric());
    (valid_routing && !address.trim().is_empty()).then_some((name, routing, address.trim()))
}

/// The children of a `t:Members` element; `None` if an entry is malformed.
pub(crate) fn write(entries: &[String]) -> Option<String> {
    let mut w = XmlWriter::new();
    for entry in entries {
        let (name, routing, address) = parse(entry)?;
        w.open("t:Member", &[]).open("t:Mailbox", &[]);
        if !name.is_empty() {
            w.leaf("t:Name", name);
        }
        w.leaf("t:EmailAddress", address).leaf("t:RoutingType", routing).leaf("t:MailboxType", "OneOff");
        w.close("t:Mailbox").close("t:Member");
    }
    Some(w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{ParseLimits, parse as parse_xml};

    #[test]
    fn members_round_trip_and_contact_references_become_one_off() {
        let doc = r#"<t:Members xmlns:t="urn:t">
            <t:Member Key="AAA"><t:Mailbox><t:Name>Alice Wilson</t:Name><t:EmailAddress>alice@contoso.test</t:EmailAddress>
              <t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Contact</t:MailboxType><t:ItemId Id="X" ChangeKey="Y"/></t:Mailbox>
              <t:Status>Normal</t:Status></t:Member>
            <t:Member><t:Mailbox><t:EmailAddress>x@example.test</t:EmailAddress></t:Mailbox></t:Member>
            <t:Member><t:Mailbox><t:Name>Unresolved</t:Name></t:Mailbox></t:Member>
        </t:Members>"#;
        let e = parse_xml(doc.as_bytes(), ParseLimits::default()).unwrap();
        let list = read(&e).unwrap();
        assert_eq!(list, vec!["Alice Wilson <SMTP:alice@contoso.test>".to_owned(), "<SMTP:x@example.test>".to_owned()]);
        let xml = write(&list).unwrap();
        assert!(xml.contains("<t:Name>Alice Wilson</t:Name><t:EmailAddress>alice@contoso.test</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>OneOff</t:MailboxType>"), "{xml}");
        let back =
            parse_xml(format!(r#"<t:Members xmlns:t="urn:t">{xml}</t:Members>"#).as_bytes(), ParseLimits::default())
                .unwrap();
        assert_eq!(read(&back).unwrap(), list);
        assert_eq!(parse("Odd <Name> <SMTP:o@x.test>"), Some(("Odd <Name>", "SMTP", "o@x.test")));
        assert!(write(&["no address".to_owned()]).is_none());
        assert!(write(&["Bad <SM TP:x@y>".to_owned()]).is_none());
    }
}
