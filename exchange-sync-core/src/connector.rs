//! What a server must offer the engine: the [`Connector`] trait, one instance per folder.
//!
//! A connector is bound to one folder on one server (a mailbox folder, a public folder, a
//! directory in a test). The engine holds connectors as `Arc<dyn Connector>`, so the trait is
//! object safe. Batched calls answer **per item**: one bad item does not fail its neighbours,
//! which is how EWS behaves and what the executor relies on to commit each action separately.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::error::Result;
use crate::id::{ItemId, SyncToken, Version};
use crate::item::{ContentHash, Item};
use crate::origin::OriginStamp;

/// How a folder reports what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeDetection {
    /// "Changes since a token" ([`Connector::changes`]); EWS SyncFolderItems on mailbox folders.
    Incremental,
    /// "List every (id, version)" ([`Connector::list`]), and the engine diffs against its state;
    /// EWS public folders, where SyncFolderItems is not supported.
    Snapshot,
}

/// What a connector can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// How changes are detected.
    pub change_detection: ChangeDetection,
    /// The largest batch one call should carry (EWS: 10..=100 is kind to servers).
    pub max_batch: usize,
    /// Whether [`Connector::watch`] delivers hints (otherwise the engine polls).
    pub watch: bool,
}

/// One item as the server listed it: id and version, no content.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemVersion {
    /// The item's id in this folder.
    pub id: ItemId,
    /// Its current version.
    pub version: Version,
}

/// One change reported by an incremental listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The item was created or modified; it now has this version.
    Upserted(ItemVersion),
    /// The item is gone (deleted or moved out of the folder).
    Deleted(ItemId),
}

/// A page of incremental changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangePage {
    /// The changes of this page, oldest first.
    pub changes: Vec<Change>,
    /// The token to store with the state derived from this page, and to pass to the next call.
    pub token: SyncToken,
    /// Whether more pages follow now (EWS: not `IncludesLastItemInRange`).
    pub more: bool,
}

/// An opaque position in a snapshot listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor(pub String);

/// A page of a snapshot listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// The items of this page.
    pub items: Vec<ItemVersion>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<PageCursor>,
}

/// An item read from the server.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedItem {
    /// The item's id in this folder.
    pub id: ItemId,
    /// The version the content belongs to.
    pub version: Version,
    /// The normalized content.
    pub item: Item,
    /// The origin stamp, when the item carries one (any group's: the engine checks whose).
    pub origin: Option<OriginStamp>,
}

/// A new item to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewItem {
    /// The content (shared between the copies of one entity in many folders).
    pub item: Arc<Item>,
    /// The origin stamp to write with it (always set by the engine).
    pub origin: OriginStamp,
}

/// An update of an existing item, guarded by the version the engine last saw.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemUpdate {
    /// The item to update.
    pub id: ItemId,
    /// The version the engine expects the item to have; if the server holds another one the
    /// update fails with [`crate::Error::PreconditionFailed`] and nothing is written.
    pub expected: Version,
    /// The complete new content (shared between the copies of one entity in many folders).
    pub item: Arc<Item>,
    /// The content the engine last saw at `expected`, when known, so that a connector can send
    /// only the fields that differ (EWS SetItemField / DeleteItemField) instead of every field.
    pub previous: Option<Item>,
    /// The origin stamp to (re)write, for copies the engine adopted and now stamps.
    pub origin: Option<OriginStamp>,
}

/// An item to delete, with what the engine expects it to hold.
///
/// A deletion must never destroy an edit it did not see (design rule 4: a modification beats a
/// deletion). Servers that delete conditionally check `expected` themselves. Exchange does not
/// (DeleteItem ignores the change key), so its connector reads the version right before deleting
/// and refuses with [`crate::Error::PreconditionFailed`] when it moved, then checks what it
/// deleted against `expected_hash` and puts an edited copy back ([`Deleted::Restored`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemDelete {
    /// The item to delete.
    pub id: ItemId,
    /// The version the engine last saw; a copy at another version was edited since and is not
    /// deleted ([`crate::Error::PreconditionFailed`]).
    pub expected: Option<Version>,
    /// The content hash of what the engine last saw in the copy, for connectors that can only
    /// check after the fact what they deleted.
    pub expected_hash: Option<ContentHash>,
}

/// What a delete did to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// The item is gone, and it held what the engine expected (or the connector cannot tell).
    Gone,
    /// The item had been edited after the version the engine planned against, in the instant
    /// between the connector's last check and the deletion; the connector put the edited item
    /// back, now at this id and version. The edit wins (a modification beats a deletion): the
    /// engine records the copy as changed so that the next pass merges the edit.
    Restored(ItemVersion),
}

/// A hint that a folder changed: the engine should look (it never trusts a hint's content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeHint {
    /// Something changed in the folder.
    Changed,
    /// The notification channel had a gap (reconnect, expired subscription): changes may have
    /// been missed, so a full look is due.
    Resync,
}

/// The per-item results of a batched call, in the order of the request.
pub type BatchResult<T> = Vec<Result<T>>;

/// A folder on a server, as the engine sees it.
///
/// Implementations must be cheap to call concurrently (the executor runs calls for different
/// members at once) and must report errors with the right [`crate::ErrorKind`]: retry layers and
/// the planner act on it. The connector conformance suite in the test kit checks all of this.
#[async_trait]
pub trait Connector: Send + Sync {
    /// A human-readable name of the folder for logs and errors, e.g. `alice@contoso.test/Contacts`.
    /// Never contains credentials.
    fn describe(&self) -> String;

    /// What this connector can do.
    fn capabilities(&self) -> Capabilities;

    /// The server's stable identity of the folder (EWS: the folder id), when the connector knows
    /// it. The engine records it with the folder's copies: a configured target that now resolves
    /// to another folder (target changed, folder recreated or moved) is a re-home, never a mass
    /// deletion (design rule 11). `None` when the server has no such id; then only the "every
    /// known copy vanished at once" rule protects the group.
    fn folder_id(&self) -> Option<String> {
        None
    }

    /// Changes since `token` (`None`: from the beginning, every item as `Upserted`).
    ///
    /// Only for [`ChangeDetection::Incremental`] folders; snapshot connectors answer with a
    /// [`crate::ErrorKind::Permanent`] error. A token the server no longer accepts yields
    /// [`crate::ErrorKind::InvalidSyncToken`].
    async fn changes(&self, token: Option<&SyncToken>) -> Result<ChangePage>;

    /// One page of the full listing of (id, version) pairs. Every connector supports it (the
    /// engine uses it for snapshot folders, and for a full re-check of incremental ones).
    async fn list(&self, cursor: Option<&PageCursor>) -> Result<ListPage>;

    /// Reads items by id. Missing items answer [`crate::ErrorKind::NotFound`] in their slot.
    async fn get(&self, ids: &[ItemId]) -> Result<BatchResult<FetchedItem>>;

    /// Creates items, each with its origin stamp; answers the new ids and versions.
    async fn create(&self, items: &[NewItem]) -> Result<BatchResult<ItemVersion>>;

    /// Updates items, each guarded by its expected version; answers the new versions.
    async fn update(&self, updates: &[ItemUpdate]) -> Result<BatchResult<ItemVersion>>;

    /// Deletes items, each only while it holds its expected version (see [`ItemDelete`]). An
    /// item that is already gone answers [`crate::ErrorKind::NotFound`]; one whose version moved
    /// answers [`crate::ErrorKind::PreconditionFailed`] and stays.
    async fn delete(&self, items: &[ItemDelete]) -> Result<BatchResult<Deleted>>;

    /// Finds the items in this folder carrying any of these origin stamps (crash recovery and
    /// initial matching). Items without a matching stamp are not returned.
    async fn find_by_origin(&self, origins: &[OriginStamp]) -> Result<Vec<FetchedItem>>;

    /// A stream of change hints. Connectors without notifications return a stream that never
    /// yields; the engine then polls. The stream ends when the connector is dropped.
    async fn watch(&self) -> Result<BoxStream<'static, ChangeHint>>;

    /// How often the engine should poll when [`Connector::watch`] is unavailable or silent.
    fn poll_interval(&self) -> Duration {
        Duration::from_secs(60)
    }
}
