//! The reconciliation rules as properties: a state machine over random user activity, random
//! sync passes with injected faults and crashes, and clean syncs after which every invariant of
//! the reconciliation rules of docs/design.md is checked.
//!
//! The group: a hub (snapshot or incremental, drawn per case), a two-way member `tw` (mostly
//! adopting new items and propagating deletions; its policies and the conflict policy are drawn per
//! case), a one-way member `ow` (reverts local edits and deletions) and a one-way member `oi`
//! (ignores local edits, opts out on deletion). Users create, edit, delete and
//! touch items in every folder, including personal items the group must never touch; some of
//! those look like shared items (they carry a shared item's e-mail address, the group's match
//! key) and must still never be touched. An admin points folders (the hub too) at new folders,
//! which are re-homed as a service does it (the old copies handled like a leave, by the case's
//! leave policy; the new folder, sometimes holding look-alikes of shared items, gets an initial
//! sync). Users edit copies in the instant the engine deletes them.
//!
//! After each clean sync (faults off, passes until one writes nothing, at most a few):
//! - **stability**: the next plan is empty;
//! - **convergence**: every copy of every entity holds the base, except `oi` copies whose edit is
//!   being ignored; every folder has a slot for every entity (`oi` may have opted out);
//! - **no lost update**: an edit of the hub or `tw` ends in the base, or in a conflict record of
//!   that field, or was superseded by a later edit of the same field, or its item was deleted after
//!   a user deletion;
//! - **one-way members never write to the hub**: no value typed in `ow` or `oi` reaches the hub or `tw`;
//! - **personal items are never touched**: same version as the user left them, still there, in
//!   current and in retired folders; a retired folder only ever lost copies the group created;
//! - **no duplicates**: no folder holds two items with the same creation name among its replicas
//!   and personal items, and every item is either a replica, a personal item, or a copy the group
//!   released to its user (recorded in state as theirs).
//!
//! Runs against the in-memory and the SQLite state store. `PROPTEST_CASES` sets the number of cases
//! per store (default 64, about 25 steps each on average); the long mode is e.g.
//! `PROPTEST_CASES=2000`. Each run prints what it exercised (with `--nocapture`); a failure is shrunk
//! and its seed kept in `sync_properties.proptest-regressions`, replayed first by every later run;
//! `SYNC_PROPERTIES_TRACE=1` prints every step and the plan before each pass. Crashes race the
//! stores' blocking threads, so a seed may need a few replays to fail again.

// Test helpers fail loudly: a panic is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::World;
use exchange_sync_core::state::memory::MemoryStore;
use exchange_sync_core::state::sqlite::SqliteStore;
use exchange_sync_core::testkit::{Fault, FaultKind, Operation};
use exchange_sync_core::{
    ConflictPolicy, Direction, EntityId, ErrorKind, FieldValue, Item, ItemId, ItemKind, LocalChangePolicy, Member,
    MemberId, OneWayPolicy, ReplicaSlot, StateStore, SyncGroup, TwoWayPolicy, field,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

/// What the runs exercised, so that a green run can be told apart from a vacuous one.
#[derive(Default)]
struct Stats {
    steps: AtomicUsize,
    passes: AtomicUsize,
    crashed: AtomicUsize,
    failed: AtomicUsize,
    recovered: AtomicUsize,
    conflicts: AtomicUsize,
    checks: AtomicUsize,
    edits_checked: AtomicUsize,
    stale_edits: AtomicUsize,
    rehomed: AtomicUsize,
    restored: AtomicUsize,
    kept_personal: AtomicUsize,
}

impl Stats {
    fn add(counter: &AtomicUsize, n: usize) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn print(&self, store: &str) {
        let get = |c: &AtomicUsize| c.load(Ordering::Relaxed);
        eprintln!(
            "{store}: {} steps, {} passes ({} crashed, {} failed), {} intents recovered, {} conflicts, {} clean checks, \
             {} authoritative edits checked ({} made on a stale copy), {} folders re-homed, {} copies restored after an \
             edit in the instant of their deletion, {} look-alikes kept as their users' own",
            get(&self.steps),
            get(&self.passes),
            get(&self.crashed),
            get(&self.failed),
            get(&self.recovered),
            get(&self.conflicts),
            get(&self.checks),
            get(&self.edits_checked),
            get(&self.stale_edits),
            get(&self.rehomed),
            get(&self.restored),
            get(&self.kept_personal),
        );
    }
}

const HUB: &str = "hub";
const TW: &str = "tw";
const OW: &str = "ow";
const OI: &str = "oi";
const FOLDERS: [&str; 4] = [HUB, TW, OW, OI];
const FIELDS: [&str; 3] = [field::COMPANY, field::JOB_TITLE, field::DEPARTMENT];

/// The group's policies, drawn per case.
#[derive(Debug, Clone)]
struct Policies {
    conflict: ConflictPolicy,
    two_way: TwoWayPolicy,
}

fn policies() -> impl Strategy<Value = Policies> {
    let conflict = prop_oneof![
        Just(ConflictPolicy::HubWins),
        Just(ConflictPolicy::NewestWins),
        Just(ConflictPolicy::MemberPriority(vec![MemberId::new(TW), MemberId::new(HUB)])),
    ];
    // Mostly the default two-way member (adopts, propagates deletions).
    let two_way = prop_oneof![
        3 => Just(TwoWayPolicy::default()),
        1 => (any::<bool>(), any::<bool>())
            .prop_map(|(adopt_new_items, propagate_deletes)| TwoWayPolicy { adopt_new_items, propagate_deletes }),
    ];
    (conflict, two_way).prop_map(|(conflict, two_way)| Policies { conflict, two_way })
}

fn group(policies: &Policies) -> SyncGroup {
    let ignore = OneWayPolicy { on_edit: LocalChangePolicy::Ignore, on_delete: LocalChangePolicy::Ignore };
    let mut group = SyncGroup::new("props", HUB)
        .with_member(Member::new(TW, Direction::TwoWay(policies.two_way)))
        .with_member(Member::new(OW, Direction::one_way()))
        .with_member(Member::new(OI, Direction::OneWay(ignore)));
    group.conflict_policy = policies.conflict.clone();
    group.match_key = vec![field::EMAIL1.to_owned()];
    group
}

/// One step of the machine. Folder and item choices are indices, resolved against the folder's
/// current items when the step runs (so shrinking keeps steps meaningful).
#[derive(Debug, Clone)]
enum Step {
    /// A user creates an item in a folder (in `tw` it joins the group; in `ow`/`oi` it is personal).
    Create { folder: usize },
    /// A user edits a field of an item.
    Edit { folder: usize, pick: usize, field: usize },
    /// A user deletes an item.
    Delete { folder: usize, pick: usize },
    /// The server bumps an item's version without changing it.
    Touch { folder: usize, pick: usize },
    /// The server forgets every sync token of a folder.
    InvalidateTokens { folder: usize },
    /// A pass with faults injected (crashes included).
    Sync { faults: Vec<(usize, Fault)> },
    /// A pass that crashes at the `nth` write call of some kind to some folder (whichever comes
    /// first), before or after the server applied it: a crash after k actions. The next pass runs
    /// on a fresh engine over the same store.
    CrashingSync { nth: u64, after_write: bool },
    /// Faults off, passes until quiet, then every invariant is checked.
    CleanSync,
    /// An admin points a folder at a new folder (or it was recreated); the new folder holds
    /// look-alikes of some shared items: `(pick, identical)`, a copy of the shared item's
    /// content, or the user's own item with its e-mail address.
    Retarget { folder: usize, lookalikes: Vec<(usize, bool)> },
    /// A user edits a copy in the instant the engine deletes it.
    EditBeforeDelete { folder: usize, pick: usize, field: usize },
}

fn fault_kind() -> impl Strategy<Value = FaultKind> {
    prop_oneof![
        Just(FaultKind::Fail(ErrorKind::Transient)),
        Just(FaultKind::Fail(ErrorKind::Permanent)),
        Just(FaultKind::Throttle(Duration::from_millis(1))),
        Just(FaultKind::LoseResponse),
        (
            0..4usize,
            prop_oneof![
                Just(ErrorKind::Transient),
                Just(ErrorKind::Permanent),
                Just(ErrorKind::PreconditionFailed),
                Just(ErrorKind::Throttled)
            ]
        )
            .prop_map(|(index, kind)| FaultKind::FailItem { index, kind }),
        Just(FaultKind::Crash),
        Just(FaultKind::CrashAfterWrite),
    ]
}

fn fault() -> impl Strategy<Value = (usize, Fault)> {
    (0..FOLDERS.len(), prop::sample::select(Operation::ALL.to_vec()), 1..4u64, fault_kind())
        .prop_map(|(folder, op, nth, kind)| (folder, Fault::on(op, nth, kind)))
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..FOLDERS.len()).prop_map(|folder| Step::Create { folder }),
        // Hub and tw edits are weighted up: they are where merges and conflicts happen.
        6 => (prop_oneof![Just(0usize), Just(1usize), 0..FOLDERS.len()], any::<usize>(), 0..FIELDS.len())
            .prop_map(|(folder, pick, field)| Step::Edit { folder, pick, field }),
        2 => (0..FOLDERS.len(), any::<usize>()).prop_map(|(folder, pick)| Step::Delete { folder, pick }),
        1 => (0..FOLDERS.len(), any::<usize>()).prop_map(|(folder, pick)| Step::Touch { folder, pick }),
        1 => (0..FOLDERS.len()).prop_map(|folder| Step::InvalidateTokens { folder }),
        3 => prop::collection::vec(fault(), 0..3).prop_map(|faults| Step::Sync { faults }),
        2 => (1..4u64, any::<bool>()).prop_map(|(nth, after_write)| Step::CrashingSync { nth, after_write }),
        2 => Just(Step::CleanSync),
        1 => (0..FOLDERS.len(), prop::collection::vec((any::<usize>(), any::<bool>()), 0..3))
            .prop_map(|(folder, lookalikes)| Step::Retarget { folder, lookalikes }),
        1 => (prop_oneof![Just(0usize), Just(1usize), 0..FOLDERS.len()], any::<usize>(), 0..FIELDS.len())
            .prop_map(|(folder, pick, field)| Step::EditBeforeDelete { folder, pick, field }),
    ]
}

/// A case: the hub's change detection, what the folders hold before the first sync (personal
/// items, and look-alikes of hub items: `(pick, identical)` per member), the leave policy of
/// re-homes, the steps.
#[derive(Debug, Clone)]
struct Case {
    policies: Policies,
    snapshot_hub: bool,
    hub_items: usize,
    personal: [usize; 3],
    lookalikes: [Vec<(usize, bool)>; 3],
    remove_on_leave: bool,
    /// Folders a pass works on at once (1: the same order of calls on every run, so that a
    /// failure found with crashes replays; shrinking goes there).
    concurrency: usize,
    steps: Vec<Step>,
}

fn case() -> impl Strategy<Value = Case> {
    let lookalikes = || prop::collection::vec((any::<usize>(), any::<bool>()), 0..2);
    (
        (policies(), any::<bool>(), 0..6usize, [0..3usize, 0..3usize, 0..3usize]),
        [lookalikes(), lookalikes(), lookalikes()],
        (any::<bool>(), 1..4usize),
        prop::collection::vec(step(), 1..45),
    )
        .prop_map(
            |((policies, snapshot_hub, hub_items, personal), lookalikes, (remove_on_leave, concurrency), steps)| Case {
                policies,
                snapshot_hub,
                hub_items,
                personal,
                lookalikes,
                remove_on_leave,
                concurrency,
                steps,
            },
        )
}

/// An edit as the model remembers it.
#[derive(Debug, Clone)]
struct EditRecord {
    seq: usize,
    folder: &'static str,
    item: ItemId,
    field: &'static str,
    value: String,
    /// The entity the item was a replica of when edited, if it was one.
    entity_then: Option<EntityId>,
    /// Whether state knew the copy to be stale when it was edited (its replica hash was not the
    /// base's: an update to it had failed or been interrupted). Counted: those edits are the
    /// ones the planner settles against the hub.
    stale_then: bool,
    /// Whether the item was the user's own (personal items' edits stay theirs).
    personal: bool,
    /// Whether its folder was retargeted since: an edit the old folder had not synced stays with
    /// it, like a leaving member's (one it had synced still supersedes earlier edits).
    left_behind: bool,
    /// Whether it landed in a copy the engine was deleting: the copy comes back, under a new id,
    /// and when a crash struck between the delete and its record, as an item of its own (an
    /// entity of its own in the hub): the edit lives on, its entity may not.
    in_deleted_copy: bool,
}

/// Edits that landed in the instant of a deletion: (the folder's id, the edit).
type Fired = Arc<std::sync::Mutex<Vec<(Option<String>, EditRecord)>>>;

/// A folder the group left behind (its target changed), as it was when retired.
#[derive(Debug)]
struct Retired {
    label: String,
    folder: exchange_sync_core::testkit::MemoryConnector,
    /// Every item it held then: id -> (version, whether this group's stamp was on it).
    items: BTreeMap<ItemId, (exchange_sync_core::Version, bool)>,
    /// The personal items among them.
    personal: BTreeSet<ItemId>,
    remove_on_leave: bool,
}

/// What the test knows independently of the engine.
#[derive(Debug, Default)]
struct Model {
    seq: usize,
    /// Personal items: (folder, id) -> the version the user left.
    personal: BTreeMap<(&'static str, ItemId), exchange_sync_core::Version>,
    /// Edits since the last check (authoritative and one-way alike).
    edits: Vec<EditRecord>,
    /// Sequence numbers of user deletions since the last check.
    deletions: Vec<usize>,
    /// Values typed in one-way members, ever: they must never reach the hub.
    one_way_values: BTreeSet<String>,
    /// Folders the group left behind.
    retired: Vec<Retired>,
    /// Look-alikes that held a shared item's content when made: linked or kept, either is right.
    lookalikes: BTreeSet<(&'static str, ItemId)>,
    /// Folders retargeted whose new folder's initial sync has not run yet: what they hold is
    /// their users' own.
    uninitialized: BTreeSet<&'static str>,
    /// Edits that landed in the instant of a deletion, recorded as they fire, with the folder
    /// they landed in (an edit that landed in a folder the group was leaving stays there).
    fired: Fired,
}

/// A new item; its e-mail address (the group's match key) follows its name.
fn new_item(name: String) -> Item {
    let email = format!("{}@props.test", name.to_lowercase());
    Item::new(ItemKind::Contact).with(field::GIVEN_NAME, name).with(field::EMAIL1, email)
}

/// A look-alike of a shared item: the shared item's content (`identical`: it may be linked, or
/// kept as the user's own if the shared item changes before the pass), or the user's own item
/// with the shared item's e-mail address (always the user's own in a member folder). Taken from
/// the bases in state; `None` when there is none.
async fn lookalike(w: &World, taken: &mut BTreeSet<usize>, pick: usize, identical: bool, name: String) -> Option<Item> {
    let ids = w.store.entity_ids(&w.group.id, None, 1000).await.unwrap();
    let bases: Vec<Item> =
        w.store.entities(&w.group.id, &ids).await.unwrap().into_iter().filter_map(|e| e.base).collect();
    // One look-alike per shared item: two would be two items of the user's (or the hub's own
    // duplicate), not the engine's.
    if bases.is_empty() || !taken.insert(pick % bases.len()) {
        return None;
    }
    let mut item = bases[pick % bases.len()].clone();
    if !identical {
        item.set(field::GIVEN_NAME, name);
        item.set(field::DEPARTMENT, "the user's own");
    }
    Some(item)
}

async fn entity_of(w: &World, folder: &str, id: &ItemId) -> Option<EntityId> {
    let known = w.store.lookup_items(&w.group.id, &MemberId::new(folder), std::slice::from_ref(id)).await.unwrap();
    known.into_iter().next().and_then(|k| k.entity)
}

/// The item of a folder a step's `pick` names, if the folder holds any.
fn picked(folder: &exchange_sync_core::testkit::MemoryConnector, pick: usize) -> Option<ItemId> {
    let ids = folder.ids();
    (!ids.is_empty()).then(|| ids[pick % ids.len()].clone())
}

/// Whether `id` is a user's own item standing in for an entity in `folder` (a personal slot).
async fn stands_in(w: &World, folder: &str, id: &ItemId) -> bool {
    let Some(entity) = entity_of(w, folder, id).await else { return false };
    let records = w.store.entities(&w.group.id, std::slice::from_ref(&entity)).await.unwrap();
    records.first().is_some_and(|r| {
        matches!(r.replicas.get(&MemberId::new(folder)), Some(ReplicaSlot::Personal { item_id, .. }) if item_id == id)
    })
}

/// Whether state knows `folder`'s copy of `entity` not to hold the base.
async fn is_stale(w: &World, entity: &EntityId, folder: &str) -> bool {
    let records = w.store.entities(&w.group.id, std::slice::from_ref(entity)).await.unwrap();
    let Some(record) = records.first() else { return false };
    let Some(base) = record.base_hash() else { return false };
    match record.replicas.get(&MemberId::new(folder)).and_then(ReplicaSlot::replica) {
        Some(r) => r.hash != base && r.ignored_base != Some(base),
        None => false,
    }
}

async fn run_case(case: Case, store: Arc<dyn StateStore>, stats: &Stats) -> Result<(), TestCaseError> {
    let mut w = World::new(group(&case.policies), store, case.snapshot_hub);
    w.allow_mass_delete = true;
    w.concurrency = case.concurrency;
    let mut model = Model::default();
    for i in 0..case.hub_items {
        w.hub().user_create(new_item(format!("h{i}")));
    }
    // What member folders hold before their first sync is their users' own; some of it looks
    // like hub items (their e-mail address): copies of them, or the users' own.
    let hub_items: Vec<Item> = w.hub().items().into_iter().map(|f| f.item).collect();
    for (slot, folder) in [TW, OW, OI].into_iter().enumerate() {
        for i in 0..case.personal[slot] {
            let id = w.folder(folder).user_create(new_item(format!("p{folder}{i}")));
            let version = w.folder(folder).item(&id).unwrap().version;
            model.personal.insert((folder, id), version);
        }
        let mut taken = BTreeSet::new();
        for (i, &(pick, identical)) in case.lookalikes[slot].iter().enumerate() {
            if hub_items.is_empty() || !taken.insert(pick % hub_items.len()) {
                continue;
            }
            let shared = hub_items[pick % hub_items.len()].clone();
            let mut item = shared;
            if !identical {
                item.set(field::GIVEN_NAME, format!("l{folder}{i}"));
                item.set(field::DEPARTMENT, "the user's own");
            }
            let id = w.folder(folder).user_create(item);
            if identical {
                model.lookalikes.insert((folder, id));
            } else {
                let version = w.folder(folder).item(&id).unwrap().version;
                model.personal.insert((folder, id), version);
            }
        }
    }
    // Old folders of retargeted members, until their re-home.
    let mut moved: BTreeMap<MemberId, exchange_sync_core::testkit::MemoryConnector> = BTreeMap::new();
    clean_sync_and_check(&w, &mut model, stats).await?;

    let trace = std::env::var_os("SYNC_PROPERTIES_TRACE").is_some();
    if trace {
        eprintln!(
            "=== case: snapshot hub {}, {} hub items, personal {:?}",
            case.snapshot_hub, case.hub_items, case.personal
        );
    }
    for step in case.steps {
        Stats::add(&stats.steps, 1);
        model.seq += 1;
        let seq = model.seq;
        if trace {
            eprintln!("--- step {seq}: {step:?}");
            if matches!(step, Step::Sync { .. } | Step::CrashingSync { .. } | Step::CleanSync) {
                eprintln!(
                    "plan before the pass:\n{}",
                    w.engine().dry_run().await.map(|p| p.to_string()).unwrap_or_else(|e| e.to_string())
                );
            }
        }
        match step {
            Step::Create { folder } => {
                let name = FOLDERS[folder];
                let c = w.folder(name);
                let id = c.user_create(new_item(format!("n{seq}")));
                let joins = name == HUB
                    || (name == TW && case.policies.two_way.adopt_new_items && !model.uninitialized.contains(TW));
                if !joins {
                    let version = c.item(&id).unwrap().version;
                    model.personal.insert((name, id), version);
                }
            }
            Step::Edit { folder, pick, field } => {
                let name = FOLDERS[folder];
                let c = w.folder(name);
                let Some(id) = picked(c, pick) else { continue };
                let value = format!("v{seq}");
                let version = c.user_update(&id, |i| i.set(FIELDS[field], value.as_str())).unwrap();
                // The user's own item, or a look-alike state keeps as the user's own.
                let personal = model.personal.contains_key(&(name, id.clone())) || stands_in(&w, name, &id).await;
                if let Some(v) = model.personal.get_mut(&(name, id.clone())) {
                    *v = version;
                }
                if name == OW || name == OI {
                    model.one_way_values.insert(value.clone());
                }
                let entity_then = entity_of(&w, name, &id).await;
                let stale_then = match &entity_then {
                    Some(e) => is_stale(&w, e, name).await,
                    None => false,
                };
                model.edits.push(EditRecord {
                    seq,
                    folder: name,
                    item: id,
                    field: FIELDS[field],
                    value,
                    entity_then,
                    stale_then,
                    personal,
                    left_behind: false,
                    in_deleted_copy: false,
                });
            }
            Step::EditBeforeDelete { folder, pick, field } => {
                let name = FOLDERS[folder];
                let c = w.folder(name);
                let Some(id) = picked(c, pick) else { continue };
                if model.personal.contains_key(&(name, id.clone())) {
                    continue; // the engine never deletes those
                }
                let value = format!("v{seq}");
                if name == OW || name == OI {
                    model.one_way_values.insert(value.clone());
                }
                let entity_then = entity_of(&w, name, &id).await;
                let record = EditRecord {
                    seq,
                    folder: name,
                    item: id.clone(),
                    field: FIELDS[field],
                    value: value.clone(),
                    entity_then,
                    stale_then: false,
                    personal: false,
                    left_behind: false,
                    in_deleted_copy: true,
                };
                let fired = Arc::clone(&model.fired);
                let name_of_field = FIELDS[field];
                let folder_id = c.shared().folder_id();
                c.edit_before_delete(&id, move |item| {
                    item.set(name_of_field, value.as_str());
                    fired.lock().unwrap().push((folder_id, record));
                });
            }
            Step::Retarget { folder, lookalikes } => {
                let name = FOLDERS[folder];
                let old = w.retarget(name);
                // Edits the old folder had not synced stay with it, like a leaving member's.
                for edit in model.edits.iter_mut().filter(|e| e.folder == name) {
                    edit.left_behind = true;
                }
                let items = old
                    .items()
                    .into_iter()
                    .map(|f| (f.id, (f.version, f.origin.is_some_and(|o| o.group == w.group.id))))
                    .collect();
                let personal = model.personal.keys().filter(|(f, _)| *f == name).map(|(_, id)| id.clone()).collect();
                model.personal.retain(|(f, _), _| *f != name);
                model.lookalikes.retain(|(f, _)| *f != name);
                model.uninitialized.insert(name);
                model.retired.push(Retired {
                    label: format!("{name} (retired at step {seq})"),
                    folder: old.clone(),
                    items,
                    personal,
                    remove_on_leave: case.remove_on_leave,
                });
                // State knows the first of several folders retargeted before a pass.
                moved.entry(MemberId::new(name)).or_insert(old);
                let mut taken = BTreeSet::new();
                for (i, (pick, identical)) in lookalikes.into_iter().enumerate() {
                    let Some(item) = lookalike(&w, &mut taken, pick, identical, format!("l{name}{seq}x{i}")).await
                    else {
                        continue;
                    };
                    let c = w.folder(name);
                    let id = c.user_create(item);
                    if name == HUB {
                        continue; // the hub's items are the group's, look-alike or not
                    }
                    if identical {
                        model.lookalikes.insert((name, id));
                    } else {
                        let version = c.item(&id).unwrap().version;
                        model.personal.insert((name, id), version);
                    }
                }
            }
            Step::Delete { folder, pick } => {
                let name = FOLDERS[folder];
                let c = w.folder(name);
                let Some(id) = picked(c, pick) else { continue };
                c.user_delete(&id);
                model.personal.remove(&(name, id));
                model.deletions.push(seq);
            }
            Step::Touch { folder, pick } => {
                let name = FOLDERS[folder];
                let c = w.folder(name);
                let Some(id) = picked(c, pick) else { continue };
                c.touch(&id);
                if let Some(v) = model.personal.get_mut(&(name, id.clone())) {
                    *v = c.item(&id).unwrap().version;
                }
            }
            Step::InvalidateTokens { folder } => w.folder(FOLDERS[folder]).invalidate_tokens(),
            Step::Sync { .. } | Step::CrashingSync { .. } => {
                match step {
                    Step::Sync { faults } => {
                        for (folder, fault) in faults {
                            w.folder(FOLDERS[folder]).inject(fault);
                        }
                    }
                    Step::CrashingSync { nth, after_write } => {
                        let kind = if after_write { FaultKind::CrashAfterWrite } else { FaultKind::Crash };
                        for c in w.folders.values() {
                            for op in [Operation::Create, Operation::Update, Operation::Delete] {
                                c.inject(Fault::on(op, nth, kind.clone()));
                            }
                        }
                    }
                    _ => {}
                }
                Stats::add(&stats.passes, 1);
                rehome(&w, &mut moved, case.remove_on_leave, stats).await;
                let outcome = w.try_sync().await;
                take_fired(&w, &mut model);
                note_initialized(&w, &mut model).await;
                match outcome {
                    // Crashed: the next pass runs on a fresh engine.
                    None => Stats::add(&stats.crashed, 1),
                    Some(Ok(report)) => {
                        Stats::add(&stats.recovered, report.recovered);
                        Stats::add(&stats.conflicts, report.conflicts.len());
                        if !report.is_clean() {
                            Stats::add(&stats.failed, 1);
                        }
                    }
                    Some(Err(e)) => {
                        Stats::add(&stats.failed, 1);
                        prop_assert!(
                            !matches!(e.kind(), ErrorKind::State | ErrorKind::Config | ErrorKind::MassDelete),
                            "a faulted pass failed in a way faults cannot explain: {e}"
                        );
                    }
                }
                for c in w.folders.values() {
                    c.clear_faults();
                }
            }
            Step::CleanSync => {
                rehome(&w, &mut moved, case.remove_on_leave, stats).await;
                clean_sync_and_check(&w, &mut model, stats).await?
            }
        }
    }
    rehome(&w, &mut moved, case.remove_on_leave, stats).await;
    clean_sync_and_check(&w, &mut model, stats).await
}

/// What a service does before a pass: folders whose target resolves elsewhere are re-homed
/// through their old folders.
async fn rehome(
    w: &World,
    moved: &mut BTreeMap<MemberId, exchange_sync_core::testkit::MemoryConnector>,
    remove_on_leave: bool,
    stats: &Stats,
) {
    if moved.is_empty() {
        return;
    }
    for c in w.folders.values().chain(moved.values()) {
        c.clear_faults();
    }
    let done = w.rehome_moved(moved, remove_on_leave).await;
    Stats::add(&stats.rehomed, done.len());
    moved.clear();
}

/// Records the edits that landed in the instant of a deletion, in folders still in the group.
fn take_fired(w: &World, model: &mut Model) {
    let fired = std::mem::take(&mut *model.fired.lock().unwrap());
    for (folder_id, edit) in fired {
        if w.folder(edit.folder).shared().folder_id() == folder_id {
            model.edits.push(edit);
        }
    }
}

/// Forgets the folders whose new folder's initial sync has run.
async fn note_initialized(w: &World, model: &mut Model) {
    let mut done = Vec::new();
    for &name in &model.uninitialized {
        let status = w.store.member_status(&w.group.id, &MemberId::new(name)).await.unwrap();
        let here = w.folder(name).shared().folder_id();
        if status.initialized && status.folder.map(|f| f.id) == here {
            done.push(name);
        }
    }
    for name in done {
        model.uninitialized.remove(name);
    }
}

async fn clean_sync_and_check(w: &World, model: &mut Model, stats: &Stats) -> Result<(), TestCaseError> {
    for c in w.folders.values() {
        c.clear_faults();
    }
    // Passes until one writes nothing; sync_until_quiet also asserts the next plan is empty.
    for report in w.sync_until_quiet(6).await {
        Stats::add(&stats.passes, 1);
        Stats::add(&stats.recovered, report.recovered);
        Stats::add(&stats.conflicts, report.conflicts.len());
        Stats::add(&stats.restored, report.members.values().map(|m| m.execution.restored).sum());
        Stats::add(
            &stats.kept_personal,
            report.notices.iter().filter(|n| matches!(n, exchange_sync_core::Notice::KeptPersonal { .. })).count(),
        );
    }
    take_fired(w, model);
    note_initialized(w, model).await;
    Stats::add(&stats.checks, 1);
    check(w, model, stats).await?;
    model.edits.clear();
    model.deletions.clear();
    Ok(())
}

async fn check(w: &World, model: &Model, stats: &Stats) -> Result<(), TestCaseError> {
    let group = &w.group.id;
    // Every entity, by paging through the store.
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = w.store.entity_ids(group, after.as_ref(), 100).await.unwrap();
        let Some(last) = page.last().cloned() else { break };
        ids.extend(page);
        after = Some(last);
    }
    let entities = w.store.entities(group, &ids).await.unwrap();
    let conflicts = w.store.conflicts(group).await.unwrap();

    // Convergence, and which item ids are replicas.
    let mut replicas: BTreeSet<(String, ItemId)> = BTreeSet::new();
    for e in &entities {
        let Some(base) = &e.base else {
            prop_assert!(false, "entity {} is still a tombstone after a clean sync: {e:?}", e.id);
            continue;
        };
        let base_hash = base.content_hash();
        for folder in FOLDERS {
            let member = MemberId::new(folder);
            match e.replicas.get(&member) {
                Some(ReplicaSlot::Present(r)) => {
                    replicas.insert((folder.to_owned(), r.item_id.clone()));
                    let copy = w.folder(folder).item(&r.item_id);
                    prop_assert!(copy.is_some(), "{folder} lost the copy {} of entity {}", r.item_id, e.id);
                    let copy = copy.unwrap();
                    prop_assert_eq!(&copy.version, &r.version, "{} state version of {} in {}", e.id, r.item_id, folder);
                    let ignored = folder == OI && r.ignored_base == Some(base_hash);
                    if !ignored {
                        prop_assert!(
                            copy.item.same_content(base),
                            "{folder} copy of {} differs from the base:\n copy {:?}\n base {:?}",
                            e.id,
                            copy.item.canonical(),
                            base
                        );
                    }
                }
                Some(ReplicaSlot::Personal { item_id, .. }) => {
                    prop_assert!(
                        w.folder(folder).item(item_id).is_some(),
                        "{folder}'s own item {item_id} standing in for {} is gone",
                        e.id
                    );
                }
                Some(ReplicaSlot::OptedOut) => {
                    prop_assert_eq!(folder, OI, "only the ignoring member opts out (entity {})", e.id);
                }
                None => prop_assert!(false, "entity {} has no slot in {folder} after a clean sync: {e:?}", e.id),
            }
        }
    }

    // No duplicates; every item accounted for; personal items untouched.
    for folder in FOLDERS {
        let c = w.folder(folder);
        let mut names = BTreeMap::new();
        for item in c.items() {
            let name = item.item.text(field::GIVEN_NAME).unwrap_or_default().to_owned();
            let is_replica = replicas.contains(&(folder.to_owned(), item.id.clone()));
            // A look-alike that held the shared content is linked, or kept as the user's own when
            // the shared item changed (or went) first: either way state knows it.
            let is_lookalike = model.lookalikes.contains(&(folder, item.id.clone()))
                && !w
                    .store
                    .lookup_items(group, &MemberId::new(folder), std::slice::from_ref(&item.id))
                    .await
                    .unwrap()
                    .is_empty();
            let is_personal = model.personal.contains_key(&(folder, item.id.clone())) || is_lookalike;
            // A copy released to its user (an ignored edit of a deleted entity) is theirs: if the
            // entity comes back (a two-way edit beat the deletion), the group delivers it anew.
            // So is a look-alike that matched an entity being deleted (it was never the group's).
            let released_lookalike = is_lookalike && entity_of(w, folder, &item.id).await.is_none();
            if (is_replica || is_personal) && !released_lookalike {
                *names.entry(name.clone()).or_insert(0) += 1;
            }
            // A copy the group made and its user kept (edited in the instant of its deletion, a
            // duplicate the user edited): state knows it as theirs.
            let stamped = item.origin.as_ref().is_some_and(|o| o.group == w.group.id);
            let released = (folder == OI || (stamped && folder != HUB))
                && entity_of(w, folder, &item.id).await.is_none()
                && w.store
                    .lookup_items(group, &MemberId::new(folder), std::slice::from_ref(&item.id))
                    .await
                    .unwrap()
                    .len()
                    == 1;
            prop_assert!(
                is_replica || is_personal || released,
                "{folder} holds {} ({name}) that is neither a replica nor a personal item: {item:?}",
                item.id
            );
            if folder == HUB || folder == TW {
                for value in item.item.fields.values() {
                    if let FieldValue::Text(text) = value {
                        prop_assert!(
                            !model.one_way_values.contains(text),
                            "{folder} holds {text:?}, typed in a one-way member"
                        );
                    }
                }
                prop_assert!(!name.starts_with("pow") && !name.starts_with("poi"), "{folder} holds personal {name}");
            }
        }
        for (name, count) in names {
            prop_assert!(count == 1, "{folder} holds {count} items named {name}");
        }
    }
    // Retired folders: the engine only ever removed copies this group created there (under the
    // remove policy), and changed nothing else.
    for retired in &model.retired {
        let items = retired.folder.items();
        let now: BTreeMap<ItemId, exchange_sync_core::Version> =
            items.iter().map(|f| (f.id.clone(), f.version.clone())).collect();
        for (id, (version, stamped)) in &retired.items {
            match now.get(id) {
                Some(v) => prop_assert_eq!(v, version, "{} of {} was modified after it was left", id, &retired.label),
                None => prop_assert!(
                    *stamped && retired.remove_on_leave && !retired.personal.contains(id),
                    "{id} of {} was deleted, but the group had not created it or the policy keeps copies",
                    retired.label
                ),
            }
        }
        // A copy its user edited in the instant the leave deleted it was put back (under a new
        // id): it is theirs now.
        let removed = retired.items.iter().filter(|(id, (_, stamped))| *stamped && !now.contains_key(*id)).count();
        let restored = items.iter().filter(|f| !retired.items.contains_key(&f.id)).collect::<Vec<_>>();
        for item in &restored {
            prop_assert!(
                item.origin.as_ref().is_some_and(|o| o.group == w.group.id) && restored.len() <= removed,
                "{} appeared in {} after it was left: {item:?}",
                item.id,
                retired.label
            );
        }
    }
    for ((folder, id), version) in &model.personal {
        let item = w.folder(folder).item(id);
        prop_assert!(item.is_some(), "personal item {id} in {folder} was deleted by the engine");
        let item = item.unwrap();
        prop_assert_eq!(&item.version, version, "personal item {} in {} was modified", id, folder);
        // Nor was it copied anywhere.
        let name = item.item.text(field::GIVEN_NAME).unwrap_or_default().to_owned();
        for other in FOLDERS.iter().filter(|f| *f != folder) {
            prop_assert!(w.named(other, &name).is_empty(), "personal item {name} of {folder} reached {other}");
        }
    }

    // No lost update.
    let by_id: BTreeMap<&EntityId, _> = entities.iter().map(|e| (&e.id, e)).collect();
    let mut resolved = Vec::new();
    for edit in &model.edits {
        let entity = match &edit.entity_then {
            Some(e) => Some(e.clone()),
            None => entity_of(w, edit.folder, &edit.item).await,
        };
        resolved.push(entity);
    }
    for (edit, entity) in model.edits.iter().zip(&resolved) {
        if (edit.folder != HUB && edit.folder != TW) || edit.personal || edit.left_behind {
            continue;
        }
        let Some(entity) = entity else { continue }; // a personal item, or one never joined
        // A look-alike kept as its user's own (it no longer matched when it was planned).
        let kept_as_own = by_id.get(entity).is_some_and(|e| {
            matches!(e.replicas.get(&MemberId::new(edit.folder)), Some(ReplicaSlot::Personal { item_id, .. }) if item_id == &edit.item)
        });
        if kept_as_own {
            continue;
        }
        Stats::add(&stats.edits_checked, 1);
        if edit.stale_then {
            Stats::add(&stats.stale_edits, 1);
        }
        let deleted_after = model.deletions.iter().any(|&d| d >= edit.seq);
        let wanted = FieldValue::Text(edit.value.clone());
        // The copy it landed in came back under a new id: a later edit of the same field there
        // (made before state knew the new id) supersedes it like any later edit.
        let lives_elsewhere = edit.in_deleted_copy
            && (entities.iter().any(|e| e.base.as_ref().and_then(|b| b.get(edit.field)) == Some(&wanted))
                || model.edits.iter().any(|later| {
                    later.seq > edit.seq
                        && later.field == edit.field
                        && later.folder == edit.folder
                        && later.entity_then.is_none()
                }));
        let Some(record) = by_id.get(entity) else {
            prop_assert!(
                deleted_after || lives_elsewhere,
                "entity {entity} vanished without a user deletion after edit {edit:?}"
            );
            continue;
        };
        let in_base = record.base.as_ref().and_then(|b| b.get(edit.field)) == Some(&wanted);
        let in_conflict = conflicts.iter().any(|c| {
            &c.entity == entity
                && c.field == edit.field
                && (c.winner.value.as_ref() == Some(&wanted)
                    || c.losers.iter().any(|l| l.value.as_ref() == Some(&wanted)))
        });
        let superseded = model.edits.iter().zip(&resolved).any(|(later, later_entity)| {
            later.seq > edit.seq
                && later.field == edit.field
                && (later.folder == HUB || later.folder == TW)
                && later_entity.as_ref() == Some(entity)
        });
        prop_assert!(
            in_base || in_conflict || superseded || deleted_after,
            "edit {edit:?} is lost: base {:?}, conflicts {:?}",
            record.base,
            conflicts.iter().filter(|c| &c.entity == entity).collect::<Vec<_>>()
        );
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// Runs the machine `PROPTEST_CASES` times against stores made by `make`, shrinking a failure to a
/// minimal case (kept in `sync_properties.proptest-regressions` and replayed first next time).
fn run_machine<S, F>(store: &str, make: F)
where
    S: StateStore + 'static,
    F: Fn() -> S,
{
    let config = Config {
        cases: cases(),
        max_shrink_iters: 2000,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel("proptest-regressions"))),
        ..Config::default()
    };
    let stats = Stats::default();
    let mut runner = TestRunner::new(config);
    let outcome = runner.run(&case(), |case| block_on(run_case(case, Arc::new(make()), &stats)));
    stats.print(store);
    if let Err(e) = outcome {
        panic!("{store}: {e}");
    }
}

#[test]
fn rules_hold_with_memory_store() {
    run_machine("memory store", MemoryStore::new);
}

#[test]
fn rules_hold_with_sqlite_store() {
    run_machine("sqlite store", || block_on(SqliteStore::open_in_memory()).unwrap());
}
