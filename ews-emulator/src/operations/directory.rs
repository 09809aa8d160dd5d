//! ExpandDL: the members of a distribution group.

use super::{Context, Responses, required};
use crate::response_code::EwsError;
use crate::soap::Fault;
use crate::xml::{Element, escape};

/// ExpandDL for a group of the directory.
pub fn expand_dl(ctx: &Context<'_>, op: &Element) -> Result<String, Fault> {
    let mailbox = required(op, "Mailbox")?;
    let address = mailbox.child_text("EmailAddress").unwrap_or("");
    let mut r = Responses::new("ExpandDL");
    let res = match ctx.shared.directory.group(address) {
        Some((_, members)) => {
            let mut s =
                format!(r#"<m:DLExpansion TotalItemsInView="{}" IncludesLastItemInRange="true">"#, members.len());
            for m in members {
                s.push_str(&format!(
                    "<t:Mailbox><t:Name>{}</t:Name><t:EmailAddress>{}</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Mailbox</t:MailboxType></t:Mailbox>",
                    escape(&m.display_name),
                    escape(&m.address)
                ));
            }
            s.push_str("</m:DLExpansion>");
            Ok(s)
        }
        None => Err(EwsError::new("ErrorNameResolutionNoResults", "No results were found.")),
    };
    r.push(res, "");
    Ok(r.finish())
}
