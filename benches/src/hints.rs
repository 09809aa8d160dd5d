//! Counts the change hints the service receives: a [`FolderProvider`] that hands out the EWS
//! folders unchanged, except that each folder's hint stream is counted on its way to the service
//! ([`ChangeHint::Changed`] and [`ChangeHint::Resync`] apart). The idle benchmarks read the counts:
//! a streaming connection renewed at the end of its lifetime must cost no resync hint, a real gap
//! one per folder.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use exchange_sync::config::{GroupConfig, MemberConfig, TargetFolder};
use exchange_sync::{EwsFolders, FolderProvider};
use exchange_sync_core::{
    BatchResult, Capabilities, ChangeHint, ChangePage, Connector, Deleted, FetchedItem, ItemDelete, ItemId, ItemUpdate,
    ItemVersion, ListPage, NewItem, OriginStamp, PageCursor, SyncToken,
};
use futures::StreamExt;
use futures::stream::BoxStream;

/// Hints counted so far, over every folder.
#[derive(Debug, Default)]
pub struct HintCounts {
    changed: AtomicU64,
    resync: AtomicU64,
}

impl HintCounts {
    /// (`Changed` hints, `Resync` hints) so far.
    pub fn now(&self) -> (u64, u64) {
        (self.changed.load(Ordering::Relaxed), self.resync.load(Ordering::Relaxed))
    }

    fn count(&self, hint: &ChangeHint) {
        match hint {
            ChangeHint::Changed => self.changed.fetch_add(1, Ordering::Relaxed),
            ChangeHint::Resync => self.resync.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// The EWS folders, with every folder's hints counted in `counts`.
pub struct CountingFolders {
    inner: Arc<EwsFolders>,
    counts: Arc<HintCounts>,
}

impl CountingFolders {
    /// Wraps `inner`.
    pub fn new(inner: Arc<EwsFolders>) -> (Arc<CountingFolders>, Arc<HintCounts>) {
        let counts = Arc::new(HintCounts::default());
        (Arc::new(CountingFolders { inner, counts: Arc::clone(&counts) }), counts)
    }

    fn wrap(&self, inner: Arc<dyn Connector>) -> Arc<dyn Connector> {
        Arc::new(Counted { inner, counts: Arc::clone(&self.counts) })
    }
}

#[async_trait]
impl FolderProvider for CountingFolders {
    async fn hub(&self, group: &GroupConfig) -> exchange_sync::Result<Arc<dyn Connector>> {
        Ok(self.wrap(self.inner.hub(group).await?))
    }

    async fn member(
        &self,
        group: &GroupConfig,
        member: &MemberConfig,
        target: &TargetFolder,
    ) -> exchange_sync::Result<Arc<dyn Connector>> {
        Ok(self.wrap(self.inner.member(group, member, target).await?))
    }

    async fn existing_member(
        &self,
        group: &GroupConfig,
        member: &MemberConfig,
        target: &TargetFolder,
    ) -> exchange_sync::Result<Option<Arc<dyn Connector>>> {
        Ok(self.inner.existing_member(group, member, target).await?.map(|c| self.wrap(c)))
    }

    async fn member_by_folder_id(
        &self,
        group: &GroupConfig,
        member: &MemberConfig,
        folder_id: &str,
    ) -> exchange_sync::Result<Arc<dyn Connector>> {
        Ok(self.wrap(self.inner.member_by_folder_id(group, member, folder_id).await?))
    }

    async fn hub_by_folder_id(
        &self,
        group: &GroupConfig,
        folder_id: &str,
    ) -> exchange_sync::Result<Arc<dyn Connector>> {
        Ok(self.wrap(self.inner.hub_by_folder_id(group, folder_id).await?))
    }

    async fn expand_distribution_group(
        &self,
        group: &GroupConfig,
        address: &str,
    ) -> exchange_sync::Result<Vec<String>> {
        self.inner.expand_distribution_group(group, address).await
    }

    async fn check_connection(&self, group: &GroupConfig) -> exchange_sync::Result<()> {
        self.inner.check_connection(group).await
    }
}

/// A folder whose hints are counted; everything else goes to the folder as it is.
struct Counted {
    inner: Arc<dyn Connector>,
    counts: Arc<HintCounts>,
}

#[async_trait]
impl Connector for Counted {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn folder_id(&self) -> Option<String> {
        self.inner.folder_id()
    }

    async fn changes(&self, token: Option<&SyncToken>) -> exchange_sync_core::Result<ChangePage> {
        self.inner.changes(token).await
    }

    async fn list(&self, cursor: Option<&PageCursor>) -> exchange_sync_core::Result<ListPage> {
        self.inner.list(cursor).await
    }

    async fn get(&self, ids: &[ItemId]) -> exchange_sync_core::Result<BatchResult<FetchedItem>> {
        self.inner.get(ids).await
    }

    async fn create(&self, items: &[NewItem]) -> exchange_sync_core::Result<BatchResult<ItemVersion>> {
        self.inner.create(items).await
    }

    async fn update(&self, updates: &[ItemUpdate]) -> exchange_sync_core::Result<BatchResult<ItemVersion>> {
        self.inner.update(updates).await
    }

    async fn delete(&self, items: &[ItemDelete]) -> exchange_sync_core::Result<BatchResult<Deleted>> {
        self.inner.delete(items).await
    }

    async fn find_by_origin(&self, origins: &[OriginStamp]) -> exchange_sync_core::Result<Vec<FetchedItem>> {
        self.inner.find_by_origin(origins).await
    }

    async fn watch(&self) -> exchange_sync_core::Result<BoxStream<'static, ChangeHint>> {
        let counts = Arc::clone(&self.counts);
        Ok(self.inner.watch().await?.inspect(move |hint| counts.count(hint)).boxed())
    }

    fn poll_interval(&self) -> Duration {
        self.inner.poll_interval()
    }
}
