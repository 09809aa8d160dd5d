//! The executor: carries out a [`Plan`], committing the state of each action as it completes.
//!
//! Order of work (CORE.md "Engine pass"):
//! 1. the plan's state writes (new bases, observed versions, foreign items, tokens, conflict
//!    records) are applied in **one** transaction, before any server write;
//! 2. each folder's actions are sent in batches of the connector's `max_batch`, folders
//!    concurrently up to [`ExecutorOptions::max_concurrent_folders`];
//! 3. a create writes its intent first ([`StateWrite::PutPending`]), then creates the item, then
//!    records the replica and clears the intent; a transient failure keeps the intent (the write
//!    may have happened: crash recovery looks the stamp up), a permanent one clears it;
//! 4. an update or delete commits its outcome as soon as its answer arrives (a delete forgets the
//!    replica only if the entity's slot is the deleted copy); a precondition failure or a missing
//!    item is reported and left to the next pass, which re-reads the folder;
//! 5. throttling (for the whole call or per item) is retried after the delay the server asked for,
//!    a bounded number of times, and reported after that.
//!
//! A crash between any two steps loses nothing: what was committed is true, and the next pass
//! finds what was not yet done (stale copies, missing copies, open intents).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tracing::Instrument;

use crate::connector::{BatchResult, Connector, ItemDelete, ItemUpdate, ItemVersion, NewItem};
use crate::error::{Error, ErrorContext, ErrorKind, Result};
use crate::group::SyncGroup;
use crate::id::{EntityId, ItemId, MemberId};
use crate::origin::OriginStamp;
use crate::plan::{Action, Plan};
use crate::state::{Ownership, PendingCreate, ReplicaRecord, ReplicaSlot, StateStore, StateTransaction, StateWrite};

/// How many batches of creates share one state transaction (see `Executor::create_all`). Two
/// windows of a folder have open intents at most (the one on the wire and the next), which is
/// what crash recovery looks up after a crash; larger windows mean fewer commits (16 batches of
/// 50: about 10% less engine CPU in the fan-out benchmark than 8).
pub const CREATE_WINDOW: usize = 16;

/// How the executor paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorOptions {
    /// How many folders are written to at once (EWS throttles per mailbox, so folders of
    /// different mailboxes can proceed in parallel; the bound keeps the client polite).
    pub max_concurrent_folders: usize,
    /// How many times a throttled call (or item) is retried before it is reported as failed.
    pub max_throttle_retries: u32,
    /// The delay before retrying when the server throttled without saying how long to wait.
    pub default_retry_after: Duration,
    /// The longest delay honoured; longer requests are cut to this (the next pass retries anyway).
    pub max_retry_after: Duration,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        ExecutorOptions {
            max_concurrent_folders: 8,
            max_throttle_retries: 3,
            default_retry_after: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(60),
        }
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

/// What happened in one folder.
#[derive(Debug, Default)]
pub struct MemberReport {
    /// Copies created.
    pub created: usize,
    /// Copies updated.
    pub updated: usize,
    /// Copies deleted (including those that were already gone).
    pub deleted: usize,
    /// Actions that did not complete; the next pass takes them up again.
    pub failed: Vec<ActionFailure>,
    /// The copies created, handed to [`Executor::execute_then`]'s follow-up and then dropped: a
    /// report of a large fan-out does not hold an entry per copy.
    created_copies: Vec<ItemVersion>,
}

impl MemberReport {
    /// Whether every action completed.
    pub fn is_clean(&self) -> bool {
        self.failed.is_empty()
    }

    /// How many writes completed.
    pub fn written(&self) -> usize {
        self.created + self.updated + self.deleted
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

    /// Runs one folder's actions: creates, then updates, then deletes, each in batches.
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
            self.update_batch(member, connector, chunk, &mut report).await?;
        }
        for chunk in deletes.chunks(batch) {
            self.delete_batch(member, connector, chunk, &mut report).await?;
        }
        tracing::debug!(
            created = report.created,
            updated = report.updated,
            deleted = report.deleted,
            failed = report.failed.len(),
            "folder done"
        );
        Ok(report)
    }

    /// Creates the copies of one folder, batch after batch, keeping state work off the path
    /// between two requests: the intents of a batch must be durable before its request is sent,
    /// and the outcomes of a batch may commit later (the intents cover a crash meanwhile). The
    /// batches go in windows of [`CREATE_WINDOW`]: while the batches of window k are on the
    /// wire, one after another, one transaction commits the outcomes of window k-1 and the
    /// intents of window k+1. The folder keeps one request in flight, as many as before, never
    /// waits for the state store between two of them, and a large fan-out commits once per
    /// window instead of twice per batch.
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
        for (k, window) in windows.iter().enumerate() {
            let mut writes = std::mem::take(&mut outcomes);
            if let Some(next) = windows.get(k + 1) {
                writes.extend(intents(next));
            }
            let state = async { if writes.is_empty() { Ok(()) } else { self.commit(writes).await } };
            let send = async {
                let mut results = Vec::with_capacity(window.len());
                for chunk in window.iter() {
                    results.push(self.create_batch(member, connector, chunk).await);
                }
                results
            };
            let (results, state) = futures::join!(send, state);
            state?;
            for (chunk, results) in window.iter().zip(results) {
                outcomes.extend(self.create_outcomes(member, chunk, results, report));
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
        self.send(&new_items, &context, |batch| async move { connector.create(&batch).await }).await
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
                    tracing::warn!(entity = %entity, error = %error, "create failed");
                    report.failed.push(failure(action, error));
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
        let slots = self.slots_of(member, chunk).await?;
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
        let results = self.send(&updates, &context, |batch| async move { connector.update(&batch).await }).await;
        // One transaction for the batch (see create_batch).
        let mut writes = Vec::new();
        for (action, result) in chunk.iter().zip(results) {
            let Action::Update { entity, id, hash, .. } = action else { continue };
            match result {
                Ok(updated) => {
                    let ownership = slots
                        .get(entity)
                        .and_then(ReplicaSlot::replica)
                        .filter(|r| &r.item_id == id)
                        .map_or(Ownership::Adopted, |r| r.ownership);
                    let replica = ReplicaRecord {
                        item_id: id.clone(),
                        version: updated.version,
                        hash: *hash,
                        ownership,
                        ignored_base: None,
                    };
                    let put = StateWrite::PutReplica {
                        entity: entity.clone(),
                        member: member.clone(),
                        slot: ReplicaSlot::Present(replica),
                    };
                    writes.push(put);
                }
                Err(error) => {
                    // PreconditionFailed / NotFound: the copy changed or vanished; the next pass
                    // observes that change and plans again.
                    tracing::info!(entity = %entity, error = %error, "update not applied");
                    report.failed.push(failure(action, error));
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
        let deletes: Vec<ItemDelete> = chunk
            .iter()
            .filter_map(|action| match action {
                Action::Delete { id, expected, .. } => Some(ItemDelete { id: id.clone(), expected: expected.clone() }),
                _ => None,
            })
            .collect();
        let results = self.send(&deletes, &context, |batch| async move { connector.delete(&batch).await }).await;
        // One transaction for the batch (see create_batch).
        let mut writes = Vec::new();
        let mut deleted = 0;
        for (action, result) in chunk.iter().zip(results) {
            let Action::Delete { entity, id, .. } = action else { continue };
            match result {
                Ok(()) => {}
                Err(error) if error.kind() == ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(entity = %entity, error = %error, "delete failed");
                    report.failed.push(failure(action, error));
                    continue;
                }
            }
            // Forget the slot only if it is the deleted copy: an orphan duplicate may name an
            // entity whose live copy in this folder is another item.
            let names_this_copy = slots.get(entity).and_then(ReplicaSlot::replica).is_some_and(|r| &r.item_id == id);
            if names_this_copy {
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

    /// How long to wait before retrying after `error`.
    fn delay(&self, retry_after: Option<Duration>) -> Duration {
        retry_after.unwrap_or(self.options.default_retry_after).min(self.options.max_retry_after)
    }

    /// Sends `items` with `call`, retrying throttled calls and throttled items after the delay
    /// the server asked for. Answers one result per item, in order; a failure of the whole call
    /// becomes the result of every item still waiting.
    async fn send<I, T, F, Fut>(&self, items: &[I], context: &ErrorContext, call: F) -> Vec<Result<T>>
    where
        I: Clone,
        F: Fn(Vec<I>) -> Fut,
        Fut: Future<Output = Result<BatchResult<T>>>,
    {
        let mut results: Vec<Option<Result<T>>> = items.iter().map(|_| None).collect();
        let mut waiting: Vec<usize> = (0..items.len()).collect();
        let mut attempt = 0;
        while !waiting.is_empty() {
            let batch: Vec<I> = waiting.iter().map(|&i| items[i].clone()).collect();
            match call(batch).await {
                Err(error) if error.kind() == ErrorKind::Throttled && attempt < self.options.max_throttle_retries => {
                    attempt += 1;
                    let delay = self.delay(error.retry_after());
                    tracing::info!(attempt, delay_ms = delay.as_millis() as u64, "throttled, waiting");
                    tokio::time::sleep(delay).await;
                }
                Err(error) => {
                    let error = error.in_context(context);
                    for &i in &waiting {
                        results[i] = Some(Err(replicate(&error)));
                    }
                    waiting.clear();
                }
                Ok(answers) if answers.len() != waiting.len() => {
                    let error = Error::permanent(
                        format!("the connector answered {} results for {} items", answers.len(), waiting.len()),
                        context.clone(),
                    );
                    for &i in &waiting {
                        results[i] = Some(Err(replicate(&error)));
                    }
                    waiting.clear();
                }
                Ok(answers) => {
                    let mut again = Vec::new();
                    let mut delay: Option<Duration> = None;
                    for (&i, answer) in waiting.iter().zip(answers) {
                        match answer {
                            Err(e)
                                if e.kind() == ErrorKind::Throttled && attempt < self.options.max_throttle_retries =>
                            {
                                let d = self.delay(e.retry_after());
                                delay = Some(delay.map_or(d, |old| old.max(d)));
                                again.push(i);
                            }
                            other => results[i] = Some(other.map_err(|e| e.in_context(context))),
                        }
                    }
                    if let Some(delay) = delay {
                        attempt += 1;
                        tracing::info!(attempt, items = again.len(), "items throttled, waiting");
                        tokio::time::sleep(delay).await;
                    }
                    waiting = again;
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::permanent("no answer for the item", context.clone()))))
            .collect()
    }
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
        Error::Throttled { retry_after, .. } => Error::Throttled { retry_after: *retry_after, context: context() },
        Error::InvalidSyncToken { .. } => Error::InvalidSyncToken { context: context() },
        Error::Auth { message, .. } => Error::Auth { message: message.clone(), context: context() },
        Error::Transient { message, .. } => {
            Error::Transient { message: message.clone(), context: context(), source: None }
        }
        Error::State { message, .. } => Error::State { message: message.clone(), source: None },
        Error::MassDelete { group, member, would_delete, total, limit } => Error::MassDelete {
            group: group.clone(),
            member: member.clone(),
            would_delete: *would_delete,
            total: *total,
            limit: *limit,
        },
        Error::Config { message } => Error::Config { message: message.clone() },
        Error::Permanent { message, .. } => {
            Error::Permanent { message: message.clone(), context: context(), source: None }
        }
    }
}
