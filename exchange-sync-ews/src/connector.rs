//! The core's [`Connector`] for Exchange folders: a mailbox folder (incremental, SyncFolderItems) or a
//! public folder (snapshot: paged FindItem with change keys, a cheap change probe, batched GetItem).
//!
//! # Deletes never destroy an edit they did not see
//!
//! Exchange's DeleteItem is not conditional: it ignores the `ChangeKey` of the `ItemId` it is
//! given ("In Exchange 2007, the ChangeKey is completely ignored in DeleteItem calls": Patrick
//! Creehan, Microsoft developer support, "DeleteItem Ignores ChangeKeys", archived EWS blog on
//! learn.microsoft.com. No later source says it changed; the current `ItemId` reference names
//! only UpdateItem and SendItem as using the key, while the `ConversationId` page still carries
//! the ErrorStaleObject claim the blog calls a documentation error). So [`EwsFolderConnector`]
//! deletes in three steps ([`Connector::delete`]):
//!
//! 1. **Check before**: one GetItem (IdOnly, plus the origin stamp and the creation time) per
//!    batch reads every copy's current ChangeKey. A copy whose ChangeKey is not the
//!    [`ItemDelete::expected`] version was edited since the engine planned: it answers
//!    PreconditionFailed and is not deleted.
//! 2. **Delete** the others the configured way ([`ConnectorOptions::delete_type`], SoftDelete by
//!    default: recoverable).
//! 3. **Check after** (mailbox folders, SoftDelete, a server that speaks Exchange 2010 SP1 or
//!    later): an edit can still land between step 1 and step 2. Every deleted copy that carries
//!    an origin stamp is looked up in the mailbox's Recoverable Items "Deletions" folder
//!    (`recoverableitemsdeletions`, by FindItem with a restriction on the stamp, matched on the
//!    creation time too), read, and its content hash compared with
//!    [`ItemDelete::expected_hash`]. An edited copy is moved back into the folder (MoveItem,
//!    which answers the new id) and answered [`Deleted::Restored`]; if the server will not move
//!    it, it is created again from its content, with its stamp.
//!
//! Which Exchange versions allow step 3: the `recoverableitems*` distinguished folder ids are part
//! of the Exchange 2010 SP1 schema (`DistinguishedFolderIdNameType`), and FindItem, GetItem and
//! MoveItem work on `recoverableitemsdeletions` from Exchange 2010 SP1 on (2013, 2016, 2019, SE
//! and Exchange Online alike; restoring deleted items this way is the documented pattern of
//! EWS libraries such as Independentsoft's "Restore deleted items" sample with
//! `RequestServerVersion` Exchange2010_SP1). Exchange 2007 only marks a soft-deleted item, which
//! EWS cannot reach (EWS Managed API `DeleteMode`: "SoftDelete for Exchange 2007 sets a bit on the
//! item ... SoftDelete for versions of Exchange starting with Exchange 2010 ... immediately moves
//! the item to the dumpster"): there, as with HardDelete and MoveToDeletedItems, only step 1
//! protects an edit.
//!
//! Every step answers per item: PreconditionFailed (step 1, nothing deleted), NotFound (the copy
//! was gone already), [`Deleted::Gone`], or [`Deleted::Restored`] with the id and version of the
//! copy put back. A check after that cannot be made (the lookup fails, the copy is not found in
//! Recoverable Items) leaves the answer [`Deleted::Gone`] and logs why.
//!
//! Public folders (snapshot connectors) have no Recoverable Items folder a client can reach:
//! only step 1 runs. An edit saved in the window between its GetItem and the DeleteItem (the
//! time of one request, usually milliseconds) is deleted with the copy; it stays in the public
//! folder's deleted item retention, from where an administrator or Outlook's "Recover Deleted
//! Items" can bring it back, but the sync does not notice it.
//!
//! # Creates whose id the server does not say
//!
//! Exchange Online may confirm a CreateItem with `ResponseClass="Success"` and an empty
//! `m:Items` (see [`Created::IdUnknown`]), and a connection can drop after a create was sent.
//! Both leave a created item without its id. [`Connector::create`] looks such items up by their
//! origin stamps, one FindItem for the batch, and answers the ids it finds: never a failure,
//! never a second create of an item the server confirmed. A confirmed create the lookup does not
//! find yet answers a transient error, so that the engine keeps its write-ahead intent and crash
//! recovery resolves it later by the same stamp; a lost create the lookup does not find never
//! reached the server and is sent again.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use exchange_sync_core as core;
use exchange_sync_core::{
    BatchResult, Capabilities, Change, ChangeDetection, ChangeHint, ChangePage, Connector, Deleted, FetchedItem,
    ItemDelete, ItemUpdate, ItemVersion, ListPage, NewItem, OriginStamp, PageCursor, SyncToken, Version,
};
use futures::stream::BoxStream;

use crate::client::{EwsClient, MAX_FIND_PAGE};
use crate::error::{ErrorKind, EwsError};
use crate::ids::{DistinguishedFolder, FolderRef, ItemId};
use crate::item::{EwsItem, ItemChange, ItemDraft};
use crate::mapping;
use crate::operation::items::{Created, DeleteType, Restriction};
use crate::operation::sync::{ItemChangeEvent, MAX_SYNC_CHANGES};
use crate::property::{self, FolderShape, ItemShape, PropertyPath};
use crate::rendered::{RenderCache, RenderedItem};
use crate::version::ExchangeVersion;
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
    /// The folder's server id ([`Connector::folder_id`]), when known.
    folder_id: Option<String>,
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

/// Converts a client error into the core's error, keeping its class and the item concerned.
///
/// Every error that leaves the client has had its retries (the client owns them: see
/// [`crate::client`]), so temporary kinds become core errors marked exhausted
/// ([`core::Error::retries_exhausted`]): no upper layer sends the request again at once. A
/// throttling error carries the remaining back-off, for the caller to park the mailbox that long.
/// An unreachable or untrusted server, and an HTTP 404 (no EWS endpoint at the URL), is
/// [`core::Error::Unreachable`]; rejected credentials, missing
/// rights and unknown mailboxes are [`core::Error::Auth`]; neither is temporary.
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
    // EWS answers a missing item or folder inside a SOAP response; an HTTP 404 means there is no
    // EWS endpoint at the URL at all (a wrong path): nothing an item operation can fix, and
    // nothing that passes by retrying. The error keeps the HTTP status as its source.
    if matches!(e, EwsError::Http { status: 404, .. }) {
        let message = format!("{message} (no EWS endpoint at this URL)");
        return core::Error::Unreachable { message, context, source: Some(Box::new(e)) };
    }
    match e.kind() {
        ErrorKind::Throttled => core::Error::Throttled { retry_after: e.retry_after(), exhausted: true, context },
        ErrorKind::NotFound => core::Error::NotFound { context },
        ErrorKind::PreconditionFailed => core::Error::PreconditionFailed { context },
        ErrorKind::InvalidSyncState => core::Error::InvalidSyncToken { context },
        ErrorKind::AccessDenied | ErrorKind::Unauthorized | ErrorKind::MailboxNotFound => {
            core::Error::Auth { message, context }
        }
        ErrorKind::Unreachable => core::Error::Unreachable { message, context, source: Some(Box::new(e)) },
        ErrorKind::Configuration => core::Error::Config { message },
        k if k.is_retryable() || matches!(k, ErrorKind::Indeterminate | ErrorKind::SubscriptionLost) => {
            core::Error::Transient { message, exhausted: true, context, source: Some(Box::new(e)) }
        }
        _ => core::Error::Permanent { message, context, source: Some(Box::new(e)) },
    }
}

/// The core's id and version of an EWS id (the change key is the version), taking its strings.
fn item_version(id: ItemId) -> ItemVersion {
    ItemVersion { id: core::ItemId::new(id.id), version: Version::new(id.change_key.unwrap_or_default()) }
}

/// The ids of the exception items a recurring master lists in `ModifiedOccurrences`.
fn exception_ids(master: &EwsItem) -> Vec<String> {
    master
        .element
        .child("ModifiedOccurrences")
        .map(|m| {
            m.children.iter().filter_map(|o| o.child("ItemId").and_then(|i| i.attr("Id")).map(str::to_owned)).collect()
        })
        .unwrap_or_default()
}

/// The UpdateItem of one occurrence: its times and content as `modified` says (`None`: back to
/// its slot in the pattern with the master's content).
fn occurrence_change(
    occurrence: String,
    master: &EwsItem,
    modified: Option<&mapping::Modified>,
    original: &str,
    length: chrono::Duration,
) -> ItemChange {
    use crate::item::{Field, FieldUpdate, FieldValue, ItemType};
    let time = |t: &str| DateTime::parse_from_rfc3339(t).ok().map(|t| t.with_timezone(&Utc));
    let slot = time(original);
    let start = modified.and_then(|m| time(&m.start)).or(slot);
    let end = modified.and_then(|m| time(&m.end)).or(slot.map(|s| s + length));
    let mut updates = Vec::new();
    for (name, t) in [("Start", start), ("End", end)] {
        if let Some(t) = t {
            updates.push(FieldUpdate::Set(Field::Simple { name: name.into(), value: FieldValue::DateTime(t) }));
        }
    }
    for (name, own) in
        [("Subject", modified.and_then(|m| m.subject.clone())), ("Location", modified.and_then(|m| m.location.clone()))]
    {
        let value = own.or_else(|| master.text(name).map(str::to_owned)).unwrap_or_default();
        let field = Field::text(name, value.clone());
        updates.push(if value.is_empty() {
            FieldUpdate::Delete(field.path(ItemType::CalendarItem))
        } else {
            FieldUpdate::Set(field)
        });
    }
    let body = match modified.and_then(|m| m.body.clone().map(|b| (m.body_html, b))) {
        Some(own) => Some(own),
        None => master.body().map(|(t, c)| (t.eq_ignore_ascii_case("HTML"), c.to_owned())),
    };
    updates.push(match body.filter(|(_, c)| !c.trim().is_empty()) {
        Some((html, text)) => FieldUpdate::Set(Field::Simple {
            name: "Body".into(),
            value: FieldValue::Body { body_type: if html { "HTML" } else { "Text" }, text },
        }),
        None => FieldUpdate::Delete(PropertyPath::field("item:Body")),
    });
    ItemChange { id: ItemId::new(occurrence), item_type: ItemType::CalendarItem, updates }
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
        let folder_id = match &folder {
            FolderRef::Id(id) => Some(id.id.clone()),
            FolderRef::Distinguished { .. } => None,
        };
        Self {
            client,
            folder,
            description,
            detection,
            options: ConnectorOptions::default(),
            snapshot: Arc::default(),
            stats: Arc::default(),
            folder_id,
            alive: Arc::default(),
        }
    }

    /// The same connector, knowing its folder's server id (the EWS `FolderId` `Id`, without the
    /// change key), e.g. as the service resolved it when opening the folder. A connector made
    /// with a [`FolderRef::Id`] knows it already.
    pub fn with_folder_id(mut self, id: impl Into<String>) -> Self {
        self.folder_id = Some(id.into());
        self
    }

    /// The same connector, with its folder's server id resolved when it does not know it yet
    /// (one GetFolder, IdOnly, for a distinguished folder such as a mailbox's `contacts`; see
    /// [`EwsClient::folder_id`]).
    pub async fn with_resolved_folder_id(mut self) -> core::Result<Self> {
        if self.folder_id.is_none() {
            let id = self.client.folder_id(&self.folder).await.map_err(|e| self.err(e))?;
            self.folder_id = Some(id.id);
        }
        Ok(self)
    }

    /// The folder this connector is bound to, as requests name it.
    pub fn folder(&self) -> &FolderRef {
        &self.folder
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
        let next = match (last, page.next_offset) {
            (true, _) => None,
            // A listing whose next page starts where this one did would never end.
            (false, Some(next)) if next <= offset => {
                let reason = format!("paging does not advance: the server named offset {next} after offset {offset}");
                return Err(self.err(EwsError::Protocol {
                    reason,
                    context: Box::new(crate::error::ErrorContext::operation("FindItem")),
                }));
            }
            (false, next) => Some(PageCursor(format!("{LIVE_CURSOR}{}", next.unwrap_or(offset + n)))),
        };
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

    fn fetched(&self, ews: &EwsItem, exceptions: &[EwsItem]) -> Option<FetchedItem> {
        let ItemVersion { id, version } = item_version(ews.id()?);
        let (item, origin) = mapping::to_item_with_exceptions(ews, exceptions);
        Some(FetchedItem { id, version, item, origin })
    }

    /// The exception items of the recurring masters among `masters` (their subject, location and
    /// body are content of the master's copy), in one GetItem; an exception that cannot be read
    /// is left out (it then counts with its times only).
    async fn exception_details(&self, masters: &[&EwsItem]) -> Result<Vec<EwsItem>, EwsError> {
        let ids: Vec<ItemId> = masters.iter().flat_map(|m| exception_ids(m)).map(ItemId::new).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let found = self.client.get_items(&ids, &mapping::full_shape()).await?;
        Ok(found.into_iter().filter_map(Result::ok).collect())
    }

    async fn get_full(&self, ids: &[ItemId]) -> core::Result<BatchResult<FetchedItem>> {
        let shape = mapping::full_shape();
        let results = self.client.get_items(ids, &shape).await.map_err(|e| self.err(e))?;
        let masters: Vec<&EwsItem> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let details = self.exception_details(&masters).await.map_err(|e| self.err(e))?;
        Ok(results
            .into_iter()
            .map(|r| match r {
                Ok(ews) => self
                    .fetched(&ews, &details)
                    .ok_or_else(|| self.err(EwsError::protocol("GetItem", "item without id"))),
                Err(e) => Err(self.err(e)),
            })
            .collect())
    }

    /// The occurrence of `master` that the pattern places at `original` (UTC, RFC 3339), found
    /// with a CalendarView of the folder around it: the occurrence with the master's `UID` that
    /// starts there. `None` when there is none (the copy's series differs).
    async fn occurrence_at(&self, master: &EwsItem, original: &str) -> Result<Option<String>, EwsError> {
        let Ok(start) = DateTime::parse_from_rfc3339(original).map(|t| t.with_timezone(&Utc)) else {
            return Ok(None);
        };
        let shape = ItemShape::id_only(vec![
            PropertyPath::field("calendar:UID"),
            PropertyPath::field("calendar:Start"),
            PropertyPath::field("calendar:CalendarItemType"),
        ]);
        let page = self
            .client
            .find_calendar_view(&self.folder, &shape, start, start + chrono::Duration::seconds(1), MAX_FIND_PAGE)
            .await?;
        let uid = master.text("UID");
        Ok(page
            .items
            .into_iter()
            .find(|o| {
                o.text("UID") == uid
                    && o.date_time("Start") == Some(start)
                    && matches!(o.text("CalendarItemType"), Some("Occurrence" | "Exception"))
            })
            .and_then(EwsItem::into_id)
            .map(|i| i.id))
    }

    /// Gives the copy `id` of a recurring master the exceptions `item` asks for (see
    /// [`mapping::EXCEPTION_PREFIX`]): an occurrence cancelled there is deleted here
    /// (DeleteItem on the occurrence), a modified one is written onto the occurrence (UpdateItem:
    /// Start, End, Subject, Location, Body), one modified here but not there is put back to the
    /// master's. The occurrences are named by the ids EWS gives them: those of the master's
    /// `ModifiedOccurrences`, else found through a CalendarView, which works the same from
    /// Exchange 2007 SP1 on. A cancelled occurrence cannot be brought back through EWS: it
    /// returns when the series is re-timed (a pattern change drops every exception). Answers the
    /// master's id with its change key after the changes; `expected` guards against writing over
    /// a master changed meanwhile (ErrorIrresolvableConflict, as UpdateItem would answer).
    async fn apply_exceptions(
        &self,
        id: &core::ItemId,
        expected: &Version,
        item: &core::Item,
    ) -> Result<ItemVersion, EwsError> {
        let wanted = mapping::wanted(item);
        let shape = mapping::full_shape();
        let read = |r: Option<Result<EwsItem, EwsError>>| {
            r.unwrap_or_else(|| Err(EwsError::protocol("GetItem", "no result for the recurring master")))
        };
        let master = read(self.client.get_items(&[ItemId::new(id.as_str())], &shape).await?.into_iter().next())?;
        let current_key = master.id().and_then(|i| i.change_key).unwrap_or_default();
        if !expected.as_str().is_empty() && current_key != expected.as_str() {
            return Err(EwsError::Response {
                code: "ErrorIrresolvableConflict".into(),
                message: "the recurring master changed before its exceptions were written".into(),
                inner_code: None,
                back_off: None,
                context: Box::new(crate::error::ErrorContext::operation("UpdateItem")),
            });
        }
        let details = self.exception_details(&[&master]).await?;
        let current = mapping::on_server(&master, &details);
        if wanted.is_empty() && current.is_empty() {
            return Ok(item_version(master.id().unwrap_or_else(|| ItemId::new(id.as_str()))));
        }
        let length = master.date_time("End").zip(master.date_time("Start")).map(|(e, s)| e - s).unwrap_or_default();
        let originals: std::collections::BTreeSet<&String> = wanted.keys().chain(current.keys()).collect();
        let (mut changes, mut deletes) = (Vec::new(), Vec::new());
        for original in originals {
            let want = wanted.get(original);
            let have = current.get(original);
            if want == have.map(|(e, _)| e) {
                continue;
            }
            if matches!(have, Some((mapping::Exception::Cancelled, _))) {
                tracing::warn!(folder = %self.description, occurrence = %original,
                    "an occurrence cancelled in this copy cannot be restored through EWS; it returns when the series is re-timed");
                continue;
            }
            let occurrence = match have.and_then(|(_, id)| id.clone()) {
                Some(id) => Some(id),
                None => self.occurrence_at(&master, original).await?,
            };
            let Some(occurrence) = occurrence else {
                tracing::warn!(folder = %self.description, occurrence = %original,
                    "the series of this copy has no occurrence there; exception not written");
                continue;
            };
            match want {
                Some(mapping::Exception::Cancelled) => deletes.push(ItemId::new(occurrence)),
                Some(mapping::Exception::Modified(m)) => {
                    changes.push(occurrence_change(occurrence, &master, Some(m), original, length))
                }
                None => changes.push(occurrence_change(occurrence, &master, None, original, length)),
            }
        }
        if !changes.is_empty() {
            for r in self.client.update_items(&changes).await? {
                r?;
            }
        }
        if !deletes.is_empty() {
            for r in self.client.delete_items(&deletes, DeleteType::HardDelete).await? {
                r?;
            }
        }
        let after = read(
            self.client
                .get_items(&[ItemId::new(id.as_str())], &ItemShape::id_only(Vec::new()))
                .await?
                .into_iter()
                .next(),
        )?;
        after.into_id().map(item_version).ok_or_else(|| EwsError::protocol("GetItem", "item without id"))
    }

    /// Applies [`EwsFolderConnector::apply_exceptions`] to every recurring master among `items`
    /// written successfully (`out`), replacing its version by the master's after the changes.
    async fn write_exceptions<'a>(
        &self,
        items: impl Iterator<Item = (usize, &'a core::Item)>,
        out: &mut [Option<core::Result<ItemVersion>>],
    ) {
        for (i, item) in items {
            if item.kind != core::ItemKind::CalendarItem || item.get(core::field::RECURRENCE).is_none() {
                continue;
            }
            let Some(Some(Ok(v))) = out.get(i) else { continue };
            let v = v.clone();
            let r = self.apply_exceptions(&v.id, &v.version, item).await.map_err(|e| self.err(e));
            out[i] = Some(r);
        }
    }

    async fn find_ids_by_origin(&self, origins: &[OriginStamp]) -> Result<Vec<ItemId>, EwsError> {
        let stamps: Vec<String> = origins.iter().map(OriginStamp::encode).collect();
        let found = self.stamped_items(&self.folder, &stamps, Vec::new(), true).await?;
        Ok(found.into_iter().filter_map(|(_, item)| item.into_id()).collect())
    }

    /// The items of `folder` whose origin stamp is one of `stamps` (encoded), each with its stamp,
    /// read IdOnly with the stamp and `extra` properties. Stamps are looked up with FindItems
    /// restricted to them (an `Or` of equalities, a hundred at a time); with `may_list` and more
    /// stamps than that, with one listing of the folder instead (never for Recoverable Items,
    /// which holds a mailbox's every deleted item). Every stamp is checked here too: a server may
    /// ignore a restriction it does not understand.
    async fn stamped_items(
        &self,
        folder: &FolderRef,
        stamps: &[String],
        extra: Vec<PropertyPath>,
        may_list: bool,
    ) -> Result<Vec<(String, EwsItem)>, EwsError> {
        /// Stamps per restricted FindItem.
        const MAX_RESTRICTED: usize = 100;
        if stamps.is_empty() {
            return Ok(Vec::new());
        }
        let uri = mapping::origin_uri();
        let mut additional = vec![PropertyPath::Extended(uri.clone())];
        additional.extend(extra);
        let shape = ItemShape::id_only(additional);
        let wanted: HashSet<&str> = stamps.iter().map(String::as_str).collect();
        let candidates = if may_list && stamps.len() > MAX_RESTRICTED {
            self.client.find_all_items(folder, &shape).await?
        } else {
            let mut found = Vec::new();
            for chunk in stamps.chunks(MAX_RESTRICTED) {
                let any = Restriction::Or(
                    chunk
                        .iter()
                        .map(|s| Restriction::IsEqualTo(PropertyPath::Extended(uri.clone()), s.clone()))
                        .collect(),
                );
                found.extend(self.client.find_items_where(folder, &shape, Some(&any)).await?);
            }
            found
        };
        Ok(candidates
            .into_iter()
            .filter_map(|i| {
                let stamp = i.extended(&uri).filter(|v| wanted.contains(v))?.to_owned();
                Some((stamp, i))
            })
            .collect())
    }

    fn context(&self, operation: &'static str) -> core::ErrorContext {
        core::ErrorContext::operation(operation).with_folder(self.description.clone())
    }

    /// Resolves creates whose outcome the server left open (`unknown`: confirmed without an id;
    /// `lost`: the answer never arrived) by their origin stamps, in one lookup. A confirmed create
    /// that the lookup does not find yet answers a transient error (the engine keeps its intent and
    /// crash recovery finds the copy later): it is never created twice. A lost one that is not
    /// found did not reach the server and is created again.
    async fn settle_creates(
        &self,
        items: &[NewItem],
        drafts: &[RenderedItem],
        unknown: &[usize],
        lost: &[usize],
        out: &mut [Option<core::Result<ItemVersion>>],
    ) {
        let stamps: Vec<String> = unknown.iter().chain(lost).map(|&i| items[i].origin.encode()).collect();
        let found: HashMap<String, ItemId> = match self.stamped_items(&self.folder, &stamps, Vec::new(), true).await {
            Ok(found) => found.into_iter().filter_map(|(stamp, item)| Some((stamp, item.into_id()?))).collect(),
            Err(e) => {
                // Without the lookup nothing is known: every open create stays open.
                let e = self.err(e);
                for &i in unknown.iter().chain(lost) {
                    out[i] = Some(Err(core::Error::transient(
                        format!("the create's outcome is unknown and the origin stamp lookup failed: {e}"),
                        self.context("create"),
                    )));
                }
                return;
            }
        };
        for &i in unknown {
            out[i] = Some(match found.get(&items[i].origin.encode()) {
                Some(id) => Ok(item_version(id.clone())),
                None => Err(core::Error::transient(
                    format!(
                        "the server confirmed the create of {} without an item id, and the origin stamp finds no item yet",
                        items[i].origin
                    ),
                    self.context("create"),
                )),
            });
        }
        for &i in lost {
            out[i] = Some(match found.get(&items[i].origin.encode()) {
                Some(id) => {
                    tracing::info!(folder = %self.description, "create had reached the server; not repeated");
                    Ok(item_version(id.clone()))
                }
                None => {
                    // A failure of this one create is its own result, not the batch's.
                    let again = match self.client.create_rendered(&self.folder, std::slice::from_ref(&drafts[i])).await
                    {
                        Ok(r) => {
                            r.into_iter().next().unwrap_or_else(|| Err(EwsError::protocol("CreateItem", "no response")))
                        }
                        Err(e) => Err(e),
                    };
                    match again {
                        Ok(Created::Item(id)) => Ok(item_version(id)),
                        Ok(Created::IdUnknown) => Err(core::Error::transient(
                            format!("the server confirmed the create of {} without an item id", items[i].origin),
                            self.context("create"),
                        )),
                        Err(e) => Err(self.err(e)),
                    }
                }
            });
        }
    }

    /// Where SoftDelete puts the items of this folder, when a client can look there: the
    /// Recoverable Items "Deletions" folder of the folder's mailbox, on mailbox folders of servers
    /// that speak Exchange 2010 SP1 or later (see the module documentation).
    fn dumpster(&self) -> Option<FolderRef> {
        let reachable = self.detection == ChangeDetection::Incremental
            && self.options.delete_type == DeleteType::SoftDelete
            && self.client.version() >= ExchangeVersion::Exchange2010Sp1;
        let mailbox = match &self.folder {
            FolderRef::Distinguished { mailbox, .. } => mailbox.clone(),
            FolderRef::Id(_) => None,
        };
        reachable
            .then_some(FolderRef::Distinguished { folder: DistinguishedFolder::RecoverableItemsDeletions, mailbox })
    }

    /// Step 3 of a delete (see the module documentation): finds the copies just deleted in the
    /// dumpster, compares their content with what the engine expected, and puts edited ones back.
    /// `deleted` holds (slot, encoded stamp, creation time, expected hash). A check that cannot be
    /// made leaves the answer [`Deleted::Gone`] and says so in the log.
    async fn restore_edited(
        &self,
        dumpster: &FolderRef,
        deleted: Vec<(usize, String, Option<DateTime<Utc>>, core::ContentHash)>,
        out: &mut [Option<core::Result<Deleted>>],
    ) {
        let stamps: Vec<String> =
            deleted.iter().map(|(_, s, _, _)| s.clone()).collect::<HashSet<_>>().into_iter().collect();
        let extra = vec![PropertyPath::field("item:DateTimeCreated"), PropertyPath::field("item:LastModifiedTime")];
        let found = match self.stamped_items(dumpster, &stamps, extra, false).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(folder = %self.description, error = %e, "deleted copies could not be checked for edits");
                return;
            }
        };
        // The copy just deleted: same stamp and creation time (a move keeps it), the latest
        // modified of those (an older deletion of the same entity may be there too).
        // Each dumpster item answers for one deleted copy at most (duplicates share a stamp).
        let mut picked: Vec<(usize, ItemId, core::ContentHash)> = Vec::new();
        for (slot, stamp, created, expected) in deleted {
            let candidate = found
                .iter()
                .filter(|(s, i)| *s == stamp && (created.is_none() || i.date_time("DateTimeCreated") == created))
                .filter_map(|(_, i)| Some((i.id()?, i.date_time("LastModifiedTime"))))
                .filter(|(id, _)| picked.iter().all(|(_, p, _)| p.id != id.id))
                .max_by_key(|(_, modified)| *modified);
            match candidate {
                Some((id, _)) => picked.push((slot, id, expected)),
                None => tracing::warn!(folder = %self.description, "a deleted copy was not found in Recoverable Items"),
            }
        }
        if picked.is_empty() {
            return;
        }
        let ids: Vec<ItemId> = picked.iter().map(|(_, id, _)| ItemId::new(id.id.clone())).collect();
        let contents = match self.client.get_items(&ids, &mapping::full_shape()).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(folder = %self.description, error = %e, "deleted copies could not be read back");
                return;
            }
        };
        let mut edited: Vec<(usize, ItemId, core::Item, Option<OriginStamp>)> = Vec::new();
        for ((slot, id, expected), content) in picked.into_iter().zip(contents) {
            match content {
                Ok(ews) => {
                    let (item, origin) = mapping::to_item(&ews);
                    if item.content_hash() != expected {
                        edited.push((slot, ItemId::new(id.id), item, origin));
                    }
                }
                Err(e) => {
                    tracing::warn!(folder = %self.description, error = %e, "a deleted copy could not be read back")
                }
            }
        }
        if edited.is_empty() {
            return;
        }
        tracing::info!(folder = %self.description, copies = edited.len(), "edited while being deleted; putting back");
        let ids: Vec<ItemId> = edited.iter().map(|(_, id, _, _)| id.clone()).collect();
        let moved = match self.client.move_items(&ids, &self.folder).await {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(folder = %self.description, error = %e, "MoveItem out of Recoverable Items failed");
                ids.iter().map(|_| Err(e.clone())).collect()
            }
        };
        for ((slot, _, item, origin), moved) in edited.into_iter().zip(moved) {
            let restored = match moved {
                Ok(Some(id)) => Ok(item_version(id)),
                other => {
                    if let Err(e) = &other {
                        tracing::info!(folder = %self.description, error = %e, "moving a copy back failed; creating it again");
                    }
                    self.recreate(&item, origin.as_ref()).await
                }
            };
            out[slot] = Some(restored.map(Deleted::Restored));
        }
    }

    /// Puts an edited copy back by creating it again from its content, with its stamp (when a
    /// server cannot move it out of Recoverable Items, or answered the move without an id).
    async fn recreate(&self, item: &core::Item, origin: Option<&OriginStamp>) -> core::Result<ItemVersion> {
        // A move answered without an id may have happened: look for the stamp first.
        if let Some(o) = origin
            && let Some(id) = self.find_ids_by_origin(std::slice::from_ref(o)).await.map_err(|e| self.err(e))?.pop()
        {
            return Ok(item_version(id));
        }
        let version = self.client.version();
        let (item_type, fields) = mapping::to_fields(item, origin);
        let rendered = RenderedItem::of(&ItemDraft { item_type, fields }.for_version(version));
        let created = self
            .client
            .create_rendered(&self.folder, std::slice::from_ref(&rendered))
            .await
            .map_err(|e| self.err(e))?
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(EwsError::protocol("CreateItem", "no response")))
            .map_err(|e| self.err(e))?;
        match created {
            Created::Item(id) => Ok(item_version(id)),
            Created::IdUnknown => match origin {
                Some(o) => self
                    .find_ids_by_origin(std::slice::from_ref(o))
                    .await
                    .map_err(|e| self.err(e))?
                    .pop()
                    .map(item_version)
                    .ok_or_else(|| core::Error::transient("the copy put back has no id yet", self.context("delete"))),
                None => Err(core::Error::transient("the copy put back has no id", self.context("delete"))),
            },
        }
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

    fn folder_id(&self) -> Option<String> {
        self.folder_id.clone()
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
                if unchanged && let Some(page) = self.cached_page(0) {
                    return Ok(page);
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
        let results = self.client.create_rendered(&self.folder, &drafts).await.map_err(|e| self.err(e))?;
        let mut out: Vec<Option<core::Result<ItemVersion>>> = (0..items.len()).map(|_| None).collect();
        // Creates the server confirmed without an id (Exchange Online), and creates whose answer
        // was lost after sending: both are looked up by their stamps, so that none is duplicated.
        let (mut unknown, mut lost) = (Vec::new(), Vec::new());
        for (i, r) in results.into_iter().enumerate().take(items.len()) {
            match r {
                Ok(Created::Item(id)) => out[i] = Some(Ok(item_version(id))),
                Ok(Created::IdUnknown) => unknown.push(i),
                Err(e) if e.kind() == ErrorKind::Indeterminate => lost.push(i),
                Err(e) => out[i] = Some(Err(self.err(e))),
            }
        }
        if !unknown.is_empty() || !lost.is_empty() {
            self.settle_creates(items, &drafts, &unknown, &lost, &mut out).await;
        }
        // A recurring master is created with its pattern; its exceptions are written onto the
        // occurrences afterwards.
        self.write_exceptions(items.iter().map(|n| &*n.item).enumerate(), &mut out).await;
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(self.err(EwsError::protocol("CreateItem", "no result")))))
            .collect())
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
        // The exceptions of recurring masters (also when nothing else of the master changed).
        self.write_exceptions(updates.iter().map(|u| &*u.item).enumerate(), &mut out).await;
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(self.err(EwsError::protocol("UpdateItem", "no result")))))
            .collect())
    }

    /// Deletes in three steps (check before, delete, check after): see the module documentation.
    async fn delete(&self, items: &[ItemDelete]) -> core::Result<BatchResult<Deleted>> {
        let mut out: Vec<Option<core::Result<Deleted>>> = (0..items.len()).map(|_| None).collect();
        let ids: Vec<ItemId> = items.iter().map(|d| ItemId::new(d.id.as_str())).collect();
        // 1. The current version (and stamp and creation time) of every copy, one GetItem a batch.
        let shape = ItemShape::id_only(vec![
            PropertyPath::Extended(mapping::origin_uri()),
            PropertyPath::field("item:DateTimeCreated"),
        ]);
        let current = self.client.get_items(&ids, &shape).await.map_err(|e| self.err(e))?;
        let mut checked = Vec::new();
        for (i, (d, r)) in items.iter().zip(current).enumerate() {
            let ews = match r {
                Ok(ews) => ews,
                Err(e) => {
                    out[i] = Some(Err(self.err(e)));
                    continue;
                }
            };
            let version = ews.id().and_then(|id| id.change_key);
            if d.expected.as_ref().is_some_and(|e| version.as_deref() != Some(e.as_str())) {
                tracing::info!(folder = %self.description, item = %d.id, "edited since planned; not deleted");
                let context = self.context("delete").with_item(d.id.clone());
                out[i] = Some(Err(core::Error::PreconditionFailed { context: Box::new(context) }));
                continue;
            }
            let stamp = ews.extended(&mapping::origin_uri()).map(str::to_owned);
            checked.push((i, stamp, ews.date_time("DateTimeCreated")));
        }
        // 2. Delete what still holds the version the engine planned against.
        if !checked.is_empty() {
            let delete: Vec<ItemId> = checked.iter().map(|(i, _, _)| ids[*i].clone()).collect();
            let results = self.client.delete_items(&delete, self.options.delete_type).await.map_err(|e| self.err(e))?;
            let dumpster = self.dumpster();
            let mut to_check = Vec::new();
            for ((i, stamp, created), r) in checked.into_iter().zip(results) {
                match r {
                    Ok(()) => {
                        out[i] = Some(Ok(Deleted::Gone));
                        if let (Some(stamp), Some(expected), Some(_)) = (stamp, items[i].expected_hash, &dumpster) {
                            to_check.push((i, stamp, created, expected));
                        }
                    }
                    Err(e) => out[i] = Some(Err(self.err(e))),
                }
            }
            // 3. An edit saved between steps 1 and 2 is in the deleted copy: put it back.
            if let (Some(dumpster), false) = (&dumpster, to_check.is_empty()) {
                self.restore_edited(dumpster, to_check, &mut out).await;
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(self.err(EwsError::protocol("DeleteItem", "no result")))))
            .collect())
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
