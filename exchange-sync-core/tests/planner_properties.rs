//! Random histories through the planner alone (no faults; the engine's state machine adds those):
//! users add, edit, delete and touch items in a hub, a one-way member and two two-way members,
//! with random policies, and the group syncs now and then. After every sync the folders must be
//! converged and the next plan empty; items that are the users' own are never touched; and
//! nothing a one-way member's user typed ever reaches the hub. `PROPTEST_CASES` sets the number of
//! histories (256 by default).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod planner_support;

use exchange_sync_core::group::{LocalChangePolicy, OneWayPolicy, TwoWayPolicy};
use std::collections::BTreeSet;

use exchange_sync_core::{
    Body, ConflictPolicy, Direction, FieldValue, Item, ItemId, Member, Observed, PlanInput, ReplicaSlot, SyncGroup,
    plan,
};
use planner_support::{World, contact, m};
use proptest::prelude::*;

const FOLDERS: [&str; 4] = ["hub", "reader", "alice", "bob"];
const NAMES: [&str; 4] = ["ada", "grace", "alan", "edsger"];

#[derive(Debug, Clone)]
enum Op {
    Add { folder: usize, name: usize },
    Edit { folder: usize, pick: usize, edit: Edit },
    Delete { folder: usize, pick: usize },
    Touch { folder: usize, pick: usize },
    Sync,
}

#[derive(Debug, Clone)]
enum Edit {
    Company(u8),
    ClearCompany,
    Email(usize),
    Body(u8),
    AddCategory(u8),
    RemoveCategory(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let edit = prop_oneof![
        (0u8..3).prop_map(Edit::Company),
        Just(Edit::ClearCompany),
        (0..NAMES.len()).prop_map(Edit::Email),
        (0u8..2).prop_map(Edit::Body),
        (0u8..3).prop_map(Edit::AddCategory),
        (0u8..3).prop_map(Edit::RemoveCategory),
    ];
    prop_oneof![
        2 => (0..4usize, 0..NAMES.len()).prop_map(|(folder, name)| Op::Add { folder, name }),
        4 => (0..4usize, any::<usize>(), edit).prop_map(|(folder, pick, edit)| Op::Edit { folder, pick, edit }),
        1 => (0..4usize, any::<usize>()).prop_map(|(folder, pick)| Op::Delete { folder, pick }),
        1 => (0..4usize, any::<usize>()).prop_map(|(folder, pick)| Op::Touch { folder, pick }),
        3 => Just(Op::Sync),
    ]
}

fn local_policy() -> impl Strategy<Value = LocalChangePolicy> {
    prop_oneof![Just(LocalChangePolicy::Revert), Just(LocalChangePolicy::Ignore)]
}

fn group_strategy() -> impl Strategy<Value = SyncGroup> {
    let conflict = prop_oneof![
        Just(ConflictPolicy::HubWins),
        Just(ConflictPolicy::NewestWins),
        Just(ConflictPolicy::MemberPriority(vec![m("bob"), m("hub")])),
    ];
    (local_policy(), local_policy(), any::<bool>(), any::<bool>(), conflict, any::<bool>()).prop_map(
        |(on_edit, on_delete, adopt, propagate, conflict_policy, keyed)| {
            let mut g = SyncGroup::new("prop", "hub")
                .with_member(Member::new("reader", Direction::OneWay(OneWayPolicy { on_edit, on_delete })))
                .with_member(Member::new(
                    "alice",
                    Direction::TwoWay(TwoWayPolicy { adopt_new_items: adopt, propagate_deletes: propagate }),
                ))
                .with_member(Member::new("bob", Direction::two_way()));
            g.conflict_policy = conflict_policy;
            if keyed {
                g.match_key = vec!["email1.address".into()];
            }
            g
        },
    )
}

/// The marker of text a folder's user typed.
fn typed(folder: usize, what: &str) -> String {
    format!("{}:{what}", FOLDERS[folder])
}

fn apply_edit(item: &mut Item, folder: usize, edit: &Edit) {
    match edit {
        Edit::Company(v) => item.set("company", typed(folder, &format!("company{v}"))),
        Edit::ClearCompany => item.set("company", ""),
        Edit::Email(n) => item.set("email1.address", format!("{}@example.test", NAMES[*n])),
        Edit::Body(v) => item.body = Some(Body::text(typed(folder, &format!("body{v}")))),
        Edit::AddCategory(v) => {
            item.categories.insert(typed(folder, &format!("cat{v}")));
        }
        Edit::RemoveCategory(v) => {
            let victim = item.categories.iter().nth(usize::from(*v)).cloned();
            if let Some(c) = victim {
                item.categories.remove(&c);
            }
        }
    }
}

fn pick(w: &World, folder: usize, pick: usize) -> Option<ItemId> {
    let items = &w.folders[&m(FOLDERS[folder])];
    if items.is_empty() { None } else { items.keys().nth(pick % items.len()).cloned() }
}

/// Whether an item holds anything the one-way member's user typed.
fn holds_reader_text(item: &Item) -> bool {
    let marker = "reader:";
    item.fields.values().any(|v| matches!(v, FieldValue::Text(s) if s.contains(marker)))
        || item.body.as_ref().is_some_and(|b| b.content.contains(marker))
        || item.categories.iter().any(|c| c.contains(marker))
}

/// The input as the engine builds it: only the entities the observations touch (the replicas
/// and users' items standing in for entities observed, the entities named by this group's stamps and by match keys of new items).
fn touched_only(g: &SyncGroup, full: &PlanInput) -> PlanInput {
    let mut ids = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for obs in &full.observations {
        let replica_of = |id: &ItemId| {
            full.entities
                .values()
                .find(|e| e.replicas.get(&obs.member).and_then(ReplicaSlot::item_id).is_some_and(|i| i == id))
        };
        for change in &obs.changes {
            let id = match change {
                Observed::Present(f) => &f.id,
                Observed::Deleted(id) => id,
            };
            if let Some(e) = replica_of(id) {
                ids.insert(e.id.clone());
                continue;
            }
            if let Observed::Present(f) = change {
                if let Some(stamp) = f.origin.as_ref().filter(|o| o.group == g.id) {
                    ids.insert(stamp.entity.clone());
                }
                if let Some(key) = g.match_key_of(&f.item)
                    && let Some(e) = full.match_keys.get(&key)
                {
                    ids.insert(e.clone());
                    keys.insert(key);
                }
            }
        }
    }
    PlanInput {
        entities: full
            .entities
            .iter()
            .filter(|(id, _)| ids.contains(*id))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        match_keys: full
            .match_keys
            .iter()
            .filter(|(k, _)| keys.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..full.clone()
    }
}

fn sync_and_check(w: &mut World, g: &SyncGroup) {
    // Planning from the touched entities alone gives the same plan as planning from all of
    // state, once every folder is initialized (before that the engine loads everything).
    if g.folders().all(|f| w.initialized.contains(f)) {
        let pending = w.pending.clone();
        let full = w.input(g);
        w.pending = pending;
        let touched = touched_only(g, &full);
        assert!(touched.entities.len() <= full.entities.len());
        assert_eq!(plan(g, &touched).ok(), plan(g, &full).ok(), "planning depends on untouched entities");
    }
    let foreign_before = w.foreign.clone();
    w.touched.clear();
    w.sync(g);
    for touched in &w.touched {
        assert!(!foreign_before.contains(touched), "touched a user's own item {touched:?}");
    }
    w.assert_converged();
    w.assert_stable(g);
    for stored in w.folders[&m("hub")].values() {
        assert!(!holds_reader_text(&stored.item), "a one-way member's text reached the hub: {stored:?}");
    }
    for e in w.entities.values() {
        assert!(!e.base.as_ref().is_some_and(holds_reader_text), "a one-way member's text is in a base: {e:?}");
    }
}

proptest! {
    // 256 cases by default; PROPTEST_CASES raises it for long runs.
    #[test]
    fn random_histories_converge_and_stay_stable(g in group_strategy(), ops in prop::collection::vec(op(), 1..40)) {
        let mut w = World::new(&g);
        // The guard has its own tests; here deletions must flow.
        w.allow_mass_delete = true;
        for op in &ops {
            match op {
                Op::Add { folder, name } => {
                    w.add(FOLDERS[*folder], contact(NAMES[*name]), None);
                }
                Op::Edit { folder, pick: p, edit } => {
                    if let Some(id) = pick(&w, *folder, *p) {
                        w.edit(FOLDERS[*folder], &id, |item| apply_edit(item, *folder, edit));
                    }
                }
                Op::Delete { folder, pick: p } => {
                    if let Some(id) = pick(&w, *folder, *p) {
                        w.delete(FOLDERS[*folder], &id);
                    }
                }
                Op::Touch { folder, pick: p } => {
                    if let Some(id) = pick(&w, *folder, *p) {
                        w.touch(FOLDERS[*folder], &id);
                    }
                }
                Op::Sync => sync_and_check(&mut w, &g),
            }
        }
        sync_and_check(&mut w, &g);
    }
}
