//! FindItem, GetItem, CreateItem, UpdateItem, DeleteItem, MoveItem.

use crate::error::{EwsError, Result};
use crate::ids::{FolderRef, ItemId};
use crate::item::{EwsItem, ItemChange, ItemDraft};
use crate::property::{ItemShape, PropertyPath};
use crate::rendered::RenderedItem;
use crate::soap::{into_response_messages, into_single_message, response_messages};
use crate::xml::{Element, XmlWriter};

use super::items_in;

/// A search condition for FindItem (only what the connectors need).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restriction {
    /// The property equals the constant.
    IsEqualTo(PropertyPath, String),
    /// Any of the conditions holds (one FindItem for many origin stamps, say). An `Or` of a single
    /// condition is written as that condition; an empty `Or` is not a valid restriction.
    Or(Vec<Restriction>),
}

impl Restriction {
    fn write(&self, w: &mut XmlWriter) {
        w.open("m:Restriction", &[]);
        self.write_condition(w);
        w.close("m:Restriction");
    }

    fn write_condition(&self, w: &mut XmlWriter) {
        match self {
            Self::IsEqualTo(path, value) => {
                w.open("t:IsEqualTo", &[]);
                path.write(w);
                w.open("t:FieldURIOrConstant", &[])
                    .empty("t:Constant", &[("Value", value)])
                    .close("t:FieldURIOrConstant")
                    .close("t:IsEqualTo");
            }
            Self::Or(any) if any.len() == 1 => any[0].write_condition(w),
            Self::Or(any) => {
                w.open("t:Or", &[]);
                for c in any {
                    c.write_condition(w);
                }
                w.close("t:Or");
            }
        }
    }
}

/// `m:FindItem` on one folder, one page (`max` at most 1000: EWSFindCountLimit).
pub fn find_item_request(
    folder: &FolderRef,
    shape: &ItemShape,
    restriction: Option<&Restriction>,
    offset: u32,
    max: u32,
) -> String {
    let mut w = XmlWriter::new();
    w.open("m:FindItem", &[("Traversal", "Shallow")]);
    shape.write(&mut w, "m:ItemShape");
    w.empty(
        "m:IndexedPageItemView",
        &[("MaxEntriesReturned", &max.to_string()), ("Offset", &offset.to_string()), ("BasePoint", "Beginning")],
    );
    if let Some(r) = restriction {
        r.write(&mut w);
    }
    w.open("m:ParentFolderIds", &[]);
    folder.write(&mut w);
    w.close("m:ParentFolderIds").close("m:FindItem");
    w.finish()
}

/// `m:FindItem` with a `CalendarView` on one folder: the single items and the occurrences of
/// recurring series overlapping `[start, end)` (what a calendar shows; masters are not listed).
pub fn calendar_view_request(
    folder: &FolderRef,
    shape: &ItemShape,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    max: u32,
) -> String {
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut w = XmlWriter::new();
    w.open("m:FindItem", &[("Traversal", "Shallow")]);
    shape.write(&mut w, "m:ItemShape");
    w.empty(
        "m:CalendarView",
        &[("MaxEntriesReturned", &max.to_string()), ("StartDate", &fmt(start)), ("EndDate", &fmt(end))],
    );
    w.open("m:ParentFolderIds", &[]);
    folder.write(&mut w);
    w.close("m:ParentFolderIds").close("m:FindItem");
    w.finish()
}

/// A page of FindItem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemPage {
    /// The items on this page.
    pub items: Vec<EwsItem>,
    /// The total number of items in view, if the server said.
    pub total: Option<u32>,
    /// Whether this is the last page.
    pub includes_last: bool,
    /// The offset of the next page, when there is one.
    pub next_offset: Option<u32>,
}

/// Parses a FindItem response (one folder). Consumes it: the items are moved out, not copied.
pub fn parse_find_item(body: Element) -> Result<ItemPage> {
    let mut m = into_single_message("FindItem", body)?;
    let mut root = m.take_child("RootFolder").ok_or_else(|| EwsError::protocol("FindItem", "missing RootFolder"))?;
    Ok(ItemPage {
        total: root.attr("TotalItemsInView").and_then(|t| t.parse().ok()),
        includes_last: root.attr("IncludesLastItemInRange") != Some("false"),
        next_offset: root.attr("IndexedPagingOffset").and_then(|o| o.parse().ok()),
        items: items_in(root.take_child("Items")),
    })
}

/// `m:GetItem` for a batch of ids.
pub fn get_item_request(ids: &[ItemId], shape: &ItemShape) -> String {
    let mut w = XmlWriter::new();
    w.open("m:GetItem", &[]);
    shape.write(&mut w, "m:ItemShape");
    w.open("m:ItemIds", &[]);
    for id in ids {
        id.write(&mut w, "t:ItemId");
    }
    w.close("m:ItemIds").close("m:GetItem");
    w.finish()
}

/// The first item of a response message's `Items`, moved out of the message.
fn one_item(operation: &'static str, message: Result<Element>) -> Result<EwsItem> {
    message?
        .take_child("Items")
        .and_then(|items| items.children.into_iter().find_map(EwsItem::from_element))
        .ok_or_else(|| EwsError::protocol(operation, "no item in message"))
}

/// One item per requested id, in request order. Consumes the response: the items are moved out of
/// it, not copied.
pub fn parse_get_item(body: Element) -> Result<Vec<Result<EwsItem>>> {
    Ok(into_response_messages("GetItem", body)?.into_iter().map(|m| one_item("GetItem", m)).collect())
}

/// `m:CreateItem` for a batch of drafts in one folder. Never sends anything: messages are saved only
/// and meeting invitations are not sent.
pub fn create_item_request(folder: &FolderRef, drafts: &[ItemDraft]) -> String {
    let rendered: Vec<RenderedItem> = drafts.iter().map(RenderedItem::of).collect();
    create_rendered_request(folder, &rendered)
}

/// `m:CreateItem` for a batch of items rendered beforehand (see [`RenderedItem`]).
pub fn create_rendered_request(folder: &FolderRef, items: &[RenderedItem]) -> String {
    const OPERATION: usize = 512;
    let mut w = XmlWriter::with_capacity(items.iter().map(|i| i.as_str().len()).sum::<usize>() + OPERATION);
    w.open("m:CreateItem", &[("MessageDisposition", "SaveOnly"), ("SendMeetingInvitations", "SendToNone")]);
    w.open("m:SavedItemFolderId", &[]);
    folder.write(&mut w);
    w.close("m:SavedItemFolderId").open("m:Items", &[]);
    for item in items {
        w.raw(item.as_str());
    }
    w.close("m:Items").close("m:CreateItem");
    w.finish()
}

/// One created item (id and change key) per draft, in request order. Consumes the response: the ids
/// are moved out of it, not copied (a batch of creates is the engine's most frequent response).
///
/// A success without an item (Exchange Online's answer, see [`Created::IdUnknown`]) is an error
/// here; [`parse_create_item_outcomes`] tells it apart.
pub fn parse_create_item(body: Element) -> Result<Vec<Result<ItemId>>> {
    first_item_ids("CreateItem", body, "created item without id")
}

/// What a successful CreateItem message says about the item it created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// Created, with this id and change key.
    Item(ItemId),
    /// Created, but the server answered no id: Exchange Online may answer a successful
    /// CreateItem with `ResponseClass="Success"` and an empty `m:Items` (exchangelib's
    /// `CreateItem` service turns such an empty container into `True` for the same reason). The
    /// item exists; find it by a property written with it (the connectors' origin stamp).
    IdUnknown,
}

impl Created {
    /// The id, when the server answered one.
    pub fn id(&self) -> Option<&ItemId> {
        match self {
            Self::Item(id) => Some(id),
            Self::IdUnknown => None,
        }
    }

    /// The id, moved out, when the server answered one.
    pub fn into_id(self) -> Option<ItemId> {
        match self {
            Self::Item(id) => Some(id),
            Self::IdUnknown => None,
        }
    }
}

/// One [`Created`] per draft, in request order: a success with an item id, a success without any
/// item ([`Created::IdUnknown`]), or the message's error. An item element without an id is a
/// protocol error. Consumes the response like [`parse_create_item`].
pub fn parse_create_item_outcomes(body: Element) -> Result<Vec<Result<Created>>> {
    Ok(into_response_messages("CreateItem", body)?
        .into_iter()
        .map(|m| {
            let items = m?.take_child("Items");
            match items.and_then(|items| items.children.into_iter().find_map(EwsItem::from_element)) {
                Some(item) => item
                    .into_id()
                    .map(Created::Item)
                    .ok_or_else(|| EwsError::protocol("CreateItem", "created item without id")),
                None => Ok(Created::IdUnknown),
            }
        })
        .collect())
}

/// `m:UpdateItem` for a batch of changes, each guarded by its change key (NeverOverwrite): a stale key
/// fails that entry with ErrorIrresolvableConflict instead of overwriting someone's edit.
pub fn update_item_request(changes: &[ItemChange]) -> String {
    let mut w = XmlWriter::new();
    w.open(
        "m:UpdateItem",
        &[
            ("ConflictResolution", "NeverOverwrite"),
            ("MessageDisposition", "SaveOnly"),
            ("SendMeetingInvitationsOrCancellations", "SendToNone"),
        ],
    );
    w.open("m:ItemChanges", &[]);
    for c in changes {
        c.write(&mut w);
    }
    w.close("m:ItemChanges").close("m:UpdateItem");
    w.finish()
}

/// The new id and change key per change, in request order. Consumes the response like
/// [`parse_create_item`].
pub fn parse_update_item(body: Element) -> Result<Vec<Result<ItemId>>> {
    first_item_ids("UpdateItem", body, "item without id")
}

/// Per response message, the id of the first item in its `Items`, moved out of the message.
fn first_item_ids(operation: &'static str, body: Element, missing_id: &'static str) -> Result<Vec<Result<ItemId>>> {
    Ok(into_response_messages(operation, body)?
        .into_iter()
        .map(|m| one_item(operation, m)?.into_id().ok_or_else(|| EwsError::protocol(operation, missing_id)))
        .collect())
}

/// How deleted items go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteType {
    /// Gone for good.
    HardDelete,
    /// Into the dumpster (recoverable).
    SoftDelete,
    /// Into Deleted Items.
    MoveToDeletedItems,
}

/// `m:DeleteItem` for a batch of ids. Never sends cancellations.
pub fn delete_item_request(ids: &[ItemId], delete_type: DeleteType) -> String {
    let t = match delete_type {
        DeleteType::HardDelete => "HardDelete",
        DeleteType::SoftDelete => "SoftDelete",
        DeleteType::MoveToDeletedItems => "MoveToDeletedItems",
    };
    let mut w = XmlWriter::new();
    w.open(
        "m:DeleteItem",
        &[("DeleteType", t), ("SendMeetingCancellations", "SendToNone"), ("AffectedTaskOccurrences", "AllOccurrences")],
    );
    w.open("m:ItemIds", &[]);
    for id in ids {
        // A delete does not need the change key; sending a stale one would only make it fail.
        ItemId::new(id.id.clone()).write(&mut w, "t:ItemId");
    }
    w.close("m:ItemIds").close("m:DeleteItem");
    w.finish()
}

/// One result per deleted id, in request order.
pub fn parse_delete_item(body: &Element) -> Result<Vec<Result<()>>> {
    Ok(response_messages("DeleteItem", body)?.into_iter().map(|m| m.map(|_| ())).collect())
}

/// `m:MoveItem` of a batch of items into one folder. `return_new_ids` asks for the new ids
/// explicitly (`m:ReturnNewItemIds`, Exchange 2010 SP1 and later only: older servers refuse the
/// element, and answer the ids anyway for moves within a mailbox).
pub fn move_item_request(ids: &[ItemId], to: &FolderRef, return_new_ids: bool) -> String {
    let mut w = XmlWriter::new();
    w.open("m:MoveItem", &[]);
    w.open("m:ToFolderId", &[]);
    to.write(&mut w);
    w.close("m:ToFolderId").open("m:ItemIds", &[]);
    for id in ids {
        id.write(&mut w, "t:ItemId");
    }
    w.close("m:ItemIds");
    if return_new_ids {
        w.leaf("m:ReturnNewItemIds", "true");
    }
    w.close("m:MoveItem");
    w.finish()
}

/// One result per moved item, in request order: the item's new id and change key (a moved item
/// is a new item for EWS), or `None` when the server answered no item (Exchange does for moves
/// into a public folder or another mailbox).
pub fn parse_move_item(body: Element) -> Result<Vec<Result<Option<ItemId>>>> {
    Ok(into_response_messages("MoveItem", body)?
        .into_iter()
        .map(|m| {
            let items = m?.take_child("Items");
            Ok(items
                .and_then(|items| items.children.into_iter().find_map(EwsItem::from_element))
                .and_then(EwsItem::into_id))
        })
        .collect())
}
