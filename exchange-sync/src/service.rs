//! The [`SyncService`]: runs many sync groups at once, in real time.
//!
//! Each group has its own loop: an initial pass, then a pass whenever a folder's change hints
//! arrive (debounced, so a burst of edits costs one pass), when the polling interval of folders
//! without hints elapses, at the periodic safety re-sync, and when its distribution groups'
//! membership changes. Passes of one group never overlap; passes of different groups run
//! concurrently up to [`crate::config::ServiceSettings::max_concurrent_groups`]. Retryable failures
//! are retried with exponential backoff; a group stopped by the mass-delete guard waits for the
//! next safety re-sync (or an admin's confirmed run) instead of retrying on every hint.
//!
//! Shutdown ([`SyncService::shutdown`]) lets a pass in flight finish within the grace period and
//! abandons it after that: the engine commits every action as it completes and writes create
//! intents ahead, so an abandoned pass loses nothing and the next start duplicates nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::{Duration, Instant};

use exchange_sync_core::engine::{GroupSync, SyncOptions, SyncReport};
use exchange_sync_core::{ChangeHint, Connector, ErrorKind, GroupId, MemberId, MemberViews, StateStore};
use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::sync::{Mutex, Semaphore, broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::backoff::delay_after;
use crate::config::{Config, GroupConfig, HUB_MEMBER_ID, LeavePolicy, MemberConfig, StateLocation};
use crate::conflict_log::ConflictEntry;
use crate::error::{Error, Result};
use crate::event::{ProgressEvent, Trigger};
use crate::folders::FolderProvider;
use crate::membership;
use crate::report::{ErrorReport, GroupReport, MemberReport, PassOutcome, RunReport};
use crate::status::{GroupStatus, MemberStatusReport};

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
    progress: StdMutex<BTreeMap<String, Arc<PassProgress>>>,
    folders: Arc<dyn FolderProvider>,
    store: Arc<dyn StateStore>,
    events: broadcast::Sender<ProgressEvent>,
    groups: Vec<Arc<GroupRuntime>>,
    shutdown: watch::Sender<bool>,
    passes: Semaphore,
}

/// A group's live state in this process.
struct GroupRuntime {
    config: GroupConfig,
    /// Held for the whole of a pass: passes of one group never overlap.
    work: Mutex<GroupWork>,
    /// What `status` shows without waiting for a pass.
    snapshot: StdMutex<GroupSnapshot>,
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
    /// Open connectors, by folder.
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

impl SyncService {
    /// A service over `config` (validated here), opening folders through `folders` and keeping
    /// state in `store`.
    pub fn new(config: Config, folders: Arc<dyn FolderProvider>, store: Arc<dyn StateStore>) -> Result<Self> {
        for warning in config.validate()? {
            tracing::warn!("{warning}");
        }
        let groups = config
            .groups
            .iter()
            .map(|g| {
                Arc::new(GroupRuntime {
                    config: g.clone(),
                    work: Mutex::new(GroupWork::default()),
                    snapshot: StdMutex::new(GroupSnapshot { members: g.members.clone(), ..GroupSnapshot::default() }),
                })
            })
            .collect();
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (shutdown, _) = watch::channel(false);
        let passes = Semaphore::new(config.service.max_concurrent_groups.max(1));
        let progress = StdMutex::new(BTreeMap::new());
        Ok(SyncService {
            inner: Arc::new(Inner { config, progress, folders, store, events, groups, shutdown, passes }),
        })
    }

    /// A service over Exchange as the configuration describes it: EWS connections (secrets read,
    /// Autodiscover asked) and the configured state store. The usual way to start one, and the
    /// one the bindings use.
    pub async fn connect(config: Config) -> Result<Self> {
        config.validate()?;
        let folders = crate::ews_folders::EwsFolders::connect(&config).await?;
        let store = Self::open_store(&config).await?;
        Self::new(config, Arc::new(folders), store)
    }

    /// Opens the state store the configuration names (SQLite file, or memory).
    pub async fn open_store(config: &Config) -> Result<Arc<dyn StateStore>> {
        Ok(match &config.service.state {
            StateLocation::Memory => Arc::new(exchange_sync_core::state::memory::MemoryStore::new()),
            StateLocation::Sqlite(path) => Arc::new(exchange_sync_core::state::sqlite::SqliteStore::open(path).await?),
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

    /// The dry run: what one pass of each selected group would write, without writing anything.
    pub async fn plan(&self, options: RunOptions) -> Result<RunReport> {
        self.run_selected(&options, Trigger::Manual, true).await
    }

    /// One pass of each selected group (every group at once, up to the concurrency bound).
    pub async fn run_once(&self, options: RunOptions) -> Result<RunReport> {
        self.run_selected(&options, Trigger::Manual, false).await
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
        for handle in loops {
            if let Err(e) = handle.await {
                tracing::error!("a group loop ended abnormally: {e}");
            }
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

    /// Per group and folder: initialization, last sync, errors, copies and pending work.
    pub async fn status(&self) -> Result<Vec<GroupStatus>> {
        let mut out = Vec::new();
        for g in &self.inner.groups {
            let (last_report, stopped, members) = {
                let s = g.snapshot.lock().unwrap_or_else(PoisonError::into_inner);
                (s.last_report.clone(), s.stopped_by_guard, s.members.clone())
            };
            let id = GroupId::new(g.config.id.clone());
            let store = &self.inner.store;
            let pending = store.pending_creates(&id).await?;
            let mut rows = Vec::new();
            let hub = MemberId::new(HUB_MEMBER_ID);
            let mut folders = vec![(hub, g.config.hub.to_string(), "hub".to_owned())];
            for m in &members {
                let direction = if m.direction.is_two_way() { "two_way" } else { "one_way" };
                folders.push((
                    MemberId::new(m.id.clone()),
                    format!("{}/{}", m.mailbox, g.config.target_of(m)),
                    direction.to_owned(),
                ));
            }
            for (member, folder, direction) in folders {
                let status = store.member_status(&id, &member).await?;
                rows.push(MemberStatusReport {
                    folder,
                    direction,
                    initialized: status.initialized,
                    last_sync: status.last_sync,
                    last_error: status.last_error,
                    copies: store.replica_count(&id, &member).await?,
                    pending_creates: pending.iter().filter(|p| p.member == member).count(),
                    member: member.to_string(),
                });
            }
            out.push(GroupStatus {
                group: g.config.id.clone(),
                members: rows,
                stopped_by_mass_delete_guard: stopped,
                last_report,
            });
        }
        Ok(out)
    }

    /// The conflict log of one group (`Some`) or of every group, oldest first per group.
    pub async fn conflicts(&self, group: Option<&str>) -> Result<Vec<ConflictEntry>> {
        let names: Vec<String> = group.map(|g| vec![g.to_owned()]).unwrap_or_default();
        let mut out = Vec::new();
        for g in self.selected(&names)? {
            let records = self.inner.store.conflicts(&GroupId::new(g.config.id.clone())).await?;
            out.extend(records.iter().map(|r| ConflictEntry::from_record(&g.config.id, r)));
        }
        Ok(out)
    }
}

impl Inner {
    fn emit(&self, event: ProgressEvent) {
        // No subscriber is fine: events are for whoever listens.
        let _ = self.events.send(event);
    }

    fn sync_options(&self, allow_mass_delete: bool) -> SyncOptions {
        SyncOptions { allow_mass_delete, ..SyncOptions::default() }
    }

    /// One pass of a group with retries, as a report (failures are reported, not returned).
    async fn pass(&self, g: &GroupRuntime, trigger: Trigger, dry_run: bool, allow_mass_delete: bool) -> GroupReport {
        let _permit = self.passes.acquire().await;
        let mut work = g.work.lock().await;
        self.emit(ProgressEvent::PassStarted { group: g.config.id.clone(), trigger });
        let clock = Instant::now();
        let mut report = GroupReport::started(g.config.id.clone());
        let retry = self.config.service.retry;
        let mut attempt = 1;
        loop {
            report.attempts = attempt;
            match self.attempt(g, &mut work, &mut report, trigger, dry_run, allow_mass_delete).await {
                Ok(()) => break,
                Err(error) => {
                    let retryable = error.is_retryable();
                    let error_report = ErrorReport::from_service(&error);
                    if retryable && attempt < retry.max_attempts && !*self.shutdown.borrow() {
                        let server_asked = match &error {
                            Error::Sync(e) => e.retry_after(),
                            _ => None,
                        };
                        let retry_in = delay_after(&retry, attempt, server_asked);
                        tracing::warn!(attempt, retry_in_ms = retry_in.as_millis() as u64, "pass failed: {error}");
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
                    tracing::error!("pass failed: {error}");
                    report.outcome = if error.kind() == ErrorKind::MassDelete {
                        PassOutcome::StoppedByMassDeleteGuard
                    } else {
                        PassOutcome::Failed
                    };
                    report.errors.push(error_report);
                    break;
                }
            }
        }
        report.duration = clock.elapsed();
        if !dry_run {
            let mut s = g.snapshot.lock().unwrap_or_else(PoisonError::into_inner);
            s.stopped_by_guard = report.outcome == PassOutcome::StoppedByMassDeleteGuard;
            s.last_report = Some(report.clone());
        }
        tracing::info!("{report}");
        self.emit(ProgressEvent::PassFinished { report: report.clone() });
        report
    }

    /// One attempt: membership, folders, then the engine's pass.
    async fn attempt(
        &self,
        g: &GroupRuntime,
        work: &mut GroupWork,
        report: &mut GroupReport,
        trigger: Trigger,
        dry_run: bool,
        allow_mass_delete: bool,
    ) -> Result<()> {
        let members = self.refresh_membership(g, work, trigger, dry_run).await?;

        // Open the folders not yet open; forget those of members who left.
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
        let hub_id = MemberId::new(HUB_MEMBER_ID);
        if let std::collections::btree_map::Entry::Vacant(slot) = work.connectors.entry(hub_id) {
            slot.insert(self.folders.hub(&g.config).await?);
        }
        for m in &members {
            let id = MemberId::new(m.id.clone());
            if let std::collections::btree_map::Entry::Vacant(slot) = work.connectors.entry(id) {
                slot.insert(self.folders.member(&g.config, m, g.config.target_of(m)).await?);
            }
        }

        self.watch_folders(work).await;

        let extra: Vec<MemberConfig> = work.expanded.clone().unwrap_or_default();
        let sync_group = g.config.sync_group(&extra);
        let views: MemberViews = members
            .iter()
            .filter(|m| !m.direction.is_two_way())
            .map(|m| (MemberId::new(m.id.clone()), m.delivery_rule()))
            .filter(|(_, rule)| !rule.is_identity())
            .map(|(id, rule)| (id, Arc::new(rule) as Arc<dyn exchange_sync_core::MemberView>))
            .collect();
        let connectors = if dry_run { work.connectors.clone() } else { self.counted(&g.config.id, &work.connectors) };
        let mut engine = GroupSync::new(sync_group, Arc::clone(&self.store), connectors)?
            .with_options(self.sync_options(allow_mass_delete))
            .with_views(views);
        if !dry_run {
            engine = engine.on_planned(self.planned_callback(&g.config.id));
        }
        if dry_run {
            let plan = engine.dry_run().await?;
            report.count_plan(&plan);
            report.conflicts = plan.conflicts.iter().map(|c| ConflictEntry::from_record(&g.config.id, c)).collect();
            let departures = self.planned_departures(g, work, report).await?;
            report.plan = Some(format!("{departures}{plan}"));
            report.outcome = PassOutcome::Planned;
            self.emit(ProgressEvent::Planned {
                group: g.config.id.clone(),
                actions: plan.actions.len(),
                conflicts: plan.conflicts.len(),
            });
            return Ok(());
        }
        let result = engine.run().await?;
        fill_report(report, &g.config.id, &result);
        Ok(())
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
    ) -> Result<Vec<MemberConfig>> {
        let group_id = GroupId::new(g.config.id.clone());
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
            let mut still_leaving = Vec::new();
            for leaver in std::mem::take(&mut work.leaving) {
                let id = MemberId::new(leaver.id.clone());
                let connector = match work.connectors.get(&id) {
                    Some(c) => Some(Arc::clone(c)),
                    None if remove => {
                        match self.folders.member(&g.config, &leaver, g.config.target_of(&leaver)).await {
                            Ok(c) => Some(c),
                            Err(e) => {
                                tracing::warn!(member = %id, "cannot open a leaving member's folder: {e}");
                                still_leaving.push(leaver);
                                continue;
                            }
                        }
                    }
                    None => None,
                };
                match membership::leave(self.store.as_ref(), &group_id, &id, connector.as_ref(), remove).await {
                    Ok(deleted) => {
                        tracing::info!(member = %id, deleted, "member left the group");
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
        g.snapshot.lock().unwrap_or_else(PoisonError::into_inner).members = members.clone();
        Ok(members)
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
                let copies = membership::created_copies(self.store.as_ref(), &group_id, &id).await?.len();
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

    /// A pass as a boxed `Send` future that owns what it needs (for the group loop's `select!`).
    fn boxed_pass(self: &Arc<Self>, g: Arc<GroupRuntime>, trigger: Trigger) -> BoxFuture<'static, GroupReport> {
        let inner = Arc::clone(self);
        Box::pin(async move { inner.pass(&g, trigger, false, false).await })
    }

    /// The real-time loop of one group.
    async fn group_loop(self: Arc<Self>, g: Arc<GroupRuntime>) {
        let settings = self.config.service.clone();
        let mut shutdown = self.shutdown.subscribe();
        let (hint_tx, mut hint_rx) = mpsc::channel::<(MemberId, ChangeHint)>(1024);
        set_hint_channel(&g, Some(hint_tx)).await;
        let mut trigger = Some(Trigger::Start);
        let mut next_resync = tokio::time::Instant::now() + settings.resync_interval;
        let membership_interval = g.config.member_sources.iter().map(|s| s.refresh_interval).min();
        let mut next_membership = membership_interval.map(|i| tokio::time::Instant::now() + i);
        let mut next_poll = None;
        let mut next_retry: Option<tokio::time::Instant> = None;

        loop {
            if *shutdown.borrow() {
                break;
            }
            if let Some(t) = trigger.take() {
                let stopped = g.snapshot.lock().unwrap_or_else(PoisonError::into_inner).stopped_by_guard;
                let skip = stopped && matches!(t, Trigger::Notification | Trigger::Poll);
                if !skip {
                    let mut pass = self.boxed_pass(Arc::clone(&g), t);
                    let outcome = tokio::select! {
                        report = &mut pass => Some(report.outcome),
                        () = stop_requested(&mut shutdown) => {
                            tokio::time::timeout(settings.shutdown_grace, &mut pass).await.ok().map(|r| r.outcome)
                        }
                    };
                    let Some(outcome) = outcome else {
                        tracing::warn!("shutdown: abandoned a pass in flight (the next start resumes it)");
                        break;
                    };
                    // A pass that could not run (server down, folder missing) is tried again after
                    // the longest backoff delay, not only at the next safety re-sync; one whose
                    // writes partly failed too, so the failed writes are not left for an hour.
                    next_retry = matches!(outcome, PassOutcome::Failed | PassOutcome::PartiallyFailed)
                        .then(|| tokio::time::Instant::now() + settings.retry.max_delay);
                }
                next_poll = poll_interval(&g).await.map(|p| tokio::time::Instant::now() + p);
            }
            let far = tokio::time::Instant::now() + Duration::from_secs(86_400);
            tokio::select! {
                () = stop_requested(&mut shutdown) => break,
                Some((member, hint)) = hint_rx.recv() => {
                    tracing::debug!(member = %member, ?hint, "change hint");
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
                () = tokio::time::sleep_until(next_poll.unwrap_or(far)) => trigger = Some(Trigger::Poll),
                () = tokio::time::sleep_until(next_retry.unwrap_or(far)) => {
                    next_retry = None;
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

/// Turns the engine's report into the service's.
fn fill_report(report: &mut GroupReport, group: &str, result: &SyncReport) {
    for (member, m) in &result.members {
        let row = report.member_mut(member.as_str());
        *row = MemberReport {
            member: member.to_string(),
            created: m.execution.created,
            updated: m.execution.updated,
            deleted: m.execution.deleted,
            reverted: result.reverts.get(member).copied().unwrap_or(0),
            conflicts: 0,
            errors: m.execution.failed.iter().map(|f| ErrorReport::from_core(&f.error)).collect(),
        };
        if let Some(e) = &m.error {
            row.errors.push(ErrorReport::from_core(e));
        }
    }
    for c in &result.conflicts {
        for side in std::iter::once(&c.winner.member).chain(c.losers.iter().map(|l| &l.member)) {
            report.member_mut(side.as_str()).conflicts += 1;
        }
    }
    report.members.retain(|m| m.wrote_anything() || m.conflicts > 0 || !m.errors.is_empty());
    report.conflicts = result.conflicts.iter().map(|c| ConflictEntry::from_record(group, c)).collect();
    report.outcome = if result.is_clean() { PassOutcome::Synced } else { PassOutcome::PartiallyFailed };
}
