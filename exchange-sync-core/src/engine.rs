//! One sync pass of a group: [`GroupSync`].
//!
//! A pass (CORE.md "Engine pass"):
//! 1. **recovers** open create intents left by an interrupted pass: each is looked up by its
//!    origin stamp; a copy found becomes the replica, otherwise the intent is dropped (and the
//!    copy is created again by this pass);
//! 2. **observes** every folder: incremental folders page through `changes(token)` (an invalid
//!    token starts over from the beginning and diffs against what state knows); snapshot folders
//!    list every (id, version) and diff. New and changed versions are fetched, vanished items are
//!    reported deleted; the user's own items only get their version recorded, never read;
//! 3. **loads** the entities the observations touch (every entity for a folder whose initial sync
//!    runs, or whose previous pass did not finish cleanly);
//! 4. **plans** ([`crate::planner::plan`]) and **executes** ([`crate::executor::Executor`]);
//! 5. records each folder's status: initialized, last sync, last error.
//!
//! A folder whose previous pass did not finish (an interruption marker or a failed action in its
//! status) gets a full check: every entity is planned, so stale and missing copies are found even
//! though nothing new was observed. That is what makes a crash at any point harmless.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use tracing::Instrument;

use crate::connector::{Change, ChangeDetection, Connector, FetchedItem, ItemVersion};
use crate::error::{Error, ErrorContext, ErrorKind, Result};
use crate::executor::{ExecutionReport, Executor, ExecutorOptions, MemberReport};
use crate::group::SyncGroup;
use crate::id::{EntityId, GroupId, ItemId, MemberId, Version};
use crate::origin::OriginStamp;
use crate::plan::{Action, FolderObservation, Observed, Plan, PlanInput, Reason};
use crate::planner;
use crate::state::{
    ConflictRecord, KnownItem, MemberStatus, Ownership, ReplicaRecord, ReplicaSlot, StateStore, StateTransaction,
    StateWrite,
};

/// How a pass behaves.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Pacing of writes (and of retries on throttling, reads included).
    pub executor: ExecutorOptions,
    /// Lets this pass exceed the mass-delete guard (an admin confirmed).
    pub allow_mass_delete: bool,
    /// When a member folder cannot be observed: `false` (the default) stops the pass, so the
    /// base never moves past a copy the pass could not see; `true` leaves that member out and
    /// syncs the others. Leaving a member out keeps a group running around a broken mailbox, at a
    /// cost: if the member's user edits a copy before the member is back, the edit is merged
    /// against the newer base, and a concurrent hub edit of the same field can be overwritten
    /// without a conflict record.
    pub skip_unobservable_members: bool,
}

/// The status text of a folder whose pass started writing and has not finished; the next pass
/// sees it and checks every entity of the folder.
const INTERRUPTED: &str = "sync interrupted before all planned writes completed";

/// How many batches of items a folder's observation reads at once (see `observe`).
const READ_AHEAD: usize = 2;

/// Prefix of the version recorded for a copy found by crash recovery: never a server's version,
/// so the copy is fetched and compared at its next observation.
const RECOVERED_VERSION: &str = "recovered:";

/// What one pass did in one folder.
#[derive(Debug, Default)]
pub struct MemberSyncReport {
    /// How many changes were observed (new, changed and deleted items).
    pub observed: usize,
    /// Why the folder could not be observed; it was left out of this pass.
    pub error: Option<Error>,
    /// The writes to the folder.
    pub execution: MemberReport,
}

impl MemberSyncReport {
    /// Whether the folder was observed and every write to it completed.
    pub fn is_clean(&self) -> bool {
        self.error.is_none() && self.execution.is_clean()
    }
}

/// What one pass did.
#[derive(Debug)]
pub struct SyncReport {
    /// The group.
    pub group: GroupId,
    /// Open create intents whose copy was found and recorded.
    pub recovered: usize,
    /// Open create intents whose copy did not exist (dropped; the copy is created again).
    pub abandoned: usize,
    /// How many actions the plan held.
    pub planned: usize,
    /// Conflicts resolved by this pass.
    pub conflicts: Vec<ConflictRecord>,
    /// Per folder, how many of the planned writes revert a one-way member's local change.
    pub reverts: BTreeMap<MemberId, usize>,
    /// Per folder (the hub included).
    pub members: BTreeMap<MemberId, MemberSyncReport>,
}

impl SyncReport {
    /// Whether every folder was observed and every write completed.
    pub fn is_clean(&self) -> bool {
        self.members.values().all(MemberSyncReport::is_clean)
    }

    /// How many server writes completed.
    pub fn written(&self) -> usize {
        self.members.values().map(|m| m.execution.written()).sum()
    }
}

/// What observing one folder produced.
#[derive(Debug)]
struct FolderView {
    observation: FolderObservation,
    /// Writes about the user's own items (new versions, deletions): recorded, never fetched.
    foreign: Vec<StateWrite>,
    /// Entities the observations touch.
    touched: BTreeSet<EntityId>,
    /// Match keys of new items.
    keys: BTreeSet<String>,
}

/// Everything needed to execute a pass, once planned.
struct Prepared {
    plan: Plan,
    /// The group as planned: folders that could not be observed are left out.
    planned_group: SyncGroup,
    statuses: BTreeMap<MemberId, MemberStatus>,
    members: BTreeMap<MemberId, MemberSyncReport>,
    foreign: Vec<StateWrite>,
}

/// Told the plan of a pass before the pass writes it (see [`GroupSync::on_planned`]).
pub type PlannedCallback = Arc<dyn Fn(&Plan) + Send + Sync>;

/// Runs sync passes of one group over its folders' connectors and a state store.
pub struct GroupSync {
    group: SyncGroup,
    store: Arc<dyn StateStore>,
    connectors: BTreeMap<MemberId, Arc<dyn Connector>>,
    options: SyncOptions,
    views: crate::view::MemberViews,
    on_planned: Option<PlannedCallback>,
}

impl GroupSync {
    /// A runner for `group`; `connectors` must hold one connector per folder (hub included).
    pub fn new(
        group: SyncGroup,
        store: Arc<dyn StateStore>,
        connectors: BTreeMap<MemberId, Arc<dyn Connector>>,
    ) -> Result<Self> {
        group.validate()?;
        if let Some(missing) = group.folders().find(|m| !connectors.contains_key(*m)) {
            return Err(Error::Config { message: format!("group {}: no connector for folder {missing}", group.id) });
        }
        Ok(GroupSync {
            group,
            store,
            connectors,
            options: SyncOptions::default(),
            views: Default::default(),
            on_planned: None,
        })
    }

    /// Sets what one-way members receive (filters and modifications; see [`crate::view`]).
    pub fn with_views(mut self, views: crate::view::MemberViews) -> Self {
        self.views = views;
        self
    }

    /// Calls `callback` with each pass's plan once planned, before anything is written: lets a
    /// caller report progress against the number of writes (progress bars of long initial syncs).
    pub fn on_planned(mut self, callback: PlannedCallback) -> Self {
        self.on_planned = Some(callback);
        self
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: SyncOptions) -> Self {
        self.options = options;
        self
    }

    /// The group.
    pub fn group(&self) -> &SyncGroup {
        &self.group
    }

    /// Runs one pass. Failed actions (and, with [`SyncOptions::skip_unobservable_members`],
    /// members that could not be observed) are reported in the [`SyncReport`]; the answer is an
    /// error when a folder cannot be observed, the mass-delete guard stops the group, or the state
    /// store fails. Then nothing of the plan is written (only recovered intents are recorded), and
    /// the next pass starts over from the same tokens.
    pub async fn run(&self) -> Result<SyncReport> {
        let span = tracing::info_span!("sync", group = %self.group.id);
        async {
            let mut report = SyncReport {
                group: self.group.id.clone(),
                recovered: 0,
                abandoned: 0,
                planned: 0,
                conflicts: Vec::new(),
                reverts: BTreeMap::new(),
                members: BTreeMap::new(),
            };
            (report.recovered, report.abandoned) = self.recover().await?;
            let Prepared { mut plan, planned_group, statuses, members, foreign } = self.prepare().await?;
            report.members = members;
            report.planned = plan.actions.len();
            report.conflicts = plan.conflicts.clone();
            for action in &plan.actions {
                if let Action::Create { reason: Reason::Revert, .. } | Action::Update { reason: Reason::Revert, .. } =
                    action
                {
                    *report.reverts.entry(action.member().clone()).or_default() += 1;
                }
            }
            // The foreign items' versions and an interruption marker for every folder about to be
            // written go with the plan's own state, in its one transaction.
            plan.state.extend(foreign);
            let writing: BTreeSet<MemberId> = plan.actions.iter().map(|a| a.member().clone()).collect();
            for member in &writing {
                let mut status = statuses.get(member).cloned().unwrap_or_default();
                status.last_error = Some(INTERRUPTED.to_owned());
                plan.state.push(StateWrite::SetMemberStatus { member: member.clone(), status });
            }
            tracing::info!(actions = plan.actions.len(), conflicts = plan.conflicts.len(), "executing plan");
            if let Some(callback) = &self.on_planned {
                callback(&plan);
            }
            let executor =
                Executor::new(&planned_group, self.store.as_ref(), &self.connectors, self.options.executor.clone());
            // Each folder that received copies reads its change feed once more as soon as its
            // writes are done (see `settle`), while other folders are still being written.
            let ExecutionReport { members: executed } = executor
                .execute_then(plan, |member, _, created| {
                    let connector = self.connectors.get(&member).filter(|c| {
                        !created.is_empty() && c.capabilities().change_detection == ChangeDetection::Incremental
                    });
                    async move {
                        match connector {
                            Some(connector) => self.settle(&member, connector, &created).await,
                            None => Ok(()),
                        }
                    }
                })
                .await?;
            for (member, execution) in executed {
                report.members.entry(member).or_default().execution = execution;
            }
            self.record_statuses(&planned_group, &statuses, &report).await?;
            tracing::info!(written = report.written(), clean = report.is_clean(), "pass done");
            Ok(report)
        }
        .instrument(span)
        .await
    }

    /// Observes and plans without writing anything (no recovery, no state, no server writes):
    /// the dry run an admin reads, and the "is the next plan empty?" check of the tests.
    pub async fn dry_run(&self) -> Result<Plan> {
        let span = tracing::info_span!("dry_run", group = %self.group.id);
        async {
            let Prepared { mut plan, foreign, .. } = self.prepare().await?;
            plan.state.extend(foreign);
            Ok(plan)
        }
        .instrument(span)
        .await
    }

    fn context(&self, member: &MemberId, connector: &Arc<dyn Connector>, operation: &'static str) -> ErrorContext {
        ErrorContext::operation(operation)
            .with_group(self.group.id.clone())
            .with_member(member.clone())
            .with_folder(connector.describe())
    }

    /// Resolves open create intents by origin lookup; answers (recovered, abandoned).
    async fn recover(&self) -> Result<(usize, usize)> {
        let pending = self.store.pending_creates(&self.group.id).await?;
        if pending.is_empty() {
            return Ok((0, 0));
        }
        let mut by_member: BTreeMap<MemberId, Vec<_>> = BTreeMap::new();
        for p in pending {
            by_member.entry(p.member.clone()).or_default().push(p);
        }
        let (mut recovered, mut abandoned) = (0, 0);
        for (member, intents) in by_member {
            let Some(connector) = self.connectors.get(&member) else {
                // The folder left the group: its intents mean nothing any more.
                let writes: Vec<StateWrite> = intents
                    .iter()
                    .map(|p| StateWrite::RemovePending { entity: p.entity.clone(), member: member.clone() })
                    .collect();
                self.store.apply(&self.group.id, StateTransaction::from(writes)).await?;
                continue;
            };
            let stamps: Vec<OriginStamp> = intents.iter().map(|p| p.origin.clone()).collect();
            let found = match with_retry(&self.options.executor, || connector.find_by_origin(&stamps)).await {
                Ok(found) => found,
                Err(e) => {
                    // Keep the intents: the next pass looks again. Planning this folder now could
                    // duplicate the copies, so the pass stops here.
                    return Err(e.in_context(&self.context(&member, connector, "recover")));
                }
            };
            let ids: Vec<EntityId> = intents.iter().map(|p| p.entity.clone()).collect();
            let records: BTreeMap<EntityId, _> =
                self.store.entities(&self.group.id, &ids).await?.into_iter().map(|r| (r.id.clone(), r)).collect();
            let mut writes = Vec::new();
            let mut adopted_any = false;
            for intent in &intents {
                writes.push(StateWrite::RemovePending { entity: intent.entity.clone(), member: member.clone() });
                let copy = found.iter().find(|f| f.origin.as_ref() == Some(&intent.origin));
                let record = records.get(&intent.entity);
                match (copy, record) {
                    (Some(copy), Some(record)) => {
                        let slot = record.replicas.get(&member).and_then(ReplicaSlot::replica);
                        if slot.is_none() {
                            // The copy holds what the create wrote (the base), unless the user
                            // edited it since. Record what was written, under a version no server
                            // answers: the observation of this pass (the copy is newer than the
                            // folder's token, and listings show every copy) then fetches the copy
                            // and classifies it like any other: in sync, or changed by its user.
                            let written = record.base_hash().unwrap_or_else(|| copy.item.content_hash());
                            writes.push(StateWrite::PutReplica {
                                entity: intent.entity.clone(),
                                member: member.clone(),
                                slot: ReplicaSlot::Present(ReplicaRecord {
                                    item_id: copy.id.clone(),
                                    version: Version::new(format!("{RECOVERED_VERSION}{}", copy.version)),
                                    hash: written,
                                    ownership: Ownership::Created,
                                    ignored_base: None,
                                }),
                            });
                            recovered += 1;
                            adopted_any = true;
                            tracing::info!(entity = %intent.entity, member = %member, "recovered an interrupted create");
                        }
                    }
                    _ => {
                        abandoned += 1;
                        tracing::info!(entity = %intent.entity, member = %member, "interrupted create did not happen");
                    }
                }
            }
            if adopted_any {
                // The folder's next observation lists it from the beginning. A change feed
                // reports nothing of an item created and deleted after its token, so if the
                // observation that confirms these copies fails and the user deletes one before
                // the next, only a complete listing (compared with state) shows it gone.
                writes.push(StateWrite::SetToken { member: member.clone(), token: None });
            }
            self.store.apply(&self.group.id, StateTransaction::from(writes)).await?;
        }
        Ok((recovered, abandoned))
    }

    /// Observes every folder, loads what the observations touch, and plans.
    async fn prepare(&self) -> Result<Prepared> {
        let mut statuses = BTreeMap::new();
        for member in self.group.folders() {
            statuses.insert(member.clone(), self.store.member_status(&self.group.id, member).await?);
        }
        let limit = self.options.executor.max_concurrent_folders.max(1);
        let folders: Vec<(MemberId, Arc<dyn Connector>)> =
            self.group.folders().filter_map(|m| self.connectors.get(m).map(|c| (m.clone(), Arc::clone(c)))).collect();
        // The futures are built before awaiting (no closure inside the awaited stream), so that
        // the pass future is `Send` for every lifetime and callers can `tokio::spawn` it.
        let observations_in_flight: Vec<_> = folders
            .into_iter()
            .map(|(member, connector)| {
                let span = tracing::info_span!("observe", member = %member);
                async move {
                    let view = self.observe(&member, &connector).await;
                    (member, view)
                }
                .instrument(span)
            })
            .collect();
        let views: Vec<(MemberId, Result<FolderView>)> =
            futures::stream::iter(observations_in_flight).buffer_unordered(limit).collect().await;

        let mut members: BTreeMap<MemberId, MemberSyncReport> = BTreeMap::new();
        let mut planned_group = self.group.clone();
        let mut observations = Vec::new();
        let mut foreign = Vec::new();
        let mut touched = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for (member, view) in views {
            let entry = members.entry(member.clone()).or_default();
            match view {
                Ok(view) => {
                    entry.observed = view.observation.changes.len();
                    observations.push(view.observation);
                    foreign.extend(view.foreign);
                    touched.extend(view.touched);
                    keys.extend(view.keys);
                }
                Err(error) if self.group.is_hub(&member) || !self.options.skip_unobservable_members => {
                    return Err(error);
                }
                Err(error) => {
                    tracing::warn!(member = %member, error = %error, "folder left out of this pass");
                    planned_group.members.retain(|m| m.id != member);
                    entry.error = Some(error);
                }
            }
        }

        // Load what the planner may read.
        let mut match_keys = BTreeMap::new();
        if !keys.is_empty() {
            let keys: Vec<String> = keys.into_iter().collect();
            for (key, entity) in self.store.entities_by_match_key(&self.group.id, &keys).await? {
                touched.insert(entity.clone());
                match_keys.entry(key).or_insert(entity);
            }
        }
        let full_check = planned_group.folders().any(|m| {
            let status = statuses.get(m).cloned().unwrap_or_default();
            !status.initialized || status.last_error.is_some()
        });
        if full_check {
            let mut after: Option<EntityId> = None;
            loop {
                let page = self.store.entity_ids(&self.group.id, after.as_ref(), 1000).await?;
                let Some(last) = page.last().cloned() else { break };
                touched.extend(page);
                after = Some(last);
            }
        }
        let ids: Vec<EntityId> = touched.into_iter().collect();
        let mut entities = BTreeMap::new();
        for chunk in ids.chunks(1000) {
            for record in self.store.entities(&self.group.id, chunk).await? {
                entities.insert(record.id.clone(), record);
            }
        }
        let mut folder_sizes = BTreeMap::new();
        for member in planned_group.folders() {
            folder_sizes.insert(member.clone(), self.store.replica_count(&self.group.id, member).await?);
        }
        let initialized = statuses.iter().filter(|(_, s)| s.initialized).map(|(m, _)| m.clone()).collect();
        let input = PlanInput {
            entities,
            match_keys,
            observations,
            folder_sizes,
            allow_mass_delete: self.options.allow_mass_delete,
            now: chrono::Utc::now(),
            initialized,
        };
        tracing::debug!(entities = input.entities.len(), full_check, "planning");
        let plan = planner::plan_with_views(&planned_group, &input, &self.views)?;
        Ok(Prepared { plan, planned_group, statuses, members, foreign })
    }

    /// Looks at one folder: what changed since the last pass.
    async fn observe(&self, member: &MemberId, connector: &Arc<dyn Connector>) -> Result<FolderView> {
        let context = self.context(member, connector, "observe");
        let stored_token = self.store.token(&self.group.id, member).await?;
        let retry = &self.options.executor;
        // (id -> version) of items reported present, ids reported gone, and whether the listing is
        // complete (then every known item not listed is gone).
        let mut present: BTreeMap<ItemId, Version> = BTreeMap::new();
        let mut gone: BTreeSet<ItemId> = BTreeSet::new();
        let mut token = None;
        let complete = match connector.capabilities().change_detection {
            ChangeDetection::Incremental => {
                let mut from = stored_token.clone();
                let mut restarted = false;
                loop {
                    match with_retry(retry, || connector.changes(from.as_ref())).await {
                        Ok(page) => {
                            for change in page.changes {
                                match change {
                                    Change::Upserted(v) => {
                                        gone.remove(&v.id);
                                        present.insert(v.id, v.version);
                                    }
                                    Change::Deleted(id) => {
                                        present.remove(&id);
                                        gone.insert(id);
                                    }
                                }
                            }
                            from = Some(page.token);
                            if !page.more {
                                break;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::InvalidSyncToken && from.is_some() => {
                            tracing::info!("sync token refused, starting over and diffing against state");
                            present.clear();
                            gone.clear();
                            from = None;
                            restarted = true;
                        }
                        Err(e) => return Err(e.in_context(&context)),
                    }
                }
                token = from;
                // A listing from the beginning is complete: what it lacks is gone.
                stored_token.is_none() || restarted
            }
            ChangeDetection::Snapshot => {
                let mut cursor = None;
                loop {
                    let page = with_retry(retry, || connector.list(cursor.as_ref()))
                        .await
                        .map_err(|e| e.in_context(&context))?;
                    present.extend(page.items.into_iter().map(|v| (v.id, v.version)));
                    match page.next {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
                true
            }
        };
        // An unchanged token is not written again (a quiet folder plans nothing).
        let token = token.filter(|t| Some(t) != stored_token.as_ref());

        // What state knows about the ids concerned.
        let known: BTreeMap<ItemId, KnownItem> = if complete {
            self.store.known_items(&self.group.id, member).await?
        } else {
            let ids: Vec<ItemId> = present.keys().chain(gone.iter()).cloned().collect();
            self.store.lookup_items(&self.group.id, member, &ids).await?
        }
        .into_iter()
        .map(|k| (k.id.clone(), k))
        .collect();
        if complete {
            gone.extend(known.keys().filter(|id| !present.contains_key(*id)).cloned());
        }

        let mut view = FolderView {
            observation: FolderObservation { member: member.clone(), changes: Vec::new(), token },
            foreign: Vec::new(),
            touched: BTreeSet::new(),
            keys: BTreeSet::new(),
        };
        for id in gone {
            match known.get(&id) {
                Some(KnownItem { entity: Some(entity), .. }) => {
                    view.touched.insert(entity.clone());
                    view.observation.changes.push(Observed::Deleted(id));
                }
                Some(KnownItem { entity: None, .. }) => {
                    view.foreign.push(StateWrite::RemoveForeign { member: member.clone(), id });
                }
                None => {}
            }
        }
        let mut fetch = Vec::new();
        for (id, version) in present {
            match known.get(&id) {
                Some(k) if k.version == version => {}
                // The user's own item changed: remember its version, never read it.
                Some(KnownItem { entity: None, .. }) => {
                    view.foreign.push(StateWrite::PutForeign { member: member.clone(), id, version });
                }
                Some(KnownItem { entity: Some(entity), .. }) => {
                    view.touched.insert(entity.clone());
                    fetch.push(id);
                }
                None => fetch.push(id),
            }
        }
        let batch = connector.capabilities().max_batch.max(1);
        // The next batch is asked for while this one is read: the server prepares one answer
        // while the engine takes the other apart, instead of each waiting for the other (and
        // over a slow link, half the round trips). Answers are taken in order.
        // (The reads are built before awaiting, as in `prepare`, to keep the pass future `Send`.)
        let reads: Vec<_> = fetch
            .chunks(batch)
            .map(|chunk| async move { (chunk, with_retry(retry, || connector.get(chunk)).await) })
            .collect();
        let mut answers = futures::stream::iter(reads).buffered(READ_AHEAD);
        while let Some((chunk, answer)) = answers.next().await {
            let results = answer.map_err(|e| e.in_context(&context))?;
            for (id, result) in chunk.iter().zip(results) {
                match result {
                    Ok(fetched) => self.note_fetched(&mut view, fetched),
                    // Gone between listing and reading.
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        if known.get(id).is_some_and(|k| k.entity.is_some()) {
                            view.observation.changes.push(Observed::Deleted(id.clone()));
                        }
                    }
                    Err(e) => return Err(e.in_context(&context)),
                }
            }
        }
        tracing::debug!(changes = view.observation.changes.len(), foreign = view.foreign.len(), "observed");
        Ok(view)
    }

    fn note_fetched(&self, view: &mut FolderView, fetched: FetchedItem) {
        if let Some(stamp) = fetched.origin.as_ref().filter(|o| o.group == self.group.id) {
            view.touched.insert(stamp.entity.clone());
        }
        if let Some(key) = self.group.match_key_of(&fetched.item) {
            view.keys.insert(key);
        }
        view.observation.changes.push(Observed::Present(fetched));
    }

    /// Brings an incremental folder's token past the copies this pass created in it.
    ///
    /// A change feed reports the deletion only of items it has reported before (Exchange's
    /// SyncFolderItems works so): a copy created in this pass and deleted by its user before the
    /// feed reported it would otherwise never be seen as deleted. So the feed is read once more
    /// now. When it reports every new copy as created and nothing else changed, its token is
    /// stored. Otherwise (a new copy is already gone or changed, or the user changed something
    /// meanwhile) the token is cleared, so that the next pass lists the folder completely and
    /// diffs it against state, which finds every change including the deletion. When the feed
    /// cannot be read, the token is cleared too: read from the stored token, the next pass would
    /// not see a new copy that its user deleted meanwhile.
    ///
    /// The new copies' versions are compared with what their creates answered (which is what
    /// state recorded for them); only other items the feed reports are looked up in state.
    async fn settle(&self, member: &MemberId, connector: &Arc<dyn Connector>, created: &[ItemVersion]) -> Result<()> {
        let stored = self.store.token(&self.group.id, member).await?;
        let mut from = stored.clone();
        let mut upserted: HashMap<ItemId, Version> = HashMap::with_capacity(created.len());
        let mut others = false;
        loop {
            let page = match connector.changes(from.as_ref()).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::info!(%member, %error, "could not read the change feed after creating copies: full listing next pass");
                    if stored.is_some() {
                        let clear = StateWrite::SetToken { member: member.clone(), token: None };
                        self.store.apply(&self.group.id, StateTransaction::from(vec![clear])).await?;
                    }
                    return Ok(());
                }
            };
            for change in page.changes {
                match change {
                    Change::Upserted(v) => {
                        upserted.insert(v.id, v.version);
                    }
                    Change::Deleted(_) => others = true,
                }
            }
            from = Some(page.token);
            if !page.more {
                break;
            }
        }
        let mut missing = false;
        for copy in created {
            match upserted.remove(&copy.id) {
                Some(version) => others |= version != copy.version,
                None => missing = true,
            }
        }
        // What is left was not created by this pass: an update of this pass, or a user's change.
        if !others && !upserted.is_empty() {
            let ids: Vec<ItemId> = upserted.keys().cloned().collect();
            let known: HashMap<ItemId, Version> = self
                .store
                .lookup_items(&self.group.id, member, &ids)
                .await?
                .into_iter()
                .map(|k| (k.id, k.version))
                .collect();
            others = upserted.iter().any(|(id, version)| known.get(id) != Some(version));
        }
        let token = if missing || others { None } else { from };
        if token.is_none() {
            tracing::info!(%member, missing, others, "new copies changed before the feed reported them: full listing next pass");
        }
        if token != stored {
            self.store
                .apply(
                    &self.group.id,
                    StateTransaction::from(vec![StateWrite::SetToken { member: member.clone(), token }]),
                )
                .await?;
        }
        Ok(())
    }

    /// Records each planned folder's status after the pass.
    async fn record_statuses(
        &self,
        planned_group: &SyncGroup,
        before: &BTreeMap<MemberId, MemberStatus>,
        report: &SyncReport,
    ) -> Result<()> {
        let now = chrono::Utc::now();
        let mut writes = Vec::new();
        for member in self.group.folders() {
            let previous = before.get(member).cloned().unwrap_or_default();
            let status = match report.members.get(member) {
                Some(r) if r.error.is_some() => {
                    MemberStatus { last_error: r.error.as_ref().map(ToString::to_string), ..previous }
                }
                Some(r) if planned_group.folders().any(|m| m == member) => MemberStatus {
                    initialized: true,
                    last_sync: Some(now),
                    last_error: r.execution.failed.first().map(|f| {
                        format!("{} of the planned writes failed; first: {}", r.execution.failed.len(), f.error)
                    }),
                },
                _ => continue,
            };
            writes.push(StateWrite::SetMemberStatus { member: member.clone(), status });
        }
        self.store.apply(&self.group.id, StateTransaction::from(writes)).await
    }
}

/// Runs `call`, retrying a throttled answer after the server's delay, a bounded number of times.
async fn with_retry<T, F, Fut>(options: &ExecutorOptions, call: F) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(e) if e.kind() == ErrorKind::Throttled && attempt < options.max_throttle_retries => {
                attempt += 1;
                let delay = e.retry_after().unwrap_or(options.default_retry_after).min(options.max_retry_after);
                tracing::info!(attempt, delay_ms = delay.as_millis() as u64, "throttled, waiting");
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}
