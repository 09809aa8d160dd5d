//! Reading a batch answer for its item ids alone, without building its element tree.
//!
//! A fan-out reads tens of thousands of CreateItem answers, and all it needs of each is the new
//! item's id and change key per response message. Building the whole tree first (every element,
//! attribute and text of the envelope) was most of the cost of reading them. [`scan_item_ids`]
//! walks the document once and keeps only the ids, and it answers only for the plain case: a
//! well-formed envelope whose every response message succeeded and names an item with an id.
//! Anything else (a SOAP fault, a warning or error message, a missing id, a document the tree
//! reader would refuse) gives `None`, and the caller reads the document the general way, which
//! says what went wrong. So the scan never decides an error, and where it answers, it answers
//! what the general reader would: a test holds the two to that.

use quick_xml::events::{BytesStart, Event};

use crate::ids::ItemId;
use crate::item::ItemType;
use crate::soap::ServerVersionInfo;
use crate::xml::{ParseLimits, for_each_attribute, is_blank, local_name};

/// What [`scan_item_ids`] read from a batch answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedIds {
    /// The server's version header, if any.
    pub server_version: Option<ServerVersionInfo>,
    /// The first item's id of each response message, in document (= request) order.
    pub ids: Vec<ItemId>,
}

/// Where the scan is in the envelope, by depth: 1 `Envelope`, 2 `Header`/`Body`, 3 the
/// operation's response, 4 `ResponseMessages`, 5 a message, 6 its `Items`, 7 an item, 8 its
/// `ItemId`.
#[derive(Debug, Default)]
struct Position {
    /// Inside the first `Header` (only its first `ServerVersionInfo` counts).
    in_header: bool,
    header_seen: bool,
    body_seen: bool,
    /// Inside the first element of the first `Body`.
    in_operation: bool,
    operation_seen: bool,
    in_messages: bool,
    messages_seen: bool,
    /// The current message's state.
    in_items: bool,
    items_seen: bool,
    in_item: bool,
    item_seen: bool,
    item_id_seen: bool,
    /// The current message's id, once found.
    id: Option<ItemId>,
}

/// The first item id of every response message of a batch answer (CreateItem, UpdateItem), or
/// `None` unless every message succeeded with one; see the module documentation.
pub fn scan_item_ids(input: &[u8], limits: ParseLimits) -> Option<ScannedIds> {
    if input.len() > limits.max_bytes {
        return None;
    }
    let mut reader = quick_xml::Reader::from_reader(input);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut root_done = false;
    let mut at = Position::default();
    let mut out = ScannedIds { server_version: None, ids: Vec::new() };
    loop {
        let event = reader.read_event().ok()?;
        match event {
            Event::Start(start) => {
                if root_done || depth >= limits.max_depth {
                    return None;
                }
                depth += 1;
                enter(&start, depth, &mut at, &mut out, true)?;
            }
            Event::Empty(start) => {
                if root_done || depth >= limits.max_depth {
                    return None;
                }
                enter(&start, depth + 1, &mut at, &mut out, false)?;
                if depth == 0 {
                    root_done = true;
                }
            }
            Event::End(end) => {
                let name = end.name();
                leave(local_name(name.as_ref()), depth, &mut at, &mut out)?;
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    root_done = true;
                }
            }
            Event::Text(text) => {
                // Decoded as the tree reader decodes it, so that both refuse the same documents.
                let text = text.unescape().ok()?;
                if depth == 0 && !is_blank(&text) {
                    return None;
                }
            }
            Event::DocType(_) => return None,
            Event::CData(_) | Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    (depth == 0 && root_done && at.messages_seen).then_some(out)
}

/// An element opens at `depth`; `open` when it has content to come. `None` ends the scan.
fn enter(start: &BytesStart<'_>, depth: usize, at: &mut Position, out: &mut ScannedIds, open: bool) -> Option<()> {
    let qualified = start.name();
    let name = local_name(qualified.as_ref());
    // Every attribute is checked (and decoded) as the tree reader does; only a few are kept.
    let mut succeeded: Option<bool> = None;
    let mut id: Option<String> = None;
    let mut change_key: Option<String> = None;
    let mut version = Vec::new();
    let item_id_here = depth == 8 && at.in_item && !at.item_id_seen && name == b"ItemId";
    let version_here = depth == 3 && at.in_header && out.server_version.is_none() && name == b"ServerVersionInfo";
    for_each_attribute(start, |key, value| {
        let key = local_name(key);
        match key {
            b"ResponseClass" if depth == 5 && succeeded.is_none() => succeeded = Some(value == "Success"),
            b"Id" if item_id_here && id.is_none() => id = Some(value.into_owned()),
            b"ChangeKey" if item_id_here && change_key.is_none() => change_key = Some(value.into_owned()),
            _ if version_here => version.push((String::from_utf8_lossy(key).into_owned(), value.into_owned())),
            _ => {}
        }
    })
    .ok()?;
    match depth {
        1 if name != b"Envelope" => return None,
        2 if name == b"Header" && !at.header_seen => {
            at.header_seen = true;
            at.in_header = open;
        }
        2 if name == b"Body" => {
            // The general reader reads the first Body only; a second one is not the plain case.
            if at.body_seen {
                return None;
            }
            at.body_seen = true;
        }
        3 if version_here => {
            let attr = |n: &str| version.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
            out.server_version = Some(ServerVersionInfo::from_attributes(attr));
        }
        3 if at.body_seen && !at.in_header && !at.operation_seen => {
            at.operation_seen = true;
            if name == b"Fault" || !open {
                return None;
            }
            at.in_operation = true;
        }
        4 if at.in_operation && name == b"ResponseMessages" && !at.messages_seen => {
            at.messages_seen = true;
            at.in_messages = open;
        }
        5 if at.in_messages => {
            // No ResponseClass means Success, as in the tree reader.
            if succeeded == Some(false) || !open {
                return None;
            }
            at.in_items = false;
            at.items_seen = false;
            at.item_seen = false;
            at.item_id_seen = false;
            at.id = None;
        }
        6 if at.in_messages && name == b"Items" && !at.items_seen => {
            at.items_seen = true;
            at.in_items = open;
        }
        7 if at.in_items && !at.item_seen && is_item(name) => {
            at.item_seen = true;
            at.in_item = open;
        }
        8 if item_id_here => {
            at.item_id_seen = true;
            at.id = Some(ItemId { id: id?, change_key });
        }
        _ => {}
    }
    Some(())
}

/// An element at `depth` closes.
fn leave(name: &[u8], depth: usize, at: &mut Position, out: &mut ScannedIds) -> Option<()> {
    match depth {
        2 if at.in_header && name == b"Header" => at.in_header = false,
        3 if at.in_operation => at.in_operation = false,
        4 if at.in_messages => at.in_messages = false,
        5 if at.in_messages => out.ids.push(at.id.take()?),
        6 if at.in_items => at.in_items = false,
        7 if at.in_item => at.in_item = false,
        _ => {}
    }
    Some(())
}

fn is_item(name: &[u8]) -> bool {
    std::str::from_utf8(name).ok().and_then(ItemType::from_element_name).is_some()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_plain_case_is_scanned_and_a_failed_message_is_left_to_the_general_reader() {
        let answer = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
  <m:CreateItemResponse xmlns:m="m" xmlns:t="t"><m:ResponseMessages>
    <m:CreateItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>
      <m:Items><t:Contact><t:ItemId Id="AAMk1" ChangeKey="EQ1"/></t:Contact></m:Items>
    </m:CreateItemResponseMessage>
  </m:ResponseMessages></m:CreateItemResponse></s:Body></s:Envelope>"#;
        let scanned = scan_item_ids(answer.as_bytes(), ParseLimits::default()).expect("the plain case");
        assert_eq!(scanned.ids[0].id, "AAMk1");
        assert_eq!(scanned.ids[0].change_key.as_deref(), Some("EQ1"));
        let failed = answer.replace(r#"ResponseClass="Success""#, r#"ResponseClass="Error""#);
        assert!(scan_item_ids(failed.as_bytes(), ParseLimits::default()).is_none());
    }
    use crate::error::Result;
    use crate::operation::items::parse_create_item;
    use crate::soap::parse_envelope;

    /// The general reader's answer: the ids when every message has one, else `None`.
    fn general(doc: &str) -> Option<(Vec<ItemId>, Option<ServerVersionInfo>)> {
        let response = parse_envelope("CreateItem", doc.as_bytes(), ParseLimits::default()).ok()?;
        let ids: Result<Vec<ItemId>> = parse_create_item(response.body).ok()?.into_iter().collect();
        Some((ids.ok()?, response.server_version))
    }

    fn scan(doc: &str) -> Option<(Vec<ItemId>, Option<ServerVersionInfo>)> {
        scan_item_ids(doc.as_bytes(), ParseLimits::default()).map(|s| (s.ids, s.server_version))
    }

    /// One response message, as servers vary them.
    #[derive(Debug, Clone)]
    enum Message {
        /// Success with an item id; the change key, an escaped character in the id, and
        /// elements before the item vary.
        Created {
            n: u32,
            change_key: bool,
            escaped: bool,
            noise: bool,
            class: bool,
        },
        /// Success without an item, or with an item without id.
        NoItem,
        EmptyItems,
        ItemWithoutId,
        UnknownItemElement,
        Warning(&'static str),
        Error(&'static str),
        Empty,
    }

    impl Message {
        fn write(&self, out: &mut String) {
            match self {
                Message::Created { n, change_key, escaped, noise, class } => {
                    let class = if *class { r#" ResponseClass="Success""# } else { "" };
                    let id = if *escaped { format!("AAMk{n}&amp;x") } else { format!("AAMk{n}") };
                    let ck = if *change_key { format!(r#" ChangeKey="CQ{n}""#) } else { String::new() };
                    let noise = if *noise { "<!-- noted --><m:MessageText/>\n  " } else { "" };
                    out.push_str(&format!(
                        r#"<m:CreateItemResponseMessage{class}>{noise}<m:ResponseCode>NoError</m:ResponseCode><m:Items><t:Contact><t:ItemId Id="{id}"{ck}/><t:Subject>s</t:Subject></t:Contact></m:Items></m:CreateItemResponseMessage>"#
                    ));
                }
                Message::NoItem => out.push_str(
                    r#"<m:CreateItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode></m:CreateItemResponseMessage>"#,
                ),
                Message::EmptyItems => out.push_str(
                    r#"<m:CreateItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items/></m:CreateItemResponseMessage>"#,
                ),
                Message::ItemWithoutId => out.push_str(
                    r#"<m:CreateItemResponseMessage ResponseClass="Success"><m:Items><t:Contact><t:Subject>s</t:Subject></t:Contact></m:Items></m:CreateItemResponseMessage>"#,
                ),
                Message::UnknownItemElement => out.push_str(
                    r#"<m:CreateItemResponseMessage ResponseClass="Success"><m:Items><t:Gadget><t:ItemId Id="g"/></t:Gadget></m:Items></m:CreateItemResponseMessage>"#,
                ),
                Message::Warning(code) => out.push_str(&format!(
                    r#"<m:CreateItemResponseMessage ResponseClass="Warning"><m:MessageText>w</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:Items><t:Contact><t:ItemId Id="w"/></t:Contact></m:Items></m:CreateItemResponseMessage>"#
                )),
                Message::Error(code) => out.push_str(&format!(
                    r#"<m:CreateItemResponseMessage ResponseClass="Error"><m:MessageText>e</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:Items/></m:CreateItemResponseMessage>"#
                )),
                Message::Empty => out.push_str("<m:CreateItemResponseMessage/>"),
            }
        }
    }

    /// How the envelope around the messages varies.
    #[derive(Debug, Clone)]
    struct Envelope {
        header: u8,
        prefixes: bool,
        fault: bool,
        trailing: &'static str,
        cut: Option<usize>,
    }

    fn document(envelope: &Envelope, messages: &[Message]) -> String {
        let (s, open_ns) = if envelope.prefixes {
            ("s:", r#" xmlns:s="http://schemas.xmlsoap.org/soap/envelope/""#)
        } else {
            ("", r#" xmlns="http://schemas.xmlsoap.org/soap/envelope/""#)
        };
        let header = r#"<h:ServerVersionInfo MajorVersion="15" MinorVersion="20" MajorBuildNumber="7409" MinorBuildNumber="29" Version="V2018_01_08" xmlns:h="t"/>"#;
        let mut out = format!(r#"<?xml version="1.0" encoding="utf-8"?><{s}Envelope{open_ns}>"#);
        if envelope.header == 1 {
            out.push_str(&format!("<{s}Header>{header}</{s}Header>"));
        }
        out.push_str(&format!(r#"<{s}Body xmlns:m="m" xmlns:t="t">"#));
        if envelope.fault {
            out.push_str(&format!(
                "<{s}Fault><faultcode>a:ErrorSchemaValidation</faultcode><faultstring>bad</faultstring></{s}Fault>"
            ));
        } else {
            out.push_str("<m:CreateItemResponse><m:ResponseMessages>\n");
            for m in messages {
                m.write(&mut out);
            }
            out.push_str("</m:ResponseMessages></m:CreateItemResponse>");
        }
        out.push_str(&format!("</{s}Body>"));
        if envelope.header == 2 {
            out.push_str(&format!("<{s}Header>{header}</{s}Header>"));
        }
        out.push_str(&format!("</{s}Envelope>{}", envelope.trailing));
        if let Some(cut) = envelope.cut {
            out.truncate(cut.min(out.len()));
        }
        out
    }

    fn message() -> impl Strategy<Value = Message> {
        prop_oneof![
            8 => (0u32..1000, any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
                |(n, change_key, escaped, noise, class)| Message::Created { n, change_key, escaped, noise, class }
            ),
            1 => Just(Message::NoItem),
            1 => Just(Message::EmptyItems),
            1 => Just(Message::ItemWithoutId),
            1 => Just(Message::UnknownItemElement),
            1 => prop_oneof![Just("ErrorBatchProcessingStopped"), Just("ErrorServerBusy")].prop_map(Message::Warning),
            1 => prop_oneof![Just("ErrorQuotaExceeded"), Just("ErrorItemSave")].prop_map(Message::Error),
            1 => Just(Message::Empty),
        ]
    }

    fn envelope() -> impl Strategy<Value = Envelope> {
        (
            0u8..3,
            any::<bool>(),
            prop::bool::weighted(0.1),
            prop_oneof![8 => Just(""), 1 => Just("\n"), 1 => Just("<extra/>"), 1 => Just("tail")],
            prop::option::weighted(0.1, 0usize..4000),
        )
            .prop_map(|(header, prefixes, fault, trailing, cut)| Envelope {
                header,
                prefixes,
                fault,
                trailing,
                cut,
            })
    }

    proptest! {
        /// Wherever the scan answers, the general reader answers the same; and for the plain
        /// case (every message created an item, a well-formed envelope) the scan does answer.
        #[test]
        fn the_scan_answers_what_the_general_reader_answers(
            envelope in envelope(),
            messages in prop::collection::vec(message(), 0..12),
        ) {
            let doc = document(&envelope, &messages);
            let scanned = scan(&doc);
            if scanned.is_some() {
                prop_assert_eq!(&scanned, &general(&doc), "document: {}", doc);
            }
            let whole = document(&Envelope { cut: None, ..envelope.clone() }, &messages);
            let plain = !envelope.fault
                && doc.len() == whole.len()
                && matches!(envelope.trailing, "" | "\n")
                && messages.iter().all(|m| matches!(m, Message::Created { .. }));
            prop_assert_eq!(scanned.is_some(), plain, "document: {}", doc);
        }
    }

    #[test]
    fn plain_answer_gives_ids_escaped_and_the_server_version() {
        let messages = [
            Message::Created { n: 1, change_key: true, escaped: true, noise: false, class: true },
            Message::Created { n: 2, change_key: false, escaped: false, noise: true, class: false },
        ];
        let envelope = Envelope { header: 1, prefixes: true, fault: false, trailing: "", cut: None };
        let (ids, version) = scan(&document(&envelope, &messages)).expect("the plain case is scanned");
        assert_eq!(
            ids,
            vec![
                ItemId { id: "AAMk1&x".into(), change_key: Some("CQ1".into()) },
                ItemId { id: "AAMk2".into(), change_key: None }
            ]
        );
        let version = version.expect("version header");
        assert_eq!(
            (version.major, version.minor, version.version.as_deref()),
            (Some(15), Some(20), Some("V2018_01_08"))
        );
    }

    #[test]
    fn an_answer_without_ids_is_left_to_the_reader_that_says_so() {
        // Exchange Online: created, no id. The scan must not answer (it would lose the entry);
        // the general reader answers "created, id unknown" for exactly that message.
        use crate::operation::items::{Created, parse_create_item_outcomes};
        let messages = [
            Message::Created { n: 1, change_key: true, escaped: false, noise: false, class: true },
            Message::EmptyItems,
            Message::NoItem,
            Message::Error("ErrorItemSave"),
        ];
        let envelope = Envelope { header: 1, prefixes: true, fault: false, trailing: "", cut: None };
        let doc = document(&envelope, &messages);
        assert_eq!(scan(&doc), None);
        let response = parse_envelope("CreateItem", doc.as_bytes(), ParseLimits::default()).unwrap();
        let outcomes = parse_create_item_outcomes(response.body).unwrap();
        assert_eq!(outcomes.len(), 4);
        assert_eq!(
            outcomes[0].as_ref().unwrap(),
            &Created::Item(ItemId { id: "AAMk1".into(), change_key: Some("CQ1".into()) })
        );
        assert_eq!(outcomes[1].as_ref().unwrap(), &Created::IdUnknown);
        assert_eq!(outcomes[2].as_ref().unwrap(), &Created::IdUnknown);
        assert_eq!(outcomes[3].as_ref().unwrap_err().response_code(), Some("ErrorItemSave"));
    }

    #[test]
    fn refusals_of_the_tree_reader_are_left_to_it() {
        let ok = r#"<Envelope><Body><R><ResponseMessages><M><Items><Contact><ItemId Id="a"/></Contact></Items></M></ResponseMessages></R></Body></Envelope>"#;
        assert!(scan(ok).is_some());
        let dtd = format!(r#"<!DOCTYPE a [<!ENTITY x "y">]>{ok}"#);
        let deep = ok.replace("<Contact>", &"<Contact>".repeat(70)).replace("</Contact>", &"</Contact>".repeat(70));
        let mismatched = ok.replace("</Items>", "</Itemz>");
        let unknown_entity = ok.replace(r#"Id="a""#, r#"Id="&x;""#);
        for bad in [dtd, deep, mismatched, unknown_entity, format!("x{ok}")] {
            assert_eq!(scan(&bad), None, "{bad}");
        }
        let small = ParseLimits { max_bytes: 10, max_depth: 64 };
        assert_eq!(scan_item_ids(ok.as_bytes(), small), None);
    }
}
