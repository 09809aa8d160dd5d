//! [`MemoryConnector`]: one folder held in memory, behaving like an Exchange folder as far as the
//! engine can tell, with hooks to play the user (edits on a phone) and the server's bad days.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::broadcast;

use crate::connector::{
    BatchResult, Capabilities, Change, ChangeDetection, ChangeHint, ChangePage, Connector, Deleted, FetchedItem,
    ItemDelete, ItemUpdate, ItemVersion, ListPage, NewItem, PageCursor,
};
use crate::error::{Error, ErrorContext, ErrorKind, Result};
use crate::field;
use crate::id::{ItemId, SyncToken, Version};
use crate::item::{FieldValue, Item};
use crate::origin::OriginStamp;
use crate::testkit::faults::{CrashSignal, Fault, FaultKind, FaultSchedule, Operation, error_of_kind};

/// A process-wide logical clock for `server.last_modified_time`: every write anywhere gets a later
/// time than every write before it, so "newest wins" is deterministic across folders.
static CLOCK_MS: AtomicI64 = AtomicI64::new(0);

/// Numbers the folders of the process: each connector made by [`MemoryConnector::with_config`]
/// is a folder of its own, with its own server id ([`Connector::folder_id`]).
static FOLDER_NUMBERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn tick() -> DateTime<Utc> {
    let ms = CLOCK_MS.fetch_add(1, Ordering::SeqCst) + 1;
    let epoch = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or_default();
    epoch + chrono::Duration::milliseconds(ms)
}

/// How a [`MemoryConnector`] is set up.
#[derive(Debug, Clone)]
pub struct MemoryConnectorConfig {
    /// The folder's name, for [`Connector::describe`] and error contexts.
    pub name: String,
    /// Incremental (change log with tokens) or snapshot (listing only, like EWS public folders).
    pub change_detection: ChangeDetection,
    /// The largest batch the engine should send.
    pub max_batch: usize,
    /// Items (or changes) per page of [`Connector::list`] and [`Connector::changes`].
    pub page_size: usize,
    /// Whether deletes check [`ItemDelete::expected`] (the default, as every connector must: a
    /// copy edited since the engine planned answers PreconditionFailed and stays). Off, deletes
    /// are unconditional, as Exchange's DeleteItem is on its own.
    pub check_delete_versions: bool,
    /// The folder's server id ([`Connector::folder_id`], and part of every item id); `None`:
    /// one numbered by the process. A test that wants the same ids on every run (a property
    /// test replaying a failure) names its folders itself.
    pub folder_id: Option<String>,
}

impl MemoryConnectorConfig {
    /// An incremental folder with small pages, so that paging is exercised.
    pub fn incremental(name: impl Into<String>) -> Self {
        MemoryConnectorConfig {
            name: name.into(),
            change_detection: ChangeDetection::Incremental,
            max_batch: 10,
            page_size: 7,
            check_delete_versions: true,
            folder_id: None,
        }
    }

    /// A snapshot folder (no change tokens), like an EWS public folder.
    pub fn snapshot(name: impl Into<String>) -> Self {
        MemoryConnectorConfig { change_detection: ChangeDetection::Snapshot, ..Self::incremental(name) }
    }
}

/// One stored item.
#[derive(Debug, Clone)]
struct Stored {
    version: Version,
    item: Item,
    origin: Option<OriginStamp>,
    modified: DateTime<Utc>,
}

/// The folder behind every clone of a connector.
#[derive(Debug)]
struct Folder {
    config: MemoryConnectorConfig,
    items: BTreeMap<ItemId, Stored>,
    /// Every change, oldest first: the item id changed at sequence number `index + 1`.
    log: Vec<ItemId>,
    /// The sequence number at which each item (also a deleted one) was created.
    born: BTreeMap<ItemId, usize>,
    /// Tokens carry the epoch they were issued in; invalidating tokens starts a new epoch.
    epoch: u64,
    next_id: u64,
    next_version: u64,
    faults: FaultSchedule,
    /// When set, listings and change pages come in an order scrambled by this seed.
    scramble: Option<u64>,
    calls: BTreeMap<Operation, u64>,
    /// Item writes applied through the connector (not the user API), by operation.
    applied: BTreeMap<Operation, u64>,
    /// The user's actions waiting for a call (see [`MemoryConnector::act_before`]).
    actions: Vec<UserAction>,
    /// The user's edits waiting for a delete of their item (see
    /// [`MemoryConnector::edit_before_delete`]).
    delete_edits: BTreeMap<ItemId, DeleteEdit>,
    /// The folder's server id.
    folder_id: String,
}

/// A user's edit to apply when a delete of its item arrives.
struct DeleteEdit(Box<dyn FnOnce(&mut Item) + Send>);

impl std::fmt::Debug for DeleteEdit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeleteEdit")
    }
}

/// A user's action, to run right before the call of `operation` numbered `call`.
struct UserAction {
    operation: Operation,
    call: u64,
    act: Box<dyn FnOnce(&MemoryConnector) + Send>,
}

impl std::fmt::Debug for UserAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAction")
            .field("operation", &self.operation)
            .field("call", &self.call)
            .finish_non_exhaustive()
    }
}

impl Folder {
    fn new_version(&mut self) -> Version {
        self.next_version += 1;
        Version::new(format!("ck{}", self.next_version))
    }

    fn new_id(&mut self) -> ItemId {
        self.next_id += 1;
        // Ids are unique across folders, as a server's are (EWS ids name their mailbox and folder).
        let folder = self.folder_id.trim_start_matches("folder-").trim_start_matches('f');
        ItemId::new(format!("{}#{folder}.{}", self.config.name, self.next_id))
    }

    fn record(&mut self, id: &ItemId) {
        self.log.push(id.clone());
    }

    fn fetched(&self, id: &ItemId, stored: &Stored) -> FetchedItem {
        let mut item = stored.item.clone();
        item.set(field::SERVER_LAST_MODIFIED, FieldValue::DateTime(stored.modified));
        FetchedItem { id: id.clone(), version: stored.version.clone(), item, origin: stored.origin.clone() }
    }

    fn insert(&mut self, item: &Item, origin: Option<OriginStamp>) -> ItemVersion {
        let id = self.new_id();
        let version = self.new_version();
        self.items.insert(id.clone(), Stored { version: version.clone(), item: strip(item), origin, modified: tick() });
        self.record(&id);
        self.born.insert(id.clone(), self.log.len());
        ItemVersion { id, version }
    }

    fn order_key(&self, id: &ItemId) -> String {
        match self.scramble {
            None => id.to_string(),
            Some(seed) => {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                (seed, id.as_str()).hash(&mut h);
                format!("{:016x}{id}", h.finish())
            }
        }
    }

    fn context(&self, op: Operation) -> ErrorContext {
        ErrorContext::operation(op.name()).with_folder(self.config.name.clone())
    }

    fn token(&self, seq: usize) -> SyncToken {
        SyncToken::new(format!("mem:{}:{seq}", self.epoch))
    }

    fn parse_token(&self, token: &SyncToken) -> Result<usize> {
        let invalid = || Error::InvalidSyncToken { context: Box::new(self.context(Operation::Changes)) };
        let mut parts = token.as_str().split(':');
        let (Some("mem"), Some(epoch), Some(seq), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let (Ok(epoch), Ok(seq)) = (epoch.parse::<u64>(), seq.parse::<usize>()) else {
            return Err(invalid());
        };
        if epoch != self.epoch || seq > self.log.len() {
            return Err(invalid());
        }
        Ok(seq)
    }

    fn changes(&self, token: Option<&SyncToken>) -> Result<ChangePage> {
        if self.config.change_detection != ChangeDetection::Incremental {
            return Err(Error::permanent(
                "this folder has no change tokens; list it instead",
                self.context(Operation::Changes),
            ));
        }
        let start = match token {
            Some(t) => self.parse_token(t)?,
            None => 0,
        };
        // The last change of every item since the token, in the order of those last changes.
        let mut last: BTreeMap<&ItemId, usize> = BTreeMap::new();
        for (offset, id) in self.log[start..].iter().enumerate() {
            last.insert(id, start + offset + 1);
        }
        let mut pending: Vec<(usize, &ItemId)> = last
            .into_iter()
            // Like Exchange's feed, a deletion is reported only for an item that existed at the
            // token: one created and deleted since then never appears (nor does any deleted item
            // in a listing from the beginning).
            .filter(|(id, _)| self.items.contains_key(*id) || self.born.get(*id).is_some_and(|born| *born <= start))
            .map(|(id, seq)| (seq, id))
            .collect();
        pending.sort();
        let page_size = self.config.page_size.max(1);
        let more = pending.len() > page_size;
        pending.truncate(page_size);
        let next_seq = if more { pending.last().map_or(self.log.len(), |(seq, _)| *seq) } else { self.log.len() };
        let mut changes: Vec<Change> = pending
            .into_iter()
            .map(|(_, id)| match self.items.get(id) {
                Some(s) => Change::Upserted(ItemVersion { id: id.clone(), version: s.version.clone() }),
                None => Change::Deleted(id.clone()),
            })
            .collect();
        if self.scramble.is_some() {
            changes.reverse();
        }
        Ok(ChangePage { changes, token: self.token(next_seq), more })
    }

    fn list(&self, cursor: Option<&PageCursor>) -> ListPage {
        let mut keyed: Vec<(String, &ItemId)> = self.items.keys().map(|id| (self.order_key(id), id)).collect();
        keyed.sort();
        let after = cursor.map(|c| c.0.as_str());
        let page_size = self.config.page_size.max(1);
        let rest: Vec<&(String, &ItemId)> =
            keyed.iter().filter(|(k, _)| after.is_none_or(|a| k.as_str() > a)).collect();
        let page: Vec<&(String, &ItemId)> = rest.iter().take(page_size).copied().collect();
        let next = if rest.len() > page_size { page.last().map(|(k, _)| PageCursor(k.clone())) } else { None };
        let items = page
            .iter()
            .filter_map(|(_, id)| {
                self.items.get(*id).map(|s| ItemVersion { id: (*id).clone(), version: s.version.clone() })
            })
            .collect();
        ListPage { items, next }
    }
}

/// The item as a server stores it: without server-maintained fields (those are the server's).
fn strip(item: &Item) -> Item {
    let mut item = item.clone();
    item.fields.retain(|name, _| !Item::is_server_field(name));
    item
}

/// An in-memory folder implementing [`Connector`] faithfully: versions change on every write,
/// an incremental change log with tokens and pages (or snapshot listing only), origin stamps,
/// per-item batch results, and change hints on a broadcast channel.
///
/// Clones share the folder: a test keeps one clone to play the user ([`MemoryConnector::user_create`],
/// [`MemoryConnector::user_update`], [`MemoryConnector::user_delete`]) and to schedule faults
/// ([`MemoryConnector::inject`]), while the engine holds another as `Arc<dyn Connector>`. The user
/// API is never subject to faults.
#[derive(Debug, Clone)]
pub struct MemoryConnector {
    folder: Arc<Mutex<Folder>>,
    hints: broadcast::Sender<ChangeHint>,
    crash: CrashSignal,
}

impl MemoryConnector {
    /// An empty incremental folder.
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_config(MemoryConnectorConfig::incremental(name))
    }

    /// An empty snapshot folder (listing only, like an EWS public folder).
    pub fn snapshot(name: impl Into<String>) -> Self {
        Self::with_config(MemoryConnectorConfig::snapshot(name))
    }

    /// An empty folder set up as `config` says.
    pub fn with_config(config: MemoryConnectorConfig) -> Self {
        let (hints, _) = broadcast::channel(64);
        let folder_id = config
            .folder_id
            .clone()
            .unwrap_or_else(|| format!("folder-{}", FOLDER_NUMBERS.fetch_add(1, Ordering::Relaxed) + 1));
        MemoryConnector {
            folder: Arc::new(Mutex::new(Folder {
                config,
                items: BTreeMap::new(),
                log: Vec::new(),
                born: BTreeMap::new(),
                epoch: 1,
                next_id: 0,
                next_version: 0,
                faults: FaultSchedule::default(),
                scramble: None,
                calls: BTreeMap::new(),
                applied: BTreeMap::new(),
                actions: Vec::new(),
                delete_edits: BTreeMap::new(),
                folder_id,
            })),
            hints,
            crash: CrashSignal::new(),
        }
    }

    /// Uses `signal` for simulated crashes, so that one signal covers every folder of a group.
    pub fn with_crash_signal(mut self, signal: CrashSignal) -> Self {
        self.crash = signal;
        self
    }

    /// The signal fired by simulated crashes.
    pub fn crash_signal(&self) -> &CrashSignal {
        &self.crash
    }

    /// This connector as the engine holds it.
    pub fn shared(&self) -> Arc<dyn Connector> {
        Arc::new(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Folder> {
        // A panic while holding the lock (only in a failing test) leaves consistent data behind.
        self.folder.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn hint(&self) {
        // Nobody listening is fine: hints are only hints.
        let _ = self.hints.send(ChangeHint::Changed);
    }

    // ----- the user's side: edits made on a phone or in Outlook -----

    /// The user creates an item of their own (no origin stamp); answers its id.
    pub fn user_create(&self, item: Item) -> ItemId {
        self.insert(item, None)
    }

    /// Puts an item carrying `origin` into the folder, as a restored mailbox or an earlier run of
    /// the tool would have left it; answers its id.
    pub fn insert(&self, item: Item, origin: Option<OriginStamp>) -> ItemId {
        let id = self.lock().insert(&item, origin).id;
        self.hint();
        id
    }

    /// The user edits an item; answers its new version, `None` when the item does not exist.
    pub fn user_update(&self, id: &ItemId, edit: impl FnOnce(&mut Item)) -> Option<Version> {
        let version = {
            let mut f = self.lock();
            let version = f.new_version();
            let stored = f.items.get_mut(id)?;
            edit(&mut stored.item);
            stored.item = strip(&stored.item);
            stored.version = version.clone();
            stored.modified = tick();
            f.record(id);
            version
        };
        self.hint();
        Some(version)
    }

    /// The user deletes an item; answers whether it existed.
    pub fn user_delete(&self, id: &ItemId) -> bool {
        let existed = {
            let mut f = self.lock();
            let existed = f.items.remove(id).is_some();
            if existed {
                f.record(id);
            }
            existed
        };
        if existed {
            self.hint();
        }
        existed
    }

    // ----- the server's side -----

    /// The server touches an item without changing its content: a new version, a change log
    /// entry, the same content (design rule 1: this must cause no traffic). Answers whether the
    /// item exists.
    pub fn touch(&self, id: &ItemId) -> bool {
        let touched = {
            let mut f = self.lock();
            let version = f.new_version();
            match f.items.get_mut(id) {
                Some(stored) => {
                    stored.version = version;
                    f.record(id);
                    true
                }
                None => false,
            }
        };
        if touched {
            self.hint();
        }
        touched
    }

    /// [`MemoryConnector::touch`] on every item.
    pub fn touch_all(&self) {
        for id in self.ids() {
            self.touch(&id);
        }
    }

    /// Every token issued so far stops being accepted ([`ErrorKind::InvalidSyncToken`]), as when
    /// a server drops its sync state.
    pub fn invalidate_tokens(&self) {
        self.lock().epoch += 1;
    }

    /// Scrambles the order of listings and of changes within a page (by `seed`), or restores the
    /// natural order (`None`); a correct client does not depend on the order.
    pub fn scramble_order(&self, seed: Option<u64>) {
        self.lock().scramble = seed;
    }

    /// Sets the page size of listings and change pages.
    pub fn set_page_size(&self, page_size: usize) {
        self.lock().config.page_size = page_size.max(1);
    }

    /// Schedules a fault.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.add(fault);
    }

    /// Lets the user act right before the `nth` call (1 = the next one) of `operation` from now,
    /// with this folder: an edit or a deletion in the middle of a pass, between two of the
    /// engine's calls (a copy edited after the engine created it and before it reads the
    /// folder's change feed back, say). The action runs before the call does anything, its
    /// fault included.
    pub fn act_before(&self, operation: Operation, nth: u64, act: impl FnOnce(&MemoryConnector) + Send + 'static) {
        let mut f = self.lock();
        let call = f.calls.get(&operation).copied().unwrap_or(0) + nth.max(1);
        f.actions.push(UserAction { operation, call, act: Box::new(act) });
    }

    /// Plays a user whose edit of `id` lands in the instant between a connector's last check of
    /// the version and the deletion: the race that the EWS connector's check afterwards answers
    /// with [`Deleted::Restored`]. At the next delete of the item that passes the version check,
    /// `edit` is applied (a new version, as a save would give it), and the delete then does what
    /// the EWS connector does: when the edited content differs from the delete's
    /// [`ItemDelete::expected_hash`], the edited item is put back under a new id and the delete
    /// answers [`Deleted::Restored`] with it; otherwise (or without an expected hash) the item is
    /// deleted.
    pub fn edit_before_delete(&self, id: &ItemId, edit: impl FnOnce(&mut Item) + Send + 'static) {
        self.lock().delete_edits.insert(id.clone(), DeleteEdit(Box::new(edit)));
    }

    /// Drops every scheduled fault that has not fired.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Whether scheduled faults are still waiting to fire.
    pub fn has_pending_faults(&self) -> bool {
        !self.lock().faults.is_empty()
    }

    // ----- inspection -----

    /// The item with this id, as [`Connector::get`] would answer it.
    pub fn item(&self, id: &ItemId) -> Option<FetchedItem> {
        let f = self.lock();
        f.items.get(id).map(|s| f.fetched(id, s))
    }

    /// Every item of the folder, in id order.
    pub fn items(&self) -> Vec<FetchedItem> {
        let f = self.lock();
        f.items.iter().map(|(id, s)| f.fetched(id, s)).collect()
    }

    /// Every item id of the folder.
    pub fn ids(&self) -> Vec<ItemId> {
        self.lock().items.keys().cloned().collect()
    }

    /// How many items the folder holds.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Whether the folder is empty.
    pub fn is_empty(&self) -> bool {
        self.lock().items.is_empty()
    }

    /// How many calls of `op` the connector received (faulted ones included).
    pub fn calls(&self, op: Operation) -> u64 {
        self.lock().calls.get(&op).copied().unwrap_or(0)
    }

    /// How many item writes of `op` (create, update, delete) the connector applied for callers
    /// (the user API not counted): "did the engine write here?"
    pub fn applied_writes(&self, op: Operation) -> u64 {
        self.lock().applied.get(&op).copied().unwrap_or(0)
    }

    // ----- call plumbing -----

    /// Counts a call, runs the user's actions due before it, and answers the fault that fires
    /// on it.
    fn begin(&self, op: Operation) -> Option<FaultKind> {
        let (fault, due) = {
            let mut f = self.lock();
            let calls = f.calls.entry(op).or_insert(0);
            *calls += 1;
            let call = *calls;
            let fault = f.faults.on_call(op);
            let (due, waiting): (Vec<UserAction>, Vec<UserAction>) =
                std::mem::take(&mut f.actions).into_iter().partition(|a| a.operation == op && a.call == call);
            f.actions = waiting;
            (fault, due)
        };
        // Outside the lock: the user's API takes it.
        for action in due {
            (action.act)(self);
        }
        fault
    }

    /// Acts on a fault that strikes before the call reaches the server.
    async fn before(&self, op: Operation, fault: &Option<FaultKind>) -> Result<()> {
        let context = || self.lock().context(op);
        match fault {
            Some(FaultKind::Fail(kind)) => Err(error_of_kind(*kind, context())),
            Some(FaultKind::Throttle(delay)) => Err(Error::throttled(Some(*delay), context())),
            Some(FaultKind::Crash) => {
                self.crash.fire();
                std::future::pending().await
            }
            _ => Ok(()),
        }
    }

    /// Acts on a fault that strikes after the server did the work.
    async fn after<T>(&self, op: Operation, fault: &Option<FaultKind>, answer: T) -> Result<T> {
        match fault {
            Some(FaultKind::LoseResponse) => Err(Error::transient(
                "injected: the connection dropped before the answer arrived",
                self.lock().context(op),
            )),
            Some(FaultKind::CrashAfterWrite) => {
                self.crash.fire();
                std::future::pending().await
            }
            _ => Ok(answer),
        }
    }

    fn failed_item(fault: &Option<FaultKind>, index: usize) -> Option<ErrorKind> {
        match fault {
            Some(FaultKind::FailItem { index: i, kind }) if *i == index => Some(*kind),
            _ => None,
        }
    }
}

#[async_trait]
impl Connector for MemoryConnector {
    fn describe(&self) -> String {
        format!("memory:{}", self.lock().config.name)
    }

    fn capabilities(&self) -> Capabilities {
        let f = self.lock();
        Capabilities { change_detection: f.config.change_detection, max_batch: f.config.max_batch, watch: true }
    }

    fn folder_id(&self) -> Option<String> {
        Some(self.lock().folder_id.clone())
    }

    async fn changes(&self, token: Option<&SyncToken>) -> Result<ChangePage> {
        let fault = self.begin(Operation::Changes);
        self.before(Operation::Changes, &fault).await?;
        let page = self.lock().changes(token)?;
        self.after(Operation::Changes, &fault, page).await
    }

    async fn list(&self, cursor: Option<&PageCursor>) -> Result<ListPage> {
        let fault = self.begin(Operation::List);
        self.before(Operation::List, &fault).await?;
        let page = self.lock().list(cursor);
        self.after(Operation::List, &fault, page).await
    }

    async fn get(&self, ids: &[ItemId]) -> Result<BatchResult<FetchedItem>> {
        let fault = self.begin(Operation::Get);
        self.before(Operation::Get, &fault).await?;
        let answer = {
            let f = self.lock();
            ids.iter()
                .enumerate()
                .map(|(i, id)| {
                    let context = f.context(Operation::Get).with_item(id.clone());
                    if let Some(kind) = Self::failed_item(&fault, i) {
                        return Err(error_of_kind(kind, context));
                    }
                    f.items.get(id).map(|s| f.fetched(id, s)).ok_or(Error::NotFound { context: Box::new(context) })
                })
                .collect()
        };
        self.after(Operation::Get, &fault, answer).await
    }

    async fn create(&self, items: &[NewItem]) -> Result<BatchResult<ItemVersion>> {
        let fault = self.begin(Operation::Create);
        self.before(Operation::Create, &fault).await?;
        let answer: BatchResult<ItemVersion> = {
            let mut f = self.lock();
            items
                .iter()
                .enumerate()
                .map(|(i, new)| {
                    if let Some(kind) = Self::failed_item(&fault, i) {
                        return Err(error_of_kind(kind, f.context(Operation::Create)));
                    }
                    *f.applied.entry(Operation::Create).or_insert(0) += 1;
                    Ok(f.insert(&new.item, Some(new.origin.clone())))
                })
                .collect()
        };
        if answer.iter().any(Result::is_ok) {
            self.hint();
        }
        self.after(Operation::Create, &fault, answer).await
    }

    async fn update(&self, updates: &[ItemUpdate]) -> Result<BatchResult<ItemVersion>> {
        let fault = self.begin(Operation::Update);
        self.before(Operation::Update, &fault).await?;
        let answer: BatchResult<ItemVersion> = {
            let mut f = self.lock();
            updates
                .iter()
                .enumerate()
                .map(|(i, u)| {
                    let context = f.context(Operation::Update).with_item(u.id.clone());
                    if let Some(kind) = Self::failed_item(&fault, i) {
                        return Err(error_of_kind(kind, context));
                    }
                    let Some(current) = f.items.get(&u.id).map(|s| s.version.clone()) else {
                        return Err(Error::NotFound { context: Box::new(context) });
                    };
                    if current != u.expected {
                        return Err(Error::PreconditionFailed { context: Box::new(context) });
                    }
                    let version = f.new_version();
                    if let Some(stored) = f.items.get_mut(&u.id) {
                        stored.item = strip(&u.item);
                        stored.version = version.clone();
                        stored.modified = tick();
                        if let Some(origin) = &u.origin {
                            stored.origin = Some(origin.clone());
                        }
                    }
                    f.record(&u.id);
                    *f.applied.entry(Operation::Update).or_insert(0) += 1;
                    Ok(ItemVersion { id: u.id.clone(), version })
                })
                .collect()
        };
        if answer.iter().any(Result::is_ok) {
            self.hint();
        }
        self.after(Operation::Update, &fault, answer).await
    }

    async fn delete(&self, items: &[ItemDelete]) -> Result<BatchResult<Deleted>> {
        let fault = self.begin(Operation::Delete);
        self.before(Operation::Delete, &fault).await?;
        let answer: BatchResult<Deleted> = {
            let mut f = self.lock();
            items
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let context = f.context(Operation::Delete).with_item(d.id.clone());
                    if let Some(kind) = Self::failed_item(&fault, i) {
                        return Err(error_of_kind(kind, context));
                    }
                    let Some(current) = f.items.get(&d.id).map(|s| s.version.clone()) else {
                        return Err(Error::NotFound { context: Box::new(context) });
                    };
                    if f.config.check_delete_versions && d.expected.as_ref().is_some_and(|e| *e != current) {
                        return Err(Error::PreconditionFailed { context: Box::new(context) });
                    }
                    if let Some(DeleteEdit(edit)) = f.delete_edits.remove(&d.id) {
                        // The user's save, right before the delete.
                        let version = f.new_version();
                        if let Some(stored) = f.items.get_mut(&d.id) {
                            edit(&mut stored.item);
                            stored.item = strip(&stored.item);
                            stored.version = version;
                            stored.modified = tick();
                        }
                        f.record(&d.id);
                        let edited = f.items.get(&d.id).map(|s| s.item.content_hash());
                        if let (Some(expected), Some(edited)) = (d.expected_hash, edited)
                            && edited != expected
                        {
                            // Deleted, then found edited and put back under a new id.
                            let Some(stored) = f.items.remove(&d.id) else {
                                return Err(Error::NotFound { context: Box::new(context) });
                            };
                            f.record(&d.id);
                            *f.applied.entry(Operation::Delete).or_insert(0) += 1;
                            return Ok(Deleted::Restored(f.insert(&stored.item, stored.origin)));
                        }
                    }
                    f.items.remove(&d.id);
                    f.record(&d.id);
                    *f.applied.entry(Operation::Delete).or_insert(0) += 1;
                    Ok(Deleted::Gone)
                })
                .collect()
        };
        if answer.iter().any(Result::is_ok) {
            self.hint();
        }
        self.after(Operation::Delete, &fault, answer).await
    }

    async fn find_by_origin(&self, origins: &[OriginStamp]) -> Result<Vec<FetchedItem>> {
        let fault = self.begin(Operation::FindByOrigin);
        self.before(Operation::FindByOrigin, &fault).await?;
        let wanted: BTreeSet<&OriginStamp> = origins.iter().collect();
        let found = {
            let f = self.lock();
            f.items
                .iter()
                .filter(|(_, s)| s.origin.as_ref().is_some_and(|o| wanted.contains(o)))
                .map(|(id, s)| f.fetched(id, s))
                .collect()
        };
        self.after(Operation::FindByOrigin, &fault, found).await
    }

    async fn watch(&self) -> Result<BoxStream<'static, ChangeHint>> {
        let receiver = self.hints.subscribe();
        let hints = stream::unfold(receiver, |mut receiver| async move {
            match receiver.recv().await {
                Ok(hint) => Some((hint, receiver)),
                // Missed hints: the watcher must look at everything.
                Err(broadcast::error::RecvError::Lagged(_)) => Some((ChangeHint::Resync, receiver)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        Ok(hints.boxed())
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_secs(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{EntityId, GroupId};
    use crate::item::ItemKind;

    fn contact(name: &str) -> Item {
        Item::new(ItemKind::Contact).with(field::GIVEN_NAME, name)
    }

    fn stamp(entity: &str) -> OriginStamp {
        OriginStamp::new(GroupId::new("g"), EntityId::new(entity))
    }

    #[tokio::test]
    async fn every_write_changes_the_version_and_touch_keeps_content() {
        let c = MemoryConnector::new("f");
        let id = c.user_create(contact("a"));
        let v1 = c.item(&id).unwrap().version;
        let v2 = c.user_update(&id, |i| i.set(field::SURNAME, "b")).unwrap();
        assert_ne!(v1, v2);
        let before = c.item(&id).unwrap();
        assert!(c.touch(&id));
        let after = c.item(&id).unwrap();
        assert_ne!(before.version, after.version);
        assert!(before.item.same_content(&after.item));
    }

    #[tokio::test]
    async fn a_users_action_runs_right_before_the_call_it_waits_for() {
        let c = MemoryConnector::new("f");
        c.user_create(contact("a"));
        c.act_before(Operation::List, 2, |folder| {
            folder.user_create(contact("b"));
        });
        assert_eq!(c.list(None).await.unwrap().items.len(), 1, "not before the first listing");
        assert_eq!(c.list(None).await.unwrap().items.len(), 2, "before the second");
        assert_eq!(c.list(None).await.unwrap().items.len(), 2, "once");
    }

    #[tokio::test]
    async fn changes_report_the_latest_state_once_per_item() {
        let c = MemoryConnector::new("f");
        c.set_page_size(2);
        let a = c.user_create(contact("a"));
        let b = c.user_create(contact("b"));
        let gone = c.user_create(contact("c"));
        c.user_delete(&gone);
        c.user_update(&a, |i| i.set(field::SURNAME, "x"));
        // From the beginning: a and b, never the deleted c.
        let mut token = None;
        let mut seen = Vec::new();
        loop {
            let page = c.changes(token.as_ref()).await.unwrap();
            seen.extend(page.changes);
            token = Some(page.token);
            if !page.more {
                break;
            }
        }
        let ids: BTreeSet<ItemId> = seen
            .iter()
            .map(|ch| match ch {
                Change::Upserted(v) => v.id.clone(),
                Change::Deleted(id) => panic!("unexpected delete of {id}"),
            })
            .collect();
        assert_eq!(ids, [a.clone(), b.clone()].into_iter().collect());
        assert_eq!(seen.len(), 2);
        // Since the token: a delete.
        c.user_delete(&b);
        let page = c.changes(token.as_ref()).await.unwrap();
        assert_eq!(page.changes, vec![Change::Deleted(b)]);
        assert!(!page.more);
        // An invalidated token is refused.
        c.invalidate_tokens();
        assert_eq!(c.changes(Some(&page.token)).await.unwrap_err().kind(), ErrorKind::InvalidSyncToken);
    }

    #[tokio::test]
    async fn snapshot_folders_refuse_changes_and_list_in_pages() {
        let c = MemoryConnector::snapshot("pf");
        c.set_page_size(3);
        c.scramble_order(Some(7));
        let ids: BTreeSet<ItemId> = (0..10).map(|i| c.user_create(contact(&i.to_string()))).collect();
        assert_eq!(c.changes(None).await.unwrap_err().kind(), ErrorKind::Permanent);
        let mut cursor = None;
        let mut seen = Vec::new();
        loop {
            let page = c.list(cursor.as_ref()).await.unwrap();
            seen.extend(page.items.into_iter().map(|v| v.id));
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(seen.len(), 10);
        assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), ids);
    }

    #[tokio::test]
    async fn lost_response_applies_the_write() {
        let c = MemoryConnector::new("f");
        c.inject(Fault::on(Operation::Create, 1, FaultKind::LoseResponse));
        let err = c.create(&[NewItem { item: contact("a").into(), origin: stamp("e1") }]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transient);
        let found = c.find_by_origin(&[stamp("e1")]).await.unwrap();
        assert_eq!(found.len(), 1, "the write happened although the caller saw an error");
    }

    #[tokio::test]
    async fn throttle_and_failed_calls_apply_nothing() {
        let c = MemoryConnector::new("f");
        c.inject(Fault::on(Operation::Create, 1, FaultKind::Throttle(Duration::from_millis(5))));
        c.inject(Fault::on(Operation::Create, 2, FaultKind::Fail(ErrorKind::Permanent)));
        let new = [NewItem { item: contact("a").into(), origin: stamp("e1") }];
        let err = c.create(&new).await.unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_millis(5)));
        assert_eq!(c.create(&new).await.unwrap_err().kind(), ErrorKind::Permanent);
        assert!(c.is_empty());
        assert_eq!(c.create(&new).await.unwrap().len(), 1);
        assert_eq!(c.applied_writes(Operation::Create), 1);
    }

    #[tokio::test]
    async fn crash_after_write_fires_the_signal_and_never_answers() {
        let c = MemoryConnector::new("f");
        c.inject(Fault::on(Operation::Create, 1, FaultKind::CrashAfterWrite));
        let signal = c.crash_signal().clone();
        let new = [NewItem { item: contact("a").into(), origin: stamp("e1") }];
        assert!(super::super::faults::run_until_crash(c.create(&new), &signal).await.is_none());
        assert_eq!(c.len(), 1);
    }

    #[tokio::test]
    async fn deletes_check_versions_and_an_edit_in_the_window_is_put_back() {
        let c = MemoryConnector::new("f");
        let id = c.insert(contact("a"), Some(stamp("e1")));
        let seen = c.item(&id).unwrap();
        c.user_update(&id, |i| i.set(field::SURNAME, "edited"));
        let stale = ItemDelete { id: id.clone(), expected: Some(seen.version.clone()), expected_hash: None };
        let r = c.delete(&[stale]).await.unwrap();
        assert_eq!(r[0].as_ref().unwrap_err().kind(), ErrorKind::PreconditionFailed);
        assert!(c.item(&id).is_some(), "a copy edited since the plan stays");

        let now = c.item(&id).unwrap();
        c.edit_before_delete(&id, |i| i.set(field::SURNAME, "edited again"));
        let delete = ItemDelete {
            id: id.clone(),
            expected: Some(now.version.clone()),
            expected_hash: Some(now.item.content_hash()),
        };
        let r = c.delete(&[delete]).await.unwrap();
        let Ok(Deleted::Restored(back)) = &r[0] else { panic!("expected Restored, got {r:?}") };
        assert_ne!(back.id, id);
        assert!(c.item(&id).is_none());
        let restored = c.item(&back.id).unwrap();
        assert_eq!(restored.version, back.version);
        assert_eq!(restored.item.text(field::SURNAME), Some("edited again"));
        assert_eq!(restored.origin, Some(stamp("e1")));
    }

    #[tokio::test]
    async fn watch_delivers_a_hint_per_change() {
        let c = MemoryConnector::new("f");
        let mut hints = c.watch().await.unwrap();
        c.user_create(contact("a"));
        assert_eq!(hints.next().await, Some(ChangeHint::Changed));
    }
}
