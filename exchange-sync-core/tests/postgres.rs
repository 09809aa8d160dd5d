//! The PostgreSQL state store against a real PostgreSQL server: the store conformance suite, the
//! state machine that holds it to the memory store, and the leases that fence workers.
//!
//! The server is the throwaway cluster `scripts/postgres.sh start` runs under `target/`; its URL
//! comes in `EXCHANGE_SYNC_TEST_POSTGRES`. Without it these tests fail (they are part of the test
//! command, which provides it), saying how to start one. Each store gets a schema of its own, so
//! the tests run in parallel against one database.
#![cfg(all(feature = "postgres", feature = "testkit"))]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use exchange_sync_core::state::postgres::{PostgresOptions, PostgresStore, WorkerIdentity};

/// The URL of the test server.
fn server_url() -> String {
    std::env::var("EXCHANGE_SYNC_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "EXCHANGE_SYNC_TEST_POSTGRES is not set: these tests need a PostgreSQL server. Start the throwaway \
             one with `eval \"$(scripts/postgres.sh start)\"` (scripts/test-all.sh does) and run them again"
        )
    })
}

/// A schema name no other store of any test run uses.
fn fresh_schema() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("t_{}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed), nanos % 1_000_000_000)
}

async fn store_in(schema: &str, worker: Option<WorkerIdentity>) -> PostgresStore {
    let options = PostgresOptions { schema: schema.to_owned(), max_connections: 4, worker, ..Default::default() };
    PostgresStore::connect(&server_url(), options).await.expect("the PostgreSQL store opens")
}

async fn fresh_store() -> PostgresStore {
    store_in(&fresh_schema(), None).await
}

mod conformance {
    exchange_sync_core::state_conformance_tests!(super::fresh_store);
}

mod leases {
    use exchange_sync_core::error::{Error, ErrorKind};
    use exchange_sync_core::id::{EntityId, GroupId};
    use exchange_sync_core::state::{StateStore, StateWrite};

    use super::*;

    fn worker(name: &str, lease: Duration) -> Option<WorkerIdentity> {
        Some(WorkerIdentity { name: name.into(), lease })
    }

    fn put(i: u32) -> exchange_sync_core::state::StateTransaction {
        vec![StateWrite::PutEntity { id: EntityId::new(format!("e{i}")), base: None, match_key: None }].into()
    }

    #[tokio::test]
    async fn a_group_has_one_owner_and_a_paused_owner_is_fenced_after_a_takeover() {
        let schema = fresh_schema();
        let lease = Duration::from_millis(500);
        let a = store_in(&schema, worker("a", lease)).await;
        let b = store_in(&schema, worker("b", lease)).await;
        let g = GroupId::new("g");

        assert!(a.acquire_lease(&g).await.unwrap(), "a free group is taken");
        assert!(!b.acquire_lease(&g).await.unwrap(), "a held group is not");
        a.apply(&g, put(1)).await.unwrap();
        let err = b.apply(&g, put(2)).await.unwrap_err();
        assert!(matches!(err, Error::LeaseLost { .. }), "{err}");

        // `a` pauses past its lease; `b` takes the group over with a new fencing token.
        tokio::time::sleep(lease + Duration::from_millis(300)).await;
        assert!(b.acquire_lease(&g).await.unwrap(), "an expired lease is taken over");
        let leases = b.leases().await.unwrap();
        assert_eq!(leases.len(), 1);
        assert_eq!((leases[0].owner.as_str(), leases[0].token), ("b", 2));

        // `a` resumes: its write is refused, with a kind nothing retries, and nothing is written.
        let err = a.apply(&g, put(3)).await.unwrap_err();
        assert!(matches!(err, Error::LeaseLost { .. }), "{err}");
        assert_eq!(err.kind(), ErrorKind::State);
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("worker b holds it"), "{err}");
        assert!(a.entities(&g, &[EntityId::new("e3")]).await.unwrap().is_empty());
        assert!(a.held_leases().is_empty(), "a fenced worker forgets the lease");

        b.apply(&g, put(4)).await.unwrap();
        assert!(b.renew_leases().await.unwrap().is_empty());
        // Admin requests reach the group from any process, whoever owns it.
        let reader = store_in(&schema, None).await;
        reader.post_request(&g, exchange_sync_core::state::AdminRequest::ConfirmDeletions).await.unwrap();
        assert_eq!(b.requests(&g).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_released_lease_is_taken_at_once_and_renewal_reports_lost_groups() {
        let schema = fresh_schema();
        let a = store_in(&schema, worker("a", Duration::from_secs(60))).await;
        let b = store_in(&schema, worker("b", Duration::from_secs(60))).await;
        let (g, h) = (GroupId::new("g"), GroupId::new("h"));
        assert!(a.acquire_lease(&g).await.unwrap());
        assert!(a.acquire_lease(&h).await.unwrap());
        assert!(a.acquire_lease(&g).await.unwrap(), "renewing a held lease");
        a.release_lease(&g).await.unwrap();
        assert!(b.acquire_lease(&g).await.unwrap(), "a released lease is free");
        assert_eq!(a.held_leases(), vec![h.clone()]);
        assert!(a.renew_leases().await.unwrap().is_empty());
        let owners: Vec<(String, String)> =
            a.leases().await.unwrap().into_iter().map(|l| (l.group.to_string(), l.owner)).collect();
        assert_eq!(owners, vec![("g".into(), "b".into()), ("h".into(), "a".into())]);
    }

    #[tokio::test]
    async fn workers_opening_one_schema_together_migrate_it_once() {
        let schema = fresh_schema();
        let opens: Vec<_> = (0..4).map(|_| store_in(&schema, None)).collect();
        let stores = futures::future::join_all(opens).await;
        for s in &stores {
            assert_eq!(s.schema_version().await.unwrap(), 2);
        }
    }

    #[tokio::test]
    async fn a_bad_schema_name_and_a_password_never_show() {
        let err = PostgresStore::connect(
            "postgres://u:sekrit@127.0.0.1:1/db",
            PostgresOptions { schema: "x; DROP".into(), ..Default::default() },
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        let err =
            PostgresStore::connect("postgres://u:sekrit@127.0.0.1:1/db", PostgresOptions::default()).await.unwrap_err();
        assert!(!format!("{err} {err:?}").contains("sekrit"), "{err:?}");
        assert!(err.to_string().contains("127.0.0.1:1/db"), "{err}");
    }
}

/// Long runs of replica writes go to the server as one statement: the outcome is the one the
/// writes one by one give (the memory store's), clashes and users' own items included.
mod bulk_replica_writes {
    use exchange_sync_core::id::{EntityId, GroupId, ItemId, MemberId, Version};
    use exchange_sync_core::item::{Item, ItemKind};
    use exchange_sync_core::origin::OriginStamp;
    use exchange_sync_core::state::conformance::snapshot;
    use exchange_sync_core::state::memory::MemoryStore;
    use exchange_sync_core::state::{
        Ownership, PendingCreate, ReplicaRecord, ReplicaSlot, StateStore, StateTransaction, StateWrite,
    };

    fn copy(entity: usize, item: usize) -> StateWrite {
        StateWrite::PutReplica {
            entity: EntityId::new(format!("e{entity:02}")),
            member: MemberId::new("alice@contoso.test"),
            slot: ReplicaSlot::Present(ReplicaRecord {
                item_id: ItemId::new(format!("i{item:02}")),
                version: Version::new("v1"),
                hash: Item::new(ItemKind::Contact).with("name.given", "x").content_hash(),
                ownership: Ownership::Created,
                ignored_base: None,
            }),
        }
    }

    async fn both(memory: &MemoryStore, pg: &super::PostgresStore, tx: Vec<StateWrite>) -> bool {
        let g = GroupId::new("g");
        let m = memory.apply(&g, StateTransaction::from(tx.clone())).await;
        let p = pg.apply(&g, StateTransaction::from(tx)).await;
        assert_eq!(m.is_ok(), p.is_ok(), "memory: {m:?}\npostgres: {p:?}");
        assert_eq!(snapshot(memory, &g).await, snapshot(pg, &g).await);
        m.is_ok()
    }

    #[tokio::test]
    async fn a_window_of_copies_and_intents_lands_as_one_by_one() {
        let memory = MemoryStore::new();
        let pg = super::fresh_store().await;
        let g = GroupId::new("g");
        let alice = MemberId::new("alice@contoso.test");
        let entities: Vec<StateWrite> = (0..40)
            .map(|i| StateWrite::PutEntity { id: EntityId::new(format!("e{i:02}")), base: None, match_key: None })
            .collect();
        assert!(both(&memory, &pg, entities).await);
        // Intents, and a user's own item that becomes a copy.
        let mut tx: Vec<StateWrite> = (0..40)
            .map(|i| {
                let entity = EntityId::new(format!("e{i:02}"));
                StateWrite::PutPending(PendingCreate {
                    origin: OriginStamp::new(g.clone(), entity.clone()),
                    entity,
                    member: alice.clone(),
                    recorded_at: chrono::DateTime::UNIX_EPOCH,
                })
            })
            .collect();
        tx.push(StateWrite::PutForeign { member: alice.clone(), id: ItemId::new("i05"), version: Version::new("v0") });
        assert!(both(&memory, &pg, tx).await);
        // The window: each copy, then its intent cleared.
        let window: Vec<StateWrite> = (0..40)
            .flat_map(|i| {
                [
                    copy(i, i),
                    StateWrite::RemovePending { entity: EntityId::new(format!("e{i:02}")), member: alice.clone() },
                ]
            })
            .collect();
        assert!(both(&memory, &pg, window).await);
        assert!(pg.pending_creates(&g).await.unwrap().is_empty());
        // Two copies trading items: the first write finds the item taken, one by one as at once.
        let mut swap = vec![copy(0, 1), copy(1, 0)];
        swap.extend((2..30).map(|i| copy(i, i + 40)));
        assert!(!both(&memory, &pg, swap).await);
        // A copy of an entity that does not exist, in a long run.
        let mut unknown: Vec<StateWrite> = (0..20).map(|i| copy(i, i + 100)).collect();
        unknown.push(copy(99, 99));
        assert!(!both(&memory, &pg, unknown).await);
    }
}

/// The PostgreSQL and memory stores implement the same semantics: random transactions (failing
/// ones too) applied to both leave states no reader can tell apart, and succeed or fail together.
mod agrees_with_memory_store {
    use chrono::DateTime;
    use proptest::prelude::*;

    use exchange_sync_core::id::{EntityId, GroupId, ItemId, MemberId, SyncToken, Version};
    use exchange_sync_core::item::{Item, ItemKind};
    use exchange_sync_core::origin::OriginStamp;
    use exchange_sync_core::state::conformance::snapshot;
    use exchange_sync_core::state::memory::MemoryStore;
    use exchange_sync_core::state::{
        AdminRequest, ConflictRecord, FolderCondition, FolderIdentity, MemberStatus, Ownership, PendingCreate,
        ReplicaRecord, ReplicaSlot, SideValue, StateStore, StateWrite,
    };

    fn member() -> impl Strategy<Value = MemberId> {
        prop_oneof![Just("hub"), Just("alice@contoso.test"), Just("bob@contoso.test")].prop_map(MemberId::new)
    }

    fn entity() -> impl Strategy<Value = EntityId> {
        (0..4u8).prop_map(|i| EntityId::new(format!("e{i}")))
    }

    fn item_id() -> impl Strategy<Value = ItemId> {
        (0..5u8).prop_map(|i| ItemId::new(format!("i{i}")))
    }

    fn version() -> impl Strategy<Value = Version> {
        (0..3u8).prop_map(|i| Version::new(format!("v{i}")))
    }

    fn content(i: u8) -> Item {
        Item::new(ItemKind::Contact).with("name.given", format!("Name {i}"))
    }

    fn slot() -> impl Strategy<Value = ReplicaSlot> {
        prop_oneof![
            1 => Just(ReplicaSlot::OptedOut),
            2 => (item_id(), version()).prop_map(|(item_id, version)| ReplicaSlot::Personal { item_id, version }),
            4 => (item_id(), version(), 0..2u8, any::<bool>(), proptest::option::of(0..2u8)).prop_map(
                |(item_id, version, c, created, ignored)| {
                    ReplicaSlot::Present(ReplicaRecord {
                        item_id,
                        version,
                        hash: content(c).content_hash(),
                        ownership: if created { Ownership::Created } else { Ownership::Adopted },
                        ignored_base: ignored.map(|c| content(c).content_hash()),
                    })
                }
            ),
        ]
    }

    fn write() -> impl Strategy<Value = StateWrite> {
        let key = proptest::option::of((1..4u8).prop_map(|k| format!("k{k}")));
        prop_oneof![
            4 => (entity(), proptest::option::of(0..2u8), key)
                .prop_map(|(id, base, match_key)| StateWrite::PutEntity { id, base: base.map(content), match_key }),
            1 => entity().prop_map(|id| StateWrite::RemoveEntity { id }),
            6 => (entity(), member(), slot()).prop_map(|(entity, member, slot)| StateWrite::PutReplica { entity, member, slot }),
            4 => (entity(), member()).prop_map(|(entity, member)| StateWrite::RemoveReplica { entity, member }),
            2 => (member(), item_id(), version()).prop_map(|(member, id, version)| StateWrite::PutForeign { member, id, version }),
            1 => (member(), item_id()).prop_map(|(member, id)| StateWrite::RemoveForeign { member, id }),
            1 => (member(), proptest::option::of(0..3u8))
                .prop_map(|(member, t)| StateWrite::SetToken { member, token: t.map(|t| SyncToken::new(format!("t{t}"))) }),
            2 => (member(), any::<bool>(), proptest::option::of(0..2u8), condition()).prop_map(
                |(member, initialized, folder, condition)| StateWrite::SetMemberStatus {
                    member,
                    status: MemberStatus {
                        initialized,
                        last_sync: folder.map(|_| DateTime::UNIX_EPOCH),
                        folder: folder.map(|f| FolderIdentity { id: format!("F{f}"), path: format!("f/{f}") }),
                        condition,
                    },
                }
            ),
            2 => (entity(), proptest::collection::vec(0..2u8, 0..3)).prop_map(|(entity, bases)| {
                StateWrite::PutEarlierBases { entity, bases: bases.into_iter().map(content).collect() }
            }),
            1 => (1..6u64).prop_map(|id| StateWrite::RemoveRequest { id }),
            1 => (entity(), member()).prop_map(|(entity, member)| StateWrite::PutPending(PendingCreate {
                origin: OriginStamp::new(GroupId::new("g"), entity.clone()),
                entity,
                member,
                recorded_at: DateTime::UNIX_EPOCH,
            })),
            1 => (entity(), member()).prop_map(|(entity, member)| StateWrite::RemovePending { entity, member }),
            1 => (entity(), member()).prop_map(|(entity, member)| StateWrite::AddConflict(ConflictRecord {
                entity,
                field: "name.given".into(),
                base: None,
                winner: SideValue { member, value: None },
                losers: Vec::new(),
                policy: "hub_wins".into(),
                recorded_at: DateTime::UNIX_EPOCH,
            })),
            1 => member().prop_map(|member| StateWrite::RemoveMember { member }),
        ]
    }

    fn condition() -> impl Strategy<Value = FolderCondition> {
        prop_oneof![
            Just(FolderCondition::Clean),
            Just(FolderCondition::Interrupted),
            (0..3usize, proptest::collection::vec(entity(), 0..3)).prop_map(|(count, entities)| {
                FolderCondition::FailedWrites { count, first_error: format!("error {count}"), entities }
            }),
            Just(FolderCondition::Unobservable { reason: "gone".into() }),
            Just(FolderCondition::Parked { until: DateTime::UNIX_EPOCH, reason: "busy".into() }),
            (0..3usize).prop_map(|copies| FolderCondition::Vanished { copies }),
        ]
    }

    /// One step: a transaction, or an admin request posted (in group `h` when `second`).
    #[derive(Debug, Clone)]
    enum Step {
        Apply(bool, Vec<StateWrite>),
        Post(bool, AdminRequest),
    }

    /// The steps of a case, after a first transaction in each group that creates every entity
    /// (some as tombstones): without it, most random transactions fail on a replica of an entity
    /// that does not exist yet, and the rules about slots of existing entities are seldom reached.
    fn steps() -> impl Strategy<Value = Vec<Step>> {
        (proptest::collection::vec(proptest::option::of(0..2u8), 4), random_steps()).prop_map(|(bases, rest)| {
            let seed: Vec<StateWrite> = bases
                .into_iter()
                .enumerate()
                .map(|(i, base)| StateWrite::PutEntity {
                    id: EntityId::new(format!("e{i}")),
                    base: base.map(content),
                    match_key: None,
                })
                .collect();
            [Step::Apply(false, seed.clone()), Step::Apply(true, seed)].into_iter().chain(rest).collect()
        })
    }

    fn random_steps() -> impl Strategy<Value = Vec<Step>> {
        let step = prop_oneof![
            6 => (any::<bool>(), proptest::collection::vec(write(), 1..6))
                .prop_map(|(second, writes)| Step::Apply(second, writes)),
            1 => (any::<bool>(), proptest::option::of(member())).prop_map(|(second, member)| match member {
                Some(member) => Step::Post(second, AdminRequest::Resync { member: Some(member) }),
                None => Step::Post(second, AdminRequest::ConfirmDeletions),
            }),
        ];
        proptest::collection::vec(step, 1..12)
    }

    proptest! {
        // PROPTEST_CASES raises the number of cases for long runs (each case migrates a schema
        // of its own, so the default is lower than the embedded stores').
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
            ..ProptestConfig::default()
        })]

        #[test]
        fn same_outcomes_same_state(steps in steps()) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let memory = MemoryStore::new();
                let pg = super::fresh_store().await;
                // Two groups, so that isolation is exercised too.
                let groups = [GroupId::new("g"), GroupId::new("h")];
                for step in steps {
                    match &step {
                        Step::Apply(second, writes) => {
                            let g = &groups[usize::from(*second)];
                            let m = memory.apply(g, writes.clone().into()).await;
                            let s = pg.apply(g, writes.clone().into()).await;
                            prop_assert_eq!(
                                m.is_ok(), s.is_ok(), "memory: {:?}\npostgres: {:?}\nwrites: {:#?}", m, s, writes
                            );
                        }
                        Step::Post(second, request) => {
                            let g = &groups[usize::from(*second)];
                            let m = memory.post_request(g, request.clone()).await.unwrap();
                            let s = pg.post_request(g, request.clone()).await.unwrap();
                            prop_assert_eq!(m, s, "request ids");
                        }
                    }
                    for g in &groups {
                        prop_assert_eq!(snapshot(&memory, g).await, snapshot(&pg, g).await, "after {:#?}", step);
                    }
                    prop_assert_eq!(memory.groups().await.unwrap(), pg.groups().await.unwrap(), "after {:#?}", step);
                }
                Ok(())
            })?;
        }
    }
}
