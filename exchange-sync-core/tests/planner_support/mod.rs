//! A small world for planner tests: folders holding items, a state model that applies
//! [`StateWrite`]s with the stores' semantics, and an executor model that carries out actions the
//! way the engine does (each action committing its own outcome). Tests drive user edits through
//! it, plan, execute, and check convergence and stability.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use exchange_sync_core::state::{ConflictRecord, Ownership};
use exchange_sync_core::{
    Action, EntityId, EntityRecord, FetchedItem, FolderObservation, Item, ItemId, ItemKind, MemberId, Observed,
    OriginStamp, Plan, PlanInput, ReplicaRecord, ReplicaSlot, StateWrite, SyncGroup, Version, plan,
};

/// An item held by a folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub version: Version,
    pub item: Item,
    pub origin: Option<OriginStamp>,
}

/// Folders, state and the observations not yet planned.
#[derive(Debug, Default)]
pub struct World {
    pub folders: BTreeMap<MemberId, BTreeMap<ItemId, Stored>>,
    pub entities: BTreeMap<EntityId, EntityRecord>,
    pub foreign: BTreeSet<(MemberId, ItemId)>,
    pub conflicts: Vec<ConflictRecord>,
    pub initialized: BTreeSet<MemberId>,
    pub pending: BTreeMap<MemberId, Vec<Observed>>,
    /// Items each folder's actions touched: (member, item id), for "never touched" checks.
    pub touched: BTreeSet<(MemberId, ItemId)>,
    pub allow_mass_delete: bool,
    /// Copies each folder holds of entities the test does not model: a real folder holds more
    /// than the few entities a test plans, so deleting those few is not "every copy vanished at
    /// once" (design rule 11). One by default; 0 lets the planner see whole folders.
    pub other_copies: usize,
    next: u64,
}

pub fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").unwrap().to_utc()
}

pub fn contact(name: &str) -> Item {
    Item::new(ItemKind::Contact).with("display_name", name).with("email1.address", format!("{name}@example.test"))
}

pub fn m(id: &str) -> MemberId {
    MemberId::new(id)
}

impl World {
    pub fn new(group: &SyncGroup) -> Self {
        let mut w = World { other_copies: 1, ..World::default() };
        for f in group.folders() {
            w.folders.insert(f.clone(), BTreeMap::new());
        }
        w
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    /// A user (or another tool) puts an item into a folder.
    pub fn add(&mut self, member: &str, item: Item, origin: Option<OriginStamp>) -> ItemId {
        let id = ItemId::new(self.fresh(&format!("{member}-item-")));
        let version = Version::new(self.fresh("v"));
        self.folders.get_mut(&m(member)).unwrap().insert(id.clone(), Stored { version, item, origin });
        self.notice(member, &id);
        id
    }

    /// A user edits an item.
    pub fn edit(&mut self, member: &str, id: &ItemId, edit: impl FnOnce(&mut Item)) {
        let version = Version::new(self.fresh("v"));
        let stored = self.folders.get_mut(&m(member)).unwrap().get_mut(id).unwrap();
        edit(&mut stored.item);
        stored.version = version;
        self.notice(member, id);
    }

    /// The server bumps a version without changing content.
    pub fn touch(&mut self, member: &str, id: &ItemId) {
        self.edit(member, id, |_| {});
    }

    /// A user deletes an item.
    pub fn delete(&mut self, member: &str, id: &ItemId) {
        self.folders.get_mut(&m(member)).unwrap().remove(id);
        self.pending.entry(m(member)).or_default().push(Observed::Deleted(id.clone()));
    }

    fn notice(&mut self, member: &str, id: &ItemId) {
        let stored = &self.folders[&m(member)][id];
        let fetched = FetchedItem {
            id: id.clone(),
            version: stored.version.clone(),
            item: stored.item.clone(),
            origin: stored.origin.clone(),
        };
        self.pending.entry(m(member)).or_default().push(Observed::Present(fetched));
    }

    /// The planner's input: all of state (tests are small) and the pending observations.
    pub fn input(&mut self, group: &SyncGroup) -> PlanInput {
        // Like the engine, never fetch the user's own items again: drop their observations.
        let foreign = &self.foreign;
        let observations = std::mem::take(&mut self.pending)
            .into_iter()
            .map(|(member, changes)| {
                let changes = changes
                    .into_iter()
                    .filter(|c| match c {
                        Observed::Present(f) => !foreign.contains(&(member.clone(), f.id.clone())),
                        Observed::Deleted(_) => true,
                    })
                    .collect();
                FolderObservation { member, changes, token: None }
            })
            .collect();
        let mut folder_sizes = BTreeMap::new();
        for f in group.folders() {
            let n =
                self.entities.values().filter(|e| matches!(e.replicas.get(f), Some(ReplicaSlot::Present(_)))).count();
            folder_sizes.insert(f.clone(), n + self.other_copies);
        }
        PlanInput {
            match_keys: self
                .entities
                .values()
                .filter(|e| e.base.is_some())
                .filter_map(|e| e.match_key.clone().map(|k| (k, e.id.clone())))
                .collect(),
            entities: self.entities.clone(),
            observations,
            folder_sizes,
            allow_mass_delete: self.allow_mass_delete,
            now: now(),
            initialized: self.initialized.clone(),
        }
    }

    /// Plans, applies the plan's state, executes its actions, and marks every folder initialized.
    pub fn sync(&mut self, group: &SyncGroup) -> Plan {
        let input = self.input(group);
        let plan = plan(group, &input).unwrap_or_else(|e| panic!("planning failed: {e}"));
        self.apply(&plan);
        self.initialized.extend(group.folders().cloned());
        plan
    }

    pub fn apply(&mut self, plan: &Plan) {
        for w in &plan.state {
            self.write(w.clone());
        }
        for a in &plan.actions {
            self.execute(a);
        }
    }

    /// One state write, with the stores' semantics; panics on a write no store accepts.
    pub fn write(&mut self, w: StateWrite) {
        match w {
            StateWrite::PutEntity { id, base, match_key } => {
                let e = self.entities.entry(id.clone()).or_insert_with(|| EntityRecord::new(id, None, None));
                e.base = base;
                e.match_key = match_key;
            }
            StateWrite::RemoveEntity { id } => {
                self.entities.remove(&id);
            }
            StateWrite::PutReplica { entity, member, slot } => {
                if let ReplicaSlot::Present(r) = &slot {
                    let owner = self.owner_of(&member, &r.item_id);
                    assert!(
                        owner.is_none() || owner.as_ref() == Some(&entity),
                        "{} is a replica of {owner:?}",
                        r.item_id
                    );
                    self.foreign.remove(&(member.clone(), r.item_id.clone()));
                }
                let e =
                    self.entities.get_mut(&entity).unwrap_or_else(|| panic!("PutReplica for unknown entity {entity}"));
                e.replicas.insert(member, slot);
            }
            StateWrite::RemoveReplica { entity, member } => self.remove_replica(&entity, &member),
            StateWrite::PutForeign { member, id, .. } => {
                // Like the stores: a replica must be removed before it becomes the user's.
                assert_eq!(self.owner_of(&member, &id), None, "PutForeign of a replica {id} in {member}");
                self.foreign.insert((member, id));
            }
            StateWrite::RemoveForeign { member, id } => {
                self.foreign.remove(&(member, id));
            }
            StateWrite::AddConflict(c) => self.conflicts.push(c),
            StateWrite::PutEarlierBases { entity, bases } => {
                let e = self
                    .entities
                    .get_mut(&entity)
                    .unwrap_or_else(|| panic!("PutEarlierBases for unknown entity {entity}"));
                e.earlier_bases = bases;
            }
            StateWrite::SetToken { .. } | StateWrite::SetMemberStatus { .. } => {}
            other => panic!("the planner does not write {other:?}"),
        }
    }

    /// The entity whose replica an item is.
    fn owner_of(&self, member: &MemberId, id: &ItemId) -> Option<EntityId> {
        self.entities
            .values()
            .find(|e| e.replicas.get(member).and_then(ReplicaSlot::replica).is_some_and(|r| &r.item_id == id))
            .map(|e| e.id.clone())
    }

    fn remove_replica(&mut self, entity: &EntityId, member: &MemberId) {
        if let Some(e) = self.entities.get_mut(entity) {
            e.replicas.remove(member);
            if e.base.is_none() && e.replicas.is_empty() {
                self.entities.remove(entity);
            }
        }
    }

    /// Carries out one action like the executor, checking the planner's preconditions.
    pub fn execute(&mut self, action: &Action) {
        self.touched.insert((
            action.member().clone(),
            match action {
                Action::Update { id, .. } | Action::Delete { id, .. } => id.clone(),
                Action::Create { .. } => ItemId::new(""),
            },
        ));
        match action {
            Action::Create { entity, member, item, origin, .. } => {
                assert_eq!(&origin.entity, entity, "a copy carries its entity's stamp");
                let id = ItemId::new(self.fresh(&format!("{member}-copy-")));
                let version = Version::new(self.fresh("v"));
                let folder = self.folders.get_mut(member).unwrap();
                folder.insert(
                    id.clone(),
                    Stored { version: version.clone(), item: item.as_ref().clone(), origin: Some(origin.clone()) },
                );
                let record = ReplicaRecord {
                    item_id: id,
                    version,
                    hash: item.content_hash(),
                    ownership: Ownership::Created,
                    ignored_base: None,
                };
                let e = self.entities.get_mut(entity).unwrap_or_else(|| panic!("create for unknown entity {entity}"));
                e.replicas.insert(member.clone(), ReplicaSlot::Present(record));
            }
            Action::Update { entity, member, id, expected, item, .. } => {
                let version = Version::new(self.fresh("v"));
                let stored = self.folders.get_mut(member).unwrap().get_mut(id).expect("update of a missing item");
                assert_eq!(&stored.version, expected, "update must expect the latest version");
                stored.item = item.as_ref().clone();
                stored.version = version.clone();
                let e = self.entities.get_mut(entity).expect("update for unknown entity");
                match e.replicas.get_mut(member) {
                    Some(ReplicaSlot::Present(r)) if &r.item_id == id => {
                        r.version = version;
                        r.hash = item.content_hash();
                        r.ignored_base = None;
                    }
                    other => panic!("update of {id} in {member} whose slot is {other:?}"),
                }
            }
            Action::Delete { entity, member, id, expected, .. } => {
                let stored = self.folders.get_mut(member).unwrap().remove(id).expect("delete of a missing item");
                if let Some(expected) = expected {
                    assert_eq!(&stored.version, expected, "delete must expect the latest version");
                }
                // As the executor does: the named entity's slot in the folder goes.
                self.remove_replica(entity, member);
            }
        }
    }

    /// Convergence (design rule 10): every present replica holds the base, except ignored ones;
    /// every replica record names an item that exists with the recorded version.
    pub fn assert_converged(&self) {
        for e in self.entities.values() {
            let base = e.base.as_ref().unwrap_or_else(|| panic!("entity {} still being deleted", e.id));
            let hash = base.content_hash();
            for (member, slot) in &e.replicas {
                let Some(r) = slot.replica() else { continue };
                let stored = self.folders[member]
                    .get(&r.item_id)
                    .unwrap_or_else(|| panic!("replica {} of {} in {member} does not exist", r.item_id, e.id));
                assert_eq!(stored.version, r.version, "replica version of {} in {member}", e.id);
                assert_eq!(stored.item.content_hash(), r.hash, "replica hash of {} in {member}", e.id);
                if r.ignored_base != Some(hash) {
                    assert_eq!(r.hash, hash, "copy of {} in {member} does not hold the base", e.id);
                }
            }
        }
    }

    /// Stability (design rule 10): with nothing new observed, the next plan is empty.
    pub fn assert_stable(&mut self, group: &SyncGroup) {
        assert!(self.pending.is_empty(), "stability is checked without observations");
        let input = self.input(group);
        let next = plan(group, &input).unwrap();
        assert!(next.is_empty(), "next plan is not empty:\n{next}\n{:?}", next.state);
    }

    /// The item id of an entity's copy in a folder.
    pub fn copy_of(&self, entity: &EntityId, member: &str) -> Option<ItemId> {
        self.entities.get(entity)?.replicas.get(&m(member))?.replica().map(|r| r.item_id.clone())
    }

    /// The content held by an entity's copy in a folder.
    pub fn content_of(&self, entity: &EntityId, member: &str) -> Option<Item> {
        let id = self.copy_of(entity, member)?;
        self.folders[&m(member)].get(&id).map(|s| s.item.clone())
    }

    /// The only entity (panics otherwise).
    pub fn only_entity(&self) -> EntityId {
        assert_eq!(self.entities.len(), 1, "{:?}", self.entities.keys().collect::<Vec<_>>());
        self.entities.keys().next().unwrap().clone()
    }
}
