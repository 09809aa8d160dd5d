//! ExpandDL: the members of a distribution list.

use crate::error::Result;
use crate::ids::ItemId;
use crate::soap::single_message;
use crate::xml::{Element, XmlWriter};

/// A mailbox as EWS describes it (`t:EmailAddressType`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mailbox {
    /// Display name.
    pub name: Option<String>,
    /// SMTP address.
    pub email_address: Option<String>,
    /// Routing type (`SMTP`, `EX`).
    pub routing_type: Option<String>,
    /// `Mailbox`, `PublicDL`, `PrivateDL`, `Contact`, ...
    pub mailbox_type: Option<String>,
    /// For private DLs and contacts: the item id.
    pub item_id: Option<ItemId>,
}

impl Mailbox {
    fn from_element(e: &Element) -> Self {
        Self {
            name: e.child_text("Name").map(str::to_owned),
            email_address: e.child_text("EmailAddress").map(str::to_owned),
            routing_type: e.child_text("RoutingType").map(str::to_owned),
            mailbox_type: e.child_text("MailboxType").map(str::to_owned),
            item_id: e.child("ItemId").and_then(ItemId::from_element),
        }
    }
}

/// `m:ExpandDL` for a distribution list by SMTP address.
pub fn expand_dl_request(email_address: &str) -> String {
    let mut w = XmlWriter::new();
    w.open("m:ExpandDL", &[]).open("m:Mailbox", &[]).leaf("t:EmailAddress", email_address);
    w.close("m:Mailbox").close("m:ExpandDL");
    w.finish()
}

/// The members of the list (one level; nested lists appear with `MailboxType` `PublicDL`).
pub fn parse_expand_dl(body: &Element) -> Result<Vec<Mailbox>> {
    let m = single_message("ExpandDL", body)?;
    Ok(m.child("DLExpansion")
        .map(|d| d.children_named("Mailbox").map(Mailbox::from_element).collect())
        .unwrap_or_default())
}
