//! The state machine that holds a state store to the memory store's semantics: random
//! transactions (failing ones too) and admin requests, in two groups, applied to both stores;
//! after each step they must have succeeded or failed together and hold states no reader can
//! tell apart. Every store implementation (SQLite, PostgreSQL) runs it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

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

/// How many cases a run tries: `PROPTEST_CASES` for long runs, else `default` (lower for stores
/// whose every case costs a database schema).
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Applies `steps` to a fresh memory store and to `store` (fresh too), comparing after each.
pub async fn agree(store: &impl StateStore, name: &str, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let memory = MemoryStore::new();
    // Two groups, so that isolation is exercised too.
    let groups = [GroupId::new("g"), GroupId::new("h")];
    for step in steps {
        match &step {
            Step::Apply(second, writes) => {
                let g = &groups[usize::from(*second)];
                let m = memory.apply(g, writes.clone().into()).await;
                let s = store.apply(g, writes.clone().into()).await;
                prop_assert_eq!(m.is_ok(), s.is_ok(), "memory: {:?}\n{}: {:?}\nwrites: {:#?}", m, name, s, writes);
            }
            Step::Post(second, request) => {
                let g = &groups[usize::from(*second)];
                let m = memory.post_request(g, request.clone()).await.unwrap();
                let s = store.post_request(g, request.clone()).await.unwrap();
                prop_assert_eq!(m, s, "request ids");
            }
        }
        for g in &groups {
            prop_assert_eq!(snapshot(&memory, g).await, snapshot(store, g).await, "after {:#?}", step);
        }
        prop_assert_eq!(memory.groups().await.unwrap(), store.groups().await.unwrap(), "after {:#?}", step);
    }
    Ok(())
}

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
pub enum Step {
    /// A transaction in group `g` (or `h` when the flag is set).
    Apply(bool, Vec<StateWrite>),
    /// An admin request posted to `g` (or `h`).
    Post(bool, AdminRequest),
}

/// The steps of a case, after a first transaction in each group that creates every entity
/// (some as tombstones): without it, most random transactions fail on a replica of an entity
/// that does not exist yet, and the rules about slots of existing entities are seldom reached.
pub fn steps() -> impl Strategy<Value = Vec<Step>> {
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
