//! The executor against the in-memory connector and state store, with hand-written plans: write-
//! ahead intents, per-action commits, batching, throttling and per-item failures.

// Test helpers fail loudly: a panic is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use exchange_sync_core::executor::{ExecutionReport, Executor, ExecutorOptions};
use exchange_sync_core::state::memory::MemoryStore;
use exchange_sync_core::state::{Ownership, ReplicaRecord};
use exchange_sync_core::testkit::{Fault, FaultKind, MemoryConnector, Operation, run_until_crash};
use exchange_sync_core::{
    Action, Connector, Direction, EntityId, ErrorKind, Item, ItemKind, Member, MemberId, OriginStamp, Plan, Reason,
    ReplicaSlot, StateStore, StateWrite, SyncGroup, field,
};

struct Fixture {
    group: SyncGroup,
    store: MemoryStore,
    hub: MemoryConnector,
    alice: MemoryConnector,
    connectors: BTreeMap<MemberId, Arc<dyn Connector>>,
}

fn fixture() -> Fixture {
    let group = SyncGroup::new("g", "hub").with_member(Member::new("alice", Direction::two_way()));
    let hub = MemoryConnector::snapshot("hub");
    let alice = MemoryConnector::new("alice");
    let connectors: BTreeMap<MemberId, Arc<dyn Connector>> =
        [(MemberId::new("hub"), hub.shared()), (MemberId::new("alice"), alice.shared())].into();
    Fixture { group, store: MemoryStore::new(), hub, alice, connectors }
}

fn options() -> ExecutorOptions {
    ExecutorOptions::default()
}

fn contact(n: usize) -> Item {
    Item::new(ItemKind::Contact).with(field::GIVEN_NAME, format!("Person {n}"))
}

fn entity(n: usize) -> EntityId {
    EntityId::new(format!("e{n}"))
}

/// State writes creating entity `n` with base `contact(n)` (no replicas yet).
fn put_entity(n: usize) -> StateWrite {
    StateWrite::PutEntity { id: entity(n), base: Some(contact(n)), match_key: None }
}

fn create(f: &Fixture, n: usize, member: &str) -> Action {
    Action::Create {
        entity: entity(n),
        member: MemberId::new(member),
        item: contact(n).into(),
        hash: contact(n).content_hash(),
        origin: OriginStamp::new(f.group.id.clone(), entity(n)),
        reason: Reason::Missing,
    }
}

async fn execute(f: &Fixture, plan: Plan) -> ExecutionReport {
    Executor::new(&f.group, &f.store, &f.connectors, options()).execute(plan).await.unwrap()
}

async fn replica(f: &Fixture, n: usize, member: &str) -> Option<ReplicaRecord> {
    let records = f.store.entities(&f.group.id, &[entity(n)]).await.unwrap();
    records.first()?.replicas.get(&MemberId::new(member)).and_then(ReplicaSlot::replica).cloned()
}

#[tokio::test]
async fn creates_are_batched_and_recorded_with_their_stamp() {
    let f = fixture();
    let state = (0..25).map(put_entity).collect();
    let actions = (0..25).map(|n| create(&f, n, "alice")).collect();
    let report = execute(&f, Plan { state, actions, conflicts: vec![], notices: vec![] }).await;
    let alice = &report.members[&MemberId::new("alice")];
    assert_eq!((alice.created, alice.failed.len()), (25, 0));
    assert_eq!(f.alice.calls(Operation::Create), 3, "25 items in batches of 10");
    assert!(f.store.pending_creates(&f.group.id).await.unwrap().is_empty());
    for n in 0..25 {
        let r = replica(&f, n, "alice").await.expect("replica recorded");
        let copy = f.alice.item(&r.item_id).expect("copy exists");
        assert_eq!(copy.version, r.version);
        assert_eq!(r.hash, contact(n).content_hash());
        assert_eq!(r.ownership, Ownership::Created);
        assert_eq!(copy.origin, Some(OriginStamp::new(f.group.id.clone(), entity(n))));
    }
}

#[tokio::test]
async fn a_lost_create_response_keeps_the_intent_and_a_refused_one_drops_it() {
    let f = fixture();
    f.alice.inject(Fault::on(Operation::Create, 1, FaultKind::LoseResponse));
    f.hub.inject(Fault::on(Operation::Create, 1, FaultKind::Fail(ErrorKind::Permanent)));
    let plan = Plan {
        state: vec![put_entity(1)],
        actions: vec![create(&f, 1, "alice"), create(&f, 1, "hub")],
        conflicts: vec![],
        notices: vec![],
    };
    let report = execute(&f, plan).await;
    assert_eq!(report.members[&MemberId::new("alice")].failed[0].error.kind(), ErrorKind::Transient);
    assert_eq!(report.members[&MemberId::new("hub")].failed[0].error.kind(), ErrorKind::Permanent);
    let pending = f.store.pending_creates(&f.group.id).await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].member, MemberId::new("alice"));
    assert_eq!(f.alice.len(), 1, "the write happened although its answer was lost");
    assert!(replica(&f, 1, "alice").await.is_none());
    let failure = &report.members[&MemberId::new("alice")].failed[0];
    let text = failure.error.to_string();
    assert!(text.contains("group g") && text.contains("member alice"), "context is missing: {text}");
}

#[tokio::test]
async fn a_crash_after_the_write_leaves_the_intent_behind() {
    let f = fixture();
    f.alice.inject(Fault::on(Operation::Create, 1, FaultKind::CrashAfterWrite));
    let plan =
        Plan { state: vec![put_entity(1)], actions: vec![create(&f, 1, "alice")], conflicts: vec![], notices: vec![] };
    let executor = Executor::new(&f.group, &f.store, &f.connectors, options());
    assert!(run_until_crash(executor.execute(plan), f.alice.crash_signal()).await.is_none());
    assert_eq!(f.store.pending_creates(&f.group.id).await.unwrap().len(), 1);
    assert_eq!(f.alice.len(), 1);
}

// Retries belong to the connector (the EWS client waits out Exchange's back-off); what it gives
// back throttled parks the folder: nothing more is sent to it in this pass, the rest of its
// actions wait for the next pass, and nothing counts as failed.
#[tokio::test]
async fn throttling_parks_the_folder_without_retrying() {
    let f = fixture();
    f.alice.inject(Fault::on(Operation::Create, 1, FaultKind::Throttle(Duration::from_secs(300))));
    let plan = Plan {
        state: (0..25).map(put_entity).collect(),
        actions: (0..25).map(|n| create(&f, n, "alice")).chain([create(&f, 1, "hub")]).collect(),
        conflicts: vec![],
        notices: vec![],
    };
    let report = execute(&f, plan).await;
    let alice = &report.members[&MemberId::new("alice")];
    assert_eq!(f.alice.calls(Operation::Create), 1, "no request after the server asked to back off");
    assert_eq!((alice.created, alice.deferred, alice.failed.len()), (0, 25, 0), "{alice:?}");
    let parked = alice.parked.as_ref().expect("parked");
    let wait = parked.until - chrono::Utc::now();
    assert!(wait > chrono::Duration::seconds(290), "parked for the server's whole back-off: {wait}");
    assert!(!alice.is_clean());
    assert!(f.alice.is_empty());
    assert!(f.store.pending_creates(&f.group.id).await.unwrap().is_empty(), "no intent of an unsent create stays");
    assert_eq!(report.members[&MemberId::new("hub")].created, 1, "other folders go on");
}

// A folder parked in the middle of its creates: what was sent is recorded, the batches after
// it are neither sent nor left with intents, updates and deletes wait too.
#[tokio::test]
async fn a_folder_parked_midway_keeps_what_it_wrote() {
    let f = fixture();
    f.alice.inject(Fault::on(Operation::Create, 2, FaultKind::Throttle(Duration::from_secs(60))));
    let plan = Plan {
        state: (0..40).map(put_entity).collect(),
        actions: (0..40).map(|n| create(&f, n, "alice")).collect(),
        conflicts: vec![],
        notices: vec![],
    };
    let report = execute(&f, plan).await;
    let alice = &report.members[&MemberId::new("alice")];
    assert_eq!(f.alice.calls(Operation::Create), 2);
    assert_eq!((alice.created, alice.deferred), (10, 30), "{alice:?}");
    assert_eq!(f.alice.len(), 10);
    assert!(f.store.pending_creates(&f.group.id).await.unwrap().is_empty());
    for n in 0..10 {
        assert!(replica(&f, n, "alice").await.is_some(), "copy {n} recorded");
    }
}

#[tokio::test]
async fn a_failed_item_leaves_its_neighbours_applied() {
    let f = fixture();
    f.alice.inject(Fault::on(Operation::Create, 1, FaultKind::FailItem { index: 1, kind: ErrorKind::Permanent }));
    let plan = Plan {
        state: (0..3).map(put_entity).collect(),
        actions: (0..3).map(|n| create(&f, n, "alice")).collect(),
        conflicts: vec![],
        notices: vec![],
    };
    let report = execute(&f, plan).await;
    let alice = &report.members[&MemberId::new("alice")];
    assert_eq!(alice.created, 2);
    assert_eq!(alice.failed.len(), 1);
    assert_eq!(alice.failed[0].entity, entity(1));
    assert!(replica(&f, 0, "alice").await.is_some() && replica(&f, 2, "alice").await.is_some());
    assert!(replica(&f, 1, "alice").await.is_none());
}

#[tokio::test]
async fn updates_check_versions_and_deletes_accept_missing_items() {
    let f = fixture();
    let plan = Plan {
        state: (0..3).map(put_entity).collect(),
        actions: (0..3).map(|n| create(&f, n, "alice")).collect(),
        conflicts: vec![],
        notices: vec![],
    };
    execute(&f, plan).await;
    let r0 = replica(&f, 0, "alice").await.unwrap();
    let r1 = replica(&f, 1, "alice").await.unwrap();
    let r2 = replica(&f, 2, "alice").await.unwrap();
    // The user edits copy 1 meanwhile, and deletes copy 2.
    f.alice.user_update(&r1.item_id, |i| i.set(field::SURNAME, "Edited"));
    f.alice.user_delete(&r2.item_id);
    let update = |n: usize, r: &ReplicaRecord| Action::Update {
        entity: entity(n),
        member: MemberId::new("alice"),
        id: r.item_id.clone(),
        expected: r.version.clone(),
        item: contact(n).with(field::COMPANY, "Contoso").into(),
        hash: contact(n).with(field::COMPANY, "Contoso").content_hash(),
        previous: Some(Box::new(contact(n))),
        ownership: r.ownership,
        reason: Reason::ChangedIn(vec![MemberId::new("hub")]),
    };
    let delete = Action::Delete {
        entity: entity(2),
        member: MemberId::new("alice"),
        id: r2.item_id.clone(),
        expected: Some(r2.version.clone()),
        reason: Reason::DeletedIn(MemberId::new("hub")),
    };
    let state = vec![StateWrite::PutEntity { id: entity(2), base: None, match_key: None }];
    let report = execute(
        &f,
        Plan { state, actions: vec![update(0, &r0), update(1, &r1), delete], conflicts: vec![], notices: vec![] },
    )
    .await;
    let alice = &report.members[&MemberId::new("alice")];
    assert_eq!((alice.updated, alice.deleted), (1, 1));
    assert!(alice.failed.is_empty(), "a user's edit racing with the pass is no failure");
    assert_eq!(alice.races.len(), 1);
    assert_eq!(alice.races[0].error.kind(), ErrorKind::PreconditionFailed);
    assert!(alice.is_clean() && alice.needs_follow_up());
    // Updated copy: recorded with its new version and the new content's hash.
    let new0 = replica(&f, 0, "alice").await.unwrap();
    assert_ne!(new0.version, r0.version);
    assert_eq!(new0.version, f.alice.item(&r0.item_id).unwrap().version);
    assert_eq!(new0.hash, contact(0).with(field::COMPANY, "Contoso").content_hash());
    // The user's edit is intact, and state still holds the old version (the next pass re-reads).
    assert_eq!(f.alice.item(&r1.item_id).unwrap().item.text(field::SURNAME), Some("Edited"));
    assert_eq!(replica(&f, 1, "alice").await.unwrap(), r1);
    // The tombstoned entity lost its last copy: it is gone.
    assert!(f.store.entities(&f.group.id, &[entity(2)]).await.unwrap().is_empty());
}

#[tokio::test]
async fn deleting_an_orphan_duplicate_keeps_the_live_replica() {
    let f = fixture();
    execute(
        &f,
        Plan { state: vec![put_entity(1)], actions: vec![create(&f, 1, "alice")], conflicts: vec![], notices: vec![] },
    )
    .await;
    let live = replica(&f, 1, "alice").await.unwrap();
    // A second stamped copy of the same entity (an earlier run's leftover) is deleted.
    let orphan = f.alice.insert(contact(1), Some(OriginStamp::new(f.group.id.clone(), entity(1))));
    let delete = Action::Delete {
        entity: entity(1),
        member: MemberId::new("alice"),
        id: orphan.clone(),
        expected: None,
        reason: Reason::Orphan,
    };
    let report = execute(&f, Plan { state: vec![], actions: vec![delete], conflicts: vec![], notices: vec![] }).await;
    assert_eq!(report.members[&MemberId::new("alice")].deleted, 1);
    assert!(f.alice.item(&orphan).is_none());
    assert_eq!(replica(&f, 1, "alice").await, Some(live), "the live copy's replica is kept");
}

/// A connector that checks, before each create request, that the state store already holds the
/// intent of every item in it: what crash recovery relies on, whatever the executor overlaps.
struct IntentChecking {
    inner: Arc<dyn Connector>,
    store: exchange_sync_core::state::sqlite::SqliteStore,
    group: SyncGroup,
    member: MemberId,
    checked: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Connector for IntentChecking {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn capabilities(&self) -> exchange_sync_core::Capabilities {
        self.inner.capabilities()
    }
    async fn changes(
        &self,
        token: Option<&exchange_sync_core::SyncToken>,
    ) -> exchange_sync_core::Result<exchange_sync_core::ChangePage> {
        self.inner.changes(token).await
    }
    async fn list(
        &self,
        cursor: Option<&exchange_sync_core::PageCursor>,
    ) -> exchange_sync_core::Result<exchange_sync_core::ListPage> {
        self.inner.list(cursor).await
    }
    async fn get(
        &self,
        ids: &[exchange_sync_core::ItemId],
    ) -> exchange_sync_core::Result<exchange_sync_core::BatchResult<exchange_sync_core::FetchedItem>> {
        self.inner.get(ids).await
    }
    async fn create(
        &self,
        items: &[exchange_sync_core::NewItem],
    ) -> exchange_sync_core::Result<exchange_sync_core::BatchResult<exchange_sync_core::ItemVersion>> {
        let pending = self.store.pending_creates(&self.group.id).await.unwrap();
        for item in items {
            assert!(
                pending.iter().any(|p| p.member == self.member && p.origin == item.origin),
                "create of {:?} sent before its intent was durable",
                item.origin
            );
        }
        self.checked.fetch_add(items.len(), std::sync::atomic::Ordering::Relaxed);
        self.inner.create(items).await
    }
    async fn update(
        &self,
        updates: &[exchange_sync_core::ItemUpdate],
    ) -> exchange_sync_core::Result<exchange_sync_core::BatchResult<exchange_sync_core::ItemVersion>> {
        self.inner.update(updates).await
    }
    async fn delete(
        &self,
        items: &[exchange_sync_core::ItemDelete],
    ) -> exchange_sync_core::Result<exchange_sync_core::BatchResult<exchange_sync_core::Deleted>> {
        self.inner.delete(items).await
    }
    async fn find_by_origin(
        &self,
        origins: &[OriginStamp],
    ) -> exchange_sync_core::Result<Vec<exchange_sync_core::FetchedItem>> {
        self.inner.find_by_origin(origins).await
    }
    async fn watch(
        &self,
    ) -> exchange_sync_core::Result<futures::stream::BoxStream<'static, exchange_sync_core::ChangeHint>> {
        self.inner.watch().await
    }
}

/// Many windows of creates against the SQLite store (whose commits run on another thread and
/// may overlap the requests): every request goes out after its intents are durable, and in the
/// end every copy is recorded and no intent is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_create_request_follows_its_durable_intents() {
    let f = fixture();
    let store = exchange_sync_core::state::sqlite::SqliteStore::open_in_memory().await.unwrap();
    let checking = Arc::new(IntentChecking {
        inner: f.alice.shared(),
        store: store.clone(),
        group: f.group.clone(),
        member: MemberId::new("alice"),
        checked: 0.into(),
    });
    let connectors: BTreeMap<MemberId, Arc<dyn Connector>> =
        [(MemberId::new("hub"), f.hub.shared()), (MemberId::new("alice"), checking.clone() as Arc<dyn Connector>)]
            .into();
    let n = 1000;
    let plan = Plan {
        state: (0..n).map(put_entity).collect(),
        actions: (0..n).map(|i| create(&f, i, "alice")).collect(),
        conflicts: vec![],
        notices: vec![],
    };
    let report = Executor::new(&f.group, &store, &connectors, options()).execute(plan).await.unwrap();
    assert_eq!(report.members[&MemberId::new("alice")].created, n);
    assert_eq!(checking.checked.load(std::sync::atomic::Ordering::Relaxed), n);
    assert!(store.pending_creates(&f.group.id).await.unwrap().is_empty());
    assert_eq!(store.replica_count(&f.group.id, &MemberId::new("alice")).await.unwrap(), n);
}
