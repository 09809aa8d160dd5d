//! The [`SyncService`]: runs many sync groups at once, in real time.
//!
//! Each group has its own loop: an initial pass, then a pass whenever a folder's change hints
//! arrive (debounced, so a burst of edits costs one pass), when the polling interval of folders
//! without hints elapses, at the periodic safety re-sync, and when its distribution groups'
//! membership changes. Passes of one group never overlap; passes of different groups run
//! concurrently up to [`crate::config::ServiceSettings::max_concurrent_groups`].
//!
//! # Folders
//!
//! Each member's folder is opened on its own: a member that cannot be opened (no mailbox,
//! impersonation denied) is left out of the pass with its reason, and the rest of the group
//! syncs. A folder whose configured target now resolves to another server folder than the one
//! state recorded (the target was changed, the folder recreated) is **re-homed** before the pass:
//! its old folder is opened by its server id and its copies handled like a leave (under
//! `on_leave = "remove"` the copies the group created there are deleted, each only while it
//! holds what the group wrote; under `"keep"` they stay as the user's own), then the pass runs
//! the new folder's initial sync, matching what it already holds. The hub is re-homed the same
//! way: the copies the group created in the old hub are handled like a leave, and the new hub
//! receives every item of the group (design rule 11).
//!
//! A dry run ([`SyncService::plan`]) writes nothing anywhere: no folder is created (a missing
//! target is planned against as an empty folder, and the plan says it would be created), no
//! state is written (departures and re-homes are described, not done).
//!
//! # Retries, back-off and follow-ups
//!
//! A pass is retried (with exponential backoff and jitter) only for errors nobody retried yet:
//! a connector's client retries its own requests and marks what it gave up on as exhausted
//! (design rule 13). A group whose hub the server asked to back off, or with a folder parked at
//! its server's request, gets its next pass when the back-off ends, not earlier. Users' edits that
//! raced with a pass's writes are not errors: another pass follows after the debounce delay.
//! A group stopped by the mass-delete guard waits for an admin's confirmation instead of
//! retrying on every hint.
//!
//! # Admin requests
//!
//! A running service is its state's only writer (design rule 12). Admin commands post requests
//! through the state ([`SyncService::post_request`]: `exchange-sync confirm`, `exchange-sync
//! resync`); the service looks for them every [`REQUEST_POLL_INTERVAL`], runs the group's pass
//! with what they ask (deletions confirmed, folders compared completely), and removes them once
//! the pass ran. Every pass honours the requests pending at its start, so `run --once` carries
//! them out too.
//!
//! Shutdown ([`SyncService::shutdown`]) lets a pass in flight finish within the grace period and
//! abandons it after that: the engine commits every action as it completes and writes create
//! intents ahead, so an abandoned pass loses nothing and the next start duplicates nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use exchange_sync_core::engine::{GroupSync, SyncOptions, SyncReport};
use exchange_sync_core::executor::{Executor, ExecutorOptions};
use exchange_sync_core::state::{AdminRequest, FolderCondition, FolderIdentity, PostedRequest, StateWrite};
use exchange_sync_core::{
    ChangeHint, Connector, EntityId, ErrorContext, ErrorKind, GroupId, MemberId, MemberViews, Notice, StateStore,
    StateTransaction,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::sync::{Mutex, Semaphore, broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::backoff::{delay_after, jittered};
use crate::config::{Config, GroupConfig, HUB_MEMBER_ID, LeavePolicy, MemberConfig, StateLocation};
use crate::conflict_log::ConflictEntry;
use crate::error::{Error, Result};
use crate::event::{ProgressEvent, Trigger};
use crate::folders::FolderProvider;
use crate::hints::{self, HintContext};
use crate::membership;
use crate::metrics::Metrics;
use crate::missing_folder::MissingFolder;
use crate::names::{self, PlannedAction};
use crate::report::{ErrorReport, GroupReport, GuardStop, MemberReport, PassOutcome, RunReport};
use crate::status::{FolderCheck, GroupCheck, GroupStatus, MemberStatusReport};

/// The group record holding the last pass's report (JSON), for readers beside the service.
pub const RECORD_LAST_REPORT: &str = "last_report";
/// The group record holding the members the group's distribution groups held at the last
/// expansion (JSON).
pub const RECORD_EXPANDED_MEMBERS: &str = "expanded_members";

/// A member from a distribution group, as the service records it for `status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct ExpandedMember {
    id: String,
    mailbox: String,
    two_way: bool,
}

/// Options of one explicit run ([`SyncService::run_once`], [`SyncService::plan`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// The groups to run (empty: every group).
    pub groups: Vec<String>,
    /// Lets this run exceed the mass-delete guard: an admin confirmed the deletions.
    pub allow_mass_delete: bool,
}

/// How many events a subscriber may lag behind before it misses some.
const EVENT_BUFFER: usize = 1024;

/// How often a running service looks for admin requests posted through its state: one small
/// query for all its groups together ([`StateStore::newest_requests`]), which wakes only the
/// groups that have a new one.
pub const REQUEST_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Runs sync groups. Cheap to clone: clones share the same service.
#[derive(Clone)]
pub struct SyncService {
    inner: Arc<Inner>,
}

/// Writes done and planned in a group's current pass.
#[derive(Default)]
struct PassProgress {
    done: std::sync::atomic::AtomicUsize,
    total: std::sync::atomic::AtomicUsize,
}

impl PassProgress {
    fn start(&self, total: usize) {
        self.total.store(total, std::sync::atomic::Ordering::Relaxed);
        self.done.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts `n` more writes; answers (done, total).
    fn add(&self, n: usize) -> (usize, usize) {
        let done = self.done.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
        (done, self.total.load(std::sync::atomic::Ordering::Relaxed).max(done))
    }
}

struct Inner {
    config: Config,
    metrics: Arc<Metrics>,
    progress: StdMutex<BTreeMap<String, Arc<PassProgress>>>,
    folders: Arc<dyn FolderProvider>,
    store: Arc<dyn StateStore>,
    events: broadcast::Sender<ProgressEvent>,
    groups: Vec<Arc<GroupRuntime>>,
    shutdown: watch::Sender<bool>,
    passes: Arc<Semaphore>,
}

/// A group's live state in this process.
struct GroupRuntime {
    config: GroupConfig,
    /// Held for the whole of a pass: passes of one group never overlap.
    work: Mutex<GroupWork>,
    /// What `status` shows without waiting for a pass.
    snapshot: StdMutex<GroupSnapshot>,
    /// When the first change notification of the burst the next pass handles arrived.
    hint_since: StdMutex<Option<Instant>>,
    /// Asked when this worker holds more than its share of the groups and should give this
    /// one up: the group's loop releases the lease between two passes, never during one.
    give_up: GiveUpRequest,
    /// The id of the newest admin request the service's look for requests found posted for the
    /// group (0: none yet). Only grows; a change wakes the group's loop, which reads the group's
    /// requests to decide whether a pass is due.
    newest_request: watch::Sender<u64>,
}

/// The lease renewal's request to a group's loop to give the group up (see
/// [`exchange_sync_core::state::LeaseRenewal::surplus`]). Each renewal asks again or withdraws
/// the request, so a loop busy with a long pass does not act on a request the next renewal no
/// longer makes (a worker died meanwhile, and this one is no longer over its share).
#[derive(Default)]
struct GiveUpRequest {
    asked: std::sync::atomic::AtomicBool,
    wake: tokio::sync::Notify,
}

impl GiveUpRequest {
    /// Asks (`true`) or withdraws the request (`false`).
    fn set(&self, asked: bool) {
        self.asked.store(asked, std::sync::atomic::Ordering::SeqCst);
        if asked {
            // Kept for a loop in the middle of a pass: it gives the group up after it.
            self.wake.notify_one();
        }
    }

    /// Completes while the request stands (at once if it does).
    async fn asked(&self) {
        while !self.asked.load(std::sync::atomic::Ordering::SeqCst) {
            self.wake.notified().await;
        }
    }

    /// Whether the request stood; withdraws it.
    fn take(&self) -> bool {
        self.asked.swap(false, std::sync::atomic::Ordering::SeqCst)
    }
}

#[derive(Default)]
struct GroupWork {
    /// Members from distribution groups, as last expanded.
    expanded: Option<Vec<MemberConfig>>,
    /// When the distribution groups were last expanded.
    expanded_at: Option<Instant>,
    /// Members that left and whose copies could not be removed yet.
    leaving: Vec<MemberConfig>,
    /// Whether the state was checked for members removed from the configuration while the service
    /// was stopped (done once, at the group's first pass).
    departed_checked: bool,
    /// Open connectors, by folder (folders that could not be opened are not here: they are
    /// opened again at the next pass).
    connectors: BTreeMap<MemberId, Arc<dyn Connector>>,
    /// Where change hints go while the group's real-time loop runs.
    hints: Option<mpsc::Sender<(MemberId, ChangeHint)>>,
    /// The tasks forwarding each watched folder's hints.
    watchers: BTreeMap<MemberId, JoinHandle<()>>,
    /// How often to poll, when some folder cannot be watched.
    poll_every: Option<Duration>,
}

impl GroupWork {
    /// Stops watching every folder.
    fn stop_watching(&mut self) {
        self.hints = None;
        for (_, handle) in std::mem::take(&mut self.watchers) {
            handle.abort();
        }
        self.poll_every = None;
    }
}

#[derive(Default)]
struct GroupSnapshot {
    last_report: Option<GroupReport>,
    stopped_by_guard: bool,
    members: Vec<MemberConfig>,
}

/// What a pass is asked to do beyond syncing: an admin's confirmation and resyncs, from the run's
/// options and the requests posted through the state.
#[derive(Debug, Default)]
struct PassRequests {
    /// The requests read at the start of the pass (removed once it ran).
    posted: Vec<PostedRequest>,
    /// Deletions stopped by the guard, and folders held because every copy vanished, are
    /// confirmed.
    confirm: bool,
    /// Folders to compare completely; `None` in the set's place means every folder.
    resync: BTreeSet<Option<MemberId>>,
}

impl PassRequests {
    fn new(posted: Vec<PostedRequest>, allow_mass_delete: bool) -> Self {
        let mut requests = PassRequests { confirm: allow_mass_delete, ..PassRequests::default() };
        for p in &posted {
            match &p.request {
                AdminRequest::ConfirmDeletions => requests.confirm = true,
                AdminRequest::Resync { member } => {
                    requests
                        .resync
                        .insert(member.as_ref().map(|m| MemberId::new(crate::config::member_id(m.as_str()))));
                }
            }
        }
        requests.posted = posted;
        requests
    }

    /// The folders of `group` to compare completely.
    fn full_check(&self, group: &exchange_sync_core::SyncGroup) -> BTreeSet<MemberId> {
        if self.resync.contains(&None) {
            return group.folders().cloned().collect();
        }
        self.resync.iter().flatten().cloned().collect()
    }
}

/// A folder whose configured target now resolves to another server folder than the one holding
/// the group's copies.
#[derive(Debug, Clone)]
struct Move {
    /// The member (or the hub).
    member: MemberId,
    /// The member's configuration (`None` for the hub).
    config: Option<MemberConfig>,
    /// The folder state recorded.
    from: FolderIdentity,
    /// The folder as configured now.
    to: String,
}

impl Move {
    fn is_hub(&self) -> bool {
        self.config.is_none()
    }

    /// The folders' paths as the admin configured them: a member's without its mailbox.
    fn paths(&self) -> (String, String) {
        let strip = |path: &str| -> String {
            let Some(m) = &self.config else { return path.to_owned() };
            let prefix = format!("{}/", m.mailbox);
            match (path.get(..prefix.len()), path.get(prefix.len()..)) {
                (Some(head), Some(rest)) if head.eq_ignore_ascii_case(&prefix) => rest.to_owned(),
                _ => path.to_owned(),
            }
        };
        (strip(&self.from.path), strip(&self.to))
    }

    /// What re-homing does, in words; `deleted` is how many copies were removed (`None`: planned).
    fn describe(&self, policy: LeavePolicy, copies: usize, deleted: Option<usize>) -> String {
        let (from, to) = self.paths();
        let (who, old, new) = if self.is_hub() {
            ("the hub".to_owned(), "the old hub", "the new hub receives every item of the group")
        } else {
            (self.member.to_string(), "the old folder", "the new folder gets an initial sync")
        };
        let handled = match (policy, deleted) {
            (LeavePolicy::Remove, None) => format!("{copies} copies in {old} removed (on_leave = remove)"),
            (LeavePolicy::Remove, Some(n)) => format!(
                "{n} of the {copies} copies in {old} removed (on_leave = remove; copies their users edited stay)"
            ),
            (LeavePolicy::Keep, _) => format!("{copies} copies in {old} kept as the user's own (on_leave = keep)"),
        };
        let verb = if deleted.is_some() { "re-homed" } else { "re-home" };
        format!("{verb} {who}: {from} -> {to}: {handled}; {new}")
    }
}

/// The core error of a service error (a folder that could not be opened), for the engine.
fn core_error(error: Error, context: &ErrorContext) -> exchange_sync_core::Error {
    match error {
        Error::Sync(e) => e.in_context(context),
        Error::Connect { message, retryable: true, .. } => {
            exchange_sync_core::Error::transient(message, context.clone())
        }
        other => exchange_sync_core::Error::permanent(other.to_string(), context.clone()),
    }
}

/// Connects to a PostgreSQL state, as the configured worker (`as_worker`) or not (reading,
/// posting admin requests). The password is read here and goes only to the driver.
async fn open_postgres(
    pg: &crate::config::PostgresState,
    as_worker: bool,
    groups: usize,
) -> Result<exchange_sync_core::state::postgres::PostgresStore> {
    use exchange_sync_core::state::postgres::{PostgresOptions, PostgresStore, WorkerIdentity};
    let password = match &pg.password {
        Some(secret) => Some(secret.resolve().map_err(|where_| exchange_sync_core::Error::Config {
            message: format!("the password of the PostgreSQL state: {where_}"),
        })?),
        None => None,
    };
    let worker = as_worker.then(|| WorkerIdentity { name: pg.worker.clone(), lease: pg.lease, groups });
    let options = PostgresOptions { schema: pg.schema.clone(), password, worker, ..PostgresOptions::default() };
    Ok(PostgresStore::connect(&pg.url, options).await?)
}

/// An instant of the tokio clock for a wall-clock time (now when it is past).
fn instant_at(at: DateTime<Utc>) -> tokio::time::Instant {
    tokio::time::Instant::now() + (at - Utc::now()).to_std().unwrap_or(Duration::ZERO)
}

impl SyncService {
    /// A service over `config` (validated here), opening folders through `folders` and keeping
    /// state in `store`.
    ///
    /// Secrets are not read here: `folders` has connected already (or never connects, for
    /// commands that only read state).
    pub fn new(config: Config, folders: Arc<dyn FolderProvider>, store: Arc<dyn StateStore>) -> Result<Self> {
        Self::build(config, folders, store, true)
    }

    /// [`SyncService::new`], logging the configuration's warnings or not (the CLI has shown them
    /// with their places in the file already: every warning once).
    pub(crate) fn build(
        config: Config,
        folders: Arc<dyn FolderProvider>,
        store: Arc<dyn StateStore>,
        warn: bool,
    ) -> Result<Self> {
        for warning in config.validate_offline()? {
            if warn {
                tracing::warn!("{warning}");
            }
        }
        let metrics = Metrics::new().map_err(|e| {
            Error::Sync(exchange_sync_core::Error::permanent(format!("metrics: {e}"), ErrorContext::default()))
        })?;
        let mut config = config;
        config.normalize();
        let groups = config
            .groups
            .iter()
            .map(|g| {
                Arc::new(GroupRuntime {
                    config: g.clone(),
                    work: Mutex::new(GroupWork::default()),
                    snapshot: StdMutex::new(GroupSnapshot { members: g.members.clone(), ..GroupSnapshot::default() }),
                    hint_since: StdMutex::new(None),
                    give_up: GiveUpRequest::default(),
                    newest_request: watch::Sender::new(0),
                })
            })
            .collect();
        for g in &config.groups {
            metrics.register_group(&g.id);
        }
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (shutdown, _) = watch::channel(false);
        let passes = Arc::new(Semaphore::new(config.service.max_concurrent_groups.max(1)));
        let progress = StdMutex::new(BTreeMap::new());
        Ok(SyncService {
            inner: Arc::new(Inner {
                config,
                metrics: Arc::new(metrics),
                progress,
                folders,
                store,
                events,
                groups,
                shutdown,
                passes,
            }),
        })
    }

    /// A service over Exchange as the configuration describes it: EWS connections (secrets read,
    /// Autodiscover asked) and the configured state store, opened as its one writer. The usual
    /// way to start one, and the one the bindings use.
    pub async fn connect(config: Config) -> Result<Self> {
        config.validate()?;
        let store = Self::open_store(&config).await?;
        let folders = crate::connection_folders::ConnectionFolders::connect(&config).await?;
        Self::new(config, Arc::new(folders), store)
    }

    /// Opens the state store the configuration names (SQLite file, or memory) as its one writer
    /// (design rule 12): while it is open, a second writer of the same file (another service, a
    /// `run --once`) is refused at once with an error of kind
    /// [`exchange_sync_core::ErrorKind::State`] that names the process holding it.
    ///
    /// A PostgreSQL state is shared: the store writes as the configured worker, and each group
    /// only while the worker holds its lease (see [`exchange_sync_core::state::postgres`]).
    pub async fn open_store(config: &Config) -> Result<Arc<dyn StateStore>> {
        Ok(match &config.service.state {
            StateLocation::Memory => Arc::new(exchange_sync_core::state::memory::MemoryStore::new()),
            StateLocation::Sqlite(path) => Arc::new(exchange_sync_core::state::sqlite::SqliteStore::open(path).await?),
            StateLocation::Postgres(pg) => Arc::new(open_postgres(pg, true, config.groups.len()).await?),
        })
    }

    /// Opens the configured state for reading, beside a service that may be running: for
    /// `status`, `conflicts`, `check` and dry runs. Reads work, and posting admin requests; any
    /// other write is refused. A state file that does not exist yet reads as an empty state
    /// (nothing is created).
    pub async fn open_store_for_reading(config: &Config) -> Result<Arc<dyn StateStore>> {
        Ok(match &config.service.state {
            StateLocation::Sqlite(path) if path.exists() => {
                Arc::new(exchange_sync_core::state::sqlite::SqliteStore::open_reader(path).await?)
            }
            StateLocation::Sqlite(_) | StateLocation::Memory => {
                Arc::new(exchange_sync_core::state::memory::MemoryStore::new())
            }
            // Not as a worker: reads and admin requests need no lease.
            StateLocation::Postgres(pg) => Arc::new(open_postgres(pg, false, config.groups.len()).await?),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The state store.
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.inner.store
    }

    /// The service's metrics (what `/metrics` serves).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Progress events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ProgressEvent> {
        self.inner.events.subscribe()
    }

    /// Asks a running service to stop: passes in flight finish within the grace period.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Whether a shutdown was asked for.
    pub fn is_shutting_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    fn selected(&self, names: &[String]) -> Result<Vec<Arc<GroupRuntime>>> {
        if names.is_empty() {
            return Ok(self.inner.groups.clone());
        }
        names
            .iter()
            .map(|n| {
                self.inner
                    .groups
                    .iter()
                    .find(|g| &g.config.id == n)
                    .cloned()
                    .ok_or_else(|| Error::UnknownGroup(n.clone()))
            })
            .collect()
    }

    /// The dry run: what one pass of each selected group would write, writing nothing anywhere
    /// (no folder is created, no state is written: design rule 15).
    pub async fn plan(&self, options: RunOptions) -> Result<RunReport> {
        self.run_selected(&options, Trigger::Manual, true).await
    }

    /// The dry run of one group, showing only what concerns one member: the writes to its folder,
    /// and the hub's writes that its changes cause (`exchange-sync plan --group G --member M`).
    /// Every folder is looked at, as a pass would, so the plan is the one the next pass carries out.
    pub async fn plan_member(&self, group: &str, member: &str) -> Result<RunReport> {
        let g = self.selected(&[group.to_owned()])?;
        let wanted = crate::config::member_id(member);
        let known = wanted == HUB_MEMBER_ID
            || g.iter().any(|g| g.config.members.iter().any(|m| m.id == wanted))
            || self.inner.store.members(&GroupId::new(group.to_owned())).await?.iter().any(|m| m.as_str() == wanted)
            || g.iter().any(|g| {
                let s = g.snapshot.lock().unwrap_or_else(PoisonError::into_inner);
                s.members.iter().any(|m| m.id == wanted)
            });
        let mut report = self.plan(RunOptions { groups: vec![group.to_owned()], allow_mass_delete: false }).await?;
        if !known && report.groups.iter().all(|g| !g.planned.iter().any(|a| a.member == wanted)) {
            // Members of distribution groups are known once expanded: the plan above did.
            let expanded = self
                .inner
                .groups
                .iter()
                .filter(|g| g.config.id == group)
                .any(|g| g.work.try_lock().is_ok_and(|w| w.expanded.iter().flatten().any(|m| m.id == wanted)));
            if !expanded {
                return Err(Error::Config(crate::config::ConfigError::single(
                    "",
                    format!("group {group} has no member {member}"),
                    None,
                )));
            }
        }
        for g in &mut report.groups {
            let cause = format!(" in {wanted}");
            g.planned.retain(|a| a.member == wanted || (a.member == HUB_MEMBER_ID && a.reason.contains(&cause)));
            g.members.retain(|m| m.member == wanted || m.member == HUB_MEMBER_ID);
            g.notices.retain(|n| n.contains(&wanted));
            let mut text: String = g.notices.iter().map(|n| format!("* {n}\n")).collect();
            text.push_str(&plan_text(&g.planned, &[]));
            g.plan = Some(text);
        }
        Ok(report)
    }

    /// One pass of each selected group (every group at once, up to the concurrency bound). Admin
    /// requests pending in the state are carried out by it. On a shared PostgreSQL state the
    /// leases it took are released at the end, as by a service that stops.
    pub async fn run_once(&self, options: RunOptions) -> Result<RunReport> {
        let report = self.run_selected(&options, Trigger::Manual, false).await;
        if self.inner.store.lease_duration().is_some() {
            // Done: the running workers need not wait for this process's leases to expire.
            self.inner.leave_shared_state().await;
        }
        report
    }

    async fn run_selected(&self, options: &RunOptions, trigger: Trigger, dry_run: bool) -> Result<RunReport> {
        let groups = self.selected(&options.groups)?;
        let started_at = chrono::Utc::now();
        let clock = Instant::now();
        let reports = futures::future::join_all(
            groups.iter().map(|g| self.inner.pass(g, trigger, dry_run, options.allow_mass_delete)),
        )
        .await;
        Ok(RunReport { groups: reports, started_at, duration: clock.elapsed() })
    }

    /// Posts an admin request for a group through the state: a running service (the state's only
    /// writer) carries it out within a few seconds ([`REQUEST_POLL_INTERVAL`]); without one, the
    /// next pass does. Works on a store opened for reading. Answers the request's id.
    pub async fn post_request(&self, group: &str, request: AdminRequest) -> Result<u64> {
        let g = self.selected(&[group.to_owned()])?;
        let id = GroupId::new(g.first().map_or(group, |g| g.config.id.as_str()).to_owned());
        let request = match request {
            AdminRequest::Resync { member: Some(m) } => {
                let member = MemberId::new(crate::config::member_id(m.as_str()));
                let known = g.iter().any(|g| {
                    member.as_str() == HUB_MEMBER_ID || g.config.members.iter().any(|c| c.id == member.as_str())
                });
                if !known && !self.inner.store.members(&id).await?.contains(&member) {
                    return Err(Error::Config(crate::config::ConfigError::single(
                        "",
                        format!("group {group} has no member {member}"),
                        None,
                    )));
                }
                AdminRequest::Resync { member: Some(member) }
            }
            other => other,
        };
        Ok(self.inner.store.post_request(&id, request).await?)
    }

    /// The receiver of Microsoft Graph's change notifications, when Graph folders are watched
    /// through subscriptions: the HTTP listener ([`crate::http`]) hands it the posts to the
    /// notification URL's path.
    pub fn change_notifications(&self) -> Option<exchange_sync_graph::ChangeNotifications> {
        self.inner.folders.change_notifications()
    }

    /// Runs every group in real time until [`SyncService::shutdown`] is called.
    pub async fn run(&self) -> Result<()> {
        let names: Vec<String> = self.inner.groups.iter().map(|g| g.config.id.clone()).collect();
        self.inner.emit(ProgressEvent::ServiceStarted { groups: names });
        let loops: Vec<JoinHandle<()>> = self
            .inner
            .groups
            .iter()
            .map(|g| {
                let inner = Arc::clone(&self.inner);
                let group = Arc::clone(g);
                let span = tracing::info_span!("group", group = %g.config.id);
                tokio::spawn(async move { inner.group_loop(group).await }.instrument(span))
            })
            .collect();
        let requests = {
            let inner = Arc::clone(&self.inner);
            tokio::spawn(async move { inner.watch_requests().await }.instrument(tracing::info_span!("requests")))
        };
        let renewal = self.inner.store.lease_duration().map(|lease| {
            let inner = Arc::clone(&self.inner);
            tokio::spawn(async move { inner.renew_leases(lease).await }.instrument(tracing::info_span!("leases")))
        });
        for handle in loops {
            if let Err(e) = handle.await {
                tracing::error!("a group loop ended abnormally: {e}");
            }
        }
        requests.abort();
        // Graph subscriptions are deleted rather than left to expire (nothing would receive them).
        self.inner.folders.close(self.inner.config.service.shutdown_grace).await;
        if let Some(renewal) = renewal {
            renewal.abort();
            self.inner.leave_shared_state().await;
        }
        self.inner.emit(ProgressEvent::ServiceStopped);
        Ok(())
    }

    /// Runs until `signal` completes (e.g. `tokio::signal::ctrl_c()`), then shuts down gracefully.
    pub async fn run_until(&self, signal: impl Future<Output = ()>) -> Result<()> {
        let run = self.run();
        tokio::pin!(run);
        tokio::select! {
            result = &mut run => result,
            () = signal => {
                self.shutdown();
                run.await
            }
        }
    }

    /// Per group and folder: every member however it joined (listed, from a distribution group,
    /// or known to the state only), how each folder's last pass ended (parked, left out, failed
    /// writes, held), the last pass's report and errors, the guard's stop, pending admin
    /// requests. Read from the state the service keeps, so a process beside a running service
    /// (`exchange-sync status`) sees what the service did.
    pub async fn status(&self) -> Result<Vec<GroupStatus>> {
        let mut out = Vec::new();
        for g in &self.inner.groups {
            out.push(self.inner.group_status(g).await?);
        }
        Ok(out)
    }

    /// The conflict log of one group (`Some`) or of every group, oldest first per group, each
    /// entry naming its item as the state knows it.
    pub async fn conflicts(&self, group: Option<&str>) -> Result<Vec<ConflictEntry>> {
        let names: Vec<String> = group.map(|g| vec![g.to_owned()]).unwrap_or_default();
        let mut out = Vec::new();
        for g in self.selected(&names)? {
            let id = GroupId::new(g.config.id.clone());
            let records = self.inner.store.conflicts(&id).await?;
            let entities: Vec<EntityId> = records.iter().map(|r| r.entity.clone()).collect();
            let known = self.inner.known_items(&id, &entities).await;
            out.extend(records.iter().map(|r| {
                ConflictEntry::from_record(&g.config.id, r).named(known.get(&r.entity).map(names::item_name))
            }));
        }
        Ok(out)
    }

    /// Looks entities up by their id, or by a text their item's name or e-mail address contains
    /// (without regard to case), in one group or every group: each with its copies, versions and
    /// conflict history (`exchange-sync show`). At most `limit` entities.
    pub async fn lookup(
        &self,
        group: Option<&str>,
        query: &str,
        limit: usize,
    ) -> Result<Vec<crate::status::EntityView>> {
        let names: Vec<String> = group.map(|g| vec![g.to_owned()]).unwrap_or_default();
        let wanted = query.trim().to_lowercase();
        let mut out = Vec::new();
        for g in self.selected(&names)? {
            let id = GroupId::new(g.config.id.clone());
            let store = &self.inner.store;
            let mut matches = Vec::new();
            let direct = store.entities(&id, &[EntityId::new(query.trim())]).await?;
            matches.extend(direct);
            if matches.is_empty() {
                let mut after: Option<EntityId> = None;
                'pages: loop {
                    let page = store.entity_ids(&id, after.as_ref(), 500).await?;
                    let Some(last) = page.last().cloned() else { break };
                    for record in store.entities(&id, &page).await? {
                        let item = record.base.as_ref().or(record.earlier_bases.last());
                        let hit = item.is_some_and(|i| {
                            names::item_name(i).to_lowercase().contains(&wanted)
                                || i.fields.values().any(|v| v.as_text().is_some_and(|t| t.to_lowercase() == wanted))
                        });
                        if hit {
                            matches.push(record);
                            if matches.len() >= limit {
                                break 'pages;
                            }
                        }
                    }
                    after = Some(last);
                }
            }
            if matches.is_empty() {
                continue;
            }
            let conflicts = store.conflicts(&id).await?;
            let pending = store.pending_creates(&id).await?;
            let mut paths = BTreeMap::from([(HUB_MEMBER_ID.to_owned(), g.config.hub.to_string())]);
            for m in &g.config.members {
                paths.insert(m.id.clone(), g.config.folder_path_of(m));
            }
            for record in matches {
                out.push(crate::status::EntityView::of(&g.config.id, &record, &paths, &conflicts, &pending));
            }
        }
        Ok(out)
    }

    /// Opens every folder of every group without writing anything (the hub, each member with
    /// impersonation, the members of distribution groups): what `check` reports. Each folder
    /// that cannot be reached is reported by name with the reason; folders that would be created
    /// and folders that would be re-homed are said too.
    pub async fn check(&self) -> Vec<GroupCheck> {
        let mut out = Vec::new();
        for g in &self.inner.groups {
            out.push(self.inner.check_group(g).await);
        }
        out
    }
}

/// An error kind by its snake-case name (see [`crate::report::kind_name`]).
pub(crate) fn kind_of(name: &str) -> ErrorKind {
    match name {
        "not_found" => ErrorKind::NotFound,
        "precondition_failed" => ErrorKind::PreconditionFailed,
        "throttled" => ErrorKind::Throttled,
        "invalid_sync_token" => ErrorKind::InvalidSyncToken,
        "auth" => ErrorKind::Auth,
        "unreachable" => ErrorKind::Unreachable,
        "transient" => ErrorKind::Transient,
        "state" => ErrorKind::State,
        "mass_delete" => ErrorKind::MassDelete,
        "config" => ErrorKind::Config,
        _ => ErrorKind::Permanent,
    }
}

/// A request in words.
fn describe_request(request: &AdminRequest) -> String {
    match request {
        AdminRequest::ConfirmDeletions => "confirm deletions stopped by the mass-delete guard".to_owned(),
        AdminRequest::Resync { member: Some(m) } => format!("resync {m}"),
        AdminRequest::Resync { member: None } => "resync every folder".to_owned(),
    }
}

impl Inner {
    fn emit(&self, event: ProgressEvent) {
        // No subscriber is fine: events are for whoever listens.
        let _ = self.events.send(event);
    }

    /// One pass of a group with retries, as a report (failures are reported, not returned).
    async fn pass(&self, g: &GroupRuntime, trigger: Trigger, dry_run: bool, allow_mass_delete: bool) -> GroupReport {
        let _permit = self.passes.acquire().await;
        self.pass_in_turn(g, trigger, dry_run, allow_mass_delete).await
    }

    /// [`Inner::pass`] once the group's turn among `max_concurrent_groups` came.
    async fn pass_in_turn(
        &self,
        g: &GroupRuntime,
        trigger: Trigger,
        dry_run: bool,
        allow_mass_delete: bool,
    ) -> GroupReport {
        let mut work = g.work.lock().await;
        // The notification this pass answers (the latency metric runs from it).
        let since_hint =
            if dry_run { None } else { g.hint_since.lock().unwrap_or_else(PoisonError::into_inner).take() };
        self.emit(ProgressEvent::PassStarted { group: g.config.id.clone(), trigger });
        let clock = Instant::now();
        let mut report = GroupReport::started(g.config.id.clone());
        report.trigger = Some(trigger);
        let group_id = GroupId::new(g.config.id.clone());
        let posted = match self.store.requests(&group_id).await {
            Ok(posted) => posted,
            Err(e) => {
                tracing::warn!("cannot read admin requests: {e}");
                Vec::new()
            }
        };
        let requests = PassRequests::new(posted, allow_mass_delete);
        let retry = self.config.service.retry;
        let mut attempt = 1;
        let mut ran = false;
        loop {
            report.attempts = attempt;
            // A pass writes only under the group's lease (a shared PostgreSQL state; other
            // stores own every group): `run --once` takes it like the service's loop does.
            let result = match self.hold_lease(&group_id, dry_run).await {
                Ok(()) => self.attempt(g, &mut work, &mut report, trigger, dry_run, &requests).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    ran = true;
                    break;
                }
                Err(error) => {
                    let mut error_report = ErrorReport::from_service(&error);
                    let ctx = HintContext::group(&self.config, &g.config);
                    error_report.hint = hints::hint_with_probe(&error, error.kind(), &ctx).await;
                    let server_asked = match &error {
                        Error::Sync(e) => e.retry_after(),
                        _ => None,
                    };
                    // Retried here only when nobody retried it yet, and never by sleeping through
                    // a long back-off with the group's pass open: the loop schedules that pass.
                    let short_wait = server_asked.is_none_or(|asked| asked <= retry.max_delay);
                    if error.is_retryable() && short_wait && attempt < retry.max_attempts && !*self.shutdown.borrow() {
                        let retry_in = delay_after(&retry, attempt, server_asked);
                        tracing::warn!(
                            attempt,
                            retry_in_ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX),
                            "pass failed, retrying in {} ms: {error}",
                            retry_in.as_millis()
                        );
                        self.emit(ProgressEvent::Retrying {
                            group: g.config.id.clone(),
                            error: error_report,
                            attempt,
                            retry_in,
                        });
                        tokio::time::sleep(retry_in).await;
                        attempt += 1;
                        continue;
                    }
                    if error.kind() == ErrorKind::Throttled {
                        // The hub's server asked to back off: no pass of the group before it ends.
                        let wait = server_asked.unwrap_or(retry.max_delay);
                        report.parked_until =
                            Some(Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX));
                    }
                    report.outcome = if error.kind() == ErrorKind::MassDelete {
                        PassOutcome::StoppedByMassDeleteGuard
                    } else {
                        PassOutcome::Failed
                    };
                    if report.outcome == PassOutcome::StoppedByMassDeleteGuard {
                        report.needs_confirmation = true;
                        // The guard's own words: what would go, where it comes from, how to confirm.
                        if let Some(guard) = &report.guard {
                            error_report.message = guard.to_string();
                        }
                        report.notices.push(format!(
                            "nothing was deleted; if the deletions are intended, confirm them: {}",
                            confirm_command(&g.config.id)
                        ));
                    }
                    let hint = error_report.hint.as_deref().unwrap_or_default();
                    if trigger == Trigger::Manual {
                        // A pass someone asked for (`run --once`, `plan`, the bindings' run_once)
                        // hands its report, error and hint included, to its caller, who shows it:
                        // logged as an error too, it would be said twice.
                        tracing::debug!(hint, "pass failed: {}", error_report.message);
                    } else {
                        tracing::error!(hint, "pass failed: {}", error_report.message);
                    }
                    report.errors.push(error_report);
                    break;
                }
            }
        }
        if ran && !dry_run && !requests.posted.is_empty() {
            let writes: Vec<StateWrite> =
                requests.posted.iter().map(|r| StateWrite::RemoveRequest { id: r.id }).collect();
            match self.store.apply(&group_id, StateTransaction::from(writes)).await {
                Ok(()) => {
                    for r in &requests.posted {
                        tracing::info!(
                            request = r.id,
                            "carried out the admin request: {}",
                            describe_request(&r.request)
                        );
                        report.notices.push(format!("carried out the admin request: {}", describe_request(&r.request)));
                    }
                }
                Err(e) => {
                    tracing::warn!("cannot remove carried-out admin requests (the next pass honours them again): {e}")
                }
            }
        }
        report.duration = clock.elapsed();
        for m in &mut report.members {
            m.folder = Some(self.folder_of(g, &work, &m.member));
        }
        if !dry_run {
            {
                let mut s = g.snapshot.lock().unwrap_or_else(PoisonError::into_inner);
                s.stopped_by_guard = report.outcome == PassOutcome::StoppedByMassDeleteGuard;
                s.last_report = Some(report.clone());
            }
            self.keep_record(g, &work, &report).await;
            self.metrics.observe_pass(&report, since_hint.map(|t| t.elapsed()));
        }
        tracing::info!("{report}");
        self.emit(ProgressEvent::PassFinished { report: report.clone() });
        report
    }

    /// A worker stopping on a shared state: releases its leases, so the groups are free for the
    /// other workers at once rather than when the leases expire, and leaves the live workers, so
    /// they spread the groups among themselves at once instead of leaving this worker, which
    /// would still count as live and under its share, a share of them for a while.
    async fn leave_shared_state(&self) {
        for g in &self.groups {
            if let Err(e) = self.store.release_lease(&GroupId::new(g.config.id.clone())).await {
                tracing::warn!(group = %g.config.id, "cannot release the group's lease: {e}");
            }
        }
        if let Err(e) = self.store.leave_workers().await {
            tracing::warn!("cannot leave the live workers (the others count it out after a lease): {e}");
        }
    }

    /// Takes (or renews) the group's lease before a pass that writes; an error of kind `State`,
    /// not retried, when another worker owns the group.
    async fn hold_lease(&self, group: &GroupId, dry_run: bool) -> Result<()> {
        if dry_run || self.store.acquire_lease(group).await? {
            return Ok(());
        }
        let owner = self.store.leases().await?.into_iter().find(|l| &l.group == group).map(|l| l.owner);
        Err(Error::Sync(exchange_sync_core::Error::LeaseLost {
            group: group.clone(),
            message: format!(
                "worker {} owns the group; this process does not write to it until that lease expires",
                owner.as_deref().unwrap_or("(another)")
            ),
        }))
    }

    /// Keeps the pass's report and the members of the group's distribution groups in the state,
    /// for `status` beside the service (and after it stopped).
    async fn keep_record(&self, g: &GroupRuntime, work: &GroupWork, report: &GroupReport) {
        let group_id = GroupId::new(g.config.id.clone());
        let expanded: Vec<ExpandedMember> = work
            .expanded
            .iter()
            .flatten()
            .map(|m| ExpandedMember { id: m.id.clone(), mailbox: m.mailbox.clone(), two_way: m.direction.is_two_way() })
            .collect();
        let (report_json, members_json) = match (serde_json::to_string(report), serde_json::to_string(&expanded)) {
            (Ok(r), Ok(m)) => (r, m),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("cannot record the pass for status: {e}");
                return;
            }
        };
        let mut writes = vec![StateWrite::PutRecord { key: RECORD_LAST_REPORT.into(), value: Some(report_json) }];
        if !g.config.member_sources.is_empty() && work.expanded.is_some() {
            writes.push(StateWrite::PutRecord { key: RECORD_EXPANDED_MEMBERS.into(), value: Some(members_json) });
        }
        if let Err(e) = self.store.apply(&group_id, StateTransaction::from(writes)).await {
            tracing::warn!("cannot record the pass for status (status shows the one before): {e}");
        }
    }

    /// A member's folder as configured (its id when it is not a member any more).
    fn folder_of(&self, g: &GroupRuntime, work: &GroupWork, member: &str) -> String {
        if member == HUB_MEMBER_ID {
            return g.config.hub.to_string();
        }
        g.config
            .members
            .iter()
            .chain(work.expanded.iter().flatten())
            .chain(work.leaving.iter())
            .find(|m| m.id == member)
            .map_or_else(|| member.to_owned(), |m| g.config.folder_path_of(m))
    }

    /// What the state knows of these entities' items: each one's last converged content (or the
    /// latest earlier one of an entity being deleted), for naming them.
    async fn known_items(&self, group: &GroupId, ids: &[EntityId]) -> BTreeMap<EntityId, exchange_sync_core::Item> {
        let mut wanted: Vec<EntityId> = ids.to_vec();
        wanted.sort();
        wanted.dedup();
        let mut out = BTreeMap::new();
        for chunk in wanted.chunks(500) {
            match self.store.entities(group, chunk).await {
                Ok(records) => {
                    for r in records {
                        if let Some(item) = r.base.clone().or_else(|| r.earlier_bases.last().cloned()) {
                            out.insert(r.id.clone(), item);
                        }
                    }
                }
                Err(e) => tracing::debug!("cannot name items: {e}"),
            }
        }
        out
    }

    /// The writes of a plan, each named for a person (its item, its folder, field changes).
    async fn planned_actions(
        &self,
        group: &GroupId,
        plan: &exchange_sync_core::Plan,
        paths: &BTreeMap<MemberId, String>,
    ) -> Vec<PlannedAction> {
        let ids: Vec<EntityId> = plan
            .actions
            .iter()
            .filter(|a| !matches!(a, exchange_sync_core::Action::Create { .. }))
            .map(|a| a.entity().clone())
            .collect();
        let known = self.known_items(group, &ids).await;
        plan.actions
            .iter()
            .map(|a| {
                let folder = paths.get(a.member()).cloned().unwrap_or_else(|| a.member().to_string());
                PlannedAction::of(a, known.get(a.entity()), folder)
            })
            .collect()
    }

    /// What confirming a guard stop would delete: the pass planned again with the deletions
    /// allowed, writing nothing.
    async fn guard_stop(
        &self,
        g: &GroupRuntime,
        engine: GroupSync,
        error: &exchange_sync_core::Error,
        options: SyncOptions,
        paths: &BTreeMap<MemberId, String>,
    ) -> GuardStop {
        let group_id = GroupId::new(g.config.id.clone());
        let (member, would_delete, total, limit, vanished) = match error {
            exchange_sync_core::Error::MassDelete { member, would_delete, total, limit, .. } => {
                (member.clone(), *would_delete, *total, *limit, false)
            }
            exchange_sync_core::Error::Vanished { member, copies, .. } => (member.clone(), *copies, *copies, 0, true),
            _ => (MemberId::new(HUB_MEMBER_ID), 0, 0, 0, false),
        };
        let folder = paths.get(&member).cloned().unwrap_or_else(|| member.to_string());
        let preview = engine.with_options(SyncOptions { allow_mass_delete: true, ..options }).dry_run().await;
        let deletions: Vec<PlannedAction> = match &preview {
            Ok(plan) => self
                .planned_actions(&group_id, plan, paths)
                .await
                .into_iter()
                .filter(|a| a.action == "delete")
                .collect(),
            Err(e) => {
                tracing::warn!("cannot list what confirming would delete: {e}");
                Vec::new()
            }
        };
        let origin = if vanished {
            format!(
                "every one of the {would_delete} copies the group knew in {folder} vanished at once (a wrong folder, \
                 lost rights, an outage, or deleted on purpose)"
            )
        } else {
            // Where the deletions in the guarded folder come from: who deleted the items.
            let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
            for d in deletions.iter().filter(|d| d.member == member.as_str()) {
                *by_reason.entry(d.reason.clone()).or_default() += 1;
            }
            match by_reason.into_iter().max_by_key(|(_, n)| *n) {
                Some((reason, n)) => match reason.strip_prefix("deleted in ") {
                    Some(who) if who == HUB_MEMBER_ID => {
                        format!("the hub ({}) deleted {n} items since the last pass", g.config.hub)
                    }
                    Some(who) => format!("{who} deleted {n} items since the last pass"),
                    None => format!("{n} copies are to go: {reason}"),
                },
                None => format!("the pass would delete {would_delete} copies"),
            }
        };
        let deletions_total = deletions.len();
        GuardStop {
            folder,
            member: member.to_string(),
            would_delete,
            total,
            limit,
            origin,
            deletions: deletions.into_iter().take(GuardStop::LISTED).collect(),
            deletions_total,
            confirm: confirm_command(&g.config.id),
            vanished,
        }
    }

    /// A group's status, from the state (and this process's last pass when it is newer).
    async fn group_status(&self, g: &GroupRuntime) -> Result<GroupStatus> {
        let id = GroupId::new(g.config.id.clone());
        let store = &self.store;
        let recorded: Option<GroupReport> = match store.record(&id, RECORD_LAST_REPORT).await? {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| tracing::warn!("the recorded last report of group {} is unreadable: {e}", g.config.id))
                .ok(),
            None => None,
        };
        let (mine, snapshot_members) = {
            let s = g.snapshot.lock().unwrap_or_else(PoisonError::into_inner);
            (s.last_report.clone(), s.members.clone())
        };
        let last_report = match (recorded, mine) {
            (Some(r), Some(m)) => Some(if m.started_at >= r.started_at { m } else { r }),
            (r, m) => m.or(r),
        };
        let expanded: Vec<ExpandedMember> = match store.record(&id, RECORD_EXPANDED_MEMBERS).await? {
            Some(text) => serde_json::from_str(&text).unwrap_or_default(),
            None => snapshot_members
                .iter()
                .filter(|m| !g.config.members.iter().any(|c| c.id == m.id))
                .map(|m| ExpandedMember {
                    id: m.id.clone(),
                    mailbox: m.mailbox.clone(),
                    two_way: m.direction.is_two_way(),
                })
                .collect(),
        };
        let sources: Vec<&str> = g.config.member_sources.iter().map(|s| s.distribution_group.as_str()).collect();
        let dl_source = format!("distribution group {}", sources.join(", "));
        let direction = |two_way: bool| if two_way { "two_way" } else { "one_way" }.to_owned();
        // (member, folder, direction, source)
        let mut folders: Vec<(String, String, String, String)> =
            vec![(HUB_MEMBER_ID.to_owned(), g.config.hub.to_string(), "hub".to_owned(), "hub".to_owned())];
        for m in &g.config.members {
            folders.push((
                m.id.clone(),
                g.config.folder_path_of(m),
                direction(m.direction.is_two_way()),
                "listed".into(),
            ));
        }
        for m in &expanded {
            if folders.iter().any(|f| f.0 == m.id) {
                continue;
            }
            let target =
                g.config.member_sources.first().map_or(&g.config.default_target, |s| g.config.target_of(&s.template));
            folders.push((m.id.clone(), format!("{}/{target}", m.mailbox), direction(m.two_way), dl_source.clone()));
        }
        for m in store.members(&id).await? {
            if folders.iter().any(|f| f.0 == m.as_str()) {
                continue;
            }
            let status = store.member_status(&id, &m).await?;
            let folder = status.folder.map_or_else(|| m.to_string(), |f| f.path);
            folders.push((m.to_string(), folder, "unknown".into(), "no longer configured".into()));
        }
        let pending = store.pending_creates(&id).await?;
        let mut rows = Vec::new();
        let mut vanished = false;
        for (member, folder, direction, source) in folders {
            let mid = MemberId::new(member.clone());
            let status = store.member_status(&id, &mid).await?;
            vanished |= matches!(status.condition, FolderCondition::Vanished { .. });
            let parked_until = match &status.condition {
                FolderCondition::Parked { until, .. } => Some(*until),
                _ => None,
            };
            rows.push(MemberStatusReport {
                folder,
                direction,
                source,
                condition: condition_name(&status.condition).to_owned(),
                parked_until,
                initialized: status.initialized,
                last_sync: status.last_sync,
                last_error: status.last_error(),
                copies: store.replica_count(&id, &mid).await?,
                pending_creates: pending.iter().filter(|p| p.member == mid).count(),
                member,
            });
        }
        let requests = store.requests(&id).await?;
        let awaiting = requests.iter().any(|r| r.request == AdminRequest::ConfirmDeletions);
        let stopped = last_report
            .as_ref()
            .is_some_and(|r| r.outcome == PassOutcome::StoppedByMassDeleteGuard || r.needs_confirmation)
            || vanished;
        let last_errors: Vec<ErrorReport> =
            last_report.as_ref().map(|r| r.all_errors().cloned().collect()).unwrap_or_default();
        Ok(GroupStatus {
            group: g.config.id.clone(),
            members: rows,
            stopped_by_mass_delete_guard: stopped,
            guard: last_report.as_ref().and_then(|r| r.guard.clone()),
            last_outcome: last_report.as_ref().map(|r| r.outcome),
            last_pass: last_report.as_ref().map(|r| r.started_at),
            last_errors,
            conflicts: store.conflicts(&id).await?.len(),
            pending_requests: requests.iter().map(|r| describe_request(&r.request)).collect(),
            confirmation_pending: awaiting,
            last_report,
            lease: store.leases().await?.into_iter().find(|l| l.group == id),
        })
    }

    /// One attempt: membership, folders (re-homing those that moved), then the engine's pass.
    async fn attempt(
        &self,
        g: &GroupRuntime,
        work: &mut GroupWork,
        report: &mut GroupReport,
        trigger: Trigger,
        dry_run: bool,
        requests: &PassRequests,
    ) -> Result<()> {
        // A retried attempt starts its report over.
        report.notices.clear();
        report.members.clear();
        let members = self.refresh_membership(g, work, trigger, dry_run, report).await?;

        // Forget the folders of members who left.
        let wanted: BTreeSet<MemberId> = std::iter::once(MemberId::new(HUB_MEMBER_ID))
            .chain(members.iter().map(|m| MemberId::new(m.id.clone())))
            .collect();
        work.connectors.retain(|id, _| wanted.contains(id));
        work.watchers.retain(|id, handle| {
            let keep = wanted.contains(id);
            if !keep {
                handle.abort();
            }
            keep
        });

        let (connectors, unavailable) = self.open_folders(g, work, &members, dry_run, report).await?;
        let moves = self.moved_folders(g, &members, &connectors).await?;
        if !dry_run {
            self.watch_folders(work).await;
        }

        let extra: Vec<MemberConfig> = work.expanded.clone().unwrap_or_default();
        let sync_group = g.config.sync_group(&extra);
        let views: MemberViews = members
            .iter()
            .filter(|m| !m.direction.is_two_way())
            .map(|m| (MemberId::new(m.id.clone()), m.delivery_rule()))
            .filter(|(_, rule)| !rule.is_identity())
            .map(|(id, rule)| (id, Arc::new(rule) as Arc<dyn exchange_sync_core::MemberView>))
            .collect();
        let mut paths = BTreeMap::from([(MemberId::new(HUB_MEMBER_ID), g.config.hub.to_string())]);
        for m in &members {
            paths.insert(MemberId::new(m.id.clone()), g.config.folder_path_of(m));
        }
        let full_check = requests.full_check(&sync_group);
        let options = SyncOptions { allow_mass_delete: requests.confirm, full_check, ..SyncOptions::default() };
        let engine_connectors = if dry_run { connectors } else { self.counted(&g.config.id, &connectors) };
        let mut engine = GroupSync::new(sync_group, Arc::clone(&self.store), engine_connectors)?
            .with_options(options.clone())
            .with_views(views)
            .with_paths(paths.clone());
        for (member, error) in unavailable {
            engine = engine.with_unavailable(member, error);
        }

        if !dry_run && trigger == Trigger::Start {
            // What the server's version means for real time (no streaming on Exchange 2007 SP1).
            for note in self.folders.notes(&g.config).await {
                tracing::warn!("{note}");
                report.notices.push(note);
            }
        }
        if dry_run {
            return self.plan_pass(g, work, report, engine, &moves, requests, options, &paths).await;
        }

        // Re-home the folders that moved, before the pass looks at them.
        for mv in &moves {
            match self.rehome(g, &engine, mv).await {
                Ok(text) => {
                    tracing::info!(member = %mv.member, "{text}");
                    report.notices.push(text);
                }
                Err(e) if mv.is_hub() => return Err(e),
                Err(e) => {
                    // The engine leaves the member out (its folder moved) until this works.
                    tracing::warn!(member = %mv.member, "cannot re-home the folder yet: {e}");
                    report.notices.push(format!("{} is not re-homed yet: {e}", mv.member));
                }
            }
        }
        // A resync compares the folder with state from a complete listing, not from its token.
        let resync_tokens: Vec<StateWrite> = requests
            .full_check(engine.group())
            .into_iter()
            .map(|member| StateWrite::SetToken { member, token: None })
            .collect();
        if !resync_tokens.is_empty() {
            self.store.apply(&engine.group().id, StateTransaction::from(resync_tokens)).await?;
        }

        let engine = engine.on_planned(self.planned_callback(&g.config.id));
        let result = match engine.run().await {
            Ok(result) => result,
            Err(e) if e.kind() == ErrorKind::MassDelete => {
                report.guard = Some(self.guard_stop(g, engine, &e, options, &paths).await);
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        // A folder that could not be observed is opened afresh next pass: it may have been
        // deleted and recreated (then it is re-homed), or its mailbox moved.
        for (member, m) in &result.members {
            if matches!(m.left_out, Some(FolderCondition::Unobservable { .. })) && !engine.group().is_hub(member) {
                work.connectors.remove(member);
                if let Some(watcher) = work.watchers.remove(member) {
                    watcher.abort();
                }
            }
        }
        let mut entities: Vec<EntityId> = result.conflicts.iter().map(|c| c.entity.clone()).collect();
        for m in result.members.values() {
            entities.extend(m.execution.failed.iter().map(|f| f.entity.clone()));
        }
        let known = self.known_items(&engine.group().id, &entities).await;
        fill_report(report, &self.config, &g.config, &result, &known);
        // A folder held because every copy vanished: say what confirming would delete.
        let held = result.members.iter().find_map(|(member, m)| match &m.left_out {
            Some(FolderCondition::Vanished { copies }) => Some((member.clone(), *copies)),
            _ => None,
        });
        if let Some((member, copies)) = held {
            let error = exchange_sync_core::Error::Vanished { group: engine.group().id.clone(), member, copies };
            report.guard = Some(self.guard_stop(g, engine, &error, options, &paths).await);
        }
        Ok(())
    }

    /// The dry run of an attempt: what the pass would do, in words and actions, writing nothing.
    #[allow(clippy::too_many_arguments)]
    async fn plan_pass(
        &self,
        g: &GroupRuntime,
        work: &GroupWork,
        report: &mut GroupReport,
        engine: GroupSync,
        moves: &[Move],
        requests: &PassRequests,
        options: SyncOptions,
        paths: &BTreeMap<MemberId, String>,
    ) -> Result<()> {
        let group_id = GroupId::new(g.config.id.clone());
        let mut text = String::new();
        for line in &report.notices {
            text.push_str(&format!("* {line}\n"));
        }
        text.push_str(&self.planned_departures(g, work, report).await?);
        if requests.confirm {
            let line = "an admin confirmed deletions: this pass may carry out what the mass-delete guard stopped";
            text.push_str(&format!("* {line}\n"));
            report.notices.push(line.to_owned());
        }
        let resync = requests.full_check(engine.group());
        if !resync.is_empty() {
            let names: Vec<&str> = resync.iter().map(MemberId::as_str).collect();
            let line = format!("an admin asked for a resync: {} compared completely", names.join(", "));
            text.push_str(&format!("* {line}\n"));
            report.notices.push(line);
        }
        for mv in moves {
            let copies =
                exchange_sync_core::executor::created_copies(self.store.as_ref(), &group_id, &mv.member).await?.len();
            let line = mv.describe(g.config.on_leave, copies, None);
            text.push_str(&format!("* {line}\n"));
            report.notices.push(line);
            if g.config.on_leave == LeavePolicy::Remove {
                report.member_mut(mv.member.as_str()).deleted += copies;
            }
        }
        let outcome = if moves.iter().any(Move::is_hub) {
            // The engine plans against the hub's recorded folder only.
            text.push_str("the group's items are planned once the hub is re-homed (the next run does it)\n");
            None
        } else {
            let mut plan = match engine.dry_run().await {
                Ok(plan) => plan,
                Err(e) if e.kind() == ErrorKind::MassDelete => {
                    report.guard = Some(self.guard_stop(g, engine, &e, options, paths).await);
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            };
            // A moved folder is left out by the engine; the lines above say what happens instead.
            let moved: BTreeSet<&MemberId> = moves.iter().map(|m| &m.member).collect();
            plan.notices.retain(|n| !matches!(n, Notice::LeftOut { member, .. } if moved.contains(member)));
            for notice in &plan.notices {
                let line = notice_text(notice, &g.config);
                text.push_str(&format!("* {line}\n"));
                report.notices.push(line);
            }
            report.count_plan(&plan);
            let entities: Vec<EntityId> = plan.conflicts.iter().map(|c| c.entity.clone()).collect();
            let known = self.known_items(&group_id, &entities).await;
            report.conflicts = plan
                .conflicts
                .iter()
                .map(|c| ConflictEntry::from_record(&g.config.id, c).named(known.get(&c.entity).map(names::item_name)))
                .collect();
            report.planned = self.planned_actions(&group_id, &plan, paths).await;
            text.push_str(&plan_text(&report.planned, &report.conflicts));
            Some((plan.actions.len(), plan.conflicts.len()))
        };
        report.plan = Some(text);
        report.outcome = PassOutcome::Planned;
        let (actions, conflicts) = outcome.unwrap_or_default();
        self.emit(ProgressEvent::Planned { group: g.config.id.clone(), actions, conflicts });
        Ok(())
    }

    /// Opens the hub and each member's folder on its own. The hub must open (or the attempt
    /// fails); a member that cannot be opened is answered with its reason, for the engine to leave
    /// out. A dry run creates no folder: a missing target is an empty folder yet to be created.
    async fn open_folders(
        &self,
        g: &GroupRuntime,
        work: &mut GroupWork,
        members: &[MemberConfig],
        dry_run: bool,
        report: &mut GroupReport,
    ) -> Result<(BTreeMap<MemberId, Arc<dyn Connector>>, BTreeMap<MemberId, exchange_sync_core::Error>)> {
        let group_id = GroupId::new(g.config.id.clone());
        let hub_id = MemberId::new(HUB_MEMBER_ID);
        let hub = match work.connectors.get(&hub_id) {
            Some(c) => Arc::clone(c),
            None => {
                let c = self.folders.hub(&g.config).await?;
                if !dry_run {
                    work.connectors.insert(hub_id.clone(), Arc::clone(&c));
                }
                c
            }
        };
        let mut connectors = BTreeMap::from([(hub_id, hub)]);
        let mut unavailable = BTreeMap::new();
        for m in members {
            let id = MemberId::new(m.id.clone());
            if let Some(c) = work.connectors.get(&id) {
                connectors.insert(id, Arc::clone(c));
                continue;
            }
            let target = g.config.target_of(m);
            let opened = if dry_run {
                self.folders.existing_member(&g.config, m, target).await
            } else {
                self.folders.member(&g.config, m, target).await.map(Some)
            };
            match opened {
                Ok(Some(c)) => {
                    if !dry_run {
                        work.connectors.insert(id.clone(), Arc::clone(&c));
                    }
                    connectors.insert(id, c);
                }
                Ok(None) => {
                    report.notices.push(format!("would create folder {target} in {}", m.mailbox));
                    connectors.insert(id, MissingFolder::shared(g.config.folder_path_of(m)));
                }
                Err(e) => {
                    let context = ErrorContext::operation("open folder")
                        .with_group(group_id.clone())
                        .with_member(id.clone())
                        .with_folder(g.config.folder_path_of(m));
                    let error = core_error(e, &context);
                    tracing::warn!(member = %id, "cannot open the member's folder; it is left out: {error}");
                    unavailable.insert(id, error);
                }
            }
        }
        Ok((connectors, unavailable))
    }

    /// The folders whose configured target now resolves to another server folder than the one
    /// state recorded as holding the group's copies.
    async fn moved_folders(
        &self,
        g: &GroupRuntime,
        members: &[MemberConfig],
        connectors: &BTreeMap<MemberId, Arc<dyn Connector>>,
    ) -> Result<Vec<Move>> {
        let group_id = GroupId::new(g.config.id.clone());
        let mut moves = Vec::new();
        for (member, connector) in connectors {
            let Some(now) = connector.folder_id() else { continue };
            let status = self.store.member_status(&group_id, member).await?;
            let Some(known) = status.folder else { continue };
            if known.id == now {
                continue;
            }
            let config = members.iter().find(|m| m.id == member.as_str()).cloned();
            let to = match &config {
                Some(m) => g.config.folder_path_of(m),
                None => g.config.hub.to_string(),
            };
            moves.push(Move { member: member.clone(), config, from: known, to });
        }
        Ok(moves)
    }

    /// Re-homes a folder that moved: its old copies are handled like a leave (removed under
    /// `on_leave = "remove"` when the old folder can be opened; gone with it when it no longer
    /// exists), and the group forgets the old folder, so that the pass runs the new folder's
    /// initial sync. Answers what was done, in words.
    async fn rehome(&self, g: &GroupRuntime, engine: &GroupSync, mv: &Move) -> Result<String> {
        let group_id = GroupId::new(g.config.id.clone());
        let copies =
            exchange_sync_core::executor::created_copies(self.store.as_ref(), &group_id, &mv.member).await?.len();
        let remove = g.config.on_leave == LeavePolicy::Remove;
        let old = if remove {
            let opened = match &mv.config {
                None => self.folders.hub_by_folder_id(&g.config, &mv.from.id).await,
                Some(m) => self.folders.member_by_folder_id(&g.config, m, &mv.from.id).await,
            };
            match opened {
                Ok(c) => Some(c),
                // The old folder is gone, and the copies with it.
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let deleted = engine.rehome(&mv.member, old.as_ref(), remove && old.is_some()).await?;
        if !mv.is_hub() {
            self.emit(ProgressEvent::MemberLeft {
                group: g.config.id.clone(),
                member: mv.member.to_string(),
                copies_removed: remove && old.is_some(),
            });
            self.emit(ProgressEvent::MemberJoined { group: g.config.id.clone(), member: mv.member.to_string() });
        }
        Ok(mv.describe(g.config.on_leave, copies, Some(deleted)))
    }

    /// The group's connectors, counting their writes into [`ProgressEvent::Written`] events.
    fn counted(
        &self,
        group: &str,
        connectors: &BTreeMap<MemberId, Arc<dyn Connector>>,
    ) -> BTreeMap<MemberId, Arc<dyn Connector>> {
        let progress = Arc::clone(&self.write_progress(group));
        let events = self.events.clone();
        let group = group.to_owned();
        let written: crate::write_progress::WrittenCallback = Arc::new(move |n| {
            let (done, total) = progress.add(n);
            let _ = events.send(ProgressEvent::Written { group: group.clone(), done, total });
        });
        connectors
            .iter()
            .map(|(id, c)| {
                (id.clone(), crate::write_progress::CountingConnector::wrap(Arc::clone(c), Arc::clone(&written)))
            })
            .collect()
    }

    /// Announces a pass's plan ([`ProgressEvent::Planned`]) and starts counting its writes.
    fn planned_callback(&self, group: &str) -> exchange_sync_core::engine::PlannedCallback {
        let progress = self.write_progress(group);
        let events = self.events.clone();
        let group = group.to_owned();
        Arc::new(move |plan| {
            progress.start(plan.actions.len());
            let _ = events.send(ProgressEvent::Planned {
                group: group.clone(),
                actions: plan.actions.len(),
                conflicts: plan.conflicts.len(),
            });
        })
    }

    /// The write counter of a group's passes (passes of one group never overlap).
    fn write_progress(&self, group: &str) -> Arc<PassProgress> {
        let mut all = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(all.entry(group.to_owned()).or_default())
    }

    /// Subscribes to the change hints of every open folder not yet watched, before the pass looks
    /// at it (so no change between the look and the subscription is missed), and computes the
    /// polling interval of the folders that cannot be watched.
    async fn watch_folders(&self, work: &mut GroupWork) {
        let Some(tx) = work.hints.clone() else { return };
        let mut poll_every: Option<Duration> = None;
        let mut poll = |every: Duration| poll_every = Some(poll_every.map_or(every, |p: Duration| p.min(every)));
        for (member, connector) in &work.connectors {
            let fallback = connector.poll_interval().min(self.config.service.poll_interval);
            if !connector.capabilities().watch {
                poll(fallback);
                continue;
            }
            if work.watchers.get(member).is_some_and(|h| !h.is_finished()) {
                continue;
            }
            match connector.watch().await {
                Ok(stream) => {
                    work.watchers.insert(member.clone(), spawn_forwarder(member.clone(), stream, tx.clone()));
                }
                Err(e) => {
                    tracing::warn!(member = %member, "cannot watch {}: {e}; polling instead", connector.describe());
                    poll(fallback);
                }
            }
        }
        work.poll_every = poll_every;
    }

    /// Expands distribution groups when due, handles leavers, and answers the current members.
    async fn refresh_membership(
        &self,
        g: &GroupRuntime,
        work: &mut GroupWork,
        trigger: Trigger,
        dry_run: bool,
        report: &mut GroupReport,
    ) -> Result<Vec<MemberConfig>> {
        if !g.config.member_sources.is_empty() {
            let interval =
                g.config.member_sources.iter().map(|s| s.refresh_interval).min().unwrap_or(Duration::from_secs(300));
            let due = work.expanded.is_none()
                || matches!(trigger, Trigger::Membership | Trigger::Manual | Trigger::Resync)
                || work.expanded_at.is_none_or(|at| at.elapsed() >= interval);
            if due {
                let now = membership::expand(self.folders.as_ref(), &g.config).await?;
                if let Some(before) = &work.expanded {
                    for joined in membership::joiners(before, &now) {
                        self.emit(ProgressEvent::MemberJoined { group: g.config.id.clone(), member: joined.id });
                    }
                    if !dry_run {
                        work.leaving.extend(membership::leavers(before, &now));
                    }
                }
                work.expanded = Some(now);
                work.expanded_at = Some(Instant::now());
            }
        }
        if !dry_run && !work.departed_checked {
            self.find_departed(g, work).await?;
        }
        if !dry_run {
            let remove = g.config.on_leave == LeavePolicy::Remove;
            let sync_group = g.config.sync_group(&[]);
            let mut still_leaving = Vec::new();
            for leaver in std::mem::take(&mut work.leaving) {
                let id = MemberId::new(leaver.id.clone());
                let connector = if remove {
                    match self.leaver_folder(g, work, &leaver).await {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::warn!(member = %id, "cannot open a leaving member's folder, will retry: {e}");
                            still_leaving.push(leaver);
                            continue;
                        }
                    }
                } else {
                    None
                };
                let none = BTreeMap::new();
                let executor = Executor::new(&sync_group, self.store.as_ref(), &none, ExecutorOptions::default());
                match executor.leave(&id, connector.as_ref(), remove).await {
                    Ok(deleted) => {
                        tracing::info!(member = %id, deleted, "member left the group");
                        report.notices.push(if remove {
                            format!("{id} left the group: {deleted} copies the group created removed")
                        } else {
                            format!("{id} left the group: its copies stay as the user's own")
                        });
                        self.emit(ProgressEvent::MemberLeft {
                            group: g.config.id.clone(),
                            member: leaver.id.clone(),
                            copies_removed: remove,
                        });
                    }
                    Err(e) => {
                        tracing::warn!(member = %id, "removing a leaving member failed, will retry: {e}");
                        still_leaving.push(leaver);
                    }
                }
            }
            work.leaving = still_leaving;
        }
        let mut members = g.config.members.clone();
        members.extend(work.expanded.clone().unwrap_or_default());
        if !dry_run {
            g.snapshot.lock().unwrap_or_else(PoisonError::into_inner).members = members.clone();
        }
        Ok(members)
    }

    /// The folder holding a leaving member's copies: the one state recorded (by its server id),
    /// else its configured target if it exists. `None` when there is none (nothing to remove). No
    /// folder is created.
    async fn leaver_folder(
        &self,
        g: &GroupRuntime,
        work: &GroupWork,
        leaver: &MemberConfig,
    ) -> Result<Option<Arc<dyn Connector>>> {
        let id = MemberId::new(leaver.id.clone());
        let status = self.store.member_status(&GroupId::new(g.config.id.clone()), &id).await?;
        if let Some(folder) = status.folder {
            return match self.folders.member_by_folder_id(&g.config, leaver, &folder.id).await {
                Ok(c) => Ok(Some(c)),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                // A provider that cannot open folders by id: the configured folder, below.
                Err(e) if e.kind() == ErrorKind::Permanent && work.connectors.contains_key(&id) => {
                    Ok(work.connectors.get(&id).cloned())
                }
                Err(e) if e.kind() == ErrorKind::Permanent => {
                    self.folders.existing_member(&g.config, leaver, g.config.target_of(leaver)).await
                }
                Err(e) => Err(e),
            };
        }
        if let Some(c) = work.connectors.get(&id) {
            return Ok(Some(Arc::clone(c)));
        }
        self.folders.existing_member(&g.config, leaver, g.config.target_of(leaver)).await
    }

    /// For a dry run: the members that would leave at the next real pass (removed from the
    /// configuration since the last run), one line each, counted in the report as deletions under
    /// the remove policy.
    async fn planned_departures(&self, g: &GroupRuntime, work: &GroupWork, report: &mut GroupReport) -> Result<String> {
        if work.departed_checked {
            return Ok(String::new());
        }
        let group_id = GroupId::new(g.config.id.clone());
        let known = self.store.members(&group_id).await?;
        let mut current = g.config.members.clone();
        current.extend(work.expanded.clone().unwrap_or_default());
        let remove = g.config.on_leave == LeavePolicy::Remove;
        let mut text = String::new();
        for leaver in membership::departed(&known, HUB_MEMBER_ID, &current) {
            let id = MemberId::new(leaver.id.clone());
            if remove && leaver.mailbox.contains('@') {
                let copies =
                    exchange_sync_core::executor::created_copies(self.store.as_ref(), &group_id, &id).await?.len();
                report.member_mut(&leaver.id).deleted += copies;
                text.push_str(&format!("leave {}: delete the {copies} copies the group created\n", leaver.id));
            } else if remove {
                text.push_str(&format!("leave {}: kept in state (its id is not a mailbox address)\n", leaver.id));
            } else {
                text.push_str(&format!("leave {}: keep its copies, forget them\n", leaver.id));
            }
        }
        Ok(text)
    }

    /// Queues as leavers the members the state knows but the configuration no longer lists (removed
    /// while the service was stopped), so the group's leave policy applies to them as to members
    /// leaving a distribution group. A member whose id is not its mailbox address cannot be found
    /// again: under the remove policy it is kept in state (and reported) instead of being forgotten
    /// with its copies left behind.
    async fn find_departed(&self, g: &GroupRuntime, work: &mut GroupWork) -> Result<()> {
        let group_id = GroupId::new(g.config.id.clone());
        let known = self.store.members(&group_id).await?;
        let mut current = g.config.members.clone();
        current.extend(work.expanded.clone().unwrap_or_default());
        current.extend(work.leaving.iter().cloned());
        let remove = g.config.on_leave == LeavePolicy::Remove;
        for leaver in membership::departed(&known, HUB_MEMBER_ID, &current) {
            if remove && !leaver.mailbox.contains('@') {
                tracing::warn!(
                    member = %leaver.id,
                    "a member no longer configured has state but its id is not a mailbox address: \
                     its copies cannot be removed; add it back to remove them, or use on_leave = \"keep\""
                );
                continue;
            }
            tracing::info!(member = %leaver.id, "member removed from the configuration since the last run");
            work.leaving.push(leaver);
        }
        work.departed_checked = true;
        Ok(())
    }

    /// What `check` finds for one group: every folder opened, nothing written.
    async fn check_group(&self, g: &GroupRuntime) -> GroupCheck {
        let mut check = self.check_folders(g).await;
        let ctx = HintContext::group(&self.config, &g.config);
        for f in &mut check.folders {
            if let Some(problem) = &mut f.problem
                && problem.hint.is_none()
            {
                let kind = kind_of(&problem.kind);
                problem.hint = hints::hint_for(kind, &problem.message, None, &ctx);
            }
        }
        if check.folders.iter().any(|f| f.member == HUB_MEMBER_ID && f.problem.is_none()) {
            check.notes = self.folders.notes(&g.config).await;
        }
        check
    }

    async fn check_folders(&self, g: &GroupRuntime) -> GroupCheck {
        let group_id = GroupId::new(g.config.id.clone());
        let mut check =
            GroupCheck { group: g.config.id.clone(), folders: Vec::new(), state_error: None, notes: Vec::new() };
        let hub_id = MemberId::new(HUB_MEMBER_ID);
        let hub_path = g.config.hub.to_string();
        let mut connectors = BTreeMap::new();
        match self.folders.hub(&g.config).await {
            Ok(c) => {
                connectors.insert(hub_id.clone(), c);
                check.folders.push(FolderCheck::reachable(HUB_MEMBER_ID, &hub_path));
            }
            Err(e) => check.folders.push(FolderCheck::unreachable(HUB_MEMBER_ID, &hub_path, &e)),
        }
        let mut members = g.config.members.clone();
        match membership::expand(self.folders.as_ref(), &g.config).await {
            Ok(expanded) => members.extend(expanded),
            Err(e) => {
                let sources: Vec<&str> =
                    g.config.member_sources.iter().map(|s| s.distribution_group.as_str()).collect();
                check.folders.push(FolderCheck::unreachable("distribution groups", &sources.join(", "), &e));
            }
        }
        for m in &members {
            let id = MemberId::new(m.id.clone());
            let path = g.config.folder_path_of(m);
            match self.folders.existing_member(&g.config, m, g.config.target_of(m)).await {
                Ok(Some(c)) => {
                    check.folders.push(FolderCheck::reachable(&m.id, &path));
                    connectors.insert(id, c);
                }
                Ok(None) => {
                    let mut folder = FolderCheck::reachable(&m.id, &path);
                    folder.notes.push(format!("folder {} will be created at the first run", g.config.target_of(m)));
                    check.folders.push(folder);
                    connectors.insert(id, MissingFolder::shared(path));
                }
                Err(e) => check.folders.push(FolderCheck::unreachable(&m.id, &path, &e)),
            }
        }
        match self.moved_folders(g, &members, &connectors).await {
            Ok(moves) => {
                for mv in moves {
                    let copies =
                        exchange_sync_core::executor::created_copies(self.store.as_ref(), &group_id, &mv.member)
                            .await
                            .map(|c| c.len())
                            .unwrap_or_default();
                    let line = format!("at the next run: {}", mv.describe(g.config.on_leave, copies, None));
                    if let Some(folder) = check.folders.iter_mut().find(|f| f.member == mv.member.as_str()) {
                        folder.notes.push(line);
                    }
                }
            }
            Err(e) => check.state_error = Some(e.to_string()),
        }
        check
    }

    /// A pass in its turn (`turn`, a place among `max_concurrent_groups`) as a boxed `Send` future
    /// that owns what it needs (for the group loop's `select!`).
    fn boxed_pass(
        self: &Arc<Self>,
        g: Arc<GroupRuntime>,
        trigger: Trigger,
        turn: tokio::sync::OwnedSemaphorePermit,
    ) -> BoxFuture<'static, GroupReport> {
        let inner = Arc::clone(self);
        Box::pin(async move {
            let report = inner.pass_in_turn(&g, trigger, false, false).await;
            drop(turn);
            report
        })
    }

    /// Renews this worker's leases at a third of their duration until the service stops. A lease
    /// that could not be renewed (another worker took the group after it expired: this process
    /// was paused or cut off) is reported; the group's writes are refused from then on, so its
    /// pass in flight fails and the loop waits for the lease again. The groups beyond this
    /// worker's fair share are handed to their loops, which give them up between passes.
    async fn renew_leases(self: Arc<Self>, lease: Duration) {
        let mut shutdown = self.shutdown.subscribe();
        loop {
            tokio::select! {
                () = stop_requested(&mut shutdown) => break,
                () = tokio::time::sleep(lease / 3) => {}
            }
            match self.store.renew_leases().await {
                Ok(renewal) => {
                    for group in renewal.lost {
                        tracing::error!(
                            group = %group,
                            "lost the group's lease to another worker: this worker stops writing to it"
                        );
                    }
                    for g in &self.groups {
                        g.give_up.set(renewal.surplus.iter().any(|s| s.as_str() == g.config.id));
                    }
                }
                Err(e) => tracing::warn!("cannot renew the leases (retrying at the next renewal): {e}"),
            }
        }
    }

    /// Looks for admin requests every [`REQUEST_POLL_INTERVAL`] until the service stops: one
    /// query for every group of the service, instead of one per group, and only the groups with
    /// a request newer than any seen before are woken. Whether the request is this worker's to
    /// carry out (its lease) is the group's loop's to decide, as for any other reason for a pass.
    async fn watch_requests(self: Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut ticks = tokio::time::interval(REQUEST_POLL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop_requested(&mut shutdown) => break,
                _ = ticks.tick() => {}
            }
            let newest = match self.store.newest_requests().await {
                Ok(newest) => newest,
                Err(e) => {
                    tracing::debug!("cannot read admin requests: {e}");
                    continue;
                }
            };
            // Usually empty: a request is carried out within a second and removed.
            for (group, id) in newest {
                if let Some(g) = self.groups.iter().find(|g| g.config.id == group.as_str()) {
                    g.newest_request.send_if_modified(|seen| {
                        let newer = id > *seen;
                        if newer {
                            *seen = id;
                        }
                        newer
                    });
                }
            }
        }
    }

    /// The real-time loop of one group.
    async fn group_loop(self: Arc<Self>, g: Arc<GroupRuntime>) {
        let settings = self.config.service.clone();
        let group_id = GroupId::new(g.config.id.clone());
        let mut shutdown = self.shutdown.subscribe();
        let (hint_tx, mut hint_rx) = mpsc::channel::<(MemberId, ChangeHint)>(1024);
        set_hint_channel(&g, Some(hint_tx)).await;
        let mut trigger = Some(Trigger::Start);
        let mut next_resync = tokio::time::Instant::now() + settings.resync_interval;
        let membership_interval = g.config.member_sources.iter().map(|s| s.refresh_interval).min();
        let mut next_membership = membership_interval.map(|i| tokio::time::Instant::now() + i);
        let mut next_poll = None;
        let mut next_retry: Option<tokio::time::Instant> = None;
        let mut next_follow_up: Option<tokio::time::Instant> = None;
        // No pass before this: the hub's server asked the group to back off.
        let mut hold_until: Option<tokio::time::Instant> = None;
        // Changes when the service's look for admin requests (`watch_requests`) finds a new one
        // for the group. Marked changed so that the group's requests are read once after its
        // first pass (which honours those posted before it), as at every wake-up: a request the
        // pass left (it failed, another worker owns the group) is seen there.
        let mut requests = g.newest_request.subscribe();
        requests.mark_changed();
        let mut last_request = 0u64;
        // Another worker owned the group when this loop last looked.
        let mut waiting_for_lease = false;

        loop {
            if *shutdown.borrow() {
                break;
            }
            if let Some(mut t) = trigger.take() {
                // Several workers sharing the state: only the lease's holder runs the group. The
                // others look again at a third of the lease, and the first to find it expired
                // (its owner died) takes the group over and resumes it from the state.
                let owned = match self.store.acquire_lease(&group_id).await {
                    Ok(owned) => owned,
                    Err(e) => {
                        tracing::warn!("cannot take the group's lease: {e}");
                        false
                    }
                };
                if owned && waiting_for_lease {
                    waiting_for_lease = false;
                    tracing::info!("took the group's lease: resuming the group from the state");
                    // A pass as at a start: whatever the last owner left unfinished is resumed.
                    t = Trigger::Start;
                }
                let stopped = g.snapshot.lock().unwrap_or_else(PoisonError::into_inner).stopped_by_guard;
                let skip = stopped && matches!(t, Trigger::Notification | Trigger::Poll);
                let held = hold_until.is_some_and(|until| until > tokio::time::Instant::now());
                if !owned {
                    if !waiting_for_lease {
                        tracing::info!("another worker owns the group: taking it over if its lease expires");
                    }
                    waiting_for_lease = true;
                    let wait = self.store.lease_duration().map_or(settings.retry.max_delay, |l| l / 3);
                    next_retry = Some(tokio::time::Instant::now() + wait);
                } else if held {
                    // Whatever asked for a pass, it runs when the back-off ends.
                    next_retry = hold_until;
                } else if !skip {
                    // The group waits for its turn among `max_concurrent_groups` outside the pass:
                    // a group this worker gives up while it waits is given up before its pass.
                    let turn = tokio::select! {
                        turn = Arc::clone(&self.passes).acquire_owned() => Some(turn),
                        () = g.give_up.asked() => None,
                        () = stop_requested(&mut shutdown) => break,
                    };
                    let turn = match turn {
                        Some(Ok(turn)) => turn,
                        Some(Err(e)) => {
                            // The semaphore is never closed; should it be, the loop ends cleanly.
                            tracing::error!("no turn for the group's passes: {e}");
                            break;
                        }
                        // The request stands: the `select!` below gives the group up.
                        None => continue,
                    };
                    let mut pass = self.boxed_pass(Arc::clone(&g), t, turn);
                    let report = tokio::select! {
                        report = &mut pass => Some(report),
                        () = stop_requested(&mut shutdown) => {
                            tokio::time::timeout(settings.shutdown_grace, &mut pass).await.ok()
                        }
                    };
                    let Some(report) = report else {
                        tracing::warn!("shutdown: abandoned a pass in flight (the next start resumes it)");
                        break;
                    };
                    let now = tokio::time::Instant::now();
                    hold_until = None;
                    next_retry = None;
                    if let Some(until) = report.parked_until {
                        // A folder (or the hub) is parked at its server's request: the next pass
                        // comes when the back-off ends, not earlier.
                        let at = instant_at(until);
                        if report.outcome == PassOutcome::Failed {
                            hold_until = Some(at);
                        }
                        next_retry = Some(at);
                        tracing::info!(
                            until = %until.to_rfc3339(),
                            "a server asked to back off: the next pass runs when the back-off ends"
                        );
                    } else if matches!(report.outcome, PassOutcome::Failed | PassOutcome::PartiallyFailed) {
                        // A pass that could not run (server down, folder missing) is tried again
                        // after the longest backoff delay, not only at the next safety re-sync;
                        // one whose writes partly failed too, so the failed writes are not left
                        // for an hour.
                        let delay = jittered(settings.retry.max_delay);
                        tracing::info!(
                            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                            "next attempt in {} ms",
                            delay.as_millis()
                        );
                        next_retry = Some(now + delay);
                    }
                    // Users' edits raced with the pass: another pass re-reads them soon.
                    next_follow_up = report.follow_up.then(|| now + settings.debounce);
                }
                next_poll = poll_interval(&g).await.map(|p| tokio::time::Instant::now() + p);
            }
            let far = tokio::time::Instant::now() + Duration::from_secs(86_400);
            tokio::select! {
                () = stop_requested(&mut shutdown) => break,
                Some((member, hint)) = hint_rx.recv() => {
                    tracing::debug!(member = %member, ?hint, "change hint");
                    g.hint_since.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert_with(Instant::now);
                    let mut resync = hint == ChangeHint::Resync;
                    // Debounce: gather the rest of the burst.
                    let deadline = tokio::time::Instant::now() + settings.debounce;
                    loop {
                        tokio::select! {
                            () = tokio::time::sleep_until(deadline) => break,
                            more = hint_rx.recv() => match more {
                                Some((_, h)) => resync |= h == ChangeHint::Resync,
                                None => break,
                            },
                        }
                    }
                    trigger = Some(if resync { Trigger::Resync } else { Trigger::Notification });
                }
                Ok(()) = requests.changed() => {
                    let seen = *requests.borrow_and_update();
                    // The group's own requests decide: a pass since may have carried out the one
                    // seen. Unreadable, the one seen does (the pass reads them again).
                    let newest = match self.store.requests(&group_id).await {
                        Ok(posted) => posted.iter().map(|r| r.id).max(),
                        Err(e) => {
                            tracing::debug!("cannot read admin requests: {e}");
                            Some(seen)
                        }
                    };
                    if let Some(newest) = newest.filter(|id| *id > last_request) {
                        last_request = newest;
                        tracing::info!(request = newest, "admin request received");
                        trigger = Some(Trigger::Request);
                    }
                }
                () = tokio::time::sleep_until(next_poll.unwrap_or(far)) => trigger = Some(Trigger::Poll),
                () = tokio::time::sleep_until(next_retry.unwrap_or(far)) => {
                    next_retry = None;
                    trigger = Some(Trigger::Retry);
                }
                () = tokio::time::sleep_until(next_follow_up.unwrap_or(far)) => {
                    next_follow_up = None;
                    trigger = Some(Trigger::Retry);
                }
                () = tokio::time::sleep_until(next_resync) => {
                    next_resync = tokio::time::Instant::now() + settings.resync_interval;
                    trigger = Some(Trigger::Resync);
                }
                () = tokio::time::sleep_until(next_membership.unwrap_or(far)) => {
                    next_membership = membership_interval.map(|i| tokio::time::Instant::now() + i);
                    trigger = Some(Trigger::Membership);
                }
                () = g.give_up.asked() => {
                    // Between two passes (a pass runs outside this `select!`): the next owner
                    // resumes the group from the state, as after a failover, and this worker's
                    // writes to it are refused from now on.
                    if !g.give_up.take() {
                        continue;
                    }
                    match self.store.release_lease(&group_id).await {
                        Ok(()) => {
                            tracing::info!("gave the group up: this worker holds more than its share");
                            waiting_for_lease = true;
                            // Looks again like any worker not owning the group: it takes it back
                            // only if no worker under its share does.
                            let wait = self.store.lease_duration().map_or(settings.retry.max_delay, |l| l / 3);
                            next_retry = Some(tokio::time::Instant::now() + wait);
                            next_poll = None;
                            next_follow_up = None;
                        }
                        Err(e) => tracing::warn!("cannot give the group up (it stays here): {e}"),
                    }
                }
            }
        }
        set_hint_channel(&g, None).await;
    }
}

/// Starts (`Some`) or stops (`None`) delivering the group's change hints to its loop.
fn set_hint_channel(g: &Arc<GroupRuntime>, tx: Option<mpsc::Sender<(MemberId, ChangeHint)>>) -> BoxFuture<'static, ()> {
    let g = Arc::clone(g);
    Box::pin(async move {
        let mut work = g.work.lock().await;
        work.stop_watching();
        work.hints = tx;
    })
}

/// How often the group's loop polls (folders that cannot be watched), if at all.
fn poll_interval(g: &Arc<GroupRuntime>) -> BoxFuture<'static, Option<Duration>> {
    let g = Arc::clone(g);
    Box::pin(async move { g.work.lock().await.poll_every })
}

/// Completes when a shutdown is asked for (or the service is gone).
async fn stop_requested(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` answers is not `Send`: drop it right here.
    let _ = shutdown.wait_for(|stop| *stop).await.map(|_| ());
}

/// Forwards a folder's change hints to its group's loop until either ends.
fn spawn_forwarder(
    member: MemberId,
    mut stream: futures::stream::BoxStream<'static, ChangeHint>,
    tx: mpsc::Sender<(MemberId, ChangeHint)>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(hint) = stream.next().await {
            if tx.send((member.clone(), hint)).await.is_err() {
                break;
            }
        }
    })
}

/// Why a folder was left out, in words, for reports.
fn condition_text(member: &MemberId, condition: &FolderCondition, group: &GroupConfig) -> String {
    match condition {
        FolderCondition::Unobservable { reason } => format!("{member} is left out of this pass: {reason}"),
        FolderCondition::Parked { until, reason } => format!(
            "{member} is parked until {} at its server's request (nothing is sent to it before): {reason}",
            until.to_rfc3339()
        ),
        FolderCondition::Vanished { copies } => format!(
            "{member} is held: every one of the {copies} copies the group knew there vanished at once, and nothing \
             was propagated; if the deletions are intended, confirm them: exchange-sync confirm --group {}",
            group.id
        ),
        other => match other.problem() {
            Some(problem) => format!("{member} is left out: {problem}"),
            None => format!("{member} is left out"),
        },
    }
}

/// A notice of the engine in words.
fn notice_text(notice: &Notice, group: &GroupConfig) -> String {
    match notice {
        Notice::LeftOut { member, condition } => condition_text(member, condition, group),
        Notice::KeptPersonal { member, label, .. } => format!(
            "kept {member}'s own {label}: it matches a group item by {} but holds other content, so it stays \
             untouched and {member} gets no second copy of that item{}",
            group.match_key.join(" + "),
            if group.take_over_matches { "" } else { " (take_over_matches = true would take it over)" }
        ),
    }
}

/// The text of a dry run's writes and conflicts, one per line.
fn plan_text(planned: &[PlannedAction], conflicts: &[ConflictEntry]) -> String {
    let mut text = String::new();
    if planned.is_empty() {
        text.push_str("nothing to write\n");
    }
    for action in planned {
        text.push_str(&format!("- {action}\n"));
    }
    for c in conflicts {
        let show = |v: &Option<String>| v.as_ref().map_or_else(|| "(empty)".to_owned(), |v| format!("{v:?}"));
        let item = c.item.clone().unwrap_or_else(|| format!("entity {}", c.entity));
        let losers: Vec<String> = c.losers.iter().map(|l| format!("{} had {}", l.member, show(&l.value))).collect();
        text.push_str(&format!(
            "! conflict on {} of {item}: {} -> {} from {} ({}); {}\n",
            c.field,
            show(&c.base),
            show(&c.winner.value),
            c.winner.member,
            c.policy,
            losers.join(", ")
        ));
    }
    text
}

/// The command that confirms a group's guard stop.
fn confirm_command(group: &str) -> String {
    format!(
        "exchange-sync confirm --group {group} (or exchange-sync run --once --allow-mass-delete when no service runs)"
    )
}

/// A folder condition's name, as `status` shows it.
fn condition_name(condition: &FolderCondition) -> &'static str {
    match condition {
        FolderCondition::Clean => "clean",
        FolderCondition::Interrupted => "interrupted",
        FolderCondition::FailedWrites { .. } => "failed_writes",
        FolderCondition::Recheck { .. } => "recheck",
        FolderCondition::Unobservable { .. } => "unobservable",
        FolderCondition::Parked { .. } => "parked",
        FolderCondition::Vanished { .. } => "vanished",
    }
}

/// Turns the engine's report into the service's; `known` names the items of failed writes and
/// conflicts.
fn fill_report(
    report: &mut GroupReport,
    config: &Config,
    group: &GroupConfig,
    result: &SyncReport,
    known: &BTreeMap<EntityId, exchange_sync_core::Item>,
) {
    let ctx = HintContext::group(config, group);
    let with_hint = |mut e: ErrorReport, error: &exchange_sync_core::Error| {
        e.hint = hints::hint(error, error.kind(), &ctx);
        e
    };
    for (member, m) in &result.members {
        let row = report.member_mut(member.as_str());
        let parked_until = match (&m.left_out, &m.execution.parked) {
            (Some(FolderCondition::Parked { until, .. }), _) => Some(*until),
            (_, Some(backoff)) => Some(backoff.until),
            _ => None,
        };
        *row = MemberReport {
            member: member.to_string(),
            folder: None,
            created: m.execution.created,
            updated: m.execution.updated,
            deleted: m.execution.deleted,
            reverted: result.reverts.get(member).copied().unwrap_or(0),
            conflicts: 0,
            races: m.execution.races.len(),
            restored: m.execution.restored,
            deferred: m.execution.deferred,
            parked_until,
            left_out: m.left_out.as_ref().map(|c| condition_text(member, c, group)),
            errors: m
                .execution
                .failed
                .iter()
                .map(|f| {
                    let mut e = with_hint(ErrorReport::from_core(&f.error), &f.error);
                    e.item_name = known.get(&f.entity).map(names::item_name);
                    e
                })
                .collect(),
        };
        if let Some(e) = &m.error {
            row.errors.push(with_hint(ErrorReport::from_core(e), e));
        }
        if matches!(m.left_out, Some(FolderCondition::Vanished { .. })) {
            report.needs_confirmation = true;
        }
    }
    for c in &result.conflicts {
        for side in std::iter::once(&c.winner.member).chain(c.losers.iter().map(|l| &l.member)) {
            report.member_mut(side.as_str()).conflicts += 1;
        }
    }
    report.keep_noteworthy_members();
    report.conflicts = result
        .conflicts
        .iter()
        .map(|c| ConflictEntry::from_record(&group.id, c).named(known.get(&c.entity).map(names::item_name)))
        .collect();
    report.notices.extend(result.notices.iter().map(|n| notice_text(n, group)));
    report.follow_up = result.needs_follow_up();
    report.parked_until = result.parked_until();
    report.outcome = if result.is_clean() { PassOutcome::Synced } else { PassOutcome::PartiallyFailed };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moved(mailbox: Option<&str>, from: &str, to: &str) -> Move {
        Move {
            member: MemberId::new(mailbox.map_or(HUB_MEMBER_ID.to_owned(), str::to_lowercase)),
            config: mailbox.map(MemberConfig::two_way),
            from: FolderIdentity { id: "old".into(), path: from.into() },
            to: to.into(),
        }
    }

    #[test]
    fn a_rehome_is_said_in_the_admins_words() {
        let mv =
            moved(Some("Alice@Contoso.test"), "alice@contoso.test/contacts", "Alice@Contoso.test/tasks/Company Tasks");
        assert_eq!(
            mv.describe(LeavePolicy::Remove, 3, None),
            "re-home alice@contoso.test: contacts -> tasks/Company Tasks: 3 copies in the old folder removed \
             (on_leave = remove); the new folder gets an initial sync"
        );
        assert_eq!(
            mv.describe(LeavePolicy::Keep, 3, Some(0)),
            "re-homed alice@contoso.test: contacts -> tasks/Company Tasks: 3 copies in the old folder kept as the \
             user's own (on_leave = keep); the new folder gets an initial sync"
        );
        let hub = moved(None, "public folder A", "public folder B");
        assert!(
            hub.describe(LeavePolicy::Remove, 0, None)
                .starts_with("re-home the hub: public folder A -> public folder B")
        );
        // A path that is not the mailbox's (or not even on a character boundary) is shown whole.
        let odd = moved(Some("zoë@contoso.test"), "zo/contacts", "zoë@contoso.test/contacts/x");
        assert_eq!(odd.paths(), ("zo/contacts".to_owned(), "contacts/x".to_owned()));
    }

    #[test]
    fn a_request_to_give_a_group_up_is_acted_on_only_while_it_stands() {
        use futures::FutureExt;
        let request = GiveUpRequest::default();
        assert!(request.asked().now_or_never().is_none(), "nothing asked");
        request.set(true);
        assert!(request.asked().now_or_never().is_some(), "asked while the loop was busy: seen after");
        assert!(request.take());
        assert!(!request.take(), "taken once");
        // Asked, then withdrawn by the next renewal before the loop looked: the stored wake-up
        // does not make the loop give the group up.
        request.set(true);
        request.set(false);
        assert!(request.asked().now_or_never().is_none());
        assert!(!request.take());
    }
}
