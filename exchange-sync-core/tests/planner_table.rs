//! The planner's exhaustive table: every combination of what can happen to one entity's copy in
//! the hub, a one-way member and a two-way member (absent, unchanged, version bumped only,
//! changed, deleted), with and without a base, under every one-way policy and both two-way
//! deletion policies. The expected outcome of each case is derived from the reconciliation rules
//! by [`expected`], written independently of the planner; then the plan is carried out and the
//! result must be converged and stable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod planner_support;

use exchange_sync_core::group::{LocalChangePolicy, OneWayPolicy, TwoWayPolicy};
use exchange_sync_core::state::Ownership;
use exchange_sync_core::{
    Action, Direction, EntityId, EntityRecord, Item, ItemId, Member, MemberId, OriginStamp, Reason, ReplicaRecord,
    ReplicaSlot, StateWrite, SyncGroup, Version, plan,
};
use planner_support::{Stored, World, contact, m};

/// What happened to a folder's copy since the last sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The folder has no slot for the entity.
    Absent,
    /// The copy is as state knows it.
    Unchanged,
    /// The server changed the version but not the content.
    Bumped,
    /// The user changed the copy.
    Changed,
    /// The user deleted the copy.
    Deleted,
}

const SIDES: [Side; 5] = [Side::Absent, Side::Unchanged, Side::Bumped, Side::Changed, Side::Deleted];

/// The folders, in group order: the hub, a one-way member, a two-way member.
const FOLDERS: [&str; 3] = ["hub", "reader", "editor"];

/// The field each folder edits when it changes its copy (distinct, so merges never conflict).
const EDITED_FIELD: [(&str, &str); 3] = [("company", "Hub Co"), ("department", "Reading"), ("job_title", "Editor")];

#[derive(Debug, Clone, Copy)]
struct Case {
    has_base: bool,
    sides: [Side; 3],
    reader: OneWayPolicy,
    propagate_deletes: bool,
}

/// What a case must do to one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Nothing,
    Create(Reason),
    Update(Reason),
    Delete(Reason),
    /// The one-way member opts out (its deletion is ignored).
    OptOut,
    /// The copy is forgotten and left to the user.
    Forget,
}

/// What a case must do to the entity.
#[derive(Debug, Clone, PartialEq)]
enum BaseOutcome {
    /// No entity write.
    Same,
    /// A new base: the old one with the edits of these folders.
    Merged(Vec<usize>),
    /// The entity is marked deleted (its remaining copies are being deleted).
    Tombstoned,
    /// The entity is removed at once (no copy left to delete).
    Removed,
}

fn is_authoritative_edit(folder: usize) -> bool {
    folder != 1
}

fn is_authoritative_delete(case: &Case, folder: usize) -> bool {
    match folder {
        0 => true,
        1 => false,
        _ => case.propagate_deletes,
    }
}

fn members(ids: impl IntoIterator<Item = usize>) -> Vec<MemberId> {
    ids.into_iter().map(|f| m(FOLDERS[f])).collect()
}

/// The rules, applied to one case.
fn expected(case: &Case) -> (BaseOutcome, [Outcome; 3]) {
    use Outcome::*;
    let sides = case.sides;
    let reader_ignores_edits = case.reader.on_edit == LocalChangePolicy::Ignore;
    let reader_ignores_deletes = case.reader.on_delete == LocalChangePolicy::Ignore;
    let authoritative_deletions: Vec<usize> =
        (0..3).filter(|&f| sides[f] == Side::Deleted && is_authoritative_delete(case, f)).collect();

    // Deleting every copy that is still there (rule 2, and an entity already being deleted):
    // a one-way copy the user edited under "ignore" is forgotten instead.
    let delete_all = |reason: Reason| -> (BaseOutcome, [Outcome; 3]) {
        let outcomes = [0, 1, 2].map(|f| match sides[f] {
            Side::Absent | Side::Deleted => Nothing,
            Side::Changed if f == 1 && reader_ignores_edits => Forget,
            Side::Unchanged | Side::Bumped | Side::Changed => Delete(reason.clone()),
        });
        let base = if outcomes.iter().any(|o| matches!(o, Delete(_))) {
            BaseOutcome::Tombstoned
        } else {
            BaseOutcome::Removed
        };
        (base, outcomes)
    };

    // An entity already being deleted: its remaining copies go, unless an authoritative side
    // edited its copy since (rule 4 holds for a tombstone too: see rule 1 below).
    let edited_since = (0..3).any(|f| sides[f] == Side::Changed && is_authoritative_edit(f));
    if !case.has_base && !edited_since {
        let reason = match authoritative_deletions.first() {
            Some(&f) => Reason::DeletedIn(m(FOLDERS[f])),
            None => Reason::Stale,
        };
        let (base, outcomes) = delete_all(reason);
        // Already tombstoned: no new entity write unless it goes away.
        let base = if base == BaseOutcome::Tombstoned { BaseOutcome::Same } else { base };
        return (base, outcomes);
    }

    let authoritative_changes: Vec<usize> =
        (0..3).filter(|&f| sides[f] == Side::Changed && is_authoritative_edit(f)).collect();

    // Rule 1 (with rule 4: a modification beats a deletion).
    if !authoritative_changes.is_empty() {
        let changed_in = Reason::ChangedIn(members(authoritative_changes.clone()));
        let outcomes = [0, 1, 2].map(|f| match sides[f] {
            Side::Absent => Create(Reason::Missing),
            Side::Deleted if f == 1 => {
                if reader_ignores_deletes {
                    OptOut
                } else {
                    Create(Reason::Revert)
                }
            }
            Side::Deleted => Create(if is_authoritative_delete(case, f) { Reason::Restore } else { Reason::Revert }),
            Side::Unchanged | Side::Bumped => Update(changed_in.clone()),
            // A one-way member's edit is replaced by the new base, whatever its policy.
            Side::Changed if f == 1 => Update(Reason::Revert),
            // The only side that changed already holds the new base.
            Side::Changed if authoritative_changes == [f] => Nothing,
            Side::Changed => Update(changed_in.clone()),
        });
        return (BaseOutcome::Merged(authoritative_changes), outcomes);
    }

    // Rule 2.
    if let Some(&f) = authoritative_deletions.first() {
        return delete_all(Reason::DeletedIn(m(FOLDERS[f])));
    }

    // Rule 3: the base stays; only one-way members (and a two-way member that does not
    // propagate deletions) can have changed anything.
    let outcomes = [0, 1, 2].map(|f| match sides[f] {
        Side::Absent => Create(Reason::Missing),
        Side::Unchanged | Side::Bumped => Nothing,
        Side::Changed => {
            assert_eq!(f, 1, "authoritative edits are rule 1");
            if reader_ignores_edits { Nothing } else { Update(Reason::Revert) }
        }
        Side::Deleted if f == 1 && reader_ignores_deletes => OptOut,
        Side::Deleted => Create(Reason::Revert),
    });
    (BaseOutcome::Same, outcomes)
}

fn group(case: &Case) -> SyncGroup {
    SyncGroup::new("table", "hub").with_member(Member::new("reader", Direction::OneWay(case.reader))).with_member(
        Member::new(
            "editor",
            Direction::TwoWay(TwoWayPolicy { adopt_new_items: true, propagate_deletes: case.propagate_deletes }),
        ),
    )
}

fn base_item() -> Item {
    contact("ada").canonical()
}

fn with_edits(folders: &[usize]) -> Item {
    let mut item = base_item();
    for &f in folders {
        let (name, value) = EDITED_FIELD[f];
        item.set(name, value);
    }
    item
}

/// The world before the case: one entity with a copy in every folder not `Absent`, all in sync;
/// then the case's events.
fn world(case: &Case, group: &SyncGroup, entity: &EntityId) -> World {
    let mut w = World::new(group);
    let base = base_item();
    let mut record = EntityRecord::new(entity.clone(), case.has_base.then(|| base.clone()), None);
    for (f, side) in case.sides.iter().enumerate() {
        if *side == Side::Absent {
            continue;
        }
        let member = m(FOLDERS[f]);
        let id = ItemId::new(format!("{member}-1"));
        let version = Version::new("v0");
        let origin = (f != 0).then(|| OriginStamp::new(group.id.clone(), entity.clone()));
        w.folders
            .get_mut(&member)
            .unwrap()
            .insert(id.clone(), Stored { version: version.clone(), item: base.clone(), origin });
        let ownership = if f == 0 { Ownership::Adopted } else { Ownership::Created };
        let replica = ReplicaRecord { item_id: id, version, hash: base.content_hash(), ownership, ignored_base: None };
        record.replicas.insert(member, ReplicaSlot::Present(replica));
    }
    w.entities.insert(entity.clone(), record);
    w.initialized.extend(group.folders().cloned());
    for (f, side) in case.sides.iter().enumerate() {
        let id = ItemId::new(format!("{}-1", FOLDERS[f]));
        match side {
            Side::Absent | Side::Unchanged => {}
            Side::Bumped => w.touch(FOLDERS[f], &id),
            Side::Changed => {
                let (name, value) = EDITED_FIELD[f];
                w.edit(FOLDERS[f], &id, |item| item.set(name, value));
            }
            Side::Deleted => w.delete(FOLDERS[f], &id),
        }
    }
    w
}

/// What the plan did to each folder, in the vocabulary of [`Outcome`].
fn actual(plan: &exchange_sync_core::Plan, entity: &EntityId) -> [Outcome; 3] {
    [0, 1, 2].map(|f| {
        let member = m(FOLDERS[f]);
        let actions: Vec<&Action> = plan.actions.iter().filter(|a| a.member() == &member).collect();
        assert!(actions.len() <= 1, "more than one action in {member}: {actions:?}");
        assert!(actions.iter().all(|a| a.entity() == entity));
        match actions.first() {
            Some(Action::Create { reason, .. }) => Outcome::Create(reason.clone()),
            Some(Action::Update { reason, .. }) => Outcome::Update(reason.clone()),
            Some(Action::Delete { reason, .. }) => Outcome::Delete(reason.clone()),
            None => {
                let opted_out = plan.state.iter().any(|w| {
                    matches!(w, StateWrite::PutReplica { member: x, slot: ReplicaSlot::OptedOut, .. } if x == &member)
                });
                let forgotten =
                    plan.state.iter().any(|w| matches!(w, StateWrite::PutForeign { member: x, .. } if x == &member));
                match (opted_out, forgotten) {
                    (false, false) => Outcome::Nothing,
                    (true, false) => Outcome::OptOut,
                    (false, true) => Outcome::Forget,
                    (true, true) => panic!("both opted out and forgotten in {member}"),
                }
            }
        }
    })
}

fn actual_base(plan: &exchange_sync_core::Plan, entity: &EntityId) -> BaseOutcome {
    let writes: Vec<&StateWrite> = plan
        .state
        .iter()
        .filter(|w| matches!(w, StateWrite::PutEntity { id, .. } | StateWrite::RemoveEntity { id } if id == entity))
        .collect();
    assert!(writes.len() <= 1, "{writes:?}");
    match writes.first() {
        None => BaseOutcome::Same,
        Some(StateWrite::RemoveEntity { .. }) => BaseOutcome::Removed,
        Some(StateWrite::PutEntity { base: None, .. }) => BaseOutcome::Tombstoned,
        Some(StateWrite::PutEntity { base: Some(item), .. }) => {
            // Identify which folders' edits the new base carries.
            let folders: Vec<usize> = (0..3).filter(|&f| item.get(EDITED_FIELD[f].0).is_some()).collect();
            assert_eq!(item, &with_edits(&folders), "the new base is the old one plus whole edits");
            BaseOutcome::Merged(folders)
        }
        Some(other) => unreachable!("{other:?}"),
    }
}

fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let policies = [LocalChangePolicy::Revert, LocalChangePolicy::Ignore];
    for has_base in [true, false] {
        for hub in SIDES {
            for reader in SIDES {
                for editor in SIDES {
                    for on_edit in policies {
                        for on_delete in policies {
                            for propagate_deletes in [true, false] {
                                cases.push(Case {
                                    has_base,
                                    sides: [hub, reader, editor],
                                    reader: OneWayPolicy { on_edit, on_delete },
                                    propagate_deletes,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    cases
}

#[test]
fn every_combination_follows_the_rules_and_converges() {
    let entity = EntityId::new("e1");
    let cases = all_cases();
    assert_eq!(cases.len(), 2 * 125 * 8);
    for case in cases {
        let group = group(&case);
        let mut w = world(&case, &group, &entity);
        let input = w.input(&group);
        let plan = plan(&group, &input).unwrap_or_else(|e| panic!("{case:?}: {e}"));
        let (want_base, want) = expected(&case);
        let ctx = format!("{case:?}\n{plan}\n{:#?}", plan.state);
        assert_eq!(actual_base(&plan, &entity), want_base, "base: {ctx}");
        assert_eq!(actual(&plan, &entity), want, "outcomes: {ctx}");
        assert!(plan.conflicts.is_empty(), "distinct fields never conflict: {ctx}");

        // Updates of copies observed in this pass say what the copy holds now; a copy known to
        // hold the base (unchanged since the last pass) gets the base as its previous content.
        for a in &plan.actions {
            if let Action::Update { member, previous, .. } = a {
                let f = FOLDERS.iter().position(|x| *x == member.as_str()).unwrap();
                let observed = matches!(case.sides[f], Side::Bumped | Side::Changed);
                let unchanged = case.sides[f] == Side::Unchanged && case.has_base;
                assert_eq!(previous.is_some(), observed || unchanged, "previous content in {member}: {ctx}");
                if unchanged {
                    assert_eq!(previous.as_deref(), Some(&base_item().canonical()), "previous of {member}: {ctx}");
                }
            }
        }

        // Carry the plan out: the result converges, and the next plan is empty.
        w.apply(&plan);
        if want_base == BaseOutcome::Tombstoned || (!case.has_base && want_base == BaseOutcome::Same) {
            assert!(!w.entities.contains_key(&entity), "every copy deleted, the entity goes: {ctx}");
        }
        w.assert_converged();
        w.assert_stable(&group);
        if let Some(e) = w.entities.get(&entity) {
            // A folder that opted out, or a one-way copy being ignored, keeps its user's content;
            // every other folder holds the base.
            let base = e.base.clone().unwrap();
            for (f, name) in FOLDERS.iter().enumerate() {
                match e.replicas.get(&m(name)) {
                    Some(ReplicaSlot::OptedOut) => assert_eq!(want[f], Outcome::OptOut, "{ctx}"),
                    Some(ReplicaSlot::Present(r)) if r.ignored_base.is_some() => {
                        assert_eq!(f, 1, "only the one-way member ignores: {ctx}");
                        assert_eq!(w.content_of(&entity, name).unwrap(), with_edits(&[1]), "{ctx}");
                    }
                    Some(ReplicaSlot::Present(_)) => assert_eq!(w.content_of(&entity, name).unwrap(), base, "{ctx}"),
                    Some(ReplicaSlot::Personal { .. }) => panic!("{name} has no personal items: {ctx}"),
                    None => panic!("{name} lost its copy: {ctx}"),
                }
            }
        }
    }
}

#[test]
fn the_table_covers_every_rule() {
    // Guards against an oracle that collapsed: each outcome appears somewhere.
    let mut seen = std::collections::BTreeSet::new();
    for case in all_cases() {
        let (base, outcomes) = expected(&case);
        seen.insert(format!("{:?}", std::mem::discriminant(&base)));
        for o in outcomes {
            seen.insert(format!("{o:?}").split('(').next().unwrap().to_owned());
        }
    }
    for name in ["Nothing", "Create", "Update", "Delete", "OptOut", "Forget"] {
        assert!(seen.contains(name), "{name} never expected: {seen:?}");
    }
    assert!(seen.len() >= 6 + 4, "every base outcome appears: {seen:?}");
}
