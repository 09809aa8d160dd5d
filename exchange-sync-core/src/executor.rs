//! The executor: carries out a [`Plan`], committing the state of each action as it completes. It
//! is the one writer of a pass's state: the planner and the engine decide what to write, the
//! executor writes it (the plan's state, each action's outcome, and the engine's recovery,
//! settling, folder statuses and departures through [`Executor::apply`] and [`Executor::leave`]).
//!
//! Order of work:
//! 1. the plan's state writes (new bases, observed versions, foreign items, tokens, conflict
//!    records) are applied in **one** transaction, before any server write;
//! 2. each folder's actions are sent in batches of the connector's `max_batch`, folders
//!    concurrently up to [`ExecutorOptions::max_concurrent_folders`];
//! 3. a create writes its intent first ([`StateWrite::PutPending`]), then creates the item, then
//!    records the replica and clears the intent; a transient failure keeps the intent (the write
//!    may have happened: crash recovery looks the stamp up), any other clears it;
//! 4. an update or delete commits its outcome as soon as its answer arrives (a delete forgets the
//!    replica only if the entity's slot is the deleted copy). A copy that changed or vanished
//!    under the pass (a user's edit or deletion racing with it) is a **race**, not a failure: the
//!    next pass re-reads the folder and plans again. A copy a connector had to put back because
//!    it was edited while being deleted ([`Deleted::Restored`]) is recorded so that the next
//!    pass sees the edit, which beats the deletion;
//! 5. nothing is retried here. Retries of single requests belong to the connector (the EWS client
//!    honours the server's back-off in full); a folder whose server still asks to back off is
//!    **parked**: the rest of its actions are deferred, not sent, and not reported as failures.
//!    The next pass after the back-off plans them again.
//!
//! A crash between any two steps loses nothing: what was committed is true, and the next pass
//! finds what was not yet done (stale copies, missing copies, open intents).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tracing::Instrument;

use crate::connector::{BatchResult, Connector, Deleted, ItemDelete, ItemUpdate, ItemVersion, NewItem};
use crate::error::{Error, ErrorContext, ErrorKind, Result};
use crate::group::SyncGroup;
use crate::id::{EntityId, GroupId, ItemId, MemberId, Version};
use crate::origin::OriginStamp;
use crate::plan::{Action, Plan};
use crate::state::{Ownership, PendingCreate, ReplicaRecord, ReplicaSlot, StateStore, StateTransaction, StateWrite};

/// How many batches of creates share one state transaction (see `Executor::create_all`). Two
/// windows of a folder have open intents at most (the one on the wire and the next), which is
/// what crash recovery looks up after a crash; larger windows mean fewer commits (16 batches of
/// 50: about 10% less engine CPU in the fan-out benchmark than 8).
pub(crate) const CREATE_WINDOW: usize = 16;

/// The prefix of a version recorded for a copy the engine has not read at that version (a copy
/// found by crash recovery, a copy a connector restored): never a server's version, so the copy
/// is fetched and compared at its next observation.
pub(crate) const UNREAD_VERSION: &str = "unread:";

/// How the executor paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorOptions {
    /// How many folders are written to at once (EWS throttles per mailbox, so folders of
    /// different mailboxes can proceed in parallel; the bound keeps the client polite).
    pub max_concurrent_folders: usize,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        ExecutorOptions { max_concurrent_folders: 8 }
    }
}

/// One action that did not complete, with the error and its context.
#[derive(Debug)]
pub struct ActionFailure {
    /// The action as the dry run prints it.
    pub action: String,
    /// The entity concerned.
    pub entity: EntityId,
    /// The item concerned, for updates and deletes.
    pub item: Option<ItemId>,
    /// What went wrong (with group, member, folder and item in its context).
    pub error: Error,
}

/// A folder's server asked to be left alone for longer than its connector waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    /// When the back-off ends; no request goes to the folder before.
    pub until: DateTime<Utc>,
    /// What the server said.
    pub reason: String,
}

impl Backoff {
    /// The back-off a throttling error asks for, from now (an error that names no delay parks the
    /// folder until the next pass only).
    pub fn of(error: &Error) -> Self {
        let delay = error.retry_after().unwrap_or(Duration::ZERO);
        let until = Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        Backoff { until, reason: error.to_string() }
    }
}

/// What happened in one folder.
#[derive(Debug, Default)]
pub struct MemberReport {
    /// Copies created.
    pub created: usize,
    /// Copies updated.
    pub updated: usize,
    /// Copies deleted (including those that were already gone).
    pub deleted: usize,
    /// Copies a connector put back because they were edited while being deleted: the edit wins,
    /// and the next pass spreads it.
    pub restored: usize,
    /// Actions that did not complete because the server refused them; the next pass plans these
    /// entities again.
    pub failed: Vec<ActionFailure>,
    /// Actions that lost a race with a user (the copy changed or vanished while the pass wrote
    /// it): not errors; the next pass re-reads the folder and plans again.
    pub races: Vec<ActionFailure>,
    /// Actions not sent because the folder was parked ([`MemberReport::parked`]).
    pub deferred: usize,
    /// Set when the folder's server asked to back off: the rest of its actions were deferred.
    pub parked: Option<Backoff>,
    /// The copies created (and restored under new ids), handed to [`Executor::execute_then`]'s
    /// follow-up and then dropped: a report of a large fan-out does not hold an entry per copy.
    created_copies: Vec<ItemVersion>,
}

impl MemberReport {
    /// Whether every action completed (races count as completed: their outcome is known and the
    /// next pass takes them up).
    pub fn is_clean(&self) -> bool {
        self.failed.is_empty() && self.deferred == 0 && self.parked.is_none()
    }

    /// How many writes completed.
    pub fn written(&self) -> usize {
        self.created + self.updated + self.deleted + self.restored
    }

    /// Whether the folder needs another pass soon, though nothing failed: a user's edit raced
    /// with a write, or a deleted copy was restored.
    pub fn needs_follow_up(&self) -> bool {
        !self.races.is_empty() || self.restored > 0
    }
}

/// What happened when a plan was executed, per folder.
#[derive(Debug, Default)]
pub struct ExecutionReport {
    /// Per folder that had actions.
    pub members: BTreeMap<MemberId, MemberReport>,
}

impl ExecutionReport {
    /// Whether every action of every folder completed.
    pub fn is_clean(&self) -> bool {
        self.members.values().all(MemberReport::is_clean)
    }

    /// Every failure, by folder.
    pub fn failures(&self) -> impl Iterator<Item = (&MemberId, &ActionFailure)> {
        self.members.iter().flat_map(|(m, r)| r.failed.iter().map(move |f| (m, f)))
    }
}

/// How an action that did not complete ends up.
enum Outcome {
    /// Refused by the server: reported, retried next pass.
    Failed(Error),
    /// Lost a race with a user: the next pass re-reads.
    Race(Error),
    /// Not carried out because the folder must back off.
    Deferred(Error),
}

/// Sorts an action's error into its outcome.
fn outcome_of(error: Error) -> Outcome {
    match error.kind() {
        ErrorKind::PreconditionFailed | ErrorKind::NotFound => Outcome::Race(error),
        ErrorKind::Throttled => Outcome::Deferred(error),
        _ => Outcome::Failed(error),
    }
}

/// Applies plans of one group to its folders.
pub struct Executor<'a> {
    group: &'a SyncGroup,
    store: &'a dyn StateStore,
    connectors: &'a BTreeMap<MemberId, Arc<dyn Connector>>,
    options: ExecutorOptions,
}

impl<'a> Executor<'a> {
    /// An executor for `group`, writing state to `store` and items through `connectors` (one per
    /// folder of the group).
    pub fn new(
        group: &'a SyncGroup,
        store: &'a dyn StateStore,
        connectors: &'a BTreeMap<MemberId, Arc<dyn Connector>>,
        options: ExecutorOptions,
    ) -> Self {
        Executor { group, store, connectors, options }
    }

    /// Applies state writes decided outside a plan (crash recovery, settled tokens, folder
    /// statuses) in one transaction.
    pub async fn apply(&self, writes: Vec<StateWrite>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        self.store.apply(&self.group.id, StateTransaction::from(writes)).await
    }

    /// Executes `plan`. Failed actions are reported, not returned as errors: the answer is an
    /// error only when the state store fails (then nothing more can be committed safely).
    pub async fn execute(&self, plan: Plan) -> Result<ExecutionReport> {
        self.execute_then(plan, |_, _, _| async { Ok(()) }).await
    }

    /// Executes `plan` like [`Executor::execute`], and runs `then` for each folder as soon as its
    /// actions are done, in the folder's concurrency slot (the engine reads each folder's change
    /// feed once more after creating copies: folders done early do it while others still write).
    /// `then` gets the folder's report and the copies created there (id and version as the
    /// server answered, in creation order). An error of `then` is reported like a state store
    /// error.
    pub async fn execute_then<F, Fut>(&self, plan: Plan, then: F) -> Result<ExecutionReport>
    where
        F: Fn(MemberId, &MemberReport, Vec<ItemVersion>) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        if !plan.state.is_empty() {
            self.store.apply(&self.group.id, StateTransaction::from(plan.state)).await?;
        }
        // Each folder's list is sized before it is filled, and split by kind by reference (see
        // `run_member`): a fan-out plan holds a million actions, and each growth step or copy of
        // them was fresh memory the engine touched before sending its first request. Each list
        // is freed when its folder is done.
        let mut counts: BTreeMap<&MemberId, usize> = BTreeMap::new();
        for action in &plan.actions {
            *counts.entry(action.member()).or_default() += 1;
        }
        let mut by_member: BTreeMap<MemberId, Vec<Action>> =
            counts.into_iter().map(|(member, n)| (member.clone(), Vec::with_capacity(n))).collect();
        for action in plan.actions {
            if let Some(list) = by_member.get_mut(action.member()) {
                list.push(action);
            }
        }
        let limit = self.options.max_concurrent_folders.max(1);
        let then = &then;
        let outcomes: Vec<(MemberId, Result<MemberReport>)> = futures::stream::iter(by_member)
            .map(|(member, actions)| {
                let span = tracing::info_span!("execute", group = %self.group.id, member = %member);
                async move {
                    let outcome = match self.run_member(&member, actions).await {
                        Ok(mut report) => {
                            // The follow-up gets the copies created (id and version as the
                            // server answered, in creation order); the report keeps counts.
                            let created = std::mem::take(&mut report.created_copies);
                            then(member.clone(), &report, created).await.map(|()| report)
                        }
                        Err(e) => Err(e),
                    };
                    (member, outcome)
                }
                .instrument(span)
            })
            .buffer_unordered(limit)
            .collect()
            .await;
        let mut report = ExecutionReport::default();
        let mut state_error = None;
        for (member, outcome) in outcomes {
            match outcome {
                Ok(r) => {
                    report.members.insert(member, r);
                }
                Err(e) => state_error = state_error.or(Some(e)),
            }
        }
        match state_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// A member leaves the group: with `remove_copies` and a connector to its folder, every copy
    /// the group created there is deleted first (each only while it holds what the group wrote: a
    /// copy its user edited since stays, as the user's own); then the group forgets the folder.
    /// Items the group did not create stay: the user's own, and those that joined the group from
    /// that folder, since they were the user's before (design rule 6). Answers how many copies
    /// were deleted. On failure nothing is forgotten, so the caller can try again.
    pub async fn leave(
        &self,
        member: &MemberId,
        connector: Option<&Arc<dyn Connector>>,
        remove_copies: bool,
    ) -> Result<usize> {
        let mut deleted = 0;
        if remove_copies && let Some(connector) = connector {
            let ours = created_copies(self.store, &self.group.id, member).await?;
            let context = self.context(member, Some(connector), "leave");
            let batch = connector.capabilities().max_batch.max(1);
            for chunk in ours.chunks(batch) {
                let deletes: Vec<ItemDelete> = chunk
                    .iter()
                    .map(|r| ItemDelete {
                        id: r.item_id.clone(),
                        expected: Some(r.version.clone()),
                        expected_hash: Some(r.hash),
                    })
                    .collect();
                for (result, copy) in connector.delete(&deletes).await?.into_iter().zip(chunk) {
                    match result {
                        Ok(Deleted::Gone) => deleted += 1,
                        // Edited by its user since the group wrote it: it is theirs now.
                        Ok(Deleted::Restored(_)) => {}
                        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::PreconditionFailed) => {}
                        Err(e) => return Err(e.in_context(&context.clone().with_item(copy.item_id.clone()))),
                    }
                }
            }
        }
        self.apply(vec![StateWrite::RemoveMember { member: member.clone() }]).await?;
        Ok(deleted)
    }

    fn context(
        &self,
        member: &MemberId,
        connector: Option<&Arc<dyn Connector>>,
        operation: &'static str,
    ) -> ErrorContext {
        let mut context =
            ErrorContext::operation(operation).with_group(self.group.id.clone()).with_member(member.clone());
        if let Some(c) = connector {
            context = context.with_folder(c.describe());
        }
        context
    }

    async fn commit(&self, writes: Vec<StateWrite>) -> Result<()> {
        self.store.apply(&self.group.id, StateTransaction::from(writes)).await
    }

    /// Runs one folder's actions: creates, then updates, then deletes, each in batches, until
    /// the folder's server asks to back off.
    async fn run_member(&self, member: &MemberId, actions: Vec<Action>) -> Result<MemberReport> {
        let mut report = MemberReport::default();
        let Some(connector) = self.connectors.get(member) else {
            for action in &actions {
                let error =
                    Error::Config { message: format!("no connector for member {member} of group {}", self.group.id) };
                report.failed.push(failure(action, error));
            }
            return Ok(report);
        };
        let batch = connector.capabilities().max_batch.max(1);
        let (mut creates, mut updates, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
        for action in &actions {
            match action {
                Action::Create { .. } => creates.push(action),
                Action::Update { .. } => updates.push(action),
                Action::Delete { .. } => deletes.push(action),
            }
        }
        self.create_all(member, connector, &creates, batch, &mut report).await?;
        for chunk in updates.chunks(batch) {
            if report.parked.is_some() {
                report.deferred += chunk.len();
                continue;
            }
            self.update_batch(member, connector, chunk, &mut report).await?;
        }
        for chunk in deletes.chunks(batch) {
            if report.parked.is_some() {
                report.deferred += chunk.len();
                continue;
            }
            self.delete_batch(member, connector, chunk, &mut report).await?;
        }
        if let Some(parked) = &report.parked {
            tracing::warn!(
                deferred = report.deferred,
                until = %parked.until.to_rfc3339(),
                "the server asked this folder to back off; the rest of its writes wait for the next pass"
            );
        }
        tracing::debug!(
            created = report.created,
            updated = report.updated,
            deleted = report.deleted,
            failed = report.failed.len(),
            races = report.races.len(),
            "folder done"
        );
        Ok(report)
    }

    /// Sorts an action that did not complete into the report.
    fn note(&self, action: &Action, outcome: Outcome, report: &mut MemberReport) {
        match outcome {
            Outcome::Failed(error) => {
                tracing::warn!(entity = %action.entity(), error = %error, "write failed");
                report.failed.push(failure(action, error));
            }
            Outcome::Race(error) => {
                tracing::info!(entity = %action.entity(), error = %error, "a user changed the copy meanwhile; the next pass re-reads it");
                report.races.push(failure(action, error));
            }
            Outcome::Deferred(error) => {
                report.deferred += 1;
                if report.parked.is_none() {
                    report.parked = Some(Backoff::of(&error));
                }
            }
        }
    }

    /// Creates the copies of one folder, batch after batch, keeping state work off the path
    /// between two requests: the intents of a batch must be durable before its request is sent,
    /// and the outcomes of a batch may commit later (the intents cover a crash meanwhile). The
    /// batches go in windows of [`CREATE_WINDOW`]: while the batches of window k are on the
    /// wire, one after another, one transaction commits the outcomes of window k-1 and the
    /// intents of window k+1. The folder keeps one request in flight, as many as before, never
    /// waits for the state store between two of them, and a large fan-out commits once per
    /// window instead of twice per batch. When the server asks to back off, the batches not sent
    /// yet are deferred and their intents cleared.
    async fn create_all(
        &self,
        member: &MemberId,
        connector: &Arc<dyn Connector>,
        creates: &[&Action],
        batch: usize,
        report: &mut MemberReport,
    ) -> Result<()> {
        let chunks: Vec<&[&Action]> = creates.chunks(batch).collect();
        let windows: Vec<&[&[&Action]]> = chunks.chunks(CREATE_WINDOW).collect();
        let intents = |window: &[&[&Action]]| -> Vec<StateWrite> {
            window.iter().flat_map(|chunk| self.intents(member, chunk)).collect()
        };
        let Some(first) = windows.first() else { return Ok(()) };
        self.commit(intents(first)).await?;
        let mut outcomes = Vec::new();
        // Whether the server asked to back off: later batches are not sent.
        let mut parked = false;
        for (k, window) in windows.iter().enumerate() {
            if parked {
                break;
            }
            let mut writes = std::mem::take(&mut outcomes);
            if let Some(next) = windows.get(k + 1) {
                writes.extend(intents(next));
            }
            let state = async { if writes.is_empty() { Ok(()) } else { self.commit(writes).await } };
            let send = async {
                let mut results = Vec::with_capacity(window.len());
                for chunk in window.iter() {
                    let answer = self.create_batch(member, connector, chunk).await;
                    let throttled = answer.iter().any(|r| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::Throttled));
                    results.push(answer);
                    if throttled {
                        break;
                    }
                }
                results
            };
            let (results, state) = futures::join!(send, state);
            state?;
            let sent = results.len();
            for (chunk, results) in window.iter().zip(results) {
                outcomes.extend(self.create_outcomes(member, chunk, results, report));
            }
            if report.parked.is_some() {
                parked = true;
                // Batches of this window and the next whose intents are recorded but were never
                // sent: nothing can have reached the server, so their intents go.
                let unsent = window[sent..].iter().chain(windows.get(k + 1).into_iter().flat_map(|w| w.iter()));
                for chunk in unsent {
                    report.deferred += chunk.len();
                    outcomes.extend(
                        chunk
                            .iter()
                            .map(|a| StateWrite::RemovePending { entity: a.entity().clone(), member: member.clone() }),
                    );
                }
                for later in windows.iter().skip(k + 2) {
                    report.deferred += later.iter().map(|c| c.len()).sum::<usize>();
                }
            }
        }
        if !outcomes.is_empty() {
            self.commit(outcomes).await?;
        }
        Ok(())
    }

    /// The write-ahead intents of a batch of creates.
    fn intents(&self, member: &MemberId, chunk: &[&Action]) -> Vec<StateWrite> {
        let now = chrono::Utc::now();
        chunk
            .iter()
            .filter_map(|action| match action {
                Action::Create { entity, origin, .. } => Some(StateWrite::PutPending(PendingCreate {
                    entity: entity.clone(),
                    member: member.clone(),
                    origin: origin.clone(),
                    recorded_at: now,
                })),
                _ => None,
            })
            .collect()
    }

    /// Sends one batch of creates (its intents are durable).
    async fn create_batch(
        &self,
        member: &MemberId,
        connector: &Arc<dyn Connector>,
        chunk: &[&Action],
    ) -> Vec<Result<ItemVersion>> {
        let context = self.context(member, Some(connector), "create");
        let new_items: Vec<NewItem> = chunk
            .iter()
            .filter_map(|action| match action {
                Action::Create { item, origin, .. } => Some(NewItem { item: item.clone(), origin: origin.clone() }),
                _ => None,
            })
            .collect();
        answers(new_items.len(), connector.create(&new_items).await, &context)
    }

    /// The state writes recording what a batch of creates did (the whole batch commits in one
    /// transaction: one commit per item would cost a state write and a thread hand-off per item).
    fn create_outcomes(
        &self,
        member: &MemberId,
        chunk: &[&Action],
        results: Vec<Result<ItemVersion>>,
        report: &mut MemberReport,
    ) -> Vec<StateWrite> {
        let mut writes = Vec::new();
        for (action, result) in chunk.iter().zip(results) {
            let Action::Create { entity, hash, .. } = action else { continue };
            let clear = StateWrite::RemovePending { entity: entity.clone(), member: member.clone() };
            match result {
                Ok(created) => {
                    let replica = ReplicaRecord {
                        item_id: created.id.clone(),
                        version: created.version.clone(),
                        hash: *hash,
                        ownership: Ownership::Created,
                        ignored_base: None,
                    };
                    let put = StateWrite::PutReplica {
                        entity: entity.clone(),
                        member: member.clone(),
                        slot: ReplicaSlot::Present(replica),
                    };
                    writes.extend([put, clear]);
                    report.created_copies.push(created);
                    report.created += 1;
                }
                Err(error) => {
                    // Only a transient failure may hide a write that happened: keep the intent so
                    // that recovery looks the stamp up. Anything else was refused: forget it.
                    if error.kind() != ErrorKind::Transient {
                        writes.push(clear);
                    }
                    self.note(action, outcome_of(error), report);
                }
            }
        }
        writes
    }

    /// The slots in `member` of the entities a chunk of actions concerns, by entity.
    async fn slots_of(&self, member: &MemberId, chunk: &[&Action]) -> Result<BTreeMap<EntityId, ReplicaSlot>> {
        let ids: Vec<EntityId> = chunk.iter().map(|a| a.entity().clone()).collect();
        self.store.slots_in(&self.group.id, member, &ids).await
    }

    async fn update_batch(
        &self,
        member: &MemberId,
        connector: &Arc<dyn Connector>,
        chunk: &[&Action],
        report: &mut MemberReport,
    ) -> Result<()> {
        let context = self.context(member, Some(connector), "update");
        let stamp_copies = !self.group.is_hub(member);
        let updates: Vec<ItemUpdate> = chunk
            .iter()
            .filter_map(|action| match action {
                Action::Update { entity, id, expected, item, previous, .. } => Some(ItemUpdate {
                    id: id.clone(),
                    expected: expected.clone(),
                    item: item.clone(),
                    previous: previous.as_deref().cloned(),
                    // Copies in mailboxes carry the stamp, adopted ones from their first update on,
                    // so that they are recognised after a state loss.
                    origin: stamp_copies.then(|| OriginStamp::new(self.group.id.clone(), entity.clone())),
                }),
                _ => None,
            })
            .collect();
        let results = answers(updates.len(), connector.update(&updates).await, &context);
        // One transaction for the batch (see create_outcomes).
        let mut writes = Vec::new();
        for (action, result) in chunk.iter().zip(results) {
            let Action::Update { entity, id, hash, ownership, .. } = action else { continue };
            match result {
                Ok(updated) => {
                    let replica = ReplicaRecord {
                        item_id: id.clone(),
                        version: updated.version,
                        hash: *hash,
                        ownership: *ownership,
                        ignored_base: None,
                    };
                    writes.push(StateWrite::PutReplica {
                        entity: entity.clone(),
                        member: member.clone(),
                        slot: ReplicaSlot::Present(replica),
                    });
                }
                // A stale version or a vanished copy: the next pass observes that change and
                // plans again (a race, not a failure).
                Err(error) => {
                    self.note(action, outcome_of(error), report);
                }
            }
        }
        if !writes.is_empty() {
            report.updated += writes.len();
            self.commit(writes).await?;
        }
        Ok(())
    }

    async fn delete_batch(
        &self,
        member: &MemberId,
        connector: &Arc<dyn Connector>,
        chunk: &[&Action],
        report: &mut MemberReport,
    ) -> Result<()> {
        let context = self.context(member, Some(connector), "delete");
        let slots = self.slots_of(member, chunk).await?;
        // The replica of the deleted copy, when the entity's slot names it (an orphan duplicate
        // may name an entity whose live copy in this folder is another item).
        let replica_of = |action: &Action, id: &ItemId| {
            slots.get(action.entity()).and_then(ReplicaSlot::replica).filter(|r| &r.item_id == id).cloned()
        };
        let deletes: Vec<ItemDelete> = chunk
            .iter()
            .filter_map(|action| match action {
                Action::Delete { id, expected, .. } => Some(ItemDelete {
                    id: id.clone(),
                    expected: expected.clone(),
                    expected_hash: replica_of(action, id).map(|r| r.hash),
                }),
                _ => None,
            })
            .collect();
        let results = answers(deletes.len(), connector.delete(&deletes).await, &context);
        // One transaction for the batch (see create_outcomes).
        let mut writes = Vec::new();
        let mut deleted = 0;
        for (action, result) in chunk.iter().zip(results) {
            let Action::Delete { entity, id, .. } = action else { continue };
            let replica = replica_of(action, id);
            match result {
                Ok(Deleted::Gone) => {}
                // Already gone: what the delete wanted.
                Err(error) if error.kind() == ErrorKind::NotFound => {}
                Ok(Deleted::Restored(copy)) => {
                    // Edited in the instant it was deleted, and put back: the copy holds its user's
                    // edit. It is recorded with the content the pass planned against and a version
                    // no server answers, so the next pass fetches it, sees the edit, and the edit
                    // beats the deletion (design rule 4).
                    tracing::info!(entity = %entity, item = %copy.id, "a copy edited while it was deleted was put back; its edit wins");
                    if let Some(replica) = replica {
                        writes.push(StateWrite::PutReplica {
                            entity: entity.clone(),
                            member: member.clone(),
                            slot: ReplicaSlot::Present(ReplicaRecord {
                                item_id: copy.id.clone(),
                                version: Version::new(format!("{UNREAD_VERSION}{}", copy.version)),
                                ..replica
                            }),
                        });
                    }
                    report.restored += 1;
                    // Put back under a new id: like a copy created by this pass, its folder's
                    // change feed must be read past it (see the engine's settling), or a deletion
                    // of it before the feed reported it would go unseen.
                    report.created_copies.push(copy);
                    continue;
                }
                Err(error) => {
                    self.note(action, outcome_of(error), report);
                    continue;
                }
            }
            if replica.is_some() {
                writes.push(StateWrite::RemoveReplica { entity: entity.clone(), member: member.clone() });
            }
            deleted += 1;
        }
        if !writes.is_empty() {
            self.commit(writes).await?;
        }
        report.deleted += deleted;
        Ok(())
    }
}

/// One result per item of a batched call: a failure of the whole call (or an answer of the wrong
/// length) becomes the result of every item, with the call's context.
fn answers<T>(count: usize, answer: Result<BatchResult<T>>, context: &ErrorContext) -> Vec<Result<T>> {
    match answer {
        Ok(results) if results.len() == count => {
            results.into_iter().map(|r| r.map_err(|e| e.in_context(context))).collect()
        }
        Ok(results) => {
            let error = Error::permanent(
                format!("the connector answered {} results for {count} items", results.len()),
                context.clone(),
            );
            (0..count).map(|_| Err(replicate(&error))).collect()
        }
        Err(error) => {
            let error = error.in_context(context);
            (0..count).map(|_| Err(replicate(&error))).collect()
        }
    }
}

/// The copies the group created in a member's folder (what leaving under the remove policy
/// deletes), with what the group last saw in each.
pub async fn created_copies(store: &dyn StateStore, group: &GroupId, member: &MemberId) -> Result<Vec<ReplicaRecord>> {
    let entities: Vec<_> = store.known_items(group, member).await?.into_iter().filter_map(|k| k.entity).collect();
    let mut copies = Vec::new();
    for chunk in entities.chunks(1000) {
        for record in store.entities(group, chunk).await? {
            if let Some(ReplicaSlot::Present(r)) = record.replicas.get(member)
                && r.ownership == Ownership::Created
            {
                copies.push(r.clone());
            }
        }
    }
    Ok(copies)
}

fn failure(action: &Action, error: Error) -> ActionFailure {
    let item = match action {
        Action::Create { .. } => None,
        Action::Update { id, .. } | Action::Delete { id, .. } => Some(id.clone()),
    };
    let error = match &item {
        Some(id) => error.in_context(&ErrorContext { item: Some(id.clone()), ..ErrorContext::default() }),
        None => error,
    };
    ActionFailure { action: action.to_string(), entity: action.entity().clone(), item, error }
}

/// A copy of an error for every item of a failed call (errors own their sources, so they are not
/// `Clone`; the copy keeps kind, message, delay and context, and drops the source).
pub(crate) fn replicate(error: &Error) -> Error {
    let context = || Box::new(error.context().cloned().unwrap_or_default());
    match error {
        Error::NotFound { .. } => Error::NotFound { context: context() },
        Error::PreconditionFailed { .. } => Error::PreconditionFailed { context: context() },
        Error::Throttled { retry_after, exhausted, .. } => {
            Error::Throttled { retry_after: *retry_after, exhausted: *exhausted, context: context() }
        }
        Error::InvalidSyncToken { .. } => Error::InvalidSyncToken { context: context() },
        Error::Auth { message, .. } => Error::Auth { message: message.clone(), context: context() },
        Error::Unreachable { message, .. } => {
            Error::Unreachable { message: message.clone(), context: context(), source: None }
        }
        Error::Transient { message, exhausted, .. } => {
            Error::Transient { message: message.clone(), exhausted: *exhausted, context: context(), source: None }
        }
        Error::State { message, .. } => Error::State { message: message.clone(), source: None },
        Error::LeaseLost { group, message } => Error::LeaseLost { group: group.clone(), message: message.clone() },
        Error::MassDelete { group, member, would_delete, total, limit } => Error::MassDelete {
            group: group.clone(),
            member: member.clone(),
            would_delete: *would_delete,
            total: *total,
            limit: *limit,
        },
        Error::Vanished { group, member, copies } => {
            Error::Vanished { group: group.clone(), member: member.clone(), copies: *copies }
        }
        Error::Config { message } => Error::Config { message: message.clone() },
        Error::Permanent { message, .. } => {
            Error::Permanent { message: message.clone(), context: context(), source: None }
        }
    }
}
