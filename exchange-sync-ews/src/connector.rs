//! The core's [`Connector`] for Exchange folders: a mailbox folder (incremental, SyncFolderItems) or a
//! public folder (snapshot: paged FindItem with change keys, a cheap change probe, batched GetItem).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use exchange_sync_core as core;
use exchange_sync_core::{
    BatchResult, Capabilities, Change, ChangeDetection, ChangeHint, ChangePage, Connector, FetchedItem, ItemDelete,
    ItemUpdate, ItemVersion, ListPage, NewItem, OriginStamp, PageCursor, SyncToken, Version,
};
use futures::stream::BoxStream;

use crate::client::{EwsClient, MAX_FIND_PAGE};
use crate::error::{ErrorKind, EwsError};
use crate::ids::{FolderRef, ItemId};
use crate::item::{EwsItem, ItemChange, ItemDraft};
use crate::mapping;
use crate::operation::items::{DeleteType, Restriction};
use crate::operation::sync::{ItemChangeEvent, MAX_SYNC_CHANGES};
use crate::property::{self, FolderShape, ItemShape, PropertyPath};
use crate::rendered::{RenderCache, RenderedItem};
use crate::watch::{self, WatchOptions};

/// Tuning of a folder connector.
#[derive(Debug, Clone)]
pub struct ConnectorOptions {
    /// Largest batch the engine should send per call (EWS is kind with 10..100).
    pub max_batch: usize,
    /// Items per FindItem page (at most 1000).
    pub page_size: u32,
    /// Changes per SyncFolderItems call (at most 512).
    pub sync_page_size: u32,
    /// How deletions are made (`SoftDelete` keeps them recoverable from the dumpster).
    pub delete_type: DeleteType,
    /// How the folder is watched.
    pub watch: WatchOptions,
    /// How often the engine should poll without hints.
    pub poll_interval: Duration,
    /// A snapshot listing is answered from memory only if the folder's last commit (as the probe
    /// reports it, in whole seconds) is at least this much older than the listing that was cached:
    /// an edit in the same second as the cached listing must not go unseen (clock skew included).
    pub probe_quiet_period: Duration,
}

impl Default for ConnectorOptions {
    fn default() -> Self {
        Self {
            max_batch: 50,
            page_size: MAX_FIND_PAGE,
            sync_page_size: MAX_SYNC_CHANGES,
            delete_type: DeleteType::SoftDelete,
            watch: WatchOptions::default(),
            poll_interval: Duration::from_secs(60),
            probe_quiet_period: Duration::from_secs(10),
        }
    }
}

/// One Exchange folder as a sync connector.
#[derive(Debug, Clone)]
pub struct EwsFolderConnector {
    client: EwsClient,
    folder: FolderRef,
    description: String,
    detection: ChangeDetection,
    options: ConnectorOptions,
    snapshot: Arc<Mutex<SnapshotCache>>,
    stats: Arc<ConnectorStats>,
    /// Shared by every clone; watch tasks stop when the last clone is dropped.
    alive: Arc<()>,
}

/// Counters of what a connector asked the server, to measure how much the change probe saves.
#[derive(Debug, Default)]
pub struct ConnectorStats {
    /// FindItem pages fetched for listings.
    pub listing_pages_fetched: AtomicUsize,
    /// Listing pages answered from the snapshot cache because the change probe saw no change.
    pub listing_pages_from_cache: AtomicUsize,
    /// Change probes (GetFolder) sent.
    pub probes: AtomicUsize,
}

/// The last complete listing of a snapshot folder and the probe taken just before it. While the
/// probe stays equal, nothing in the folder changed and the listing can be answered from memory.
#[derive(Debug, Default)]
struct SnapshotCache {
    complete: Option<(ChangeProbe, Vec<ItemVersion>)>,
    building: Option<(ChangeProbe, Vec<ItemVersion>)>,
    /// When (local clock) the listing being built started.
    started: Option<DateTime<Utc>>,
}

/// Cursor prefixes: pages from the server at an offset, or from the cached listing.
const LIVE_CURSOR: &str = "o:";
const CACHED_CURSOR: &str = "c:";

/// A public folder's change probe: when anything in it last changed and how many items were ever
/// deleted (PR_LOCAL_COMMIT_TIME_MAX, PR_DELETED_COUNT_TOTAL). Equal probes mean nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeProbe {
    /// PR_LOCAL_COMMIT_TIME_MAX.
    pub last_commit: Option<DateTime<Utc>>,
    /// PR_DELETED_COUNT_TOTAL.
    pub deleted_total: Option<u64>,
    /// The item count.
    pub total_count: Option<u32>,
}

/// Converts a client error into the core's error, keeping retryability and the item concerned.
pub fn to_core_error(e: EwsError, folder: &str) -> core::Error {
    let mut context = core::ErrorContext::default().with_folder(folder.to_owned());
    context.operation = e.context().and_then(|c| c.operation);
    if let Some(item) = e.context().and_then(|c| c.item.clone()) {
        context = context.with_item(core::ItemId::new(item));
    }
    let context = Box::new(context);
    let message = e.to_string();
    // An id or change key the server cannot even decode belongs to no item of this folder: for the
    // engine that is a missing item, and a version that is not the current one.
    match e.response_code() {
        Some("ErrorInvalidIdMalformed" | "ErrorInvalidIdMalformedEwsLegacyIdFormat" | "ErrorInvalidIdEmpty") => {
            return core::Error::NotFound { context };
        }
        Some("ErrorInvalidChangeKey" | "ErrorStaleObject") => return core::Error::PreconditionFailed { context },
        _ => {}
    }
    match e.kind() {
        ErrorKind::Throttled => core::Error::Throttled { retry_after: e.retry_after(), context },
        ErrorKind::NotFound => core::Error::NotFound { context },
        ErrorKind::PreconditionFailed => core::Error::PreconditionFailed { context },
        ErrorKind::InvalidSyncState => core::Error::InvalidSyncToken { context },
        ErrorKind::AccessDenied | ErrorKind::Unauthorized | ErrorKind::MailboxNotFound => {
            core::Error::Auth { message, context }
        }
        ErrorKind::Configuration => core::Error::Config { message },
        k if k.is_retryable() || matches!(k, ErrorKind::Indeterminate | ErrorKind::SubscriptionLost) => {
            core::Error::Transient { message, context, source: Some(Box::new(e)) }
        }
        _ => core::Error::Permanent { message, context, source: Some(Box::new(e)) },
    }
}

/// The core's id and version of an EWS id (the change key is the version), taking its strings.
fn item_version(id: ItemId) -> ItemVersion {
    ItemVersion { id: core::ItemId::new(id.id), version: Version::new(id.change_key.unwrap_or_default()) }
}

impl EwsFolderConnector {
    /// A mailbox folder: incremental change detection with SyncFolderItems. `client` acts on the
    /// mailbox (usually through impersonation).
    pub fn mailbox_folder(client: EwsClient, folder: FolderRef, description: impl Into<String>) -> Self {
        Self::new(client, folder, description.into(), ChangeDetection::Incremental)
    }

    /// A public folder: snapshot change detection (SyncFolderItems does not work there). `client`
    /// should be routed to the public folder content mailbox (see [`crate::Routing`]).
    pub fn public_folder(client: EwsClient, folder: FolderRef, description: impl Into<String>) -> Self {
        Self::new(client, folder, description.into(), ChangeDetection::Snapshot)
    }

    fn new(client: EwsClient, folder: FolderRef, description: String, detection: ChangeDetection) -> Self {
        Self {
            client,
            folder,
            description,
            detection,
            options: ConnectorOptions::default(),
            snapshot: Arc::default(),
            stats: Arc::default(),
            alive: Arc::default(),
        }
    }

    /// What this connector asked the server so far.
    pub fn stats(&self) -> &ConnectorStats {
        &self.stats
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, SnapshotCache> {
        // The cache is only an optimisation; a poisoned lock still holds usable data.
        self.snapshot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A page of the cached listing, if the cache is there.
    fn cached_page(&self, offset: usize) -> Option<ListPage> {
        let cache = self.cache();
        let (_, items) = cache.complete.as_ref()?;
        let size = self.options.page_size.max(1) as usize;
        let end = (offset + size).min(items.len());
        let page = items.get(offset..end)?.to_vec();
        self.stats.listing_pages_from_cache.fetch_add(1, Ordering::Relaxed);
        let next = (end < items.len()).then(|| PageCursor(format!("{CACHED_CURSOR}{end}")));
        Some(ListPage { items: page, next })
    }

    /// A page from the server; feeds the cache being built when it continues it.
    async fn live_page(&self, offset: u32) -> core::Result<ListPage> {
        let shape = ItemShape::id_only(Vec::new());
        let page = self
            .client
            .find_items_page(&self.folder, &shape, None, offset, self.options.page_size)
            .await
            .map_err(|e| self.err(e))?;
        self.stats.listing_pages_fetched.fetch_add(1, Ordering::Relaxed);
        let n = page.items.len() as u32;
        let items: Vec<ItemVersion> = page.items.into_iter().filter_map(EwsItem::into_id).map(item_version).collect();
        let last = page.includes_last || n == 0;
        let next = (!last).then(|| PageCursor(format!("{LIVE_CURSOR}{}", page.next_offset.unwrap_or(offset + n))));
        let mut cache = self.cache();
        let continues = cache.building.as_ref().is_some_and(|(_, b)| b.len() == offset as usize);
        if continues {
            if let Some((_, building)) = cache.building.as_mut() {
                building.extend(items.iter().cloned());
            }
            if last {
                let quiet =
                    chrono::Duration::from_std(self.options.probe_quiet_period).unwrap_or(chrono::Duration::MAX);
                let started = cache.started;
                let settled = |p: &ChangeProbe| match (p.last_commit, started) {
                    (Some(commit), Some(started)) => commit <= started - quiet,
                    _ => false,
                };
                let built = cache.building.take();
                cache.complete = built.filter(|(p, _)| settled(p));
            }
        } else {
            cache.building = None;
        }
        Ok(ListPage { items, next })
    }

    /// The same connector with other options.
    pub fn with_options(mut self, options: ConnectorOptions) -> Self {
        self.options = options;
        self
    }

    /// The client this connector uses.
    pub fn client(&self) -> &EwsClient {
        &self.client
    }

    fn err(&self, e: EwsError) -> core::Error {
        to_core_error(e, &self.description)
    }

    /// The cheap "anything changed?" probe of the folder (one GetFolder).
    pub async fn probe(&self) -> core::Result<ChangeProbe> {
        self.stats.probes.fetch_add(1, Ordering::Relaxed);
        let shape = FolderShape {
            base: property::BaseShape::Default,
            additional: vec![
                PropertyPath::Extended(property::local_commit_time_max()),
                PropertyPath::Extended(property::deleted_count_total()),
            ],
        };
        let f = self.client.get_folder(&self.folder, &shape).await.map_err(|e| self.err(e))?;
        Ok(ChangeProbe {
            last_commit: f
                .extended(&property::local_commit_time_max())
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|d| d.with_timezone(&Utc)),
            deleted_total: f.extended(&property::deleted_count_total()).and_then(|t| t.parse().ok()),
            total_count: f.total_count,
        })
    }

    fn fetched(&self, ews: &EwsItem) -> Option<FetchedItem> {
        let ItemVersion { id, version } = item_version(ews.id()?);
        let (item, origin) = mapping::to_item(ews);
        Some(FetchedItem { id, version, item, origin })
    }

    async fn get_full(&self, ids: &[ItemId]) -> core::Result<BatchResult<FetchedItem>> {
        let shape = mapping::full_shape();
        let results = self.client.get_items(ids, &shape).await.map_err(|e| self.err(e))?;
        Ok(results
            .into_iter()
            .map(|r| match r {
                Ok(ews) => self.fetched(&ews).ok_or_else(|| self.err(EwsError::protocol("GetItem", "item without id"))),
                Err(e) => Err(self.err(e)),
            })
            .collect())
    }

    async fn find_ids_by_origin(&self, origins: &[OriginStamp]) -> Result<Vec<ItemId>, EwsError> {
        let uri =
            crate::property::ExtendedFieldUri::named(mapping::PROPERTY_SET_ID, mapping::ORIGIN_PROPERTY, "String");
        let shape = ItemShape::id_only(vec![PropertyPath::Extended(uri.clone())]);
        let wanted: HashSet<String> = origins.iter().map(OriginStamp::encode).collect();
        let candidates = if origins.len() <= 4 {
            let mut out = Vec::new();
            for o in origins {
                let r = Restriction::IsEqualTo(PropertyPath::Extended(uri.clone()), o.encode());
                out.extend(self.client.find_items_where(&self.folder, &shape, Some(&r)).await?);
            }
            out
        } else {
            self.client.find_all_items(&self.folder, &shape).await?
        };
        // Check the stamp ourselves too: a server may ignore a restriction it does not understand.
        Ok(candidates
            .into_iter()
            .filter(|i| i.extended(&uri).is_some_and(|v| wanted.contains(v)))
            .filter_map(EwsItem::into_id)
            .collect())
    }
}

#[async_trait]
impl Connector for EwsFolderConnector {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { change_detection: self.detection, max_batch: self.options.max_batch, watch: true }
    }

    async fn changes(&self, token: Option<&SyncToken>) -> core::Result<ChangePage> {
        if self.detection != ChangeDetection::Incremental {
            return Err(core::Error::permanent(
                "public folders have no incremental change listing; use list",
                core::ErrorContext::operation("changes").with_folder(self.description.clone()),
            ));
        }
        let shape = ItemShape::id_only(Vec::new());
        let page = self
            .client
            .sync_folder_items(&self.folder, &shape, token.map(SyncToken::as_str), self.options.sync_page_size)
            .await
            .map_err(|e| self.err(e))?;
        let changes = page
            .changes
            .into_iter()
            .filter_map(|c| match c {
                ItemChangeEvent::Create(i) | ItemChangeEvent::Update(i) => {
                    i.into_id().map(|id| Change::Upserted(item_version(id)))
                }
                ItemChangeEvent::Delete(id) => Some(Change::Deleted(core::ItemId::new(id.id))),
                ItemChangeEvent::ReadFlagChange(..) => None,
            })
            .collect();
        Ok(ChangePage { changes, token: SyncToken::new(page.sync_state), more: !page.includes_last })
    }

    async fn list(&self, cursor: Option<&PageCursor>) -> core::Result<ListPage> {
        let bad_cursor = || {
            core::Error::permanent(
                "invalid page cursor",
                core::ErrorContext::operation("list").with_folder(self.description.clone()),
            )
        };
        match cursor {
            None if self.detection == ChangeDetection::Snapshot => {
                // Probe first: if the folder is as it was at the last complete listing, answer from
                // memory; otherwise list from the server, remembering the probe taken before.
                let probe = match self.probe().await {
                    Ok(p) if p.last_commit.is_some() => Some(p),
                    Ok(_) => None,
                    Err(e) => {
                        tracing::debug!(folder = %self.description, error = %e, "change probe failed; listing");
                        None
                    }
                };
                let unchanged = probe.is_some() && self.cache().complete.as_ref().map(|(p, _)| p) == probe.as_ref();
                if unchanged {
                    if let Some(page) = self.cached_page(0) {
                        return Ok(page);
                    }
                }
                {
                    let mut cache = self.cache();
                    cache.complete = None;
                    cache.building = probe.map(|p| (p, Vec::new()));
                    cache.started = Some(Utc::now());
                }
                self.live_page(0).await
            }
            None => self.live_page(0).await,
            Some(c) => {
                if let Some(offset) = c.0.strip_prefix(CACHED_CURSOR) {
                    let offset: usize = offset.parse().map_err(|_| bad_cursor())?;
                    match self.cached_page(offset) {
                        Some(page) => Ok(page),
                        None => self.live_page(offset as u32).await,
                    }
                } else {
                    let offset = c.0.strip_prefix(LIVE_CURSOR).unwrap_or(&c.0);
                    self.live_page(offset.parse().map_err(|_| bad_cursor())?).await
                }
            }
        }
    }

    async fn get(&self, ids: &[core::ItemId]) -> core::Result<BatchResult<FetchedItem>> {
        let ids: Vec<ItemId> = ids.iter().map(|i| ItemId::new(i.as_str())).collect();
        self.get_full(&ids).await
    }

    async fn create(&self, items: &[NewItem]) -> core::Result<BatchResult<ItemVersion>> {
        // Each entity's item is shared by the copies of every folder: it is mapped and written
        // once, not once per mailbox.
        let version = self.client.version();
        let drafts: Vec<RenderedItem> = items
            .iter()
            .map(|n| {
                RenderCache::get_or_render(RenderCache::global(), &n.item, &n.origin, version, || {
                    let (item_type, fields) = mapping::to_fields(&n.item, Some(&n.origin));
                    RenderedItem::of(&ItemDraft { item_type, fields }.for_version(version))
                })
            })
            .collect();
        let mut results = self.client.create_rendered_items(&self.folder, &drafts).await.map_err(|e| self.err(e))?;
        // A connection lost after sending leaves the outcome unknown: look for the stamp before
        // creating again, so that a retry never duplicates.
        let unknown: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::Indeterminate))
            .map(|(i, _)| i)
            .collect();
        for i in unknown {
            let found =
                self.find_ids_by_origin(std::slice::from_ref(&items[i].origin)).await.map_err(|e| self.err(e))?;
            results[i] = match found.into_iter().next() {
                Some(id) => {
                    tracing::info!(folder = %self.description, "create had reached the server; not repeated");
                    Ok(id)
                }
                None => self
                    .client
                    .create_rendered_items(&self.folder, std::slice::from_ref(&drafts[i]))
                    .await
                    .map_err(|e| self.err(e))?
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| Err(EwsError::protocol("CreateItem", "no response"))),
            };
        }
        Ok(results.into_iter().map(|r| r.map(item_version).map_err(|e| self.err(e))).collect())
    }

    async fn update(&self, updates: &[ItemUpdate]) -> core::Result<BatchResult<ItemVersion>> {
        let mut out: Vec<Option<core::Result<ItemVersion>>> = (0..updates.len()).map(|_| None).collect();
        let mut changes = Vec::new();
        let mut slots = Vec::new();
        for (i, u) in updates.iter().enumerate() {
            let (item_type, _) = mapping::ews_type(&u.item.kind);
            let list = mapping::to_updates(&u.item, u.previous.as_ref(), u.origin.as_ref());
            if list.is_empty() {
                out[i] = Some(Ok(ItemVersion { id: u.id.clone(), version: u.expected.clone() }));
                continue;
            }
            changes.push(ItemChange {
                id: ItemId::with_change_key(u.id.as_str(), u.expected.as_str()),
                item_type,
                updates: list,
            });
            slots.push(i);
        }
        if !changes.is_empty() {
            let results = self.client.update_items(&changes).await.map_err(|e| self.err(e))?;
            for (slot, r) in slots.into_iter().zip(results) {
                out[slot] = Some(r.map(item_version).map_err(|e| self.err(e)));
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(self.err(EwsError::protocol("UpdateItem", "no result")))))
            .collect())
    }

    async fn delete(&self, items: &[ItemDelete]) -> core::Result<BatchResult<()>> {
        let ids: Vec<ItemId> = items.iter().map(|d| ItemId::new(d.id.as_str())).collect();
        let results = self.client.delete_items(&ids, self.options.delete_type).await.map_err(|e| self.err(e))?;
        Ok(results.into_iter().map(|r| r.map_err(|e| self.err(e))).collect())
    }

    async fn find_by_origin(&self, origins: &[OriginStamp]) -> core::Result<Vec<FetchedItem>> {
        if origins.is_empty() {
            return Ok(Vec::new());
        }
        let ids = self.find_ids_by_origin(origins).await.map_err(|e| self.err(e))?;
        let fetched = self.get_full(&ids).await?;
        let wanted: HashSet<&OriginStamp> = origins.iter().collect();
        Ok(fetched
            .into_iter()
            .filter_map(|r| r.ok())
            .filter(|f| f.origin.as_ref().is_some_and(|o| wanted.contains(o)))
            .collect())
    }

    async fn watch(&self) -> core::Result<BoxStream<'static, ChangeHint>> {
        let (tx, rx) = futures::channel::mpsc::channel(16);
        let hints = watch::Hints::new(tx, Arc::downgrade(&self.alive));
        tokio::spawn(watch::run(self.client.clone(), self.folder.clone(), self.options.watch.clone(), hints));
        Ok(Box::pin(rx))
    }

    fn poll_interval(&self) -> Duration {
        self.options.poll_interval
    }
}
