//! One sync pass of a group: [`GroupSync`].
//!
//! A pass:
//! 1. **recovers** open create intents left by an interrupted pass: each is looked up by its
//!    origin stamp; a copy found becomes the replica, otherwise the intent is dropped (and the
//!    copy is created again by this pass);
//! 2. **observes** every folder it can: incremental folders page through `changes(token)` (an
//!    invalid token starts over from the beginning and diffs against what state knows); snapshot
//!    folders list every (id, version) and diff. New and changed versions are fetched, vanished
//!    items are reported deleted; the user's own items only get their version recorded, never
//!    read;
//! 3. **leaves out** the member folders it cannot see truthfully, and says why (see
//!    [`FolderCondition`]): a member that cannot be opened or observed (no mailbox, no rights, a
//!    server error), one whose server asked to back off ("parked" until then: no request is sent
//!    to it before), one whose configured folder now resolves to another server folder (a
//!    re-home: see [`GroupSync::rehome`]), and one whose every known copy vanished at once
//!    (held until an admin confirms). The rest of the group syncs. The hub cannot be left out:
//!    then the pass stops;
//! 4. **loads** the entities the observations touch (every entity for a folder whose initial
//!    sync runs, whose previous pass was interrupted, or that an admin asked to resync; the
//!    entities whose writes failed last time);
//! 5. **plans** ([`crate::planner::plan`]) and **executes** ([`crate::executor::Executor`]);
//! 6. records each folder's status: initialized, last sync, the folder's identity and how the
//!    pass ended for it.
//!
//! # Who retries what
//!
//! The engine never sends a request twice. A connector retries its own requests as its server
//! wants (the EWS client honours Exchange's back-off in full) and marks what it gave up on as
//! exhausted. The engine turns what is left into folder conditions: throttling parks the folder
//! until the server's back-off ends, anything else leaves the folder out of this pass, and the
//! next pass (the service schedules it) takes it up again. A member left out keeps its state: its
//! copies are not deleted, not updated, and its users' edits made meanwhile are merged against
//! the content those copies last held ([`crate::state::EntityRecord::earlier_bases`]).
//!
//! # Who writes state
//!
//! Every state write of a pass goes through the [`Executor`]: the planner's (bases, observed
//! versions, tokens, conflicts), each action's outcome, and the engine's recovery, settled
//! tokens and folder statuses.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::Utc;
use futures::StreamExt;
use tracing::Instrument;

use crate::connector::{Change, ChangeDetection, Connector, FetchedItem, ItemVersion};
use crate::error::{Error, ErrorContext, ErrorKind, Result};
use crate::executor::{Backoff, ExecutionReport, Executor, ExecutorOptions, MemberReport, UNREAD_VERSION};
use crate::group::SyncGroup;
use crate::id::{EntityId, GroupId, ItemId, MemberId, Version};
use crate::origin::OriginStamp;
use crate::plan::{Action, FolderObservation, Notice, Observed, Plan, PlanInput, Reason};
use crate::planner;
use crate::state::{
    ConflictRecord, FolderCondition, FolderIdentity, KnownItem, MemberStatus, Ownership, ReplicaRecord, ReplicaSlot,
    StateStore, StateWrite,
};

/// How a pass behaves.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// How many folders are written at once.
    pub executor: ExecutorOptions,
    /// Lets this pass exceed the mass-delete guard and carry out the deletions of folders whose
    /// every copy vanished (an admin confirmed).
    pub allow_mass_delete: bool,
    /// When a member folder cannot be opened or observed: `true` (the default) leaves that member
    /// out and syncs the others; `false` stops the pass. Leaving a member out is safe: nothing is
    /// propagated from what the pass could not see, its copies are kept, and an edit its user
    /// makes meanwhile is merged against the content the copy last held (the entity keeps that
    /// earlier base), so no concurrent edit of another side is overwritten without a record.
    pub skip_unobservable_members: bool,
    /// Folders to compare completely in this pass, keeping their state (an admin's resync).
    pub full_check: BTreeSet<MemberId>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            executor: ExecutorOptions::default(),
            allow_mass_delete: false,
            skip_unobservable_members: true,
            full_check: BTreeSet::new(),
        }
    }
}

/// How many batches of items a folder's observation reads at once (see `observe`).
const READ_AHEAD: usize = 2;

/// What one pass did in one folder.
#[derive(Debug, Default)]
pub struct MemberSyncReport {
    /// How many changes were observed (new, changed and deleted items).
    pub observed: usize,
    /// Why the folder was left out of this pass (it could not be opened or observed, the server
    /// asked it to back off, it moved, or every copy vanished), with the error when there was one.
    pub left_out: Option<FolderCondition>,
    /// The error that left the folder out, when one did.
    pub error: Option<Error>,
    /// The writes to the folder.
    pub execution: MemberReport,
}

impl MemberSyncReport {
    /// Whether the folder was observed and every write to it completed.
    pub fn is_clean(&self) -> bool {
        self.left_out.is_none() && self.execution.is_clean()
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
    /// What the admin should know that is not a write: folders left out, users' own items kept.
    pub notices: Vec<Notice>,
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

    /// Whether another pass should follow soon although nothing failed: users' edits raced with
    /// this pass's writes, or a deleted copy was restored because it had been edited.
    pub fn needs_follow_up(&self) -> bool {
        self.members.values().any(|m| m.execution.needs_follow_up())
    }

    /// The earliest time a folder of this pass was parked until (the server asked it to back off).
    pub fn parked_until(&self) -> Option<chrono::DateTime<Utc>> {
        self.members
            .values()
            .filter_map(|m| match (&m.left_out, &m.execution.parked) {
                (Some(FolderCondition::Parked { until, .. }), _) => Some(*until),
                (_, Some(backoff)) => Some(backoff.until),
                _ => None,
            })
            .min()
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
    /// The group as planned: folders left out are not in it.
    planned_group: SyncGroup,
    statuses: BTreeMap<MemberId, MemberStatus>,
    members: BTreeMap<MemberId, MemberSyncReport>,
    /// The identity of each observed folder, as its connector names it.
    identities: BTreeMap<MemberId, Option<String>>,
}

/// Told the plan of a pass before the pass writes it (see [`GroupSync::on_planned`]).
pub type PlannedCallback = Arc<dyn Fn(&Plan) + Send + Sync>;

/// Runs sync passes of one group over its folders' connectors and a state store.
pub struct GroupSync {
    group: SyncGroup,
    store: Arc<dyn StateStore>,
    connectors: BTreeMap<MemberId, Arc<dyn Connector>>,
    /// Members whose folder could not be opened, with the reason.
    unavailable: BTreeMap<MemberId, Error>,
    /// How each folder is described as configured (for its recorded identity).
    paths: BTreeMap<MemberId, String>,
    options: SyncOptions,
    views: crate::view::MemberViews,
    on_planned: Option<PlannedCallback>,
}

impl GroupSync {
    /// A runner for `group`; `connectors` holds one connector per folder. The hub's is required;
    /// a member without one is left out of every pass (see [`GroupSync::with_unavailable`] to say
    /// why).
    pub fn new(
        group: SyncGroup,
        store: Arc<dyn StateStore>,
        connectors: BTreeMap<MemberId, Arc<dyn Connector>>,
    ) -> Result<Self> {
        group.validate()?;
        if !connectors.contains_key(&group.hub) {
            return Err(Error::Config {
                message: format!("group {}: no connector for the hub {}", group.id, group.hub),
            });
        }
        let unavailable = group
            .members
            .iter()
            .filter(|m| !connectors.contains_key(&m.id))
            .map(|m| {
                let error = Error::permanent(
                    "no connector for this member's folder",
                    ErrorContext::operation("open").with_group(group.id.clone()).with_member(m.id.clone()),
                );
                (m.id.clone(), error)
            })
            .collect();
        Ok(GroupSync {
            group,
            store,
            connectors,
            unavailable,
            paths: BTreeMap::new(),
            options: SyncOptions::default(),
            views: Default::default(),
            on_planned: None,
        })
    }

    /// Says why a member's folder could not be opened (no mailbox, impersonation denied, folder
    /// access denied): the member is left out of every pass of this runner, reported with the
    /// reason, and the rest of the group syncs.
    pub fn with_unavailable(mut self, member: MemberId, error: Error) -> Self {
        self.connectors.remove(&member);
        self.unavailable.insert(member, error);
        self
    }

    /// Names each folder as configured (e.g. `alice@contoso.test/contacts`), recorded with its
    /// identity; folders not named are described by their connector.
    pub fn with_paths(mut self, paths: BTreeMap<MemberId, String>) -> Self {
        self.paths = paths;
        self
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

    fn executor<'a>(&'a self, group: &'a SyncGroup) -> Executor<'a> {
        Executor::new(group, self.store.as_ref(), &self.connectors, self.options.executor.clone())
    }

    /// The folder identity `member` has in state and the one its connector names now, when they
    /// differ: the configured folder resolves to another server folder (the target changed, the
    /// folder was recreated or moved). Such a folder is never observed as "everything deleted";
    /// [`GroupSync::rehome`] moves the member over.
    pub async fn moved_folder(&self, member: &MemberId) -> Result<Option<(FolderIdentity, String)>> {
        let Some(connector) = self.connectors.get(member) else { return Ok(None) };
        let status = self.store.member_status(&self.group.id, member).await?;
        Ok(match (status.folder, connector.folder_id()) {
            (Some(known), Some(now)) if known.id != now => Some((known, now)),
            _ => None,
        })
    }

    /// Moves a member (or the hub) whose configured folder now resolves to another server folder:
    /// the copies in the old folder are handled like a leave (with `remove_copies` and a connector
    /// to the old folder, the copies the group created there are deleted, each only while it holds
    /// what the group wrote; otherwise they are forgotten and stay as their user's own), then the
    /// group forgets the old folder, and the next pass runs an initial sync of the new one, with
    /// matching (design rule 11). Answers how many copies were deleted.
    pub async fn rehome(
        &self,
        member: &MemberId,
        old_folder: Option<&Arc<dyn Connector>>,
        remove_copies: bool,
    ) -> Result<usize> {
        let span = tracing::info_span!("rehome", group = %self.group.id, member = %member);
        async {
            let deleted = self.executor(&self.group).leave(member, old_folder, remove_copies).await?;
            tracing::info!(deleted, "folder re-homed: the new folder gets an initial sync");
            Ok(deleted)
        }
        .instrument(span)
        .await
    }

    /// Runs one pass. Failed actions and members left out are reported in the [`SyncReport`];
    /// the answer is an error when the hub cannot be observed, the mass-delete guard stops the
    /// group, or the state store fails. Then nothing of the plan is written (only recovered
    /// intents are recorded), and the next pass starts over from the same tokens.
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
                notices: Vec::new(),
                members: BTreeMap::new(),
            };
            let statuses = self.statuses().await?;
            let mut skipped = self.skipped(&statuses);
            (report.recovered, report.abandoned) = self.recover(&mut skipped).await?;
            let Prepared { mut plan, planned_group, statuses, members, identities } =
                self.prepare(statuses, skipped).await?;
            report.members = members;
            report.planned = plan.actions.len();
            report.conflicts = plan.conflicts.clone();
            report.notices = plan.notices.clone();
            for action in &plan.actions {
                if let Action::Create { reason: Reason::Revert, .. } | Action::Update { reason: Reason::Revert, .. } =
                    action
                {
                    *report.reverts.entry(action.member().clone()).or_default() += 1;
                }
            }
            // An interruption marker for every folder about to be written goes with the plan's
            // own state, in its one transaction.
            let writing: BTreeSet<MemberId> = plan.actions.iter().map(|a| a.member().clone()).collect();
            for member in &writing {
                let mut status = statuses.get(member).cloned().unwrap_or_default();
                status.condition = FolderCondition::Interrupted;
                plan.state.push(StateWrite::SetMemberStatus { member: member.clone(), status });
            }
            tracing::info!(actions = plan.actions.len(), conflicts = plan.conflicts.len(), "executing plan");
            if let Some(callback) = &self.on_planned {
                callback(&plan);
            }
            let executor = self.executor(&planned_group);
            // Each folder that received copies reads its change feed once more as soon as its
            // writes are done (see `settle`), while other folders are still being written.
            let ExecutionReport { members: executed } = executor
                .execute_then(plan, |member, _, created| {
                    let connector = self.connectors.get(&member).filter(|c| {
                        !created.is_empty() && c.capabilities().change_detection == ChangeDetection::Incremental
                    });
                    let executor = &executor;
                    async move {
                        match connector {
                            Some(connector) => self.settle(executor, &member, connector, &created).await,
                            None => Ok(()),
                        }
                    }
                })
                .await?;
            for (member, execution) in executed {
                report.members.entry(member).or_default().execution = execution;
            }
            self.record_statuses(&executor, &planned_group, &statuses, &identities, &report).await?;
            tracing::info!(
                written = report.written(),
                clean = report.is_clean(),
                follow_up = report.needs_follow_up(),
                "pass done"
            );
            Ok(report)
        }
        .instrument(span)
        .await
    }

    /// Observes and plans without writing anything (no recovery, no state, no server writes):
    /// the dry run an admin reads, and the "is the next plan empty?" check of the tests. The
    /// plan's notices say which folders would be left out, and why.
    pub async fn dry_run(&self) -> Result<Plan> {
        let span = tracing::info_span!("dry_run", group = %self.group.id);
        async {
            let statuses = self.statuses().await?;
            let skipped = self.skipped(&statuses);
            let Prepared { plan, .. } = self.prepare(statuses, skipped).await?;
            Ok(plan)
        }
        .instrument(span)
        .await
    }

    async fn statuses(&self) -> Result<BTreeMap<MemberId, MemberStatus>> {
        let folders: Vec<MemberId> = self.group.folders().cloned().collect();
        self.store.member_statuses(&self.group.id, &folders).await
    }

    /// The folders this pass leaves out before sending anything: members that could not be
    /// opened, and folders still parked (no request may go to them before their back-off ends).
    fn skipped(
        &self,
        statuses: &BTreeMap<MemberId, MemberStatus>,
    ) -> BTreeMap<MemberId, (FolderCondition, Option<Error>)> {
        let now = Utc::now();
        let mut skipped = BTreeMap::new();
        for (member, error) in &self.unavailable {
            let reason = error.to_string();
            skipped.insert(
                member.clone(),
                (FolderCondition::Unobservable { reason }, Some(crate::executor::replicate(error))),
            );
        }
        for (member, status) in statuses {
            if let FolderCondition::Parked { until, reason } = &status.condition
                && *until > now
            {
                skipped
                    .entry(member.clone())
                    .or_insert_with(|| (FolderCondition::Parked { until: *until, reason: reason.clone() }, None));
            }
        }
        skipped
    }

    fn context(&self, member: &MemberId, connector: &Arc<dyn Connector>, operation: &'static str) -> ErrorContext {
        ErrorContext::operation(operation)
            .with_group(self.group.id.clone())
            .with_member(member.clone())
            .with_folder(connector.describe())
    }

    /// Resolves open create intents by origin lookup; answers (recovered, abandoned). A member
    /// whose intents cannot be looked up is left out of this pass (planning it could duplicate
    /// the copies); the hub's failure stops the pass.
    async fn recover(
        &self,
        skipped: &mut BTreeMap<MemberId, (FolderCondition, Option<Error>)>,
    ) -> Result<(usize, usize)> {
        let pending = self.store.pending_creates(&self.group.id).await?;
        if pending.is_empty() {
            return Ok((0, 0));
        }
        let executor = self.executor(&self.group);
        let mut by_member: BTreeMap<MemberId, Vec<_>> = BTreeMap::new();
        for p in pending {
            by_member.entry(p.member.clone()).or_default().push(p);
        }
        let (mut recovered, mut abandoned) = (0, 0);
        for (member, intents) in by_member {
            if skipped.contains_key(&member) {
                continue;
            }
            let Some(connector) = self.connectors.get(&member) else {
                // The folder left the group: its intents mean nothing any more.
                let writes: Vec<StateWrite> = intents
                    .iter()
                    .map(|p| StateWrite::RemovePending { entity: p.entity.clone(), member: member.clone() })
                    .collect();
                executor.apply(writes).await?;
                continue;
            };
            let stamps: Vec<OriginStamp> = intents.iter().map(|p| p.origin.clone()).collect();
            let found = match connector.find_by_origin(&stamps).await {
                Ok(found) => found,
                Err(e) => {
                    // Keep the intents: the next pass looks again.
                    let e = e.in_context(&self.context(&member, connector, "recover"));
                    if self.group.is_hub(&member) || !self.options.skip_unobservable_members {
                        return Err(e);
                    }
                    tracing::warn!(member = %member, error = %e, "cannot look up interrupted creates; member left out");
                    skipped.insert(member.clone(), (condition_of(&e), Some(e)));
                    continue;
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
                                    version: Version::new(format!("{UNREAD_VERSION}{}", copy.version)),
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
            executor.apply(writes).await?;
        }
        Ok((recovered, abandoned))
    }

    /// Observes every folder not left out, loads what the observations touch, and plans.
    async fn prepare(
        &self,
        statuses: BTreeMap<MemberId, MemberStatus>,
        mut skipped: BTreeMap<MemberId, (FolderCondition, Option<Error>)>,
    ) -> Result<Prepared> {
        if let Some((condition, error)) = skipped.remove(&self.group.hub) {
            return Err(error.unwrap_or_else(|| {
                let until = match &condition {
                    FolderCondition::Parked { until, .. } => Some(*until),
                    _ => None,
                };
                let wait = until.and_then(|u| (u - Utc::now()).to_std().ok());
                Error::throttled(wait, ErrorContext::operation("observe").with_group(self.group.id.clone()))
                    .exhausted()
                    .in_context(&ErrorContext::default().with_member(self.group.hub.clone()))
            }));
        }
        // A folder that now resolves to another server folder is not observed: its copies are
        // elsewhere, and comparing would call them all deleted.
        let mut identities = BTreeMap::new();
        for member in self.group.folders() {
            if skipped.contains_key(member) {
                continue;
            }
            let Some(connector) = self.connectors.get(member) else { continue };
            let now = connector.folder_id();
            let known = statuses.get(member).and_then(|s| s.folder.as_ref());
            if let (Some(known), Some(current)) = (known, now.as_ref())
                && &known.id != current
            {
                let reason = format!(
                    "{} now resolves to another server folder than the one holding the group's copies ({}); \
                     the member must be re-homed (its old copies are handled like a leave, the new folder gets an \
                     initial sync)",
                    connector.describe(),
                    known.path
                );
                if self.group.is_hub(member) {
                    return Err(Error::Config { message: format!("group {}: hub: {reason}", self.group.id) });
                }
                tracing::warn!(member = %member, "{reason}");
                skipped.insert(member.clone(), (FolderCondition::Unobservable { reason }, None));
                continue;
            }
            identities.insert(member.clone(), now);
        }

        let limit = self.options.executor.max_concurrent_folders.max(1);
        let folders: Vec<(MemberId, Arc<dyn Connector>)> = self
            .group
            .folders()
            .filter(|m| !skipped.contains_key(*m))
            .filter_map(|m| self.connectors.get(m).map(|c| (m.clone(), Arc::clone(c))))
            .collect();
        // The futures are built before awaiting (no closure inside the awaited stream), so that
        // the pass future is `Send` for every lifetime and callers can `tokio::spawn` it.
        let observations_in_flight: Vec<_> = folders
            .into_iter()
            .map(|(member, connector)| {
                let span = tracing::info_span!("observe", member = %member);
                let relist = statuses.get(&member).is_some_and(|s| self.needs_full_check(&member, s));
                async move {
                    let view = self.observe(&member, &connector, relist).await;
                    (member, view)
                }
                .instrument(span)
            })
            .collect();
        let views: Vec<(MemberId, Result<FolderView>)> =
            futures::stream::iter(observations_in_flight).buffer_unordered(limit).collect().await;

        let mut observed: BTreeMap<MemberId, FolderView> = BTreeMap::new();
        for (member, view) in views {
            match view {
                Ok(view) => {
                    observed.insert(member, view);
                }
                Err(error) if self.group.is_hub(&member) || !self.options.skip_unobservable_members => {
                    return Err(error);
                }
                Err(error) => {
                    tracing::warn!(member = %member, error = %error, "folder left out of this pass");
                    skipped.insert(member, (condition_of(&error), Some(error)));
                }
            }
        }

        // Plan; a member folder whose every copy vanished at once is held and the rest planned
        // again without it (the hub's stops the pass). Folders are counted only where the
        // guards need it (see `plan_input`); a plan that would delete more than the guard's
        // fixed allowance in a folder not counted is made again with every folder counted.
        let mut count_every_folder = false;
        loop {
            let planned_group = self.group.without(|m| skipped.contains_key(m));
            let input = self.plan_input(&planned_group, &statuses, &observed, count_every_folder).await?;
            match planner::plan_with_views(&planned_group, &input, &self.views) {
                Ok(mut plan) => {
                    // The user's own items' versions go with the plan's state, in its one
                    // transaction.
                    for member in planned_group.folders() {
                        if let Some(view) = observed.get(member) {
                            plan.state.extend(view.foreign.iter().cloned());
                        }
                    }
                    let mut members: BTreeMap<MemberId, MemberSyncReport> = BTreeMap::new();
                    for (member, view) in &observed {
                        members.entry(member.clone()).or_default().observed = view.observation.changes.len();
                    }
                    for (member, (condition, error)) in skipped {
                        plan.notices.push(Notice::LeftOut { member: member.clone(), condition: condition.clone() });
                        let entry = members.entry(member).or_default();
                        entry.left_out = Some(condition);
                        entry.error = error;
                    }
                    for member in planned_group.folders() {
                        let Some(id) = identities.get(member).cloned().flatten() else { continue };
                        let status = statuses.get(member).cloned().unwrap_or_default();
                        if status.folder.as_ref().map(|f| &f.id) != Some(&id) {
                            let path = self.path_of(member);
                            let status = MemberStatus { folder: Some(FolderIdentity { id, path }), ..status };
                            plan.state.push(StateWrite::SetMemberStatus { member: member.clone(), status });
                        }
                    }
                    return Ok(Prepared { plan, planned_group, statuses, members, identities });
                }
                Err(Error::MassDelete { member, .. })
                    if !count_every_folder && !input.folder_sizes.contains_key(&member) =>
                {
                    tracing::debug!(member = %member, "deletions beyond the guard's allowance: counting every folder");
                    count_every_folder = true;
                }
                Err(Error::Vanished { member, copies, .. })
                    if !self.group.is_hub(&member) && self.options.skip_unobservable_members =>
                {
                    tracing::warn!(member = %member, copies, "every copy of the group in this folder vanished at once; held until an admin confirms");
                    observed.remove(&member);
                    skipped.insert(member, (FolderCondition::Vanished { copies }, None));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// How a folder is described as configured.
    fn path_of(&self, member: &MemberId) -> String {
        self.paths
            .get(member)
            .cloned()
            .or_else(|| self.connectors.get(member).map(|c| c.describe()))
            .unwrap_or_else(|| member.to_string())
    }

    /// Loads what the planner may read for the observed folders of `planned_group`.
    ///
    /// The copies of a folder are counted (the mass-delete guards' denominator) only where a
    /// guard may need the count: folders whose observation reports deletions (the "every copy
    /// vanished" guard), or every folder with `count_every_folder`. Counting is the one step of
    /// a pass that reads every replica of the group (15,000,000 in an organisation of 3,000
    /// mailboxes and 5,000 contacts, seconds of work), and a pass that deletes nothing, or no
    /// more in a folder than the guard's fixed allowance ([`crate::MassDeleteGuard::min_count`]),
    /// does not need it: the caller plans again with every folder counted when the plan would
    /// delete more in a folder left uncounted.
    async fn plan_input(
        &self,
        planned_group: &SyncGroup,
        statuses: &BTreeMap<MemberId, MemberStatus>,
        observed: &BTreeMap<MemberId, FolderView>,
        count_every_folder: bool,
    ) -> Result<PlanInput> {
        let mut touched = BTreeSet::new();
        let mut keys = BTreeSet::new();
        let mut observations = Vec::new();
        for member in planned_group.folders() {
            let Some(view) = observed.get(member) else { continue };
            observations.push(view.observation.clone());
            touched.extend(view.touched.iter().cloned());
            keys.extend(view.keys.iter().cloned());
        }
        let mut match_keys = BTreeMap::new();
        if !keys.is_empty() {
            let keys: Vec<String> = keys.into_iter().collect();
            for (key, entity) in self.store.entities_by_match_key(&self.group.id, &keys).await? {
                touched.insert(entity.clone());
                match_keys.entry(key).or_insert(entity);
            }
        }
        // Entities whose writes failed last time are planned again (only those: one item the
        // server keeps refusing must not reload the group every pass). A folder compared with
        // every entity: its initial sync, an interrupted pass, an admin's resync, and a folder
        // back after being left out (parked, unobservable, held): the entities that changed
        // meanwhile were planned without it, and its deferred writes are found again so.
        let mut full_check = false;
        for member in planned_group.folders() {
            let status = statuses.get(member).cloned().unwrap_or_default();
            if let FolderCondition::FailedWrites { entities, .. } | FolderCondition::Recheck { entities } =
                &status.condition
            {
                touched.extend(entities.iter().cloned());
            }
            full_check |= self.needs_full_check(member, &status);
        }
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
            let deletions = observed
                .get(member)
                .is_some_and(|v| v.observation.changes.iter().any(|c| matches!(c, Observed::Deleted(_))));
            if count_every_folder || deletions {
                folder_sizes.insert(member.clone(), self.store.replica_count(&self.group.id, member).await?);
            }
        }
        let initialized = statuses.iter().filter(|(_, s)| s.initialized).map(|(m, _)| m.clone()).collect();
        tracing::debug!(entities = entities.len(), full_check, "planning");
        Ok(PlanInput {
            entities,
            match_keys,
            observations,
            folder_sizes,
            allow_mass_delete: self.options.allow_mass_delete,
            now: Utc::now(),
            initialized,
        })
    }

    /// Looks at one folder: what changed since the last pass.
    /// Whether a folder is compared with every entity and listed completely: its initial sync,
    /// an interrupted pass (a change feed read from its token cannot show a copy the pass created
    /// and its user deleted before the feed reported it), an admin's resync, and a folder back
    /// from being left out.
    fn needs_full_check(&self, member: &MemberId, status: &MemberStatus) -> bool {
        let condition = match &status.condition {
            FolderCondition::Clean | FolderCondition::FailedWrites { .. } | FolderCondition::Recheck { .. } => false,
            FolderCondition::Interrupted
            | FolderCondition::Unobservable { .. }
            | FolderCondition::Parked { .. }
            | FolderCondition::Vanished { .. } => true,
        };
        condition || !status.initialized || self.options.full_check.contains(member)
    }

    /// Looks at one folder: what changed since the last pass (`relist`: every item, compared
    /// with what state knows, whatever the folder's token says).
    async fn observe(&self, member: &MemberId, connector: &Arc<dyn Connector>, relist: bool) -> Result<FolderView> {
        let context = self.context(member, connector, "observe");
        let stored_token = if relist { None } else { self.store.token(&self.group.id, member).await? };
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
                    match connector.changes(from.as_ref()).await {
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
                            let advanced = from.as_ref() != Some(&page.token);
                            from = Some(page.token);
                            if !page.more {
                                break;
                            }
                            if !advanced {
                                return Err(Error::permanent(
                                    "the change feed asked for another page without moving its token",
                                    context.clone(),
                                ));
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::InvalidSyncToken && from.is_some() && !restarted => {
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
                    let page = connector.list(cursor.as_ref()).await.map_err(|e| e.in_context(&context))?;
                    present.extend(page.items.into_iter().map(|v| (v.id, v.version)));
                    match page.next {
                        Some(next) if Some(&next) == cursor.as_ref() => {
                            return Err(Error::permanent("the listing asked for the same page again", context.clone()));
                        }
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
        let reads: Vec<_> =
            fetch.chunks(batch).map(|chunk| async move { (chunk, connector.get(chunk).await) }).collect();
        let mut answers = futures::stream::iter(reads).buffered(READ_AHEAD);
        while let Some((chunk, answer)) = answers.next().await {
            let results = answer.map_err(|e| e.in_context(&context))?;
            if results.len() != chunk.len() {
                return Err(Error::permanent(
                    format!("the server answered {} items for {} asked", results.len(), chunk.len()),
                    context.clone(),
                ));
            }
            for (id, result) in chunk.iter().zip(results) {
                match result {
                    Ok(fetched) if &fetched.id == id => self.note_fetched(&mut view, fetched),
                    Ok(fetched) => {
                        return Err(Error::permanent(
                            format!("asked for item {id}, the server answered item {}", fetched.id),
                            context.clone(),
                        ));
                    }
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
    async fn settle(
        &self,
        executor: &Executor<'_>,
        member: &MemberId,
        connector: &Arc<dyn Connector>,
        created: &[ItemVersion],
    ) -> Result<()> {
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
                        executor.apply(vec![StateWrite::SetToken { member: member.clone(), token: None }]).await?;
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
            let advanced = from.as_ref() != Some(&page.token);
            from = Some(page.token);
            if !page.more {
                break;
            }
            if !advanced {
                // A feed that does not move: the next pass lists the folder completely.
                others = true;
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
            executor.apply(vec![StateWrite::SetToken { member: member.clone(), token }]).await?;
        }
        Ok(())
    }

    /// Records each folder's status after the pass.
    async fn record_statuses(
        &self,
        executor: &Executor<'_>,
        planned_group: &SyncGroup,
        before: &BTreeMap<MemberId, MemberStatus>,
        identities: &BTreeMap<MemberId, Option<String>>,
        report: &SyncReport,
    ) -> Result<()> {
        let now = Utc::now();
        let mut writes = Vec::new();
        for member in self.group.folders() {
            let previous = before.get(member).cloned().unwrap_or_default();
            let Some(r) = report.members.get(member) else { continue };
            let status = if let Some(condition) = &r.left_out {
                MemberStatus { condition: condition.clone(), ..previous.clone() }
            } else if planned_group.folders().any(|m| m == member) {
                let folder = match identities.get(member).cloned().flatten() {
                    Some(id) if previous.folder.as_ref().map(|f| &f.id) != Some(&id) => {
                        Some(FolderIdentity { id, path: self.path_of(member) })
                    }
                    _ => previous.folder.clone(),
                };
                let execution = &r.execution;
                let condition = if let Some(backoff) = &execution.parked {
                    let Backoff { until, reason } = backoff.clone();
                    FolderCondition::Parked { until, reason }
                } else {
                    // Failed and raced writes are planned again next pass (only these entities).
                    let mut entities: Vec<EntityId> =
                        execution.failed.iter().chain(&execution.races).map(|f| f.entity.clone()).collect();
                    entities.sort();
                    entities.dedup();
                    if entities.len() > FolderCondition::MAX_RETRIED_ENTITIES {
                        FolderCondition::Interrupted
                    } else if let Some(first) = execution.failed.first() {
                        FolderCondition::FailedWrites {
                            count: execution.failed.len(),
                            first_error: first.error.to_string(),
                            entities,
                        }
                    } else if !entities.is_empty() {
                        FolderCondition::Recheck { entities }
                    } else {
                        FolderCondition::Clean
                    }
                };
                MemberStatus { initialized: true, last_sync: Some(now), folder, condition }
            } else {
                continue;
            };
            if status != previous {
                writes.push(StateWrite::SetMemberStatus { member: member.clone(), status });
            }
        }
        executor.apply(writes).await
    }
}

/// The condition of a folder that an error left out of a pass.
fn condition_of(error: &Error) -> FolderCondition {
    match error.kind() {
        ErrorKind::Throttled => {
            let Backoff { until, reason } = Backoff::of(error);
            FolderCondition::Parked { until, reason }
        }
        _ => FolderCondition::Unobservable { reason: error.to_string() },
    }
}
