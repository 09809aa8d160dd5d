//! A member folder that does not exist yet, as a dry run plans against it: empty, with nothing
//! to write to. Opening it for real would create it, and a dry run writes nothing anywhere
//! (design rule 15).

use std::sync::Arc;

use async_trait::async_trait;
use exchange_sync_core::{
    BatchResult, Capabilities, ChangeDetection, ChangeHint, ChangePage, Connector, Deleted, Error, ErrorContext,
    FetchedItem, ItemDelete, ItemId, ItemUpdate, ItemVersion, ListPage, NewItem, OriginStamp, PageCursor, Result,
    SyncToken,
};
use futures::stream::BoxStream;

/// The server id a missing folder answers: no server folder has it, so a member whose state
/// names a folder is seen as moving to a new one (a re-home), never as emptied.
pub(crate) const MISSING_FOLDER_ID: &str = "(not created yet)";

/// An empty folder that is yet to be created.
pub(crate) struct MissingFolder {
    description: String,
}

impl MissingFolder {
    /// The folder `description` (e.g. `alice@contoso.test/contacts/Company Contacts`).
    pub(crate) fn shared(description: String) -> Arc<dyn Connector> {
        Arc::new(MissingFolder { description })
    }

    fn refused(&self, operation: &'static str) -> Error {
        Error::permanent(
            "the folder does not exist yet (a dry run does not create it)",
            ErrorContext::operation(operation).with_folder(self.description.clone()),
        )
    }
}

#[async_trait]
impl Connector for MissingFolder {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { change_detection: ChangeDetection::Snapshot, max_batch: 100, watch: false }
    }

    fn folder_id(&self) -> Option<String> {
        Some(MISSING_FOLDER_ID.to_owned())
    }

    async fn changes(&self, _token: Option<&SyncToken>) -> Result<ChangePage> {
        Err(self.refused("changes"))
    }

    async fn list(&self, _cursor: Option<&PageCursor>) -> Result<ListPage> {
        Ok(ListPage { items: Vec::new(), next: None })
    }

    async fn get(&self, ids: &[ItemId]) -> Result<BatchResult<FetchedItem>> {
        Ok(ids
            .iter()
            .map(|id| {
                Err(Error::NotFound {
                    context: Box::new(
                        ErrorContext::operation("get").with_folder(self.description.clone()).with_item(id.clone()),
                    ),
                })
            })
            .collect())
    }

    async fn create(&self, _items: &[NewItem]) -> Result<BatchResult<ItemVersion>> {
        Err(self.refused("create"))
    }

    async fn update(&self, _updates: &[ItemUpdate]) -> Result<BatchResult<ItemVersion>> {
        Err(self.refused("update"))
    }

    async fn delete(&self, _items: &[ItemDelete]) -> Result<BatchResult<Deleted>> {
        Err(self.refused("delete"))
    }

    async fn find_by_origin(&self, _origins: &[OriginStamp]) -> Result<Vec<FetchedItem>> {
        Ok(Vec::new())
    }

    async fn watch(&self) -> Result<BoxStream<'static, ChangeHint>> {
        Ok(Box::pin(futures::stream::pending()))
    }
}
