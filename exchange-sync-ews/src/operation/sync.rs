//! SyncFolderItems and SyncFolderHierarchy: incremental change listing with an opaque sync state.

use crate::error::Result;
use crate::folder::{FOLDER_ELEMENTS, Folder};
use crate::ids::{FolderId, FolderRef, ItemId};
use crate::item::EwsItem;
use crate::property::{FolderShape, ItemShape};
use crate::soap::{into_single_message, single_message};
use crate::xml::{Element, XmlWriter};

/// The most changes one SyncFolderItems call may return (schema range 1..512).
pub const MAX_SYNC_CHANGES: u32 = 512;

/// `m:SyncFolderItems` for one folder from a state (`None`: from the beginning).
pub fn sync_folder_items_request(
    folder: &FolderRef,
    shape: &ItemShape,
    sync_state: Option<&str>,
    max_changes: u32,
) -> String {
    let mut w = XmlWriter::new();
    w.open("m:SyncFolderItems", &[]);
    shape.write(&mut w, "m:ItemShape");
    w.open("m:SyncFolderId", &[]);
    folder.write(&mut w);
    w.close("m:SyncFolderId");
    if let Some(s) = sync_state.filter(|s| !s.is_empty()) {
        w.leaf("m:SyncState", s);
    }
    w.leaf("m:MaxChangesReturned", &max_changes.clamp(1, MAX_SYNC_CHANGES).to_string());
    w.leaf("m:SyncScope", "NormalItems");
    w.close("m:SyncFolderItems");
    w.finish()
}

/// One change in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemChangeEvent {
    /// A new item (only the shape asked for; fetch the rest with GetItem).
    Create(EwsItem),
    /// A changed item.
    Update(EwsItem),
    /// A deleted item (id only).
    Delete(ItemId),
    /// Only the read flag changed.
    ReadFlagChange(ItemId, bool),
}

/// A page of SyncFolderItems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemSyncPage {
    /// The state to continue from (persist it with what was derived from this page).
    pub sync_state: String,
    /// Whether this page brings the folder up to date.
    pub includes_last: bool,
    /// The changes, in server order.
    pub changes: Vec<ItemChangeEvent>,
}

/// Parses a SyncFolderItems response. Consumes it: the changed items are moved out of the response,
/// not copied (an IdOnly page of 512 creates is what the connector reads most).
pub fn parse_sync_folder_items(body: Element) -> Result<ItemSyncPage> {
    let mut m = into_single_message("SyncFolderItems", body)?;
    let sync_state = m.child_text("SyncState").unwrap_or_default().to_owned();
    let includes_last = m.child_text("IncludesLastItemInRange") != Some("false");
    let mut changes = Vec::new();
    if let Some(c) = m.take_child("Changes") {
        changes.reserve(c.children.len());
        for mut change in c.children {
            let take_id = |change: &mut Element| change.take_child("ItemId").and_then(ItemId::take_from_element);
            match change.name.as_ref() {
                "Create" => changes.extend(first_item(change).map(ItemChangeEvent::Create)),
                "Update" => changes.extend(first_item(change).map(ItemChangeEvent::Update)),
                "Delete" => changes.extend(take_id(&mut change).map(ItemChangeEvent::Delete)),
                "ReadFlagChange" => {
                    let is_read = change.child_text("IsRead") == Some("true");
                    if let Some(id) = take_id(&mut change) {
                        changes.push(ItemChangeEvent::ReadFlagChange(id, is_read));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(ItemSyncPage { sync_state, includes_last, changes })
}

/// The first item element of a change, moved out of it.
fn first_item(change: Element) -> Option<EwsItem> {
    change.children.into_iter().find_map(EwsItem::from_element)
}

/// `m:SyncFolderHierarchy` below a folder (or the whole mailbox with `None`).
pub fn sync_folder_hierarchy_request(
    shape: &FolderShape,
    folder: Option<&FolderRef>,
    sync_state: Option<&str>,
) -> String {
    let mut w = XmlWriter::new();
    w.open("m:SyncFolderHierarchy", &[]);
    shape.write(&mut w, "m:FolderShape");
    if let Some(f) = folder {
        w.open("m:SyncFolderId", &[]);
        f.write(&mut w);
        w.close("m:SyncFolderId");
    }
    if let Some(s) = sync_state.filter(|s| !s.is_empty()) {
        w.leaf("m:SyncState", s);
    }
    w.close("m:SyncFolderHierarchy");
    w.finish()
}

/// One change in a folder tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderChangeEvent {
    /// A new folder.
    Create(Folder),
    /// A changed folder.
    Update(Folder),
    /// A deleted folder.
    Delete(FolderId),
}

/// A page of SyncFolderHierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderSyncPage {
    /// The state to continue from.
    pub sync_state: String,
    /// Whether this page brings the tree up to date.
    pub includes_last: bool,
    /// The changes.
    pub changes: Vec<FolderChangeEvent>,
}

/// Parses a SyncFolderHierarchy response.
pub fn parse_sync_folder_hierarchy(body: &Element) -> Result<FolderSyncPage> {
    let m = single_message("SyncFolderHierarchy", body)?;
    let mut changes = Vec::new();
    if let Some(c) = m.child("Changes") {
        for change in &c.children {
            let folder = || {
                change
                    .children
                    .iter()
                    .filter(|e| FOLDER_ELEMENTS.contains(&e.name.as_ref()))
                    .find_map(Folder::from_element)
            };
            match change.name.as_ref() {
                "Create" => changes.extend(folder().map(FolderChangeEvent::Create)),
                "Update" => changes.extend(folder().map(FolderChangeEvent::Update)),
                "Delete" => changes
                    .extend(change.child("FolderId").and_then(FolderId::from_element).map(FolderChangeEvent::Delete)),
                _ => {}
            }
        }
    }
    Ok(FolderSyncPage {
        sync_state: m.child_text("SyncState").unwrap_or_default().to_owned(),
        includes_last: m.child_text("IncludesLastFolderInRange") != Some("false"),
        changes,
    })
}
