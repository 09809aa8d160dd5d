//! Counting the writes of a pass as they complete, for progress reports (the CLI's progress bars,
//! the bindings' events): a [`Connector`] wrapper that reports how many items each create, update
//! and delete batch processed, and otherwise passes everything through.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use exchange_sync_core::{
    BatchResult, Capabilities, ChangeHint, ChangePage, Connector, Deleted, FetchedItem, ItemDelete, ItemId, ItemUpdate,
    ItemVersion, ListPage, NewItem, OriginStamp, PageCursor, Result, SyncToken,
};
use futures::stream::BoxStream;

/// Told how many items a write batch processed (failed ones included: they are done too).
pub type WrittenCallback = Arc<dyn Fn(usize) + Send + Sync>;

/// A folder whose writes are counted.
pub struct CountingConnector {
    inner: Arc<dyn Connector>,
    written: WrittenCallback,
}

impl CountingConnector {
    /// Wraps `inner`, calling `written` after each write batch.
    pub fn wrap(inner: Arc<dyn Connector>, written: WrittenCallback) -> Arc<dyn Connector> {
        Arc::new(CountingConnector { inner, written })
    }

    fn count<T>(&self, result: Result<BatchResult<T>>) -> Result<BatchResult<T>> {
        if let Ok(batch) = &result {
            (self.written)(batch.len());
        }
        result
    }
}

#[async_trait]
impl Connector for CountingConnector {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn folder_id(&self) -> Option<String> {
        self.inner.folder_id()
    }

    async fn changes(&self, token: Option<&SyncToken>) -> Result<ChangePage> {
        self.inner.changes(token).await
    }

    async fn list(&self, cursor: Option<&PageCursor>) -> Result<ListPage> {
        self.inner.list(cursor).await
    }

    async fn get(&self, ids: &[ItemId]) -> Result<BatchResult<FetchedItem>> {
        self.inner.get(ids).await
    }

    async fn create(&self, items: &[NewItem]) -> Result<BatchResult<ItemVersion>> {
        let result = self.inner.create(items).await;
        self.count(result)
    }

    async fn update(&self, updates: &[ItemUpdate]) -> Result<BatchResult<ItemVersion>> {
        let result = self.inner.update(updates).await;
        self.count(result)
    }

    async fn delete(&self, items: &[ItemDelete]) -> Result<BatchResult<Deleted>> {
        let result = self.inner.delete(items).await;
        self.count(result)
    }

    async fn find_by_origin(&self, origins: &[OriginStamp]) -> Result<Vec<FetchedItem>> {
        self.inner.find_by_origin(origins).await
    }

    async fn watch(&self) -> Result<BoxStream<'static, ChangeHint>> {
        self.inner.watch().await
    }

    fn poll_interval(&self) -> Duration {
        self.inner.poll_interval()
    }
}
