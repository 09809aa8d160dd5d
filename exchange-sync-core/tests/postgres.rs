//! The PostgreSQL state store against a real PostgreSQL server: the store conformance suite, the
//! state machine that holds it to the memory store, and the leases that fence workers.
//!
//! The server is the throwaway cluster `scripts/postgres.sh start` runs under `target/`; its URL
//! comes in `EXCHANGE_SYNC_TEST_POSTGRES`. Without it these tests fail (they are part of the test
//! command, which provides it), saying how to start one. Each store gets a schema of its own, so
//! the tests run in parallel against one database.
#![cfg(all(feature = "postgres", feature = "testkit"))]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod store_machine;

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
        Some(WorkerIdentity { name: name.into(), lease, groups: 2 })
    }

    fn put(i: u32) -> exchange_sync_core::state::StateTransaction {
        vec![StateWrite::PutEntity { id: EntityId::new(format!("e{i}")), base: None, match_key: None }].into()
    }

    /// Workers `a` and `b` sharing a fresh schema, and group `g`.
    async fn two_workers(lease: Duration) -> (String, PostgresStore, PostgresStore, GroupId) {
        let schema = fresh_schema();
        let a = store_in(&schema, worker("a", lease)).await;
        let b = store_in(&schema, worker("b", lease)).await;
        (schema, a, b, GroupId::new("g"))
    }

    #[tokio::test]
    async fn a_group_has_one_owner_and_a_paused_owner_is_fenced_after_a_takeover() {
        let lease = Duration::from_millis(500);
        let (schema, a, b, g) = two_workers(lease).await;

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
        assert!(b.renew_leases().await.unwrap().lost.is_empty());
        // Admin requests reach the group from any process, whoever owns it.
        let reader = store_in(&schema, None).await;
        reader.post_request(&g, exchange_sync_core::state::AdminRequest::ConfirmDeletions).await.unwrap();
        assert_eq!(b.requests(&g).await.unwrap().len(), 1);
    }

    /// The fence between a write transaction under way and a takeover: a worker's transaction
    /// that found its lease valid and then waits (here for a row another session locked) holds
    /// the group's fence, so the worker taking the expired group over waits for it to end, and
    /// the old owner's write lands before the new owner's token exists, never after.
    #[tokio::test]
    async fn a_takeover_waits_for_the_write_transaction_under_way() {
        let lease = Duration::from_secs(3);
        let (schema, a, b, g) = two_workers(lease).await;
        assert!(a.acquire_lease(&g).await.unwrap());
        a.apply(&g, put(1)).await.unwrap();
        let taken = std::time::Instant::now();

        // Another session holds entity e1's row, so `a`'s next write waits inside its transaction.
        let (mut raw, connection) = tokio_postgres::connect(&server_url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let blocker = raw.transaction().await.unwrap();
        blocker
            .execute(
                &format!("SELECT 1 FROM {schema}.entities WHERE group_id = 'g' AND entity_id = 'e1' FOR UPDATE"),
                &[],
            )
            .await
            .unwrap();
        tokio::time::sleep((lease * 2 / 3).saturating_sub(taken.elapsed())).await;
        let write = {
            let a = a.clone();
            let g = g.clone();
            tokio::spawn(async move {
                let result = a.apply(&g, put(1)).await;
                (result, std::time::Instant::now())
            })
        };
        // The lease expires while the write waits; `b` tries to take the group over.
        tokio::time::sleep((lease + Duration::from_millis(200)).saturating_sub(taken.elapsed())).await;
        let takeover = {
            let b = b.clone();
            let g = g.clone();
            tokio::spawn(async move {
                let taken = b.acquire_lease(&g).await;
                (taken, std::time::Instant::now())
            })
        };
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!write.is_finished(), "the write waits for the row");
        assert!(!takeover.is_finished(), "the takeover waits for the write transaction under way");
        blocker.commit().await.unwrap();

        let (written, written_at) = write.await.unwrap();
        written.expect("the write found its lease valid before the takeover, and lands");
        let (took, took_at) = takeover.await.unwrap();
        assert!(took.unwrap(), "the expired group is taken over once the write ended");
        assert!(written_at <= took_at, "the old owner's write ended before the takeover");
        assert_eq!(b.leases().await.unwrap()[0].token, 2);
        let err = a.apply(&g, put(2)).await.unwrap_err();
        assert!(matches!(err, Error::LeaseLost { .. }), "{err}");
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
        assert!(a.renew_leases().await.unwrap().lost.is_empty());
        let owners: Vec<(String, String)> =
            a.leases().await.unwrap().into_iter().map(|l| (l.group.to_string(), l.owner)).collect();
        assert_eq!(owners, vec![("g".into(), "b".into()), ("h".into(), "a".into())]);
    }

    #[tokio::test]
    async fn workers_opening_one_schema_together_migrate_it_once() {
        let schema = fresh_schema();
        let opens: Vec<_> = (0..4).map(|_| store_in(&schema, None)).collect();
        let stores = futures::future::join_all(opens).await;
        let latest = exchange_sync_core::state::postgres::MIGRATIONS.last().unwrap().version;
        for s in &stores {
            assert_eq!(s.schema_version().await.unwrap(), latest);
        }
        // Migration 4: updated copies stay on their page (heap-only updates).
        let (client, connection) = tokio_postgres::connect(&server_url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let options: Vec<String> = client
            .query_one(
                "SELECT c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND c.relname = 'replicas'",
                &[&schema],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(options, vec!["fillfactor=90".to_owned()]);
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

/// The groups spread over the live workers: heartbeats say who is live, each worker takes free
/// groups up to its fair share, gives back what it holds beyond it, and no group stays free.
mod spreading {
    use exchange_sync_core::id::GroupId;
    use exchange_sync_core::state::StateStore;
    use exchange_sync_core::state::conformance::Guarded;
    use exchange_sync_core::state::share::fair_share;

    use super::*;

    fn worker(name: &str, lease: Duration, groups: usize) -> Option<WorkerIdentity> {
        Some(WorkerIdentity { name: name.into(), lease, groups })
    }

    fn groups(n: usize) -> Vec<GroupId> {
        (0..n).map(|i| GroupId::new(format!("g{i}"))).collect()
    }

    /// Asks for every group once, as each group's loop does; answers how many were taken.
    async fn take_free(store: &PostgresStore, groups: &[GroupId]) -> usize {
        let mut taken = 0;
        for g in groups {
            if store.held_leases().contains(g) {
                continue;
            }
            if store.acquire_lease(g).await.unwrap() {
                taken += 1;
            }
        }
        taken
    }

    /// One renewal of `store`: the surplus it names is given up at once (no pass is running).
    async fn renew_and_give_back(store: &PostgresStore) -> usize {
        let renewal = store.renew_leases().await.unwrap();
        assert!(renewal.lost.is_empty(), "{renewal:?}");
        for g in &renewal.surplus {
            store.release_lease(g).await.unwrap();
        }
        renewal.surplus.len()
    }

    async fn live(store: &PostgresStore) -> Vec<(String, usize)> {
        store.live_workers().await.unwrap().into_iter().map(|w| (w.name, w.held)).collect()
    }

    #[tokio::test]
    async fn workers_are_live_while_their_heartbeat_is_younger_than_a_lease() {
        let schema = fresh_schema();
        let lease = Duration::from_millis(1200);
        let a = store_in(&schema, worker("a", lease, 4)).await;
        let b = store_in(&schema, worker("b", lease, 4)).await;
        let reader = store_in(&schema, None).await;
        assert_eq!(live(&reader).await, vec![("a".into(), 0), ("b".into(), 0)], "a worker is live once connected");
        assert!(a.acquire_lease(&GroupId::new("g0")).await.unwrap());
        assert_eq!(live(&reader).await, vec![("a".into(), 1), ("b".into(), 0)]);

        // Only `a` renews (its renewal writes its heartbeat): `b` falls out after a lease.
        for _ in 0..4 {
            tokio::time::sleep(lease / 3).await;
            renew_and_give_back(&a).await;
        }
        assert_eq!(live(&reader).await, vec![("a".into(), 1)], "a worker silent for a lease is not live");
        // A worker always counts itself, even while its heartbeat is late.
        assert_eq!(live(&b).await, vec![("a".into(), 1), ("b".into(), 0)]);
        renew_and_give_back(&b).await;
        assert_eq!(live(&reader).await, vec![("a".into(), 1), ("b".into(), 0)], "a renewal makes it live again");
    }

    #[tokio::test]
    async fn a_new_worker_gets_its_share_and_a_dead_ones_groups_go_to_the_survivors() {
        let schema = fresh_schema();
        let lease = Duration::from_millis(1500);
        let all = groups(9);
        let a = store_in(&schema, worker("a", lease, all.len())).await;
        assert_eq!(take_free(&a, &all).await, 9, "a worker alone carries every group");

        // `b` and `c` start: `a` is over its share of 3 and gives back at most half a share at
        // each renewal; the others take what it gives up, never beyond their own share.
        let b = store_in(&schema, worker("b", lease, all.len())).await;
        let c = store_in(&schema, worker("c", lease, all.len())).await;
        assert_eq!(take_free(&b, &all).await, 0, "every group is held");
        let mut renewals = 0;
        while a.held_leases().len() > 3 {
            let given = renew_and_give_back(&a).await;
            assert!((1..=2).contains(&given), "gave {given}: at most half a share of 3 at once");
            // The worker that just gave groups up does not take them back while others are under their share.
            assert_eq!(take_free(&a, &all).await, 0);
            take_free(&b, &all).await;
            take_free(&c, &all).await;
            renewals += 1;
            assert!(renewals <= 4, "a still holds {:?}", a.held_leases());
        }
        let held: Vec<usize> = [&a, &b, &c].iter().map(|s| s.held_leases().len()).collect();
        assert_eq!(held, vec![3, 3, 3], "after {renewals} renewals");
        for s in [&a, &b, &c] {
            assert_eq!(renew_and_give_back(s).await, 0, "at its share, a worker keeps its groups");
        }

        // `c` dies (stops renewing): after its lease the survivors take its groups, up to their
        // new share of 5 (ceil(9 / 2)), so all of them.
        let tokens_before: Vec<(GroupId, i64)> = {
            let leases = c.leases().await.unwrap();
            c.held_leases()
                .into_iter()
                .map(|g| {
                    let token = leases.iter().find(|l| l.group == g).unwrap().token;
                    (g, token)
                })
                .collect()
        };
        drop(c);
        let deadline = tokio::time::Instant::now() + lease * 6;
        loop {
            tokio::time::sleep(lease / 3).await;
            renew_and_give_back(&a).await;
            renew_and_give_back(&b).await;
            take_free(&a, &all).await;
            take_free(&b, &all).await;
            if a.held_leases().len() + b.held_leases().len() == all.len() {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "a {:?}, b {:?}", a.held_leases(), b.held_leases());
        }
        let (na, nb) = (a.held_leases().len(), b.held_leases().len());
        assert!((4..=5).contains(&na) && (4..=5).contains(&nb), "a {na}, b {nb}");
        let owners = a.leases().await.unwrap();
        assert_eq!(tokens_before.len(), 3);
        for (g, before) in &tokens_before {
            let lease = owners.iter().find(|l| &l.group == g).unwrap();
            assert!(lease.owner != "c" && !lease.expired && lease.token == before + 1, "{lease:?}");
        }
    }

    #[tokio::test]
    async fn a_group_nobody_under_its_share_takes_is_taken_after_a_renewal_interval() {
        let schema = fresh_schema();
        let lease = Duration::from_millis(1500);
        let all = groups(4);
        let a = store_in(&schema, worker("a", lease, all.len())).await;
        // `b` is live but takes nothing (say its configuration lacks these groups).
        let b = store_in(&schema, worker("b", lease, all.len())).await;
        assert_eq!(fair_share(all.len(), 2), 2);
        assert_eq!(take_free(&a, &all[..2]).await, 2);
        let g = &all[2];
        assert!(a.acquire_lease(g).await.unwrap(), "a group never leased is taken by anyone");
        a.release_lease(g).await.unwrap();
        assert!(!a.acquire_lease(g).await.unwrap(), "at its share, a worker leaves a freed group to b for a while");
        tokio::time::sleep(lease / 3 + Duration::from_millis(100)).await;
        renew_and_give_back(&b).await;
        assert!(a.acquire_lease(g).await.unwrap(), "a group free for a renewal interval is taken by anyone");
        drop(b);
    }

    #[tokio::test]
    async fn when_every_live_worker_is_at_its_share_a_freed_group_is_taken_at_once() {
        let schema = fresh_schema();
        let lease = Duration::from_secs(60);
        let all = groups(4);
        let a = store_in(&schema, worker("a", lease, all.len())).await;
        let b = store_in(&schema, worker("b", lease, all.len())).await;
        assert_eq!(take_free(&a, &all[..2]).await, 2);
        assert_eq!(take_free(&b, &all[2..]).await, 2);
        b.release_lease(&all[3]).await.unwrap();
        // `b` is under its share now and would take it, but `a` may as well: nobody waits for it.
        assert!(!a.acquire_lease(&all[3]).await.unwrap(), "b is under its share: it is b's to take");
        assert!(b.acquire_lease(&all[3]).await.unwrap());
        // One group more than the configurations announce: every worker is at its share.
        let extra = GroupId::new("extra");
        assert!(a.acquire_lease(&extra).await.unwrap());
        a.release_lease(&extra).await.unwrap();
        assert!(a.acquire_lease(&extra).await.unwrap(), "nobody under its share is left to take it");
    }

    #[tokio::test]
    async fn the_conformance_wrapper_forwards_the_leases() {
        let schema = fresh_schema();
        let lease = Duration::from_secs(60);
        let a = store_in(&schema, worker("a", lease, 2)).await;
        let b = Guarded { store: store_in(&schema, worker("b", lease, 2)).await, guard: () };
        let g = GroupId::new("g0");
        assert!(a.acquire_lease(&g).await.unwrap());
        assert!(!b.acquire_lease(&g).await.unwrap(), "a group another worker holds is not taken");
        assert_eq!(b.lease_duration(), Some(lease));
        assert_eq!(b.leases().await.unwrap().len(), 1);
        let h = GroupId::new("g1");
        assert!(b.acquire_lease(&h).await.unwrap());
        assert_eq!(b.renew_leases().await.unwrap(), Default::default());
        b.release_lease(&h).await.unwrap();
        assert!(b.store.held_leases().is_empty());
        assert_eq!(live(&a).await, vec![("a".into(), 1), ("b".into(), 0)]);
        b.leave_workers().await.unwrap();
        assert_eq!(live(&a).await, vec![("a".into(), 1)], "a worker that stops is counted out at once");
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

/// The PostgreSQL store holds to the memory store's semantics under random transactions (see
/// `store_machine`); each case migrates a schema of its own, so the default is fewer cases than
/// the embedded stores run.
mod agrees_with_memory_store {
    use proptest::prelude::*;

    use crate::store_machine::{agree, cases, steps};

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

        #[test]
        fn same_outcomes_same_state(steps in steps()) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let pg = super::fresh_store().await;
                agree(&pg, "postgres", steps).await
            })?;
        }
    }
}

/// A database of an earlier schema version, with state in it, brought up to date when a store
/// of this version opens it: nothing is lost, and it reads and writes as a new one.
mod upgrade {
    use exchange_sync_core::id::{EntityId, GroupId, ItemId, MemberId, Version};
    use exchange_sync_core::state::postgres::MIGRATIONS;
    use exchange_sync_core::state::{Ownership, ReplicaRecord, ReplicaSlot, StateStore, StateWrite};

    use super::*;

    /// Replicas keyed by folder first (schema 4) become keyed by entity first (schema 5).
    #[tokio::test]
    async fn replicas_written_under_schema_4_survive_the_new_key() {
        let schema = fresh_schema();
        let (mut raw, connection) = tokio_postgres::connect(&server_url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let tx = raw.transaction().await.unwrap();
        tx.batch_execute(&format!(
            "CREATE SCHEMA {schema}; SET LOCAL search_path = {schema};
             CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, description TEXT NOT NULL,
                                             applied_at TIMESTAMPTZ NOT NULL DEFAULT now());"
        ))
        .await
        .unwrap();
        for m in MIGRATIONS.iter().filter(|m| m.version <= 4) {
            tx.batch_execute(m.sql).await.unwrap();
            tx.execute(
                "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
                &[&m.version, &m.description],
            )
            .await
            .unwrap();
        }
        // Three entities in two folders, one slot opted out, as schema 4 held them.
        tx.batch_execute(
            "INSERT INTO entities (group_id, entity_id) VALUES ('g', 'e1'), ('g', 'e2'), ('g', 'e3');
             INSERT INTO replicas (group_id, member_id, entity_id, slot, item_id, version, content_hash, ownership)
             SELECT 'g', m, e, 'present', m || '-' || e, 'v1', repeat('0', 63) || right(e, 1), 'created'
             FROM unnest(ARRAY['alice', 'bob']) AS m, unnest(ARRAY['e1', 'e2', 'e3']) AS e
             WHERE (m, e) <> ('bob', 'e3');
             INSERT INTO replicas (group_id, member_id, entity_id, slot) VALUES ('g', 'bob', 'e3', 'opted_out');",
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();

        let store = store_in(&schema, None).await;
        assert_eq!(store.schema_version().await.unwrap(), MIGRATIONS.last().unwrap().version);
        let g = GroupId::new("g");
        let (alice, bob) = (MemberId::new("alice"), MemberId::new("bob"));
        let ids: Vec<EntityId> = ["e1", "e2", "e3"].into_iter().map(EntityId::new).collect();
        let records = store.entities(&g, &ids).await.unwrap();
        assert_eq!(records.iter().map(|r| r.replicas.len()).collect::<Vec<_>>(), vec![2, 2, 2]);
        assert_eq!(records[2].replicas[&bob], ReplicaSlot::OptedOut);
        assert_eq!(store.replica_count(&g, &alice).await.unwrap(), 3);
        assert_eq!(store.replica_count(&g, &bob).await.unwrap(), 2);
        let found = store.lookup_items(&g, &bob, &[ItemId::new("bob-e2")]).await.unwrap();
        assert_eq!(found[0].entity, Some(EntityId::new("e2")));
        assert_eq!(store.slots_in(&g, &alice, &ids).await.unwrap().len(), 3);

        // Written again through the new key: an update in place and a slot filled afresh.
        let Some(ReplicaSlot::Present(mut record)) = records[0].replicas.get(&alice).cloned() else {
            panic!("alice's copy of e1 is present")
        };
        record.version = Version::new("v2");
        let fresh = ReplicaRecord { item_id: ItemId::new("bob-e3"), ownership: Ownership::Created, ..record.clone() };
        store
            .apply(
                &g,
                vec![
                    StateWrite::PutReplica {
                        entity: ids[0].clone(),
                        member: alice.clone(),
                        slot: ReplicaSlot::Present(record),
                    },
                    StateWrite::PutReplica {
                        entity: ids[2].clone(),
                        member: bob.clone(),
                        slot: ReplicaSlot::Present(fresh),
                    },
                ]
                .into(),
            )
            .await
            .unwrap();
        let known = store.lookup_items(&g, &alice, &[ItemId::new("alice-e1")]).await.unwrap();
        assert_eq!(known[0].version, Version::new("v2"));
        assert_eq!(store.replica_count(&g, &bob).await.unwrap(), 3);
        let records = store.entities(&g, &ids).await.unwrap();
        assert_eq!(records.iter().map(|r| r.replicas.len()).collect::<Vec<_>>(), vec![2, 2, 2]);
    }
}
