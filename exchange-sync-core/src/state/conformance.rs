//! The state store conformance suite: one set of tests that every [`StateStore`] implementation
//! runs against itself, so the in-memory, SQLite and any future store (PostgreSQL) agree on every
//! rule the engine relies on.
//!
//! Use it through [`state_conformance_tests!`](crate::state_conformance_tests), which expands to
//! one `#[test]` per check for a given store constructor:
//!
//! ```ignore
//! mod memory_store {
//!     exchange_sync_core::state_conformance_tests!(|| async {
//!         exchange_sync_core::state::memory::MemoryStore::new()
//!     });
//! }
//! ```
//!
//! Each check is also a public `async fn` taking a fresh, empty store, for harnesses that manage
//! their own runtime.

// The checks are tests: a failed expectation must panic with a message saying what differed.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "conformance checks are tests and fail by panicking")]

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, TimeZone, Utc};

use crate::error::ErrorKind;
use crate::id::{EntityId, GroupId, ItemId, MemberId, SyncToken, Version};
use crate::item::{Body, FieldValue, Item, ItemKind};
use crate::origin::OriginStamp;
use crate::state::{
    AdminRequest, ConflictRecord, EntityRecord, FolderCondition, FolderIdentity, KnownItem, MemberStatus, Ownership,
    PendingCreate, ReplicaRecord, ReplicaSlot, SideValue, StateStore, StateTransaction, StateWrite,
};

/// Expands to one `#[test]` per conformance check, each running against a fresh store made by
/// `$make` (a closure returning a future that yields the store).
///
/// Invoke it inside a module of its own per store, so test names do not collide:
///
/// ```ignore
/// mod sqlite_store {
///     exchange_sync_core::state_conformance_tests!(|| async {
///         exchange_sync_core::state::sqlite::SqliteStore::open_in_memory().await.unwrap()
///     });
/// }
/// ```
#[macro_export]
macro_rules! state_conformance_tests {
    ($make:expr) => {
        $crate::state_conformance_tests!(@each $make;
            entity_round_trip,
            put_entity_keeps_replicas,
            replica_slots_round_trip,
            remove_entity_forgets_its_copies,
            foreign_items_round_trip,
            foreign_item_joining_the_group,
            token_and_status_round_trip,
            pending_creates_round_trip,
            pending_creates_across_windows,
            conflicts_keep_their_order,
            failed_transaction_changes_nothing,
            unknown_entity_error_names_entity_and_member,
            unknown_entity_in_a_large_transaction,
            item_rule_in_a_large_transaction_of_updates,
            item_cannot_be_replica_of_two_entities,
            token_commits_with_state,
            groups_are_isolated,
            tombstone_goes_with_its_last_copy,
            remove_replica_is_idempotent,
            known_and_looked_up_items,
            slots_in_one_folder,
            replica_count_counts_present_copies,
            entity_ids_page_in_id_order,
            match_keys_follow_entities,
            member_removal_forgets_the_folder,
            members_are_the_folders_the_state_mentions,
            writes_apply_in_order,
            empty_transaction_changes_nothing,
            large_failed_transaction_changes_nothing,
            status_round_trips_every_condition,
            statuses_of_many_folders_in_one_transaction,
            earlier_bases_go_with_their_entity,
            personal_slots_stand_in_for_their_entity,
            personal_slot_item_rules,
            tombstone_takes_its_other_slots_along,
            requests_are_posted_in_order_and_removed_with_transactions,
            newest_requests_name_every_group_with_a_request,
            groups_are_listed_while_they_hold_state,
            records_are_kept_per_group_and_go_with_their_transaction
        );
    };
    (@each $make:expr; $($check:ident),+ $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::state::conformance::run($make, $crate::state::conformance::$check);
            }
        )+
    };
}

/// Runs one check on a fresh store, on a runtime of its own (so the suite needs no test macro
/// from the calling crate).
pub fn run<S, M, MF, C, CF>(make: M, check: C)
where
    S: StateStore,
    M: FnOnce() -> MF,
    MF: Future<Output = S>,
    C: FnOnce(S) -> CF,
    CF: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the state conformance suite");
    runtime.block_on(async move {
        let store = make().await;
        check(store).await;
    });
}

/// A store together with something that must live as long as it: a temporary directory holding
/// a database file, a scratch schema of a database server. Lets a constructor given to
/// [`state_conformance_tests!`](crate::state_conformance_tests) hand both over.
#[derive(Debug)]
pub struct Guarded<S, G> {
    /// The store under test.
    pub store: S,
    /// Dropped after the store.
    pub guard: G,
}

#[async_trait::async_trait]
impl<S: StateStore, G: Send + Sync> StateStore for Guarded<S, G> {
    async fn apply(&self, group: &GroupId, tx: StateTransaction) -> crate::Result<()> {
        self.store.apply(group, tx).await
    }

    async fn entities(&self, group: &GroupId, ids: &[EntityId]) -> crate::Result<Vec<EntityRecord>> {
        self.store.entities(group, ids).await
    }

    async fn slots_in(
        &self,
        group: &GroupId,
        member: &MemberId,
        ids: &[EntityId],
    ) -> crate::Result<std::collections::BTreeMap<EntityId, ReplicaSlot>> {
        self.store.slots_in(group, member, ids).await
    }

    async fn entity_ids(
        &self,
        group: &GroupId,
        after: Option<&EntityId>,
        limit: usize,
    ) -> crate::Result<Vec<EntityId>> {
        self.store.entity_ids(group, after, limit).await
    }

    async fn entities_by_match_key(&self, group: &GroupId, keys: &[String]) -> crate::Result<Vec<(String, EntityId)>> {
        self.store.entities_by_match_key(group, keys).await
    }

    async fn lookup_items(&self, group: &GroupId, member: &MemberId, ids: &[ItemId]) -> crate::Result<Vec<KnownItem>> {
        self.store.lookup_items(group, member, ids).await
    }

    async fn known_items(&self, group: &GroupId, member: &MemberId) -> crate::Result<Vec<KnownItem>> {
        self.store.known_items(group, member).await
    }

    async fn members(&self, group: &GroupId) -> crate::Result<Vec<MemberId>> {
        self.store.members(group).await
    }

    async fn replica_count(&self, group: &GroupId, member: &MemberId) -> crate::Result<usize> {
        self.store.replica_count(group, member).await
    }

    async fn token(&self, group: &GroupId, member: &MemberId) -> crate::Result<Option<SyncToken>> {
        self.store.token(group, member).await
    }

    async fn member_statuses(
        &self,
        group: &GroupId,
        members: &[MemberId],
    ) -> crate::Result<BTreeMap<MemberId, MemberStatus>> {
        self.store.member_statuses(group, members).await
    }

    async fn member_status(&self, group: &GroupId, member: &MemberId) -> crate::Result<MemberStatus> {
        self.store.member_status(group, member).await
    }

    async fn pending_creates(&self, group: &GroupId) -> crate::Result<Vec<PendingCreate>> {
        self.store.pending_creates(group).await
    }

    async fn conflicts(&self, group: &GroupId) -> crate::Result<Vec<ConflictRecord>> {
        self.store.conflicts(group).await
    }

    async fn groups(&self) -> crate::Result<Vec<GroupId>> {
        self.store.groups().await
    }

    async fn post_request(&self, group: &GroupId, request: crate::state::AdminRequest) -> crate::Result<u64> {
        self.store.post_request(group, request).await
    }

    async fn requests(&self, group: &GroupId) -> crate::Result<Vec<crate::state::PostedRequest>> {
        self.store.requests(group).await
    }

    async fn newest_requests(&self) -> crate::Result<BTreeMap<GroupId, u64>> {
        self.store.newest_requests().await
    }

    async fn record(&self, group: &GroupId, key: &str) -> crate::Result<Option<String>> {
        self.store.record(group, key).await
    }

    // The lease methods have defaults (a store with one writer owns every group): forwarded,
    // or a guarded shared store would run as if it had no other workers.

    async fn acquire_lease(&self, group: &GroupId) -> crate::Result<bool> {
        self.store.acquire_lease(group).await
    }

    async fn renew_leases(&self) -> crate::Result<crate::state::LeaseRenewal> {
        self.store.renew_leases().await
    }

    async fn release_lease(&self, group: &GroupId) -> crate::Result<()> {
        self.store.release_lease(group).await
    }

    async fn leave_workers(&self) -> crate::Result<()> {
        self.store.leave_workers().await
    }

    async fn leases(&self) -> crate::Result<Vec<crate::state::LeaseInfo>> {
        self.store.leases().await
    }

    fn lease_duration(&self) -> Option<std::time::Duration> {
        self.store.lease_duration()
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

fn group() -> GroupId {
    GroupId::new("contacts")
}

fn hub() -> MemberId {
    MemberId::new("hub")
}

fn alice() -> MemberId {
    MemberId::new("alice@contoso.test")
}

fn bob() -> MemberId {
    MemberId::new("bob@contoso.test")
}

fn eid(s: &str) -> EntityId {
    EntityId::new(s)
}

fn iid(s: &str) -> ItemId {
    ItemId::new(s)
}

/// A timestamp with sub-second digits, to catch stores that round them.
fn at(second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 14, 15, 9, second).unwrap() + chrono::Duration::nanoseconds(265_358_979)
}

/// A contact with every kind of content: fields of each value type, a body, categories.
fn contact(name: &str) -> Item {
    let mut item = Item::new(ItemKind::Contact)
        .with("name.given", name)
        .with("email1.address", format!("{}@contoso.test", name.to_lowercase()))
        .with("children", FieldValue::TextList(vec!["Ann".into(), "Ben".into()]))
        .with("birthday", FieldValue::DateTime(at(1)))
        .with("priority", FieldValue::Integer(-3))
        .with("flagged", FieldValue::Boolean(true))
        .with("server.last_modified_time", FieldValue::DateTime(at(2)));
    item.body = Some(Body::text(format!("Notes about {name}\nwith ünïcödé")));
    item.categories.insert("Customers".into());
    item.categories.insert("VIP".into());
    item
}

fn present(item: &str, version: &str, content: &Item, ownership: Ownership) -> ReplicaSlot {
    ReplicaSlot::Present(ReplicaRecord {
        item_id: iid(item),
        version: Version::new(version),
        hash: content.content_hash(),
        ownership,
        ignored_base: None,
    })
}

fn put_entity(id: &str, base: Option<Item>, match_key: Option<&str>) -> StateWrite {
    StateWrite::PutEntity { id: eid(id), base, match_key: match_key.map(str::to_owned) }
}

fn put_replica(entity: &str, member: MemberId, slot: ReplicaSlot) -> StateWrite {
    StateWrite::PutReplica { entity: eid(entity), member, slot }
}

fn pending(entity: &str, member: MemberId, second: u32) -> PendingCreate {
    PendingCreate {
        entity: eid(entity),
        origin: OriginStamp::new(group(), eid(entity)),
        member,
        recorded_at: at(second),
    }
}

fn conflict(entity: &str, field: &str, second: u32) -> ConflictRecord {
    ConflictRecord {
        entity: eid(entity),
        field: field.to_owned(),
        base: Some(FieldValue::Text("old".into())),
        winner: SideValue { member: hub(), value: Some(FieldValue::Text("hub's".into())) },
        losers: vec![
            SideValue { member: alice(), value: Some(FieldValue::TextList(vec!["a".into()])) },
            SideValue { member: bob(), value: None },
        ],
        policy: "hub_wins".to_owned(),
        recorded_at: at(second),
    }
}

async fn apply(store: &impl StateStore, group: &GroupId, writes: Vec<StateWrite>) {
    store.apply(group, StateTransaction::from(writes)).await.expect("transaction applies");
}

async fn entity(store: &impl StateStore, group: &GroupId, id: &str) -> Option<EntityRecord> {
    let mut found = store.entities(group, &[eid(id)]).await.unwrap();
    assert!(found.len() <= 1, "one record per id");
    found.pop()
}

fn sorted(mut items: Vec<KnownItem>) -> Vec<(String, String, Option<String>)> {
    items.sort_by(|a, b| a.id.cmp(&b.id));
    items.into_iter().map(|k| (k.id.to_string(), k.version.to_string(), k.entity.map(|e| e.to_string()))).collect()
}

/// Everything a store says about a group, through its read API: two equal snapshots mean no
/// reader can tell the states apart (e.g. before and after reopening a database).
pub async fn snapshot(store: &impl StateStore, group: &GroupId) -> String {
    let ids = store.entity_ids(group, None, usize::MAX).await.unwrap();
    let entities = store.entities(group, &ids).await.unwrap();
    let mut folders = BTreeMap::new();
    for member in [hub(), alice(), bob()] {
        folders.insert(
            member.to_string(),
            (
                sorted(store.known_items(group, &member).await.unwrap()),
                store.replica_count(group, &member).await.unwrap(),
                store.token(group, &member).await.unwrap(),
                store.member_status(group, &member).await.unwrap(),
            ),
        );
    }
    let keys: Vec<String> = ["k1", "k2", "k3"].into_iter().map(str::to_owned).collect();
    let by_key = store.entities_by_match_key(group, &keys).await.unwrap();
    let pending = store.pending_creates(group).await.unwrap();
    let conflicts = store.conflicts(group).await.unwrap();
    let members = store.members(group).await.unwrap();
    // Requests by id and content: the time of posting is each store's own clock.
    let requests: Vec<(u64, AdminRequest)> =
        store.requests(group).await.unwrap().into_iter().map(|r| (r.id, r.request)).collect();
    format!("{entities:#?}\n{folders:#?}\n{by_key:?}\n{pending:#?}\n{conflicts:#?}\n{members:?}\n{requests:?}")
}

/// A group with something of every kind: two entities (one with copies in three folders and an
/// earlier base, one opted out in a folder and stood in for by a user's item in another), a
/// foreign item, tokens, statuses (one with the folder's identity and a condition), a pending
/// create, a conflict.
pub async fn populate(store: &impl StateStore, group: &GroupId) {
    let a = contact("Ann");
    let b = contact("Bert");
    apply(
        store,
        group,
        vec![
            put_entity("e1", Some(a.clone()), Some("k1")),
            put_replica("e1", hub(), present("h1", "hv1", &a, Ownership::Adopted)),
            put_replica("e1", alice(), present("a1", "av1", &a, Ownership::Created)),
            put_replica("e1", bob(), present("b1", "bv1", &a, Ownership::Created)),
            StateWrite::PutEarlierBases { entity: eid("e1"), bases: vec![contact("Ann (earlier)")] },
            put_entity("e2", Some(b.clone()), Some("k2")),
            put_replica("e2", hub(), present("h2", "hv2", &b, Ownership::Adopted)),
            put_replica("e2", alice(), ReplicaSlot::OptedOut),
            put_replica("e2", bob(), ReplicaSlot::Personal { item_id: iid("bp2"), version: Version::new("bpv1") }),
            StateWrite::PutForeign { member: alice(), id: iid("mine"), version: Version::new("mv1") },
            StateWrite::SetToken { member: alice(), token: Some(SyncToken::new("alice-token-1")) },
            StateWrite::SetMemberStatus {
                member: hub(),
                status: MemberStatus { initialized: true, last_sync: Some(at(3)), ..MemberStatus::default() },
            },
            StateWrite::SetMemberStatus {
                member: bob(),
                status: MemberStatus {
                    initialized: true,
                    last_sync: Some(at(4)),
                    folder: Some(FolderIdentity { id: "AAMkBob=".into(), path: "bob@contoso.test/contacts".into() }),
                    condition: FolderCondition::Unobservable { reason: "no rights".into() },
                },
            },
            StateWrite::PutPending(pending("e2", bob(), 4)),
            StateWrite::AddConflict(conflict("e1", "phone.mobile", 5)),
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Checks

/// An entity written with a base, a match key and slots of every kind reads back equal,
/// including every field value type, the body and categories of its base.
pub async fn entity_round_trip(store: impl StateStore) {
    let g = group();
    let base = contact("Ann");
    let ignored = ReplicaSlot::Present(ReplicaRecord {
        item_id: iid("a1"),
        version: Version::new("av1"),
        hash: contact("Ann (edited)").content_hash(),
        ownership: Ownership::Created,
        ignored_base: Some(base.content_hash()),
    });
    apply(
        &store,
        &g,
        vec![
            put_entity("e1", Some(base.clone()), Some("ann@contoso.test")),
            put_replica("e1", hub(), present("h1", "hv1", &base, Ownership::Adopted)),
            put_replica("e1", alice(), ignored.clone()),
            put_replica("e1", bob(), ReplicaSlot::OptedOut),
        ],
    )
    .await;
    let expected = EntityRecord {
        id: eid("e1"),
        base: Some(base.clone()),
        match_key: Some("ann@contoso.test".into()),
        replicas: BTreeMap::from([
            (hub(), present("h1", "hv1", &base, Ownership::Adopted)),
            (alice(), ignored),
            (bob(), ReplicaSlot::OptedOut),
        ]),
        earlier_bases: Vec::new(),
    };
    assert_eq!(entity(&store, &g, "e1").await, Some(expected.clone()));
    assert_eq!(entity(&store, &g, "e1").await.unwrap().base_hash(), Some(base.content_hash()));

    // Missing ids are skipped, duplicates answered once.
    let found = store.entities(&g, &[eid("missing"), eid("e1"), eid("e1")]).await.unwrap();
    assert_eq!(found, vec![expected]);

    // A tombstone (no base, no key) round-trips too.
    apply(&store, &g, vec![put_entity("e2", None, None)]).await;
    assert_eq!(entity(&store, &g, "e2").await, Some(EntityRecord::new(eid("e2"), None, None)));
}

/// `PutEntity` on an existing entity replaces base and match key and keeps its replicas.
pub async fn put_entity_keeps_replicas(store: impl StateStore) {
    let g = group();
    let old = contact("Ann");
    let new = contact("Anna");
    apply(
        &store,
        &g,
        vec![
            put_entity("e1", Some(old.clone()), Some("k1")),
            put_replica("e1", hub(), present("h1", "hv1", &old, Ownership::Adopted)),
        ],
    )
    .await;
    apply(&store, &g, vec![put_entity("e1", Some(new.clone()), Some("k2"))]).await;
    let record = entity(&store, &g, "e1").await.unwrap();
    assert_eq!(record.base, Some(new));
    assert_eq!(record.match_key.as_deref(), Some("k2"));
    assert_eq!(record.replicas, BTreeMap::from([(hub(), present("h1", "hv1", &old, Ownership::Adopted))]));
}

/// Replacing a slot (a new version, a moved item with a new id, present to opted out) leaves
/// exactly the new slot, and item lookups follow.
pub async fn replica_slots_round_trip(store: impl StateStore) {
    let g = group();
    let a = contact("Ann");
    apply(
        &store,
        &g,
        vec![
            put_entity("e1", Some(a.clone()), None),
            put_replica("e1", alice(), present("a1", "v1", &a, Ownership::Created)),
        ],
    )
    .await;
    // New version of the same item.
    apply(&store, &g, vec![put_replica("e1", alice(), present("a1", "v2", &a, Ownership::Created))]).await;
    assert_eq!(
        sorted(store.known_items(&g, &alice()).await.unwrap()),
        vec![("a1".into(), "v2".into(), Some("e1".into()))]
    );
    // The item moved and got a new id: the old id is no longer known.
    apply(&store, &g, vec![put_replica("e1", alice(), present("a1-moved", "v3", &a, Ownership::Adopted))]).await;
    assert_eq!(
        sorted(store.known_items(&g, &alice()).await.unwrap()),
        vec![("a1-moved".into(), "v3".into(), Some("e1".into()))]
    );
    assert!(store.lookup_items(&g, &alice(), &[iid("a1")]).await.unwrap().is_empty());
    // Opted out: no copy, nothing known in the folder, the slot stays.
    apply(&store, &g, vec![put_replica("e1", alice(), ReplicaSlot::OptedOut)]).await;
    assert!(store.known_items(&g, &alice()).await.unwrap().is_empty());
    assert_eq!(store.replica_count(&g, &alice()).await.unwrap(), 0);
    assert_eq!(entity(&store, &g, "e1").await.unwrap().replicas, BTreeMap::from([(alice(), ReplicaSlot::OptedOut)]));
    // And back to present.
    apply(&store, &g, vec![put_replica("e1", alice(), present("a2", "v1", &a, Ownership::Created))]).await;
    assert_eq!(store.replica_count(&g, &alice()).await.unwrap(), 1);
}

/// `RemoveEntity` removes the entity, every slot of it and its match key; removing an unknown
/// entity is not an error. Pending creates and conflict records are independent of it.
pub async fn remove_entity_forgets_its_copies(store: impl StateStore) {
    let g = group();
    populate(&store, &g).await;
    apply(&store, &g, vec![StateWrite::RemoveEntity { id: eid("e1") }, StateWrite::RemoveEntity { id: eid("nope") }])
        .await;
    assert_eq!(entity(&store, &g, "e1").await, None);
    assert!(store.lookup_items(&g, &hub(), &[iid("h1")]).await.unwrap().is_empty());
    assert_eq!(
        sorted(store.known_items(&g, &bob()).await.unwrap()),
        vec![("bp2".into(), "bpv1".into(), Some("e2".into()))],
        "e2's slot in bob's folder stays"
    );
    assert_eq!(store.replica_count(&g, &hub()).await.unwrap(), 1);
    assert!(store.entities_by_match_key(&g, &["k1".to_owned()]).await.unwrap().is_empty());
    assert_eq!(store.pending_creates(&g).await.unwrap().len(), 1);
    assert_eq!(store.conflicts(&g).await.unwrap().len(), 1);
    assert_eq!(store.entity_ids(&g, None, 10).await.unwrap(), vec![eid("e2")]);
}

/// User's own items are remembered with their version, updated, and forgotten; forgetting an
/// unknown one is not an error. They are not replicas.
pub async fn foreign_items_round_trip(store: impl StateStore) {
    let g = group();
    apply(
        &store,
        &g,
        vec![
            StateWrite::PutForeign { member: alice(), id: iid("x"), version: Version::new("1") },
            StateWrite::PutForeign { member: alice(), id: iid("y"), version: Version::new("1") },
            StateWrite::PutForeign { member: alice(), id: iid("x"), version: Version::new("2") },
        ],
    )
    .await;
    assert_eq!(
        sorted(store.known_items(&g, &alice()).await.unwrap()),
        vec![("x".into(), "2".into(), None), ("y".into(), "1".into(), None)]
    );
    assert_eq!(store.replica_count(&g, &alice()).await.unwrap(), 0);
    assert!(store.known_items(&g, &bob()).await.unwrap().is_empty(), "foreign items are per folder");
    apply(
        &store,
        &g,
        vec![
            StateWrite::RemoveForeign { member: alice(), id: iid("y") },
            StateWrite::RemoveForeign { member: alice(), id: iid("never-seen") },
        ],
    )
    .await;
    assert_eq!(sorted(store.known_items(&g, &alice()).await.unwrap()), vec![("x".into(), "2".into(), None)]);
}

/// A user's own item that joins the group (`PutReplica` with its id) stops being foreign; an
/// item that is a replica cannot be recorded as foreign while it is one, and the failed
/// transaction changes nothing.
pub async fn foreign_item_joining_the_group(store: impl StateStore) {
    let g = group();
    let a = contact("Ann");
    apply(
        &store,
        &g,
        vec![
            StateWrite::PutForeign { member: alice(), id: iid("x"), version: Version::new("1") },
            put_entity("e1", Some(a.clone()), None),
            put_replica("e1", alice(), present("x", "2", &a, Ownership::Adopted)),
        ],
    )
    .await;
    assert_eq!(
        sorted(store.known_items(&g, &alice()).await.unwrap()),
        vec![("x".into(), "2".into(), Some("e1".into()))]
    );

    let before = snapshot(&store, &g).await;
    let err = store
        .apply(
            &g,
            vec![
                StateWrite::SetToken { member: alice(), token: Some(SyncToken::new("t")) },
                StateWrite::PutForeign { member: alice(), id: iid("x"), version: Version::new("3") },
            ]
            .into(),
        )
        .await
        .expect_err("a replica cannot also be a user's own item");
    assert_eq!(err.kind(), ErrorKind::State);
    assert_eq!(snapshot(&store, &g).await, before);

    // Forgetting the replica first, then recording the item as the user's own, is the way.
    apply(
        &store,
        &g,
        vec![
            StateWrite::RemoveReplica { entity: eid("e1"), member: alice() },
            StateWrite::PutForeign { member: alice(), id: iid("x"), version: Version::new("3") },
        ],
    )
    .await;
    assert_eq!(sorted(store.known_items(&g, &alice()).await.unwrap()), vec![("x".into(), "3".into(), None)]);

    // Within one transaction: a copy written while the folder has no item of a user's own yet,
    // then an item recorded as the user's own, then that item joining the group.
    let b = contact("Bea");
    let c = contact("Cem");
    apply(
        &store,
        &g,
        vec![
            put_entity("e2", Some(b.clone()), None),
            put_entity("e3", Some(c.clone()), None),
            put_replica("e2", bob(), present("b", "1", &b, Ownership::Created)),
            StateWrite::PutForeign { member: bob(), id: iid("c"), version: Version::new("1") },
            put_replica("e3", bob(), present("c", "2", &c, Ownership::Adopted)),
        ],
    )
    .await;
    assert_eq!(
        sorted(store.known_items(&g, &bob()).await.unwrap()),
        vec![("b".into(), "1".into(), Some("e2".into())), ("c".into(), "2".into(), Some("e3".into()))]
    );
}

/// Tokens and member statuses are stored per folder, replaced, and cleared.
pub async fn token_and_status_round_trip(store: impl StateStore) {
    let g = group();
    assert_eq!(store.token(&g, &alice()).await.unwrap(), None);
    assert_eq!(store.member_status(&g, &alice()).await.unwrap(), MemberStatus::default());
    let status = MemberStatus {
        initialized: true,
        last_sync: Some(at(7)),
        folder: Some(FolderIdentity { id: "AAMkAD«folder»=".into(), path: "alice@contoso.test/contacts".into() }),
        condition: FolderCondition::FailedWrites {
            count: 2,
            first_error: "throttled: «busy»".into(),
            entities: vec![eid("e1"), eid("e2")],
        },
    };
    apply(
        &store,
        &g,
        vec![
            StateWrite::SetToken { member: alice(), token: Some(SyncToken::new("t1")) },
            StateWrite::SetToken { member: bob(), token: Some(SyncToken::new("b1")) },
            StateWrite::SetMemberStatus { member: alice(), status: status.clone() },
        ],
    )
    .await;
    assert_eq!(store.token(&g, &alice()).await.unwrap(), Some(SyncToken::new("t1")));
    assert_eq!(store.member_status(&g, &alice()).await.unwrap(), status);
    assert_eq!(store.member_status(&g, &bob()).await.unwrap(), MemberStatus::default());

    let cleared = MemberStatus { initialized: true, last_sync: Some(at(8)), ..MemberStatus::default() };
    apply(
        &store,
        &g,
        vec![
            StateWrite::SetToken { member: alice(), token: Some(SyncToken::new("t2")) },
            StateWrite::SetToken { member: bob(), token: None },
            StateWrite::SetMemberStatus { member: alice(), status: cleared.clone() },
        ],
    )
    .await;
    assert_eq!(store.token(&g, &alice()).await.unwrap(), Some(SyncToken::new("t2")));
    assert_eq!(store.token(&g, &bob()).await.unwrap(), None);
    assert_eq!(store.member_status(&g, &alice()).await.unwrap(), cleared);
}

/// Create intents round-trip exactly, one per (entity, folder), replaced by a newer one and
/// cleared; clearing an unknown one is not an error. Listed in (entity, folder) order.
pub async fn pending_creates_round_trip(store: impl StateStore) {
    let g = group();
    apply(
        &store,
        &g,
        vec![
            StateWrite::PutPending(pending("e2", alice(), 1)),
            StateWrite::PutPending(pending("e1", hub(), 2)),
            StateWrite::PutPending(pending("e1", bob(), 3)),
            StateWrite::PutPending(pending("e2", alice(), 4)),
        ],
    )
    .await;
    assert_eq!(
        store.pending_creates(&g).await.unwrap(),
        vec![pending("e1", bob(), 3), pending("e1", hub(), 2), pending("e2", alice(), 4)]
    );
    apply(
        &store,
        &g,
        vec![
            StateWrite::RemovePending { entity: eid("e1"), member: bob() },
            StateWrite::RemovePending { entity: eid("e9"), member: bob() },
        ],
    )
    .await;
    assert_eq!(store.pending_creates(&g).await.unwrap(), vec![pending("e1", hub(), 2), pending("e2", alice(), 4)]);
}

/// Create intents as the executor writes them, window after window: each transaction records
/// the next window's intents and clears the previous window's, an intent may be recorded again
/// in a later transaction (a retried create: the newer one counts, once), an intent cleared and
/// recorded again within one transaction stands, and one recorded and cleared within one
/// transaction is gone. An intent with a stamp other than the group's own for its entity keeps
/// that stamp.
pub async fn pending_creates_across_windows(store: impl StateStore) {
    let g = group();
    let foreign_stamp =
        PendingCreate { origin: OriginStamp::new(GroupId::new("other-group"), eid("e6")), ..pending("e6", alice(), 1) };
    apply(
        &store,
        &g,
        vec![
            StateWrite::PutPending(pending("e1", alice(), 1)),
            StateWrite::PutPending(pending("e2", alice(), 1)),
            StateWrite::PutPending(foreign_stamp.clone()),
        ],
    )
    .await;
    apply(
        &store,
        &g,
        vec![
            StateWrite::PutPending(pending("e3", alice(), 2)),
            StateWrite::PutPending(pending("e4", alice(), 2)),
            StateWrite::RemovePending { entity: eid("e1"), member: alice() },
        ],
    )
    .await;
    apply(
        &store,
        &g,
        vec![
            StateWrite::RemovePending { entity: eid("e3"), member: alice() },
            StateWrite::PutPending(pending("e3", alice(), 3)),
            StateWrite::PutPending(pending("e2", alice(), 3)),
            StateWrite::PutPending(pending("e5", alice(), 3)),
            StateWrite::RemovePending { entity: eid("e5"), member: alice() },
            StateWrite::PutPending(pending("e1", bob(), 3)),
        ],
    )
    .await;
    assert_eq!(
        store.pending_creates(&g).await.unwrap(),
        vec![
            pending("e1", bob(), 3),
            pending("e2", alice(), 3),
            pending("e3", alice(), 3),
            pending("e4", alice(), 2),
            foreign_stamp,
        ]
    );
    apply(
        &store,
        &g,
        ["e2", "e3", "e4", "e6"]
            .iter()
            .map(|e| StateWrite::RemovePending { entity: eid(e), member: alice() })
            .collect(),
    )
    .await;
    assert_eq!(store.pending_creates(&g).await.unwrap(), vec![pending("e1", bob(), 3)]);
    assert_eq!(store.members(&g).await.unwrap(), vec![bob()], "alice has no intent left");
}

/// Conflict records read back exactly, oldest first, across transactions (even when their
/// timestamps say otherwise: the order is the order of recording).
pub async fn conflicts_keep_their_order(store: impl StateStore) {
    let g = group();
    let first = conflict("e2", "phone.mobile", 9);
    let second = conflict("e1", "body", 1);
    let mut third = conflict("e1", "categories", 5);
    third.base = None;
    third.winner.value = None;
    third.losers.clear();
    apply(&store, &g, vec![StateWrite::AddConflict(first.clone()), StateWrite::AddConflict(second.clone())]).await;
    apply(&store, &g, vec![StateWrite::AddConflict(third.clone())]).await;
    assert_eq!(store.conflicts(&g).await.unwrap(), vec![first, second, third]);
}

/// A transaction whose last write fails leaves no trace of any of its writes, of every kind.
pub async fn failed_transaction_changes_nothing(store: impl StateStore) {
    let g = group();
    populate(&store, &g).await;
    let before = snapshot(&store, &g).await;
    let c = contact("Cleo");
    let writes = vec![
        put_entity("e1", Some(c.clone()), Some("k3")),
        put_entity("e3", Some(c.clone()), Some("k3")),
        put_replica("e3", bob(), present("b3", "v", &c, Ownership::Created)),
        put_replica("e2", alice(), present("a2", "v", &c, Ownership::Created)),
        StateWrite::RemoveReplica { entity: eid("e1"), member: hub() },
        StateWrite::RemoveEntity { id: eid("e2") },
        StateWrite::PutForeign { member: bob(), id: iid("theirs"), version: Version::new("1") },
        StateWrite::RemoveForeign { member: alice(), id: iid("mine") },
        StateWrite::SetToken { member: alice(), token: None },
        StateWrite::SetToken { member: hub(), token: Some(SyncToken::new("new")) },
        StateWrite::SetMemberStatus { member: hub(), status: MemberStatus::default() },
        StateWrite::PutPending(pending("e3", alice(), 6)),
        StateWrite::RemovePending { entity: eid("e2"), member: bob() },
        StateWrite::AddConflict(conflict("e3", "x", 7)),
        StateWrite::RemoveMember { member: alice() },
        put_replica("unknown", hub(), present("h9", "v", &c, Ownership::Created)),
    ];
    let err = store.apply(&g, writes.into()).await.expect_err("a replica of an unknown entity is refused");
    assert_eq!(err.kind(), ErrorKind::State);
    assert!(!err.is_retryable());
    assert_eq!(snapshot(&store, &g).await, before);
}

/// The error for a replica of an unknown entity names the entity, the folder and the group.
pub async fn unknown_entity_error_names_entity_and_member(store: impl StateStore) {
    let g = group();
    let a = contact("Ann");
    let err = store
        .apply(&g, vec![put_replica("ghost-entity", bob(), present("b1", "v", &a, Ownership::Created))].into())
        .await
        .expect_err("the entity does not exist");
    let text = err.to_string();
    assert!(text.contains("ghost-entity"), "names the entity: {text}");
    assert!(text.contains("bob@contoso.test"), "names the member: {text}");
    assert!(text.contains("contacts"), "names the group: {text}");
}

/// A transaction of many replicas (as a fan-out commits them, a window of a folder's copies in
/// entity order) is held to the same rule: one replica of an entity that does not exist refuses
/// the whole transaction, naming that entity; an entity the transaction itself adds before its
/// replica is accepted.
pub async fn unknown_entity_in_a_large_transaction(store: impl StateStore) {
    let g = group();
    let a = contact("Ann");
    let ids: Vec<String> = (0..60).map(|i| format!("e{i:02}")).collect();
    apply(&store, &g, ids.iter().filter(|id| *id != "e17").map(|id| put_entity(id, Some(a.clone()), None)).collect())
        .await;
    let before = snapshot(&store, &g).await;
    let copies = |ids: &[String]| -> Vec<StateWrite> {
        ids.iter().map(|id| put_replica(id, bob(), present(&format!("b-{id}"), "v", &a, Ownership::Created))).collect()
    };
    let err = store.apply(&g, copies(&ids).into()).await.expect_err("e17 does not exist");
    let text = err.to_string();
    assert!(text.contains("e17") && text.contains("bob@contoso.test"), "names the entity and the member: {text}");
    assert_eq!(snapshot(&store, &g).await, before, "nothing of the refused transaction is kept");

    let mut writes = vec![put_entity("e17", Some(a.clone()), None)];
    writes.extend(copies(&ids));
    apply(&store, &g, writes).await;
    assert_eq!(store.replica_count(&g, &bob()).await.unwrap(), ids.len());
}

/// A large transaction of updated copies (as an incremental pass writes a folder's: the same
/// items with new versions and content) is written whole, and one write among them that puts an
/// item filling another entity's slot refuses the whole transaction, naming the item and both
/// entities; the item index still finds every copy by its id afterwards.
pub async fn item_rule_in_a_large_transaction_of_updates(store: impl StateStore) {
    let g = group();
    let a = contact("Ann");
    let b = contact("Ben");
    let ids: Vec<String> = (0..40).map(|i| format!("e{i:02}")).collect();
    let copies = |version: &str, content: &Item, ownership: Ownership| -> Vec<StateWrite> {
        ids.iter().map(|id| put_replica(id, bob(), present(&format!("b-{id}"), version, content, ownership))).collect()
    };
    let mut writes: Vec<StateWrite> = ids.iter().map(|id| put_entity(id, Some(a.clone()), None)).collect();
    writes.extend(copies("v1", &a, Ownership::Created));
    apply(&store, &g, writes).await;

    // Every copy updated at once, one of them adopted since.
    let mut updates = copies("v2", &b, Ownership::Created);
    updates[7] = put_replica("e07", bob(), present("b-e07", "v2", &b, Ownership::Adopted));
    apply(&store, &g, updates).await;
    let record = entity(&store, &g, "e07").await.unwrap();
    assert_eq!(record.replicas[&bob()], present("b-e07", "v2", &b, Ownership::Adopted));
    let all: Vec<ItemId> = ids.iter().map(|id| iid(&format!("b-{id}"))).collect();
    let found = store.lookup_items(&g, &bob(), &all).await.unwrap();
    assert_eq!(found.len(), ids.len());
    assert!(found.iter().all(|k| k.version.as_str() == "v2" && k.entity.is_some()));

    // Updates again, but e11's slot is to take e12's copy.
    let before = snapshot(&store, &g).await;
    let mut updates = copies("v3", &a, Ownership::Created);
    updates[11] = put_replica("e11", bob(), present("b-e12", "v3", &a, Ownership::Created));
    let err = store.apply(&g, updates.into()).await.expect_err("b-e12 is e12's copy");
    assert_eq!(err.kind(), ErrorKind::State);
    let text = err.to_string();
    assert!(text.contains("b-e12") && text.contains("e11") && text.contains("e12"), "{text}");
    assert_eq!(snapshot(&store, &g).await, before, "nothing of the refused transaction is kept");

    // The same without e12's own update: every item of the transaction is named once, and the
    // others' updates come before and after the one that is refused.
    let mut updates = copies("v3", &a, Ownership::Created);
    updates[11] = put_replica("e11", bob(), present("b-e12", "v3", &a, Ownership::Created));
    updates.remove(12);
    let err = store.apply(&g, updates.into()).await.expect_err("b-e12 is e12's copy");
    let text = err.to_string();
    assert!(text.contains("b-e12") && text.contains("e11") && text.contains("e12"), "{text}");
    assert_eq!(snapshot(&store, &g).await, before, "nothing of the refused transaction is kept");

    // Updates among which e05's copy was replaced by a new item (a copy recreated), and e06 is
    // opted out: all are written, and the item index follows.
    let mut updates = copies("v4", &b, Ownership::Created);
    updates[5] = put_replica("e05", bob(), present("b-e05-new", "v4", &b, Ownership::Created));
    updates[6] = put_replica("e06", bob(), ReplicaSlot::OptedOut);
    apply(&store, &g, updates).await;
    let found = store.lookup_items(&g, &bob(), &[iid("b-e05-new"), iid("b-e05"), iid("b-e06")]).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].entity, Some(eid("e05")));
    assert_eq!(entity(&store, &g, "e06").await.unwrap().replicas[&bob()], ReplicaSlot::OptedOut);
    let record = entity(&store, &g, "e39").await.unwrap();
    assert_eq!(record.replicas[&bob()], present("b-e39", "v4", &b, Ownership::Created));
}

/// One item id in one folder is the replica of at most one entity; the violating transaction
/// changes nothing.
pub async fn item_cannot_be_replica_of_two_entities(store: impl StateStore) {
    let g = group();
    populate(&store, &g).await;
    let before = snapshot(&store, &g).await;
    let c = contact("Cleo");
    let err = store
        .apply(
            &g,
            vec![
                put_entity("e3", Some(c.clone()), None),
                put_replica("e3", alice(), present("a1", "v", &c, Ownership::Created)),
            ]
            .into(),
        )
        .await
        .expect_err("a1 is already e1's copy");
    assert_eq!(err.kind(), ErrorKind::State);
    let text = err.to_string();
    assert!(text.contains("a1") && text.contains("e1") && text.contains("e3"), "{text}");
    assert_eq!(snapshot(&store, &g).await, before);

    // After the first entity lets go of the item, the second may take it.
    apply(
        &store,
        &g,
        vec![
            StateWrite::RemoveReplica { entity: eid("e1"), member: alice() },
            put_entity("e3", Some(c.clone()), None),
            put_replica("e3", alice(), present("a1", "v", &c, Ownership::Adopted)),
        ],
    )
    .await;
    assert_eq!(
        store.lookup_items(&g, &alice(), &[iid("a1")]).await.unwrap(),
        vec![KnownItem { id: iid("a1"), version: Version::new("v"), entity: Some(eid("e3")) }]
    );
}

/// A sync token is committed with the state derived from its page, or not at all.
pub async fn token_commits_with_state(store: impl StateStore) {
    let g = group();
    let a = contact("Ann");
    apply(&store, &g, vec![StateWrite::SetToken { member: alice(), token: Some(SyncToken::new("page-1")) }]).await;
    let failed = vec![
        put_entity("e1", Some(a.clone()), None),
        put_replica("e1", alice(), present("a1", "v1", &a, Ownership::Adopted)),
        StateWrite::SetToken { member: alice(), token: Some(SyncToken::new("page-2")) },
        put_replica("missing", alice(), present("a2", "v1", &a, Ownership::Adopted)),
    ];
    store.apply(&g, failed.into()).await.expect_err("the page's last write fails");
    assert_eq!(store.token(&g, &alice()).await.unwrap(), Some(SyncToken::new("page-1")));
    assert_eq!(entity(&store, &g, "e1").await, None);

    let ok = vec![
        put_entity("e1", Some(a.clone()), None),
        put_replica("e1", alice(), present("a1", "v1", &a, Ownership::Adopted)),
        StateWrite::SetToken { member: alice(), token: Some(SyncToken::new("page-2")) },
    ];
    apply(&store, &g, ok).await;
    assert_eq!(store.token(&g, &alice()).await.unwrap(), Some(SyncToken::new("page-2")));
    assert!(entity(&store, &g, "e1").await.is_some());
}

/// Two groups with the same entity, member and item ids never see each other's state, and
/// nothing done in one (including removing a member, or a failed transaction) touches the other.
pub async fn groups_are_isolated(store: impl StateStore) {
    let one = GroupId::new("one");
    let two = GroupId::new("two");
    populate(&store, &one).await;
    assert!(store.entity_ids(&two, None, 10).await.unwrap().is_empty());
    assert!(store.known_items(&two, &alice()).await.unwrap().is_empty());
    assert!(store.lookup_items(&two, &hub(), &[iid("h1")]).await.unwrap().is_empty());
    assert!(store.entities_by_match_key(&two, &["k1".into()]).await.unwrap().is_empty());
    assert_eq!(store.replica_count(&two, &hub()).await.unwrap(), 0);
    assert_eq!(store.token(&two, &alice()).await.unwrap(), None);
    assert_eq!(store.member_status(&two, &hub()).await.unwrap(), MemberStatus::default());
    assert!(store.pending_creates(&two).await.unwrap().is_empty());
    assert!(store.conflicts(&two).await.unwrap().is_empty());
    // A replica in group two of an entity that only exists in group one is refused.
    let a = contact("Ann");
    store
        .apply(&two, vec![put_replica("e1", hub(), present("h1", "v", &a, Ownership::Adopted))].into())
        .await
        .expect_err("entities are per group");

    let one_before = snapshot(&store, &one).await;
    populate(&store, &two).await;
    assert_eq!(snapshot(&store, &two).await, one_before, "the same writes give the same state");
    apply(
        &store,
        &two,
        vec![
            StateWrite::RemoveMember { member: alice() },
            StateWrite::RemoveEntity { id: eid("e2") },
            StateWrite::SetToken { member: bob(), token: Some(SyncToken::new("two")) },
            put_entity("e1", None, Some("k3")),
        ],
    )
    .await;
    assert_eq!(snapshot(&store, &one).await, one_before);
}

/// An entity without a base (being deleted) disappears when its last copy is removed, and not
/// before; an opted-out slot does not keep it alive. An entity with a base stays even without
/// copies.
pub async fn tombstone_goes_with_its_last_copy(store: impl StateStore) {
    let g = group();
    let a = contact("Ann");
    apply(
        &store,
        &g,
        vec![
            put_entity("e1", Some(a.clone()), Some("k1")),
            put_replica("e1", hub(), present("h1", "v", &a, Ownership::Adopted)),
            put_replica("e1", alice(), present("a1", "v", &a, Ownership::Created)),
            put_replica("e1", bob(), ReplicaSlot::OptedOut),
            put_entity("e2", Some(a.clone()), None),
            put_replica("e2", hub(), present("h2", "v", &a, Ownership::Adopted)),
        ],
    )
    .await;
    // Tombstone e1: it keeps its copies until they are removed.
    apply(&store, &g, vec![put_entity("e1", None, Some("k1"))]).await;
    apply(&store, &g, vec![StateWrite::RemoveReplica { entity: eid("e1"), member: hub() }]).await;
    let record = entity(&store, &g, "e1").await.expect("one copy left");
    assert_eq!(record.replicas.len(), 2);
    assert_eq!(store.replica_count(&g, &alice()).await.unwrap(), 1);
    // The last copy goes: so does the entity, its opted-out slot and its match key.
    apply(&store, &g, vec![StateWrite::RemoveReplica { entity: eid("e1"), member: alice() }]).await;
    assert_eq!(entity(&store, &g, "e1").await, None);
    assert!(store.entities_by_match_key(&g, &["k1".into()]).await.unwrap().is_empty());
    assert_eq!(store.entity_ids(&g, None, 10).await.unwrap(), vec![eid("e2")]);

    // With a base, removing the last copy keeps the entity.
    apply(&store, &g, vec![StateWrite::RemoveReplica { entity: eid("e2"), member: hub() }]).await;
    let kept = entity(&store, &g, "e2").await.expect("entities with a base stay");
    assert!(kept.replicas.is_empty());

    // Within one transaction: tombstone and remove every copy.
    apply(
        &store,
        &g,
        vec![
            put_replica("e2", hub(), present("h2", "v2", &a, Ownership::Adopted)),
            put_entity("e2", None, None),
            StateWrite::RemoveReplica { entity: eid("e2"), member: hub() },
        ],
    )
    .await;
    assert_eq!(entity(&store, &g, "e2").await, None);
}

/// Removing a slot that is already gone, of an entity that is already gone, is not an error
/// (a delete may be retried after a crash).
pub async fn remove_replica_is_idempotent(store: impl StateStore) {
    let g = group();
    let a = contact("Ann");
    apply(
        &store,
        &g,
        vec![
            put_entity("e1", Some(a.clone()), None),
            put_replica("e1", hub(), present("h1", "v", &a, Ownership::Adopted)),
        ],
    )
    .await;
    let before = snapshot(&store, &g).await;
    apply(
        &store,
        &g,
        vec![
            StateWrite::RemoveReplica { entity: eid("e1"), member: bob() },
            StateWrite::RemoveReplica { entity: eid("gone"), member: hub() },
        ],
    )
    .await;
    assert_eq!(snapshot(&store, &g).await, before);
}

/// `known_items` lists every replica and foreign item of a folder with its version and entity;
/// `lookup_items` answers only the requested ids that are known, once each.
pub async fn known_and_looked_up_items(store: impl StateStore) {
    let g = group();
    populate(&store, &g).await;
    assert_eq!(
        sorted(store.known_items(&g, &alice()).await.unwrap()),
        vec![("a1".into(), "av1".into(), Some("e1".into())), ("mine".into(), "mv1".into(), None)]
    );
    assert_eq!(
        sorted(store.known_items(&g, &hub()).await.unwrap()),
        vec![("h1".into(), "hv1".into(), Some("e1".into())), ("h2".into(), "hv2".into(), Some("e2".into()))]
    );
    assert!(store.known_items(&g, &MemberId::new("carol")).await.unwrap().is_empty());

    let found =
        store.lookup_items(&g, &alice(), &[iid("mine"), iid("unknown"), iid("a1"), iid("mine"), iid("h1")]).await;
    assert_eq!(
        sorted(found.unwrap()),
        vec![("a1".into(), "av1".into(), Some("e1".into())), ("mine".into(), "mv1".into(), None)]
    );
    assert!(store.lookup_items(&g, &alice(), &[]).await.unwrap().is_empty());

    // Many ids at once (stores may batch their queries).
    let many: Vec<ItemId> = (0..2500).map(|i| iid(&format!("n{i}"))).chain([iid("b1")]).collect();
    assert_eq!(
        sorted(store.lookup_items(&g, &bob(), &many).await.unwrap()),
        vec![("b1".into(), "bv1".into(), Some("e1".into()))]
    );
    let many: Vec<ItemId> = many.into_iter().chain([iid("mine"), iid("a1"), iid("mine")]).collect();
    assert_eq!(
        sorted(store.lookup_items(&g, &alice(), &many).await.unwrap()),
        vec![("a1".into(), "av1".into(), Some("e1".into())), ("mine".into(), "mv1".into(), None)],
        "a user's own items are found among many ids too"
    );
}

/// `slots_in` answers one folder's slots, the same as the whole records hold: present and
/// opted-out slots, nothing for entities without a slot there or unknown ones.
pub async fn slots_in_one_folder(store: impl StateStore) {
    let g = group();
    populate(&store, &g).await;
    let ids = [eid("e2"), eid("nope"), eid("e1"), eid("e1")];
    let records = store.entities(&g, &ids).await.unwrap();
    for member in [hub(), alice(), bob(), MemberId::new("carol")] {
        let expected: std::collections::BTreeMap<EntityId, ReplicaSlot> =
            records.iter().filter_map(|r| r.replicas.get(&member).map(|slot| (r.id.clone(), slot.clone()))).collect();
        assert_eq!(store.slots_in(&g, &member, &ids).await.unwrap(), expected, "slots in {member}");
    }
    let alice_slots = store.slots_in(&g, &alice(), &ids).await.unwrap();
    assert_eq!(alice_slots.get(&eid("e2")), Some(&ReplicaSlot::OptedOut));
    assert_eq!(alice_slots.get(&eid("e1")).and_then(ReplicaSlot::replica).map(|r| r.item_id.as_str()), Some("a1"));
    assert_eq!(
        store.slots_in(&g, &bob(), &[eid("e2")]).await.unwrap(),
        std::collections::BTreeMap::from([(
            eid("e2"),
            ReplicaSlot::Personal { item_id: iid("bp2"), version: Version::new("bpv1") }
        )])
    );
    assert!(store.slots_in(&g, &hub(), &[eid("nope")]).await.unwrap().is_empty());
    assert!(store.slots_in(&GroupId::new("other"), &alice(), &ids).await.unwrap().is_empty());
}

/// `replica_count` counts present copies only: not opted-out slots, not foreign items.
pub async fn replica_count_counts_present_copies(store: impl StateStore) {
    let g = group();
    populate(&store, &g).await;
    assert_eq!(store.replica_count(&g, &hub()).await.unwrap(), 2);
    assert_eq!(store.replica_count(&g, &alice()).await.unwrap(), 1);
    assert_eq!(store.replica_count(&g, &bob()).await.unwrap(), 1);
    assert_eq!(store.replica_count(&g, &MemberId::new("carol")).await.unwrap(), 0);
}

/// `entity_ids` pages through every entity exactly once, in id order (byte order of the UTF-8
/// form, as Rust orders strings), whatever the page size.
pub async fn entity_ids_page_in_id_order(store: impl StateStore) {
    let g = group();
    let mut ids: Vec<String> =
        (0..37).map(|i| format!("{:032x}", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15))).collect();
    ids.extend(["Zeta", "alpha", "Ärger", "élan", "z", "10", "9", "a b"].map(str::to_owned));
    let writes = ids.iter().map(|id| put_entity(id, None, None)).collect();
    apply(&store, &g, writes).await;
    ids.sort();

    assert_eq!(store.entity_ids(&g, None, usize::MAX).await.unwrap(), ids.iter().map(|s| eid(s)).collect::<Vec<_>>());
    for page in [1, 7, 45, 100] {
        let mut seen = Vec::new();
        let mut after: Option<EntityId> = None;
        loop {
            let batch = store.entity_ids(&g, after.as_ref(), page).await.unwrap();
            assert!(batch.len() <= page);
            let Some(last) = batch.last().cloned() else { break };
            seen.extend(batch);
            after = Some(last);
        }
        assert_eq!(seen, ids.iter().map(|s| eid(s)).collect::<Vec<_>>(), "page size {page}");
    }
    assert!(store.entity_ids(&g, None, 0).await.unwrap().is_empty());
    // `after` need not exist.
    let next = ids.iter().find(|id| id.as_str() > "Zeta0").unwrap();
    assert_eq!(store.entity_ids(&g, Some(&eid("Zeta0")), 1).await.unwrap(), vec![eid(next)]);
}

/// `entities_by_match_key` finds every entity carrying one of the keys, and follows key changes
/// and removals.
pub async fn match_keys_follow_entities(store: impl StateStore) {
    let g = group();
    let a = contact("Ann");
    apply(
        &store,
        &g,
        vec![
            put_entity("e1", Some(a.clone()), Some("ann@contoso.test")),
            put_entity("e2", Some(a.clone()), Some("ann@contoso.test")),
            put_entity("e3", Some(a.clone()), Some("bert@contoso.test")),
            put_entity("e4", Some(a.clone()), None),
        ],
    )
    .await;
    let keys = |ks: &[&str]| ks.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
    let mut found =
        store.entities_by_match_key(&g, &keys(&["ann@contoso.test", "nobody", "bert@contoso.test"])).await.unwrap();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("ann@contoso.test".into(), eid("e1")),
            ("ann@contoso.test".into(), eid("e2")),
            ("bert@contoso.test".into(), eid("e3")),
        ]
    );
    assert!(store.entities_by_match_key(&g, &[]).await.unwrap().is_empty());
    assert!(store.entities_by_match_key(&g, &keys(&[""])).await.unwrap().is_empty());

    apply(
        &store,
        &g,
        vec![put_entity("e2", Some(a.clone()), Some("bert@contoso.test")), StateWrite::RemoveEntity { id: eid("e1") }],
    )
    .await;
    let mut found = store.entities_by_match_key(&g, &keys(&["ann@contoso.test", "bert@contoso.test"])).await.unwrap();
    found.sort();
    assert_eq!(found, vec![("bert@contoso.test".into(), eid("e2")), ("bert@contoso.test".into(), eid("e3"))]);

    // Many keys at once (stores may batch their queries).
    let many: Vec<String> = (0..2500).map(|i| format!("k{i}")).chain(["bert@contoso.test".to_owned()]).collect();
    assert_eq!(store.entities_by_match_key(&g, &many).await.unwrap().len(), 2);
}

/// `RemoveMember` forgets the folder's slots, foreign items, token, status and create intents;
/// tombstones that lose their last copy go; everything of other folders stays.
pub async fn member_removal_forgets_the_folder(store: impl StateStore) {
    let g = group();
    populate(&store, &g).await;
    let a = contact("Ann");
    apply(
        &store,
        &g,
        vec![
            put_entity("e3", None, None),
            put_replica("e3", alice(), present("a3", "v", &a, Ownership::Created)),
            put_entity("e4", None, None),
            put_replica("e4", alice(), present("a4", "v", &a, Ownership::Created)),
            put_replica("e4", bob(), present("b4", "v", &a, Ownership::Created)),
            StateWrite::PutPending(pending("e1", alice(), 8)),
            StateWrite::SetMemberStatus {
                member: alice(),
                status: MemberStatus { initialized: true, ..Default::default() },
            },
        ],
    )
    .await;
    apply(&store, &g, vec![StateWrite::RemoveMember { member: alice() }]).await;

    assert!(store.known_items(&g, &alice()).await.unwrap().is_empty());
    assert_eq!(store.replica_count(&g, &alice()).await.unwrap(), 0);
    assert_eq!(store.token(&g, &alice()).await.unwrap(), None);
    assert_eq!(store.member_status(&g, &alice()).await.unwrap(), MemberStatus::default());
    assert_eq!(store.pending_creates(&g).await.unwrap(), vec![pending("e2", bob(), 4)]);
    assert_eq!(store.conflicts(&g).await.unwrap().len(), 1, "conflict records are history and stay");

    let e1 = entity(&store, &g, "e1").await.unwrap();
    assert_eq!(e1.replicas.keys().cloned().collect::<Vec<_>>(), vec![bob(), hub()]);
    let e2 = entity(&store, &g, "e2").await.unwrap();
    assert_eq!(e2.replicas.keys().cloned().collect::<Vec<_>>(), vec![bob(), hub()], "the opted-out slot is gone");
    assert_eq!(entity(&store, &g, "e3").await, None, "a tombstone whose last copy was there goes");
    assert!(entity(&store, &g, "e4").await.is_some(), "a tombstone with a copy elsewhere stays");
    assert_eq!(store.replica_count(&g, &hub()).await.unwrap(), 2);
    assert_eq!(store.replica_count(&g, &bob()).await.unwrap(), 2);
    assert_eq!(store.token(&g, &MemberId::new("hub")).await.unwrap(), None);
    assert!(store.member_status(&g, &hub()).await.unwrap().initialized);

    // The folder can join again from scratch.
    apply(&store, &g, vec![put_replica("e1", alice(), present("a1", "new", &a, Ownership::Adopted))]).await;
    assert_eq!(store.replica_count(&g, &alice()).await.unwrap(), 1);
}

/// `members` lists every folder the state mentions, whatever it holds there, in id order; a removed
/// member is no longer listed; groups do not see each other's.
pub async fn members_are_the_folders_the_state_mentions(store: impl StateStore) {
    let g = group();
    assert!(store.members(&g).await.unwrap().is_empty());
    let a = contact("Ann");
    let carol = MemberId::new("carol@contoso.test");
    let dave = MemberId::new("dave@contoso.test");
    let erin = MemberId::new("erin@contoso.test");
    let frank = MemberId::new("frank@contoso.test");
    apply(
        &store,
        &g,
        vec![
            put_entity("e1", None, None),
            put_replica("e1", hub(), present("h1", "v", &a, Ownership::Created)),
            put_replica("e1", bob(), ReplicaSlot::OptedOut),
            StateWrite::PutForeign { member: alice(), id: iid("own"), version: Version::new("v") },
            StateWrite::SetToken { member: carol.clone(), token: Some(SyncToken::new("t")) },
            StateWrite::SetMemberStatus {
                member: dave.clone(),
                status: MemberStatus { initialized: true, ..Default::default() },
            },
            StateWrite::PutPending(pending("e1", erin.clone(), 3)),
        ],
    )
    .await;
    apply(
        &store,
        &GroupId::new("other"),
        vec![StateWrite::SetToken { member: frank, token: Some(SyncToken::new("t")) }],
    )
    .await;
    let all = vec![alice(), bob(), carol.clone(), dave.clone(), erin.clone(), hub()];
    assert_eq!(store.members(&g).await.unwrap(), all);
    apply(&store, &g, vec![StateWrite::RemoveMember { member: carol }]).await;
    apply(&store, &g, vec![StateWrite::RemoveMember { member: alice() }]).await;
    assert_eq!(store.members(&g).await.unwrap(), vec![bob(), dave, erin, hub()]);
}

/// Writes apply in order: later writes see earlier ones within the transaction, and the last
/// write to a key wins.
pub async fn writes_apply_in_order(store: impl StateStore) {
    let g = group();
    let a = contact("Ann");
    let b = contact("Bert");
    apply(
        &store,
        &g,
        vec![
            put_entity("e1", Some(a.clone()), Some("k1")),
            put_replica("e1", hub(), present("h1", "v1", &a, Ownership::Adopted)),
            StateWrite::RemoveEntity { id: eid("e1") },
            put_entity("e1", Some(b.clone()), Some("k2")),
            StateWrite::SetToken { member: hub(), token: Some(SyncToken::new("1")) },
            StateWrite::SetToken { member: hub(), token: None },
            StateWrite::PutForeign { member: hub(), id: iid("f"), version: Version::new("1") },
            StateWrite::RemoveForeign { member: hub(), id: iid("f") },
            StateWrite::PutPending(pending("e1", hub(), 1)),
            StateWrite::RemovePending { entity: eid("e1"), member: hub() },
            StateWrite::PutPending(pending("e1", bob(), 2)),
        ],
    )
    .await;
    assert_eq!(entity(&store, &g, "e1").await, Some(EntityRecord::new(eid("e1"), Some(b), Some("k2".into()))));
    assert!(store.known_items(&g, &hub()).await.unwrap().is_empty());
    assert_eq!(store.token(&g, &hub()).await.unwrap(), None);
    assert_eq!(store.pending_creates(&g).await.unwrap(), vec![pending("e1", bob(), 2)]);
}

/// An empty transaction succeeds and changes nothing.
pub async fn empty_transaction_changes_nothing(store: impl StateStore) {
    let g = group();
    populate(&store, &g).await;
    let before = snapshot(&store, &g).await;
    store.apply(&g, StateTransaction::new()).await.expect("an empty transaction applies");
    store.apply(&GroupId::new("never-written"), StateTransaction::new()).await.expect("in any group");
    assert_eq!(snapshot(&store, &g).await, before);
}

/// A transaction of thousands of writes (an initial sync's page) that fails on its last write
/// leaves none of them.
pub async fn large_failed_transaction_changes_nothing(store: impl StateStore) {
    let g = group();
    populate(&store, &g).await;
    let before = snapshot(&store, &g).await;
    let c = contact("Cleo");
    let mut writes = Vec::new();
    for i in 0..2000 {
        let id = format!("bulk{i:05}");
        writes.push(put_entity(&id, Some(c.clone()), Some("k3")));
        writes.push(put_replica(&id, alice(), present(&format!("ab{i}"), "v", &c, Ownership::Created)));
    }
    writes.push(StateWrite::SetToken { member: alice(), token: Some(SyncToken::new("after-bulk")) });
    writes.push(put_replica("unknown", hub(), present("h9", "v", &c, Ownership::Created)));
    store.apply(&g, writes.into()).await.expect_err("the last write is refused");
    assert_eq!(snapshot(&store, &g).await, before);
    assert!(
        store.entity_ids(&g, Some(&eid("bulk")), 1).await.unwrap().iter().all(|id| !id.as_str().starts_with("bulk"))
    );
}

/// A folder's status reads back as written, with its folder identity and every kind of
/// condition (and its text for `status`), and is replaced whole by the next.
pub async fn status_round_trips_every_condition(store: impl StateStore) {
    let g = group();
    let folder = FolderIdentity { id: "AAMkADc3«ünï»/+=".into(), path: "alice@contoso.test/Contacts/Firma".into() };
    let conditions = vec![
        FolderCondition::Clean,
        FolderCondition::Interrupted,
        FolderCondition::FailedWrites {
            count: 3,
            first_error: "ErrorIrresolvableConflict: «changed»\nsecond line".into(),
            entities: vec![eid("e1"), eid("e2"), eid("e3")],
        },
        FolderCondition::FailedWrites { count: 0, first_error: String::new(), entities: Vec::new() },
        FolderCondition::Unobservable { reason: "mailbox not found".into() },
        FolderCondition::Parked { until: at(9), reason: "ErrorServerBusy, back off 120 s".into() },
        FolderCondition::Vanished { copies: 1234 },
    ];
    for (i, condition) in conditions.into_iter().enumerate() {
        let status = MemberStatus {
            initialized: i % 2 == 0,
            last_sync: (i % 3 != 0).then(|| at(u32::try_from(i).unwrap())),
            folder: (i != 1).then(|| folder.clone()),
            condition: condition.clone(),
        };
        apply(&store, &g, vec![StateWrite::SetMemberStatus { member: alice(), status: status.clone() }]).await;
        let read = store.member_status(&g, &alice()).await.unwrap();
        assert_eq!(read, status, "condition {condition:?}");
        assert_eq!(read.last_error(), condition.problem());
    }
    assert_eq!(store.member_status(&g, &bob()).await.unwrap(), MemberStatus::default());
    assert_eq!(store.member_status(&GroupId::new("other"), &alice()).await.unwrap(), MemberStatus::default());
}

/// The statuses a pass records at its end, one per folder in one transaction, read back each
/// as written, one by one and all at once (as a pass reads them at its start); a folder whose status comes twice in the transaction keeps the later one; and a
/// transaction that fails after its statuses records none of them.
pub async fn statuses_of_many_folders_in_one_transaction(store: impl StateStore) {
    let g = group();
    let folder = |i: usize| FolderIdentity { id: format!("AAMk{i}=="), path: format!("m{i}@contoso.test/Contacts") };
    let status = |i: usize| MemberStatus {
        initialized: i % 4 != 1,
        last_sync: (i % 5 != 2).then(|| at(u32::try_from(i % 50).unwrap())),
        folder: (!i.is_multiple_of(3)).then(|| folder(i)),
        condition: match i % 4 {
            0 => FolderCondition::Clean,
            1 => FolderCondition::Interrupted,
            2 => FolderCondition::Recheck { entities: vec![eid(&format!("e{i}"))] },
            _ => FolderCondition::Parked { until: at(7), reason: format!("ErrorServerBusy in folder {i}") },
        },
    };
    let member = |i: usize| MemberId::new(format!("m{i:03}@contoso.test/contacts"));
    let writes = (0..40).map(|i| StateWrite::SetMemberStatus { member: member(i), status: status(i) }).collect();
    apply(&store, &g, writes).await;
    for i in 0..40 {
        assert_eq!(store.member_status(&g, &member(i)).await.unwrap(), status(i), "folder {i}");
    }
    // Read all at once, with a folder never written (default) and one of another group.
    let mut asked: Vec<MemberId> = (0..40).rev().map(member).collect();
    asked.push(member(99));
    let all = store.member_statuses(&g, &asked).await.unwrap();
    assert_eq!(all.len(), 41);
    for i in 0..40 {
        assert_eq!(all[&member(i)], status(i), "folder {i} read with the others");
    }
    assert_eq!(all[&member(99)], MemberStatus::default());
    let elsewhere = store.member_statuses(&GroupId::new("other"), &asked[..3]).await.unwrap();
    assert!(elsewhere.values().all(|s| *s == MemberStatus::default()) && elsewhere.len() == 3);
    // Folder 3 twice among others: the later status stands.
    let writes = vec![
        StateWrite::SetMemberStatus { member: member(3), status: status(100) },
        StateWrite::SetMemberStatus { member: member(4), status: status(101) },
        StateWrite::SetMemberStatus { member: member(5), status: status(102) },
        StateWrite::SetMemberStatus { member: member(6), status: status(103) },
        StateWrite::SetMemberStatus { member: member(3), status: status(104) },
    ];
    apply(&store, &g, writes).await;
    assert_eq!(store.member_status(&g, &member(3)).await.unwrap(), status(104));
    assert_eq!(store.member_status(&g, &member(6)).await.unwrap(), status(103));
    // Statuses then a write that is refused: nothing of the transaction stays.
    let mut writes: Vec<StateWrite> =
        (0..40).map(|i| StateWrite::SetMemberStatus { member: member(i), status: status(200 + i) }).collect();
    writes.push(StateWrite::PutReplica { entity: eid("nobody"), member: alice(), slot: ReplicaSlot::OptedOut });
    assert!(store.apply(&g, writes.into()).await.is_err());
    assert_eq!(store.member_status(&g, &member(10)).await.unwrap(), status(10));
    assert_eq!(store.member_status(&g, &member(3)).await.unwrap(), status(104));
}

/// Earlier bases read back with their entity (through `entities`, in order), are replaced and
/// cleared by `PutEarlierBases`, stay when the entity's base changes, and go with the entity;
/// they cannot be set for an entity that does not exist (the whole transaction is refused).
pub async fn earlier_bases_go_with_their_entity(store: impl StateStore) {
    let g = group();
    let now = contact("Ann");
    let earlier = vec![contact("Ann (first)"), contact("Ann (second)")];
    apply(
        &store,
        &g,
        vec![
            put_entity("e1", Some(now.clone()), Some("k1")),
            put_replica("e1", alice(), present("a1", "v1", &earlier[0], Ownership::Created)),
            StateWrite::PutEarlierBases { entity: eid("e1"), bases: earlier.clone() },
            put_entity("e2", Some(now.clone()), None),
        ],
    )
    .await;
    let record = entity(&store, &g, "e1").await.unwrap();
    assert_eq!(record.earlier_bases, earlier);
    assert_eq!(record.earlier_base(earlier[1].content_hash()), Some(&earlier[1]));
    assert!(entity(&store, &g, "e2").await.unwrap().earlier_bases.is_empty());
    let both = store.entities(&g, &[eid("e2"), eid("e1")]).await.unwrap();
    assert_eq!(both.iter().map(|r| r.earlier_bases.len()).collect::<Vec<_>>(), vec![0, 2]);

    // A new base keeps them; a write replaces them; an empty one clears them.
    apply(&store, &g, vec![put_entity("e1", Some(contact("Anna")), Some("k1"))]).await;
    assert_eq!(entity(&store, &g, "e1").await.unwrap().earlier_bases, earlier);
    apply(&store, &g, vec![StateWrite::PutEarlierBases { entity: eid("e1"), bases: vec![earlier[1].clone()] }]).await;
    assert_eq!(entity(&store, &g, "e1").await.unwrap().earlier_bases, vec![earlier[1].clone()]);

    // For an unknown entity: refused, naming it, and nothing of the transaction is kept.
    let before = snapshot(&store, &g).await;
    let err = store
        .apply(
            &g,
            vec![
                StateWrite::PutEarlierBases { entity: eid("e1"), bases: Vec::new() },
                StateWrite::PutEarlierBases { entity: eid("ghost"), bases: earlier.clone() },
            ]
            .into(),
        )
        .await
        .expect_err("the entity does not exist");
    assert_eq!(err.kind(), ErrorKind::State);
    assert!(err.to_string().contains("ghost") && err.to_string().contains("contacts"), "{err}");
    assert_eq!(snapshot(&store, &g).await, before);

    apply(&store, &g, vec![StateWrite::PutEarlierBases { entity: eid("e1"), bases: Vec::new() }]).await;
    assert!(entity(&store, &g, "e1").await.unwrap().earlier_bases.is_empty());

    // They go with the entity: a new entity of the same id starts without.
    apply(&store, &g, vec![StateWrite::PutEarlierBases { entity: eid("e1"), bases: earlier.clone() }]).await;
    apply(&store, &g, vec![StateWrite::RemoveEntity { id: eid("e1") }, put_entity("e1", Some(now.clone()), None)])
        .await;
    assert!(entity(&store, &g, "e1").await.unwrap().earlier_bases.is_empty());
    // And with a tombstone that goes with its last copy.
    apply(
        &store,
        &g,
        vec![
            put_replica("e1", hub(), present("h1", "v1", &now, Ownership::Adopted)),
            StateWrite::PutEarlierBases { entity: eid("e1"), bases: earlier.clone() },
            put_entity("e1", None, None),
            StateWrite::RemoveReplica { entity: eid("e1"), member: hub() },
            put_entity("e1", Some(now), None),
        ],
    )
    .await;
    assert!(entity(&store, &g, "e1").await.unwrap().earlier_bases.is_empty());
}

/// A personal slot (a user's item standing in for an entity) reads back in the entity's record
/// and `slots_in`, is a known item of its entity in its folder (`known_items`, `lookup_items`),
/// is no copy (`replica_count`), and leaves with its folder (`RemoveMember`). A user's own item
/// that becomes a personal slot is no longer a user's own item; a personal slot can become a
/// copy and back.
pub async fn personal_slots_stand_in_for_their_entity(store: impl StateStore) {
    let g = group();
    let a = contact("Ann");
    let personal =
        |item: &str, version: &str| ReplicaSlot::Personal { item_id: iid(item), version: Version::new(version) };
    apply(
        &store,
        &g,
        vec![
            put_entity("e1", Some(a.clone()), Some("ann@contoso.test")),
            put_replica("e1", hub(), present("h1", "hv1", &a, Ownership::Adopted)),
            put_replica("e1", alice(), personal("mine", "mv1")),
            put_entity("e2", Some(a.clone()), None),
            put_replica("e2", alice(), present("a2", "av2", &a, Ownership::Created)),
            StateWrite::PutForeign { member: alice(), id: iid("other"), version: Version::new("ov1") },
        ],
    )
    .await;
    let record = entity(&store, &g, "e1").await.unwrap();
    assert_eq!(record.replicas.get(&alice()), Some(&personal("mine", "mv1")));
    assert_eq!(record.replicas.get(&alice()).and_then(ReplicaSlot::item_id), Some(&iid("mine")));
    assert_eq!(
        store.slots_in(&g, &alice(), &[eid("e1"), eid("e2")]).await.unwrap().get(&eid("e1")),
        Some(&personal("mine", "mv1"))
    );
    assert_eq!(
        sorted(store.known_items(&g, &alice()).await.unwrap()),
        vec![
            ("a2".into(), "av2".into(), Some("e2".into())),
            ("mine".into(), "mv1".into(), Some("e1".into())),
            ("other".into(), "ov1".into(), None),
        ]
    );
    assert_eq!(
        store.lookup_items(&g, &alice(), &[iid("mine")]).await.unwrap(),
        vec![KnownItem { id: iid("mine"), version: Version::new("mv1"), entity: Some(eid("e1")) }]
    );
    assert_eq!(store.replica_count(&g, &alice()).await.unwrap(), 1, "a personal slot is no copy");
    assert_eq!(store.replica_count(&g, &hub()).await.unwrap(), 1);

    // A user's own item stands in for an entity: it leaves the list of the user's own items.
    apply(
        &store,
        &g,
        vec![put_entity("e3", Some(a.clone()), None), put_replica("e3", alice(), personal("other", "ov2"))],
    )
    .await;
    assert_eq!(
        sorted(store.known_items(&g, &alice()).await.unwrap()),
        vec![
            ("a2".into(), "av2".into(), Some("e2".into())),
            ("mine".into(), "mv1".into(), Some("e1".into())),
            ("other".into(), "ov2".into(), Some("e3".into())),
        ]
    );
    // A newer version; then the item comes to hold the entity and joins it as a copy; and back.
    apply(&store, &g, vec![put_replica("e1", alice(), personal("mine", "mv2"))]).await;
    assert_eq!(store.lookup_items(&g, &alice(), &[iid("mine")]).await.unwrap()[0].version, Version::new("mv2"));
    apply(&store, &g, vec![put_replica("e1", alice(), present("mine", "mv3", &a, Ownership::Adopted))]).await;
    assert_eq!(store.replica_count(&g, &alice()).await.unwrap(), 2);
    apply(&store, &g, vec![put_replica("e1", alice(), personal("mine", "mv4"))]).await;
    assert_eq!(store.replica_count(&g, &alice()).await.unwrap(), 1);
    // The user's item goes (the slot is removed), and comes back as a user's own item.
    apply(
        &store,
        &g,
        vec![
            StateWrite::RemoveReplica { entity: eid("e3"), member: alice() },
            StateWrite::PutForeign { member: alice(), id: iid("other"), version: Version::new("ov3") },
        ],
    )
    .await;
    assert_eq!(store.lookup_items(&g, &alice(), &[iid("other")]).await.unwrap()[0].entity, None);
    assert!(entity(&store, &g, "e3").await.unwrap().replicas.is_empty());

    // The folder leaves: its personal slots go with everything else of it.
    apply(&store, &g, vec![StateWrite::RemoveMember { member: alice() }]).await;
    assert!(store.known_items(&g, &alice()).await.unwrap().is_empty());
    assert_eq!(entity(&store, &g, "e1").await.unwrap().replicas.keys().cloned().collect::<Vec<_>>(), vec![hub()]);
    assert_eq!(store.members(&g).await.unwrap(), vec![hub()]);
}

/// An item fills one slot at most, whatever the slots' kinds: a personal slot cannot take
/// another entity's copy, nor a copy another entity's stand-in, and a stand-in cannot be
/// recorded as the user's own item; each refusal names the item and both entities and keeps
/// nothing of its transaction.
pub async fn personal_slot_item_rules(store: impl StateStore) {
    let g = group();
    populate(&store, &g).await;
    let c = contact("Cleo");
    let before = snapshot(&store, &g).await;
    let refused: Vec<(Vec<StateWrite>, [&str; 3])> = vec![
        (
            vec![
                put_entity("e3", Some(c.clone()), None),
                put_replica("e3", bob(), ReplicaSlot::Personal { item_id: iid("b1"), version: Version::new("x") }),
            ],
            ["b1", "e1", "e3"],
        ),
        (
            vec![
                put_entity("e3", Some(c.clone()), None),
                put_replica("e3", bob(), present("bp2", "x", &c, Ownership::Adopted)),
            ],
            ["bp2", "e2", "e3"],
        ),
        (
            vec![
                StateWrite::SetToken { member: bob(), token: Some(SyncToken::new("t")) },
                StateWrite::PutForeign { member: bob(), id: iid("bp2"), version: Version::new("x") },
            ],
            ["bp2", "e2", "bob@contoso.test"],
        ),
    ];
    for (writes, names) in refused {
        let err = store.apply(&g, writes.clone().into()).await.expect_err("the item fills another slot");
        assert_eq!(err.kind(), ErrorKind::State);
        let text = err.to_string();
        assert!(names.iter().all(|n| text.contains(n)), "{names:?} in {text}");
        assert_eq!(snapshot(&store, &g).await, before, "after {writes:?}");
    }
    // The same item in another folder is another item.
    apply(
        &store,
        &g,
        vec![put_replica("e2", alice(), ReplicaSlot::Personal { item_id: iid("b1"), version: Version::new("x") })],
    )
    .await;
    assert_eq!(store.lookup_items(&g, &alice(), &[iid("b1")]).await.unwrap()[0].entity, Some(eid("e2")));
}

/// An entity being deleted goes with its last copy, and its other slots (opted out, personal)
/// go with it: its stand-ins are no longer known items, its folders are no longer mentioned, and
/// an entity created again under its id starts without slots. The same when the last copy
/// leaves with its folder.
pub async fn tombstone_takes_its_other_slots_along(store: impl StateStore) {
    let g = group();
    let a = contact("Ann");
    let carol = MemberId::new("carol@contoso.test");
    let personal = |item: &str| ReplicaSlot::Personal { item_id: iid(item), version: Version::new("v") };
    apply(
        &store,
        &g,
        vec![
            put_entity("e1", Some(a.clone()), None),
            put_replica("e1", hub(), present("h1", "v", &a, Ownership::Adopted)),
            put_replica("e1", alice(), personal("mine")),
            put_replica("e1", bob(), ReplicaSlot::OptedOut),
            put_entity("e2", Some(a.clone()), None),
            put_replica("e2", hub(), present("h2", "v", &a, Ownership::Adopted)),
            put_replica("e2", carol.clone(), present("c2", "v", &a, Ownership::Created)),
            put_replica("e2", alice(), personal("mine2")),
            put_replica("e2", bob(), ReplicaSlot::OptedOut),
        ],
    )
    .await;
    // A tombstone with only a personal slot left besides its last copy goes with that copy.
    apply(&store, &g, vec![put_entity("e1", None, None)]).await;
    apply(&store, &g, vec![StateWrite::RemoveReplica { entity: eid("e1"), member: hub() }]).await;
    assert_eq!(entity(&store, &g, "e1").await, None);
    assert!(store.slots_in(&g, &alice(), &[eid("e1")]).await.unwrap().is_empty());
    assert!(store.slots_in(&g, &bob(), &[eid("e1")]).await.unwrap().is_empty());
    assert_eq!(
        sorted(store.known_items(&g, &alice()).await.unwrap()),
        vec![("mine2".into(), "v".into(), Some("e2".into()))]
    );
    apply(&store, &g, vec![put_entity("e1", Some(a.clone()), None)]).await;
    assert!(entity(&store, &g, "e1").await.unwrap().replicas.is_empty(), "a new entity of the same id");

    // A tombstone whose last copy leaves with its folder.
    apply(
        &store,
        &g,
        vec![
            put_entity("e2", None, None),
            StateWrite::RemoveReplica { entity: eid("e2"), member: hub() },
            StateWrite::RemoveMember { member: carol.clone() },
        ],
    )
    .await;
    assert_eq!(entity(&store, &g, "e2").await, None);
    assert!(store.known_items(&g, &alice()).await.unwrap().is_empty());
    assert!(store.slots_in(&g, &bob(), &[eid("e2")]).await.unwrap().is_empty());
    assert_eq!(store.members(&g).await.unwrap(), Vec::<MemberId>::new());
}

/// Admin requests: posted requests are listed per group, oldest first, with their content and
/// the time of posting; ids grow in posting order across groups and are never given twice, even
/// after the newest was removed. `RemoveRequest` removes one in a transaction, with the
/// transaction or not at all, only in its own group, and is idempotent.
pub async fn requests_are_posted_in_order_and_removed_with_transactions(store: impl StateStore) {
    let g = group();
    let other = GroupId::new("other");
    assert!(store.requests(&g).await.unwrap().is_empty());
    let started = Utc::now();
    let first = store.post_request(&g, AdminRequest::ConfirmDeletions).await.unwrap();
    let elsewhere = store.post_request(&other, AdminRequest::Resync { member: None }).await.unwrap();
    let second = store.post_request(&g, AdminRequest::Resync { member: Some(alice()) }).await.unwrap();
    let third = store.post_request(&g, AdminRequest::ConfirmDeletions).await.unwrap();
    let ended = Utc::now();
    assert!(first < elsewhere && elsewhere < second && second < third, "{first} {elsewhere} {second} {third}");

    let posted = store.requests(&g).await.unwrap();
    assert_eq!(
        posted.iter().map(|r| (r.id, r.request.clone())).collect::<Vec<_>>(),
        vec![
            (first, AdminRequest::ConfirmDeletions),
            (second, AdminRequest::Resync { member: Some(alice()) }),
            (third, AdminRequest::ConfirmDeletions),
        ]
    );
    assert!(posted.iter().all(|r| r.posted_at >= started - chrono::Duration::seconds(1)
        && r.posted_at <= ended + chrono::Duration::seconds(1)));
    assert!(posted.windows(2).all(|w| w[0].posted_at <= w[1].posted_at));
    assert_eq!(store.requests(&other).await.unwrap().len(), 1);

    // A failed transaction keeps the request; a removal in another group removes nothing.
    let err = store
        .apply(
            &g,
            vec![
                StateWrite::RemoveRequest { id: first },
                put_replica("ghost", hub(), present("h", "v", &contact("X"), Ownership::Created)),
            ]
            .into(),
        )
        .await;
    assert!(err.is_err());
    apply(&store, &other, vec![StateWrite::RemoveRequest { id: first }]).await;
    assert_eq!(store.requests(&g).await.unwrap().len(), 3);

    // Carried out: removed with the pass's state, once; removing it again is no error.
    apply(
        &store,
        &g,
        vec![
            StateWrite::SetToken { member: alice(), token: Some(SyncToken::new("t")) },
            StateWrite::RemoveRequest { id: first },
            StateWrite::RemoveRequest { id: third },
            StateWrite::RemoveRequest { id: third },
            StateWrite::RemoveRequest { id: u64::MAX },
        ],
    )
    .await;
    assert_eq!(store.requests(&g).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), vec![second]);
    let fourth = store.post_request(&g, AdminRequest::ConfirmDeletions).await.unwrap();
    assert!(fourth > third, "the id of a removed request is not given again");
    assert_eq!(store.requests(&g).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), vec![second, fourth]);
    assert_eq!(store.requests(&other).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), vec![elsewhere]);
}

/// `newest_requests` answers, for every group with a request not yet removed and only for
/// those, the id of its newest: a request posted to one group shows in that group alone, a
/// removed one no longer counts (the group's next newest does, or the group is left out), and a
/// failed transaction removes nothing.
pub async fn newest_requests_name_every_group_with_a_request(store: impl StateStore) {
    let g = group();
    let other = GroupId::new("other");
    let quiet = GroupId::new("quiet");
    assert!(store.newest_requests().await.unwrap().is_empty());
    // A group holding state but no request is not listed.
    apply(&store, &quiet, vec![StateWrite::SetToken { member: alice(), token: Some(SyncToken::new("t")) }]).await;
    assert!(store.newest_requests().await.unwrap().is_empty());

    let first = store.post_request(&g, AdminRequest::ConfirmDeletions).await.unwrap();
    assert_eq!(store.newest_requests().await.unwrap(), BTreeMap::from([(g.clone(), first)]));
    let elsewhere = store.post_request(&other, AdminRequest::Resync { member: None }).await.unwrap();
    let second = store.post_request(&g, AdminRequest::Resync { member: Some(alice()) }).await.unwrap();
    assert_eq!(
        store.newest_requests().await.unwrap(),
        BTreeMap::from([(g.clone(), second), (other.clone(), elsewhere)])
    );

    // A failed transaction removes nothing.
    let failing = vec![
        StateWrite::RemoveRequest { id: second },
        put_replica("ghost", hub(), present("h", "v", &contact("X"), Ownership::Created)),
    ];
    assert!(store.apply(&g, failing.into()).await.is_err());
    assert_eq!(store.newest_requests().await.unwrap().get(&g), Some(&second));

    // The newest carried out: the one before it is the newest; the last one carried out: the
    // group is no longer listed.
    apply(&store, &g, vec![StateWrite::RemoveRequest { id: second }]).await;
    assert_eq!(
        store.newest_requests().await.unwrap(),
        BTreeMap::from([(g.clone(), first), (other.clone(), elsewhere)])
    );
    apply(&store, &g, vec![StateWrite::RemoveRequest { id: first }]).await;
    apply(&store, &other, vec![StateWrite::RemoveRequest { id: elsewhere }]).await;
    assert!(store.newest_requests().await.unwrap().is_empty());

    // Ids are never given again: a request posted now is newer than every one seen before.
    let third = store.post_request(&other, AdminRequest::ConfirmDeletions).await.unwrap();
    assert!(third > second, "{third} after {second}");
    assert_eq!(store.newest_requests().await.unwrap(), BTreeMap::from([(other, third)]));
}

/// `groups` lists, in id order, every group that holds anything (entities, a user's own item, a
/// token, a status, a create intent, a conflict record, an admin request), and no longer lists
/// one whose state is all gone.
pub async fn groups_are_listed_while_they_hold_state(store: impl StateStore) {
    assert!(store.groups().await.unwrap().is_empty());
    let ids = ["g-entity", "g-foreign", "g-token", "g-status", "g-intent", "g-conflict", "g-request", "G-upper"];
    let gid = |i: usize| GroupId::new(ids[i]);
    apply(&store, &gid(0), vec![put_entity("e1", None, None)]).await;
    apply(&store, &gid(1), vec![StateWrite::PutForeign { member: alice(), id: iid("x"), version: Version::new("1") }])
        .await;
    apply(&store, &gid(2), vec![StateWrite::SetToken { member: alice(), token: Some(SyncToken::new("t")) }]).await;
    apply(&store, &gid(3), vec![StateWrite::SetMemberStatus { member: alice(), status: MemberStatus::default() }])
        .await;
    apply(&store, &gid(4), vec![StateWrite::PutPending(pending("e1", alice(), 1))]).await;
    apply(&store, &gid(5), vec![StateWrite::AddConflict(conflict("e1", "body", 1))]).await;
    let request = store.post_request(&gid(6), AdminRequest::ConfirmDeletions).await.unwrap();
    populate(&store, &gid(7)).await;
    apply(&store, &GroupId::new("g-empty"), StateTransaction::new().writes).await;
    let mut expected: Vec<GroupId> = (0..ids.len()).map(gid).collect();
    expected.sort();
    assert_eq!(store.groups().await.unwrap(), expected);

    // Groups whose state is all gone are no longer listed.
    apply(&store, &gid(0), vec![StateWrite::RemoveEntity { id: eid("e1") }]).await;
    apply(&store, &gid(1), vec![StateWrite::RemoveMember { member: alice() }]).await;
    apply(&store, &gid(2), vec![StateWrite::SetToken { member: alice(), token: None }]).await;
    apply(&store, &gid(4), vec![StateWrite::RemovePending { entity: eid("e1"), member: alice() }]).await;
    apply(&store, &gid(6), vec![StateWrite::RemoveRequest { id: request }]).await;
    let mut expected = vec![gid(3), gid(5), gid(7)];
    expected.sort();
    assert_eq!(store.groups().await.unwrap(), expected);
}

/// Group records: set, replaced, removed, per group, all or nothing with their transaction, and
/// untouched by a member's removal.
pub async fn records_are_kept_per_group_and_go_with_their_transaction(store: impl StateStore) {
    let g = group();
    let other = GroupId::new("other");
    let put = |key: &str, value: Option<&str>| StateWrite::PutRecord { key: key.into(), value: value.map(Into::into) };
    assert_eq!(store.record(&g, "last_report").await.unwrap(), None);
    store.apply(&g, vec![put("last_report", Some("{\"a\":1}")), put("members", Some("[]"))].into()).await.unwrap();
    store.apply(&other, vec![put("last_report", Some("other"))].into()).await.unwrap();
    assert_eq!(store.record(&g, "last_report").await.unwrap().as_deref(), Some("{\"a\":1}"));
    assert_eq!(store.record(&other, "last_report").await.unwrap().as_deref(), Some("other"));
    assert!(store.groups().await.unwrap().contains(&other), "a group with a record holds state");

    store.apply(&g, vec![put("last_report", Some("{\"a\":2}"))].into()).await.unwrap();
    assert_eq!(store.record(&g, "last_report").await.unwrap().as_deref(), Some("{\"a\":2}"));
    // A failed transaction leaves the record as it was.
    let failing = vec![
        put("last_report", Some("lost")),
        StateWrite::PutReplica { entity: EntityId::new("nobody"), member: alice(), slot: ReplicaSlot::OptedOut },
    ];
    assert!(store.apply(&g, failing.into()).await.is_err());
    assert_eq!(store.record(&g, "last_report").await.unwrap().as_deref(), Some("{\"a\":2}"));
    store.apply(&g, vec![StateWrite::RemoveMember { member: alice() }].into()).await.unwrap();
    assert_eq!(store.record(&g, "members").await.unwrap().as_deref(), Some("[]"), "not a member's state");
    store.apply(&g, vec![put("members", None)].into()).await.unwrap();
    assert_eq!(store.record(&g, "members").await.unwrap(), None);
}
