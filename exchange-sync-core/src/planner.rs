//! The planner: a pure function from state, observations and group policy to a [`Plan`].
//!
//! It implements the reconciliation rules of the design (hub and spokes, rules 1 to 10):
//!
//! 1. **Observations are classified per copy.** A copy whose new content hashes like the replica
//!    record is only a version bump; one that now holds the base is in sync; anything else
//!    *changed*.
//! 2. **Authoritative changes** (hub, two-way members) are merged field by field against the base
//!    ([`crate::merge`]); the result is the new base. Deleting sides lose against modifications.
//!    A member copy state knew to be stale (it missed an update) and that was then edited has no
//!    known common ancestor with the base: its differences are settled against the hub first
//!    ([`crate::merge::settle_unknown_ancestry`]), each one a recorded conflict.
//! 3. **Authoritative deletions** without any authoritative change tombstone the entity: every
//!    other copy is deleted, except a one-way copy the user edited under `Ignore`, which is
//!    forgotten and stays the user's own.
//! 4. **Otherwise** the base stays; one-way members' changes are reverted or ignored by policy.
//! 5. **Then every copy** that does not hold the base gets an update, every folder without a slot
//!    gets a create, opted-out folders get nothing.
//!
//! New items are matched first by this group's origin stamp, then by the group's match key; the
//! unmatched join the group (hub; initialized two-way members that adopt new items), are removed
//! (orphans this group made in one-way members) or are remembered as the user's own, never
//! touched. Finally the mass-delete guard checks every folder.
//!
//! Output is deterministic: state writes in entity id order, actions ordered by folder (the hub
//! first, then members in group order) and entity id. With nothing observed and every copy in
//! sync, the plan is empty.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::connector::FetchedItem;
use crate::error::{Error, Result};
use crate::group::{Direction, LocalChangePolicy, OneWayPolicy, SyncGroup, TwoWayPolicy};
use crate::id::{EntityId, ItemId, MemberId, Version};
use crate::item::{ContentHash, Item, ItemKind};
use crate::merge::{MergeSide, last_modified, merge, settle_unknown_ancestry};
use crate::origin::OriginStamp;
use crate::plan::{Action, Notice, Observed, Plan, PlanInput, Reason, label};
use crate::state::{ConflictRecord, EntityRecord, Ownership, ReplicaRecord, ReplicaSlot, SideValue, StateWrite};
use crate::view::MemberViews;

/// Plans one sync pass of a group.
///
/// Pure: reads only its arguments (the clock included, as [`PlanInput::now`]). Fails with
/// [`Error::Config`] when the group is invalid or an observation names a folder outside the group,
/// and with [`Error::MassDelete`] when a folder would lose more copies than the group's guard
/// allows and [`PlanInput::allow_mass_delete`] is not set; a failed plan writes nothing.
pub fn plan(group: &SyncGroup, input: &PlanInput) -> Result<Plan> {
    plan_with_views(group, input, &MemberViews::new())
}

/// Plans one sync pass of a group whose one-way members receive what their views deliver
/// ([`crate::view`]): their copies are compared with, created and updated as the view of the base,
/// and removed when the view withholds it. Otherwise the same as [`plan`].
pub fn plan_with_views(group: &SyncGroup, input: &PlanInput, views: &MemberViews) -> Result<Plan> {
    group.validate()?;
    let mut planner = Planner::new(group, input, views);
    planner.observe()?;
    planner.check_vanished()?;
    planner.match_new_items();
    planner.decide_all();
    planner.finish()
}

/// What a folder is in the group, which decides whether its changes are authoritative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Hub,
    OneWay(OneWayPolicy),
    TwoWay(TwoWayPolicy),
}

impl Role {
    /// Whether the folder's edits change the base.
    fn edits_are_authoritative(self) -> bool {
        matches!(self, Role::Hub | Role::TwoWay(_))
    }

    /// Whether the folder's deletions delete the entity.
    fn deletes_are_authoritative(self) -> bool {
        match self {
            Role::Hub => true,
            Role::TwoWay(p) => p.propagate_deletes,
            Role::OneWay(_) => false,
        }
    }

    /// Whether a user's edit of the folder's copy is left alone (one-way, `on_edit = Ignore`).
    fn ignores_edits(self) -> bool {
        matches!(self, Role::OneWay(OneWayPolicy { on_edit: LocalChangePolicy::Ignore, .. }))
    }
}

/// One folder of the group, by position (0 is the hub).
struct Folder<'a> {
    id: &'a MemberId,
    role: Role,
}

/// What this pass saw of one entity's copy in one folder.
#[derive(Debug, Clone, Copy)]
enum Seen<'a> {
    /// The copy, with its content. `matched` is set for a new item that joins the entity in this
    /// plan (initial matching, or the item a new entity starts from), with its ownership;
    /// `take_over` when it differs and the group takes it over (an admin's option).
    Present { fetched: &'a FetchedItem, matched: Option<Ownership>, take_over: bool },
    /// A new item that matched the entity by key but differs: the user's own, kept.
    Personal(&'a FetchedItem),
    /// The copy is gone.
    Deleted,
}

/// An entity being planned.
struct Work<'a> {
    record: Cow<'a, EntityRecord>,
    /// For an entity created by this plan: the folder it came from.
    new_in: Option<usize>,
    /// Observations by folder position.
    seen: BTreeMap<usize, Seen<'a>>,
}

/// How an observed copy relates to what state knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Same content as the replica record: only the version moved.
    Bump,
    /// The copy holds the base.
    InSync,
    /// The side changed (design rule 1).
    Changed,
}

/// One entity's copy in one folder, as this pass sees it.
#[derive(Debug, Clone, Copy)]
enum CopyState<'w> {
    /// No slot in state, nothing seen.
    Missing,
    /// A one-way member opted out of the entity.
    OptedOut,
    /// The user's own item stands in for the entity (kept, never touched): at this version.
    Personal { item_id: &'w ItemId, version: &'w Version },
    /// The user's own item that stood in for the entity is gone: the entity is delivered now.
    PersonalGone,
    /// A copy state knows, not observed this pass.
    Unchanged(&'w ReplicaRecord),
    /// The copy state knew is gone.
    Deleted,
    /// An observed copy.
    Observed {
        /// The replica record, unless the copy joins the entity in this plan.
        prior: Option<&'w ReplicaRecord>,
        fetched: &'w FetchedItem,
        hash: ContentHash,
        ownership: Ownership,
        change: Change,
        /// A user's differing item the group takes over (matched by key in this plan).
        take_over: bool,
    },
}

/// How many actions a folder's list holds before it is sized for the rest of the pass.
const SIZED_AFTER: usize = 256;

/// The conflict-record field of a deletion that lost against a newer edit.
pub const DELETION_FIELD: &str = "(deletion)";
/// The policy named in the record of a deletion made against an older version, which the newer
/// edit beat (design rule 4).
pub const MODIFICATION_BEATS_DELETION: &str = "modification_beats_deletion";
/// The policy named in the records of values a group overwrote when it took over a user's item
/// that matched by key ([`SyncGroup::take_over_matches`]).
pub const TAKE_OVER: &str = "take_over";

struct Planner<'a> {
    group: &'a SyncGroup,
    input: &'a PlanInput,
    /// What one-way members receive.
    views: &'a MemberViews,
    folders: Vec<Folder<'a>>,
    /// Replicas known to state: (folder, item id) -> entity.
    known: HashMap<(usize, &'a ItemId), &'a EntityId>,
    /// Entities being planned, in id order.
    work: BTreeMap<EntityId, Work<'a>>,
    /// New items (unknown to state) per folder, in observation order; `None` once seen deleted.
    new_items: Vec<Vec<Option<&'a FetchedItem>>>,
    /// Match keys of entities created by this plan.
    new_keys: BTreeMap<String, EntityId>,
    /// State writes per entity, in entity order.
    state: Vec<StateWrite>,
    /// Writes about the user's own items, with their folder position.
    foreign: Vec<(usize, StateWrite)>,
    /// Sync tokens to store with this plan.
    tokens: Vec<(usize, StateWrite)>,
    /// Actions per folder position (a plan lists them by folder, then entity). Kept apart per
    /// folder: a fan-out plans a million of them, and one list grown and sorted whole cost a
    /// tenth of the planning time in copying and page faults.
    actions: Vec<Vec<Action>>,
    /// Entities not decided yet, the current one included (sizes the action lists).
    undecided: usize,
    conflicts: Vec<ConflictRecord>,
    notices: Vec<Notice>,
}

impl<'a> Planner<'a> {
    fn new(group: &'a SyncGroup, input: &'a PlanInput, views: &'a MemberViews) -> Self {
        let mut folders = vec![Folder { id: &group.hub, role: Role::Hub }];
        for m in &group.members {
            let role = match m.direction {
                Direction::OneWay(p) => Role::OneWay(p),
                Direction::TwoWay(p) => Role::TwoWay(p),
            };
            folders.push(Folder { id: &m.id, role });
        }
        // Only folders with observations need their copies indexed by item id.
        let observed: HashMap<&MemberId, usize> = folders
            .iter()
            .enumerate()
            .filter(|(_, f)| input.observations.iter().any(|o| &o.member == f.id))
            .map(|(i, f)| (f.id, i))
            .collect();
        let mut known = HashMap::new();
        let mut work = BTreeMap::new();
        for (id, record) in &input.entities {
            for (member, slot) in &record.replicas {
                if let (Some(&fi), Some(item)) = (observed.get(member), slot.item_id()) {
                    known.entry((fi, item)).or_insert(id);
                }
            }
            work.insert(id.clone(), Work { record: Cow::Borrowed(record), new_in: None, seen: BTreeMap::new() });
        }
        let new_items = folders.iter().map(|_| Vec::new()).collect();
        let actions = folders.iter().map(|_| Vec::new()).collect();
        Planner {
            group,
            input,
            views,
            folders,
            known,
            work,
            new_items,
            new_keys: BTreeMap::new(),
            state: Vec::new(),
            foreign: Vec::new(),
            tokens: Vec::new(),
            actions,
            undecided: 0,
            conflicts: Vec::new(),
            notices: Vec::new(),
        }
    }

    fn position(&self, member: &MemberId) -> Option<usize> {
        self.folders.iter().position(|f| f.id == member)
    }

    /// Sorts observations onto entities (known copies) and new items; the last observation of an
    /// item wins.
    fn observe(&mut self) -> Result<()> {
        let mut observations = Vec::with_capacity(self.input.observations.len());
        for obs in &self.input.observations {
            let fi = self.position(&obs.member).ok_or_else(|| Error::Config {
                message: format!("group {}: observation for {}, which is not in the group", self.group.id, obs.member),
            })?;
            observations.push((fi, obs));
        }
        observations.sort_by_key(|(fi, _)| *fi);
        for (fi, obs) in observations {
            let mut new_index: HashMap<&ItemId, usize> = HashMap::new();
            for change in &obs.changes {
                match change {
                    Observed::Present(fetched) => {
                        if let Some(&entity) = self.known.get(&(fi, &fetched.id)) {
                            if let Some(w) = self.work.get_mut(entity) {
                                w.seen.insert(fi, Seen::Present { fetched, matched: None, take_over: false });
                            }
                        } else if let Some(&at) = new_index.get(&fetched.id) {
                            self.new_items[fi][at] = Some(fetched);
                        } else {
                            new_index.insert(&fetched.id, self.new_items[fi].len());
                            self.new_items[fi].push(Some(fetched));
                        }
                    }
                    Observed::Deleted(id) => {
                        if let Some(&entity) = self.known.get(&(fi, id)) {
                            if let Some(w) = self.work.get_mut(entity) {
                                w.seen.insert(fi, Seen::Deleted);
                            }
                        } else {
                            if let Some(&at) = new_index.get(id) {
                                self.new_items[fi][at] = None;
                            }
                            let member = self.folders[fi].id.clone();
                            self.foreign.push((fi, StateWrite::RemoveForeign { member, id: id.clone() }));
                        }
                    }
                }
            }
            if let Some(token) = &obs.token {
                let member = self.folders[fi].id.clone();
                self.tokens.push((fi, StateWrite::SetToken { member, token: Some(token.clone()) }));
            }
        }
        Ok(())
    }

    /// A folder whose every copy the group knew vanished at once (design rule 11) cannot be told
    /// from a wrong folder, lost rights or a wiped mailbox: unless an admin confirmed, the plan
    /// stops with [`Error::Vanished`] (the engine then leaves a member folder out and plans the
    /// rest; the hub's stops the group).
    fn check_vanished(&self) -> Result<()> {
        if self.input.allow_mass_delete {
            return Ok(());
        }
        let mut gone = vec![0usize; self.folders.len()];
        for w in self.work.values() {
            for (&fi, seen) in &w.seen {
                let present = w.record.replicas.get(self.folders[fi].id).and_then(ReplicaSlot::replica).is_some();
                if matches!(seen, Seen::Deleted) && present {
                    gone[fi] += 1;
                }
            }
        }
        for (fi, &copies) in gone.iter().enumerate() {
            let member = self.folders[fi].id;
            let known = self.input.folder_sizes.get(member).copied().unwrap_or(0);
            if copies > 0 && copies >= known {
                return Err(Error::Vanished { group: self.group.id.clone(), member: member.clone(), copies });
            }
        }
        Ok(())
    }

    /// Whether a new item in folder `fi` may join entity `entity` there: the entity is alive and
    /// has no copy in the folder (a copy seen deleted in this pass frees its slot, which is how an
    /// item moved out and back is recognized). Opted-out slots accept only stamped copies: a
    /// user who opted out keeps their own items with the same key.
    fn slot_free(&self, entity: &EntityId, fi: usize, opted_out_ok: bool) -> bool {
        let Some(w) = self.work.get(entity) else { return false };
        if w.record.base.is_none() {
            return false;
        }
        match w.seen.get(&fi) {
            Some(Seen::Present { .. } | Seen::Personal(_)) => false,
            Some(Seen::Deleted) => true,
            None => match w.record.replicas.get(self.folders[fi].id) {
                None => true,
                Some(ReplicaSlot::OptedOut) => opted_out_ok,
                Some(ReplicaSlot::Present(_) | ReplicaSlot::Personal { .. }) => false,
            },
        }
    }

    /// The content hash folder `fi` holds when its copy of `entity` is in sync: the base, or
    /// the member's view of it (`None` when the view withholds the entity).
    fn target_hash(&self, entity: &Work<'a>, fi: usize) -> Option<ContentHash> {
        let base = entity.record.base.as_ref()?;
        match self.view_of(fi) {
            Some(view) => view.deliver(base).map(|t| t.content_hash()),
            None => Some(base.content_hash()),
        }
    }

    /// Whether a stamped item of this group is a second copy of its entity in folder `fi` (the
    /// entity holds another copy there).
    fn is_duplicate(&self, stamp: &OriginStamp, fi: usize) -> bool {
        self.work.get(&stamp.entity).is_some_and(|w| {
            matches!(w.seen.get(&fi), Some(Seen::Present { .. }))
                || w.record.replicas.get(self.folders[fi].id).and_then(ReplicaSlot::replica).is_some()
        })
    }

    /// Initial matching and new entities (design rules 5, 6 and 9), folder by folder, the hub
    /// first so that members' copies can match entities the hub brings in this very pass.
    fn match_new_items(&mut self) {
        for fi in 0..self.folders.len() {
            let items = std::mem::take(&mut self.new_items[fi]);
            for fetched in items.into_iter().flatten() {
                self.match_new_item(fi, fetched);
            }
        }
    }

    fn match_new_item(&mut self, fi: usize, fetched: &'a FetchedItem) {
        let group = self.group;
        let stamp: Option<&OriginStamp> = fetched.origin.as_ref().filter(|o| o.group == group.id);
        if let Some(stamp) = stamp
            && self.slot_free(&stamp.entity, fi, true)
        {
            self.attach(&stamp.entity, fi, fetched, Ownership::Created, false);
            return;
        }
        if let Some(key) = group.match_key_of(&fetched.item) {
            let candidate = self.input.match_keys.get(&key).or_else(|| self.new_keys.get(&key)).cloned();
            if let Some(entity) = candidate.filter(|e| self.slot_free(e, fi, false)) {
                let ownership = if stamp.is_some() { Ownership::Created } else { Ownership::Adopted };
                // The hub is the shared folder: its items are the group's. In a member's folder, a
                // key match links without writing only where it writes nothing the user did not
                // have (the same content, or the group's own stamp); otherwise the item is the
                // user's own (design rules 6 and 9).
                let holds_target = self
                    .work
                    .get(&entity)
                    .and_then(|w| self.target_hash(w, fi))
                    .is_some_and(|target| target == fetched.item.content_hash());
                if fi == 0 || stamp.is_some() || holds_target {
                    self.attach(&entity, fi, fetched, ownership, false);
                } else if group.take_over_matches {
                    self.attach(&entity, fi, fetched, Ownership::Adopted, true);
                } else {
                    self.keep_personal(&entity, fi, fetched);
                }
                return;
            }
        }
        let member: &'a MemberId = self.folders[fi].id;
        match (self.folders[fi].role, stamp) {
            // A second copy this group made of an entity that has its copy here (two passes that
            // ran at once, a restored mailbox): removed when it holds nothing but the entity's
            // content. An edited one is an item of its own: the hub's items are the group's, so
            // it starts an entity; a two-way member's joins like any new item of its user's, when
            // the member adopts new items, and is left to its user otherwise.
            (role @ (Role::Hub | Role::TwoWay(_)), Some(stamp)) if self.is_duplicate(stamp, fi) => {
                let unedited = self
                    .work
                    .get(&stamp.entity)
                    .and_then(|w| self.target_hash(w, fi))
                    .is_some_and(|target| target == fetched.item.content_hash());
                if unedited {
                    self.push_action(
                        fi,
                        Action::Delete {
                            entity: EntityId::derive(&group.id, member, &fetched.id),
                            member: member.clone(),
                            id: fetched.id.clone(),
                            expected: Some(fetched.version.clone()),
                            reason: Reason::Orphan,
                        },
                    );
                } else {
                    let adopts = match role {
                        Role::Hub => true,
                        Role::TwoWay(p) => p.adopt_new_items && self.input.initialized.contains(member),
                        Role::OneWay(_) => false,
                    };
                    if adopts {
                        self.new_entity(
                            EntityId::derive(&group.id, member, &fetched.id),
                            fi,
                            fetched,
                            Ownership::Adopted,
                        );
                    } else {
                        self.put_foreign(fi, &fetched.id, &fetched.version);
                    }
                }
            }
            (Role::Hub, _) => {
                // A stamped hub item keeps the stamp's entity id, so that copies in the members
                // match again after a state loss; otherwise the id derives from the hub item.
                let id = match stamp {
                    Some(s) if !self.work.contains_key(&s.entity) => s.entity.clone(),
                    _ => EntityId::derive(&group.id, member, &fetched.id),
                };
                let ownership = if stamp.is_some() { Ownership::Created } else { Ownership::Adopted };
                self.new_entity(id, fi, fetched, ownership);
            }
            (Role::TwoWay(p), _) if p.adopt_new_items && self.input.initialized.contains(member) => {
                let id = EntityId::derive(&group.id, member, &fetched.id);
                self.new_entity(id, fi, fetched, Ownership::Adopted);
            }
            (Role::OneWay(_), Some(stamp)) => {
                // A copy this group made that belongs to no live entity here: an orphan. The
                // executor forgets the named entity's replica in this folder after the delete, so
                // when the stamp's entity holds another copy here (this one is a duplicate), the
                // action names an entity id that no entity has instead.
                let entity = if self.is_duplicate(stamp, fi) {
                    EntityId::derive(&group.id, member, &fetched.id)
                } else {
                    stamp.entity.clone()
                };
                self.push_action(
                    fi,
                    Action::Delete {
                        entity: entity.clone(),
                        member: member.clone(),
                        id: fetched.id.clone(),
                        expected: Some(fetched.version.clone()),
                        reason: Reason::Orphan,
                    },
                );
            }
            _ => self.put_foreign(fi, &fetched.id, &fetched.version),
        }
    }

    /// A user's own item matched `entity` by key but differs: it stays theirs, untouched, and
    /// stands in for the entity in its folder (no second copy is delivered there).
    fn keep_personal(&mut self, entity: &EntityId, fi: usize, fetched: &'a FetchedItem) {
        if let Some(w) = self.work.get_mut(entity) {
            w.seen.insert(fi, Seen::Personal(fetched));
        }
        self.notices.push(Notice::KeptPersonal {
            member: self.folders[fi].id.clone(),
            entity: entity.clone(),
            item: fetched.id.clone(),
            label: label(&fetched.item),
        });
    }

    fn put_foreign(&mut self, fi: usize, id: &ItemId, version: &Version) {
        let member = self.folders[fi].id.clone();
        self.foreign.push((fi, StateWrite::PutForeign { member, id: id.clone(), version: version.clone() }));
    }

    /// A new item joins an existing entity as its copy in folder `fi`.
    fn attach(
        &mut self,
        entity: &EntityId,
        fi: usize,
        fetched: &'a FetchedItem,
        ownership: Ownership,
        take_over: bool,
    ) {
        if let Some(w) = self.work.get_mut(entity) {
            w.seen.insert(fi, Seen::Present { fetched, matched: Some(ownership), take_over });
        }
    }

    /// A new item starts a new entity; its content is the base.
    fn new_entity(&mut self, id: EntityId, fi: usize, fetched: &'a FetchedItem, ownership: Ownership) {
        if self.work.contains_key(&id) {
            // Only reachable with inconsistent state (an entity derived from this very item that
            // does not know it); leave the item alone rather than overwrite the entity.
            tracing::warn!(group = %self.group.id, member = %self.folders[fi].id, item = %fetched.id, entity = %id,
                "new item maps to an existing entity that does not hold it; left alone");
            self.put_foreign(fi, &fetched.id, &fetched.version);
            return;
        }
        let base = fetched.item.canonical();
        let match_key = self.group.match_key_of(&base);
        if let Some(key) = &match_key
            && !self.input.match_keys.contains_key(key)
        {
            self.new_keys.entry(key.clone()).or_insert_with(|| id.clone());
        }
        let record = EntityRecord::new(id.clone(), Some(base), match_key);
        let mut seen = BTreeMap::new();
        seen.insert(fi, Seen::Present { fetched, matched: Some(ownership), take_over: false });
        self.work.insert(id, Work { record: Cow::Owned(record), new_in: Some(fi), seen });
    }

    /// Decides every entity, in id order.
    fn decide_all(&mut self) {
        let work = std::mem::take(&mut self.work);
        for (i, (id, w)) in work.iter().enumerate() {
            self.undecided = work.len() - i;
            match &w.record.base {
                Some(base) => self.decide_live(id, w, base),
                None => match self.revival(w) {
                    Some((revived, ancestor)) => self.decide_live(id, &revived, &ancestor),
                    None => self.decide_tombstone(id, w, &[], false),
                },
            }
        }
    }

    /// Rule 4 for an entity already tombstoned in state: its deletion was decided, but an
    /// interrupted pass left copies behind, and an authoritative side edited its copy since. The
    /// modification beats the deletion: the entity lives again, planned like a live entity whose
    /// base is an empty item of its kind (the old base is gone) and whose edited copies are edits
    /// of that base. Answers the entity to plan that way, `None` when nobody edited a copy.
    fn revival(&self, w: &Work<'a>) -> Option<(Work<'a>, Item)> {
        let edited: Vec<(usize, ItemKind)> = (0..self.folders.len())
            .filter(|&fi| self.folders[fi].role.edits_are_authoritative())
            .filter_map(|fi| match self.copy_in(w, fi, None) {
                CopyState::Observed { prior: Some(_), fetched, change: Change::Changed, .. } => {
                    Some((fi, fetched.item.kind.clone()))
                }
                _ => None,
            })
            .collect();
        let ancestor = Item::new(edited.first()?.1.clone());
        let ancestor_hash = ancestor.content_hash();
        let mut record = w.record.as_ref().clone();
        record.base = Some(ancestor.clone());
        for (fi, _) in &edited {
            if let Some(ReplicaSlot::Present(r)) = record.replicas.get_mut(self.folders[*fi].id) {
                r.hash = ancestor_hash;
            }
        }
        Some((Work { record: Cow::Owned(record), new_in: w.new_in, seen: w.seen.clone() }, ancestor))
    }

    /// The two-way member that stands for the base when the hub's own copy is stale: the first
    /// whose replica holds the base, else the first two-way member with a copy.
    fn base_holder(&self, w: &Work<'a>, base_hash: ContentHash) -> Option<usize> {
        let two_way: Vec<usize> =
            (1..self.folders.len()).filter(|&fi| matches!(self.folders[fi].role, Role::TwoWay(_))).collect();
        let replica = |fi: usize| w.record.replicas.get(self.folders[fi].id).and_then(ReplicaSlot::replica);
        two_way
            .iter()
            .copied()
            .find(|&fi| replica(fi).is_some_and(|r| r.hash == base_hash))
            .or_else(|| two_way.iter().copied().find(|&fi| replica(fi).is_some()))
    }

    /// A member folder holding a copy of the entity (whatever it holds), to stand for the base
    /// when no two-way member does (a hub that joined an entity whose base came from the old
    /// hub).
    fn any_holder(&self, w: &Work<'a>) -> Option<usize> {
        (1..self.folders.len())
            .find(|&fi| w.record.replicas.get(self.folders[fi].id).and_then(ReplicaSlot::replica).is_some())
    }

    /// How entity `w`'s copy in folder `fi` stands.
    fn copy_in<'w>(&self, w: &'w Work<'a>, fi: usize, base_hash: Option<ContentHash>) -> CopyState<'w> {
        let slot = w.record.replicas.get(self.folders[fi].id);
        match w.seen.get(&fi) {
            Some(Seen::Deleted) => match slot {
                Some(ReplicaSlot::Present(_)) => CopyState::Deleted,
                Some(ReplicaSlot::Personal { .. }) => CopyState::PersonalGone,
                Some(ReplicaSlot::OptedOut) => CopyState::OptedOut,
                None => CopyState::Missing,
            },
            Some(Seen::Personal(fetched)) => CopyState::Personal { item_id: &fetched.id, version: &fetched.version },
            Some(Seen::Present { fetched, matched, take_over }) => {
                let hash = fetched.item.content_hash();
                // The user's own item standing in for the entity changed: it joins the entity once
                // it holds the entity's content, and stays the user's otherwise.
                if matched.is_none() && matches!(slot, Some(ReplicaSlot::Personal { .. })) {
                    if Some(hash) != base_hash {
                        return CopyState::Personal { item_id: &fetched.id, version: &fetched.version };
                    }
                    let (ownership, change) = (Ownership::Adopted, Change::InSync);
                    return CopyState::Observed { prior: None, fetched, hash, ownership, change, take_over: false };
                }
                let prior = if matched.is_some() { None } else { slot.and_then(ReplicaSlot::replica) };
                let ownership = matched.or(prior.map(|r| r.ownership)).unwrap_or(Ownership::Adopted);
                let change = if prior.is_some_and(|r| r.hash == hash) {
                    Change::Bump
                } else if Some(hash) == base_hash {
                    Change::InSync
                } else {
                    Change::Changed
                };
                CopyState::Observed { prior, fetched, hash, ownership, change, take_over: *take_over }
            }
            None => match slot {
                Some(ReplicaSlot::Present(r)) => CopyState::Unchanged(r),
                Some(ReplicaSlot::Personal { item_id, version }) => CopyState::Personal { item_id, version },
                Some(ReplicaSlot::OptedOut) => CopyState::OptedOut,
                None => CopyState::Missing,
            },
        }
    }

    /// Rules 1 to 4 for an entity with a base.
    fn decide_live(&mut self, id: &EntityId, w: &Work<'a>, base: &Item) {
        let base_hash = base.content_hash();
        // A folder with a view is in sync when it holds the view of the base.
        let copies: Vec<CopyState<'_>> = (0..self.folders.len())
            .map(|fi| {
                let target_hash = match self.view_of(fi) {
                    Some(view) => view.deliver(base).map(|t| t.content_hash()),
                    None => Some(base_hash),
                };
                self.copy_in(w, fi, target_hash)
            })
            .collect();

        let mut changed_sides = Vec::new();
        let mut deleted_sides = Vec::new();
        // Authoritative sides that deleted a copy which never held the current base: they deleted
        // what they saw, an older version, not the newer edit; the edit wins and the copy comes
        // back (rule 4), with a record.
        let mut stale_deletions = Vec::new();
        for (fi, copy) in copies.iter().enumerate() {
            let role = self.folders[fi].role;
            match copy {
                CopyState::Observed { change: Change::Changed, take_over: false, .. }
                    if role.edits_are_authoritative() =>
                {
                    changed_sides.push(fi)
                }
                CopyState::Deleted if role.deletes_are_authoritative() => {
                    let held =
                        w.record.replicas.get(self.folders[fi].id).and_then(ReplicaSlot::replica).map(|r| r.hash);
                    if held == Some(base_hash) { deleted_sides.push(fi) } else { stale_deletions.push(fi) }
                }
                _ => {}
            }
        }
        if !stale_deletions.is_empty() && deleted_sides.is_empty() && changed_sides.is_empty() {
            // Nobody else changed the entity in this pass: the newer content is the base, held by
            // the hub (or the side the base came from).
            for &fi in &stale_deletions {
                let record = ConflictRecord {
                    entity: id.clone(),
                    field: DELETION_FIELD.to_owned(),
                    base: None,
                    winner: SideValue { member: self.group.hub.clone(), value: None },
                    losers: vec![SideValue { member: self.folders[fi].id.clone(), value: None }],
                    policy: MODIFICATION_BEATS_DELETION.to_owned(),
                    recorded_at: self.input.now,
                };
                self.state.push(StateWrite::AddConflict(record.clone()));
                self.conflicts.push(record);
            }
        } else if !stale_deletions.is_empty() {
            // Other sides deleted or edited too: a stale deletion then counts like any other.
            deleted_sides.extend(stale_deletions.iter().copied());
        }
        // A hub item that joined the entity in this plan (a re-homed hub holding it) is the
        // hub's content, not a copy the group made: a deletion elsewhere does not remove it, the
        // hub keeps the entity alive like an edit would.
        let hub_joined = matches!(copies[0], CopyState::Observed { prior: None, .. }) && w.new_in.is_none();
        if hub_joined && !deleted_sides.is_empty() && !changed_sides.contains(&0) {
            changed_sides.insert(0, 0);
        }

        // Rule 1: merge the authoritative changes; rule 2: tombstone; rule 3: keep the base.
        // The new base, its hash, and the conflicts resolved on the way.
        let (new_base, new_hash, conflicts): (Cow<'_, Item>, ContentHash, Vec<ConflictRecord>) = if changed_sides
            .is_empty()
        {
            if !deleted_sides.is_empty() {
                self.decide_tombstone(id, w, &copies, true);
                return;
            }
            (Cow::Borrowed(base), base_hash, Vec::new())
        } else {
            let policy = &self.group.conflict_policy;
            let hub_modified = match copies[0] {
                CopyState::Observed { fetched, .. } => last_modified(&fetched.item),
                _ => None,
            };
            let mut conflicts = Vec::new();
            let mut sides = Vec::with_capacity(changed_sides.len());
            let mut settled_any = false;
            for &fi in &changed_sides {
                let CopyState::Observed { prior, fetched, .. } = copies[fi] else { continue };
                let side = MergeSide::observed(self.folders[fi].id.clone(), &fetched.item);
                // A copy state knew to be stale, then edited. When the entity kept the base the
                // copy held (its folder was left out of a pass while the base moved on), the
                // user's edit is merged against that earlier base: fields only they changed are
                // theirs, fields only the others changed are the others', and only fields both
                // changed are conflicts. Otherwise its differences from the base are not all its
                // user's edits; each is settled as a conflict first. A member's copy is settled
                // against the hub (which stands for the base). The hub's own copy (an update to
                // it failed or was interrupted, so the base came from a two-way member) is
                // settled against that member's base, the hub first in the policy's order.
                // An item that joined an existing entity in this plan (matched by stamp or key:
                // a re-homed hub, a copy after a state loss) has no known ancestor either: its
                // differences from the base are settled like a stale copy's, each recorded.
                let joined = prior.is_none() && w.new_in.is_none();
                let stale = prior.is_some_and(|r| r.hash != base_hash) || joined;
                let earlier = prior.filter(|_| stale).and_then(|r| w.record.earlier_base(r.hash));
                if let Some(ancestor) = earlier {
                    let base_side =
                        MergeSide { member: self.group.hub.clone(), item: base.clone(), modified: hub_modified };
                    let (first, second) = if fi == 0 { (side.clone(), base_side) } else { (base_side, side.clone()) };
                    let rebased = merge(ancestor, &[first, second], policy);
                    conflicts.extend(rebased.conflicts);
                    sides.push(MergeSide { item: rebased.item, ..side });
                    settled_any = true;
                } else if stale && fi != 0 {
                    let (settled, settled_conflicts) =
                        settle_unknown_ancestry(base, &self.group.hub, hub_modified, &side, policy);
                    conflicts.extend(settled_conflicts);
                    sides.push(settled);
                    settled_any = true;
                } else if let Some(h) = self.base_holder(w, base_hash).or_else(|| self.any_holder(w)).filter(|_| stale)
                {
                    let holder_modified = match copies[h] {
                        CopyState::Observed { fetched, .. } => last_modified(&fetched.item),
                        _ => None,
                    };
                    let base_side =
                        MergeSide { member: self.folders[h].id.clone(), item: base.clone(), modified: holder_modified };
                    let (settled, settled_conflicts) =
                        settle_unknown_ancestry(&side.item, &self.group.hub, hub_modified, &base_side, policy);
                    conflicts.extend(settled_conflicts);
                    sides.push(MergeSide { item: settled.item, ..side });
                    settled_any = true;
                } else {
                    sides.push(side);
                }
            }
            let single = match (sides.len(), copies[changed_sides[0]]) {
                (1, CopyState::Observed { hash, .. }) if !settled_any => Some(hash),
                _ => None,
            };
            let (item, hash) = match (single, sides.pop()) {
                // One side changed: the merge is that side's content (a fast path for the
                // common case; `merge` would produce the same).
                (Some(hash), Some(side)) => (side.item, hash),
                (_, last) => {
                    sides.extend(last);
                    let merged = merge(base, &sides, policy);
                    conflicts.extend(merged.conflicts);
                    let hash = merged.item.content_hash();
                    (merged.item, hash)
                }
            };
            let records = conflicts.into_iter().map(|c| c.into_record(id.clone(), policy, self.input.now)).collect();
            (Cow::Owned(item), hash, records)
        };
        let base_changed = new_hash != base_hash;
        let changed_in: Vec<MemberId> = changed_sides.iter().map(|&fi| self.folders[fi].id.clone()).collect();

        if base_changed || w.new_in.is_some() {
            let match_key = if base_changed { self.group.match_key_of(&new_base) } else { w.record.match_key.clone() };
            self.state.push(StateWrite::PutEntity { id: id.clone(), base: Some(new_base.as_ref().clone()), match_key });
        }
        // The earlier bases copies outside this plan still hold (their folders were left out):
        // kept while such a copy names one, so that its user's edit merges against it later.
        if w.new_in.is_none() {
            let planned: Vec<&MemberId> = self.folders.iter().map(|f| f.id).collect();
            let held: Vec<ContentHash> = w
                .record
                .replicas
                .iter()
                .filter(|(m, _)| !planned.contains(m))
                .filter_map(|(_, slot)| slot.replica().map(|r| r.hash))
                .collect();
            let mut earlier: Vec<Item> = Vec::new();
            let candidates = w.record.earlier_bases.iter().chain(base_changed.then_some(base));
            for candidate in candidates {
                let hash = candidate.content_hash();
                if hash != new_hash && held.contains(&hash) && !earlier.iter().any(|e| e.content_hash() == hash) {
                    earlier.push(candidate.clone());
                }
            }
            if earlier != w.record.earlier_bases {
                self.state.push(StateWrite::PutEarlierBases { entity: id.clone(), bases: earlier });
            }
        }
        // Conflict records of this entity follow its new base.
        self.state.extend(conflicts.iter().cloned().map(StateWrite::AddConflict));
        self.conflicts.extend(conflicts);

        let default_update = if base_changed { Reason::ChangedIn(changed_in) } else { Reason::Stale };
        let default_create = match w.new_in {
            Some(fi) => Reason::NewIn(self.folders[fi].id.clone()),
            None => Reason::Missing,
        };
        let mut shared_base: Option<Arc<Item>> = None;
        for (fi, copy) in copies.iter().enumerate() {
            let member: &'a MemberId = self.folders[fi].id;
            let role = self.folders[fi].role;
            let slot_before = w.record.replicas.get(member);
            // The copy after this plan's state writes, and the reason if it needs a write.
            let mut after: Option<(Cow<'_, ReplicaRecord>, Option<&Item>)> = None;
            let mut reason_override = None;
            let mut create = false;
            match *copy {
                CopyState::Missing => create = true,
                CopyState::OptedOut => {}
                CopyState::Personal { item_id, version } => {
                    let slot = ReplicaSlot::Personal { item_id: item_id.clone(), version: version.clone() };
                    self.put_slot(id, member, slot_before, slot);
                }
                CopyState::PersonalGone => {
                    // The user's own item is gone: the entity is delivered to this folder now.
                    self.state.push(StateWrite::RemoveReplica { entity: id.clone(), member: member.clone() });
                    create = true;
                }
                // A copy that holds the old base (its hash says so) gets it as its previous
                // content: the connector then sends only the fields that changed.
                CopyState::Unchanged(r) => {
                    let holds_base = self.view_of(fi).is_none() && r.hash == base_hash;
                    after = Some((Cow::Borrowed(r), holds_base.then_some(base)))
                }
                CopyState::Deleted => {
                    let reverts = match role {
                        Role::Hub => {
                            reason_override = Some(Reason::Restore);
                            true
                        }
                        Role::TwoWay(p) => {
                            reason_override = Some(if p.propagate_deletes { Reason::Restore } else { Reason::Revert });
                            true
                        }
                        Role::OneWay(p) => {
                            reason_override = Some(Reason::Revert);
                            p.on_delete == LocalChangePolicy::Revert
                        }
                    };
                    if reverts {
                        self.state.push(StateWrite::RemoveReplica { entity: id.clone(), member: member.clone() });
                        create = true;
                    } else {
                        self.put_slot(id, member, slot_before, ReplicaSlot::OptedOut);
                    }
                }
                CopyState::Observed { prior, fetched, hash, ownership, change, take_over } => {
                    let ignored_base = match change {
                        Change::Bump => prior.and_then(|r| r.ignored_base),
                        Change::InSync => None,
                        Change::Changed if take_over => {
                            // Every value the group overwrites goes to the conflict log first.
                            let side = MergeSide::observed(member.clone(), &fetched.item);
                            let hub_modified = match copies[0] {
                                CopyState::Observed { fetched, .. } => last_modified(&fetched.item),
                                _ => None,
                            };
                            let (_, lost) = settle_unknown_ancestry(
                                &new_base,
                                &self.group.hub,
                                hub_modified,
                                &side,
                                &crate::group::ConflictPolicy::HubWins,
                            );
                            for conflict in lost {
                                let mut record =
                                    conflict.into_record(id.clone(), &self.group.conflict_policy, self.input.now);
                                record.policy = TAKE_OVER.to_owned();
                                self.state.push(StateWrite::AddConflict(record.clone()));
                                self.conflicts.push(record);
                            }
                            reason_override = Some(Reason::TakeOver);
                            None
                        }
                        Change::Changed => {
                            if role.edits_are_authoritative() {
                                None
                            } else {
                                reason_override = Some(Reason::Revert);
                                // Ignore leaves the user's edit alone until the base changes.
                                (role.ignores_edits() && !base_changed).then_some(base_hash)
                            }
                        }
                    };
                    let record = ReplicaRecord {
                        item_id: fetched.id.clone(),
                        version: fetched.version.clone(),
                        hash,
                        ownership,
                        ignored_base,
                    };
                    self.put_slot(
                        id,
                        member,
                        slot_before.filter(|_| prior.is_some()),
                        ReplicaSlot::Present(record.clone()),
                    );
                    after = Some((Cow::Owned(record), Some(&fetched.item)));
                }
            }
            // What this folder should hold: the base (one shared copy for every folder that
            // receives it unchanged), or its view of the base, with its hash.
            let target: Option<(Arc<Item>, ContentHash)> = match self.view_of(fi) {
                Some(view) => view.deliver(new_base.as_ref()).map(|item| {
                    let hash = item.content_hash();
                    (Arc::new(item), hash)
                }),
                None => {
                    Some((shared_base.get_or_insert_with(|| Arc::new(new_base.as_ref().clone())).clone(), new_hash))
                }
            };
            if create {
                if let Some((item, hash)) = target {
                    let reason = reason_override.unwrap_or_else(|| default_create.clone());
                    self.push_action(
                        fi,
                        Action::Create {
                            entity: id.clone(),
                            member: member.clone(),
                            item,
                            hash,
                            origin: OriginStamp::new(self.group.id.clone(), id.clone()),
                            reason,
                        },
                    );
                }
            } else if let Some((record, previous)) = after {
                match target {
                    Some((item, target_hash)) => {
                        if record.hash != target_hash && record.ignored_base != Some(new_hash) {
                            let reason = reason_override.unwrap_or_else(|| default_update.clone());
                            self.push_action(
                                fi,
                                Action::Update {
                                    entity: id.clone(),
                                    member: member.clone(),
                                    id: record.item_id.clone(),
                                    expected: record.version.clone(),
                                    item,
                                    hash: target_hash,
                                    previous: previous.cloned().map(Box::new),
                                    ownership: record.ownership,
                                    reason,
                                },
                            );
                        }
                    }
                    // The member's view withholds the entity: its copy goes.
                    None => self.push_action(
                        fi,
                        Action::Delete {
                            entity: id.clone(),
                            member: member.clone(),
                            id: record.item_id.clone(),
                            expected: Some(record.version.clone()),
                            reason: Reason::FilteredOut,
                        },
                    ),
                }
            }
        }
    }

    /// The view of a one-way folder, if it has one (views of other folders are ignored: their
    /// edits are authoritative and must see the whole item).
    fn view_of(&self, fi: usize) -> Option<&'a dyn crate::view::MemberView> {
        let folder = &self.folders[fi];
        match folder.role {
            Role::OneWay(_) => self.views.get(folder.id).map(|v| v.as_ref()),
            _ => None,
        }
    }

    /// Records a slot unless state already holds exactly it.
    fn put_slot(&mut self, entity: &EntityId, member: &MemberId, before: Option<&ReplicaSlot>, slot: ReplicaSlot) {
        if before != Some(&slot) {
            self.state.push(StateWrite::PutReplica { entity: entity.clone(), member: member.clone(), slot });
        }
    }

    fn push_action(&mut self, folder: usize, action: Action) {
        let list = &mut self.actions[folder];
        if list.len() == SIZED_AFTER {
            // A folder with this many actions is being filled (a fan-out): room for one per
            // entity still to decide, instead of growing step by step.
            list.reserve(self.undecided);
        }
        list.push(action);
    }

    /// Rule 2 (and an entity already being deleted): delete every present copy, except a one-way
    /// copy the user edited under `Ignore`, which is forgotten and stays theirs. `copies` is empty
    /// for an entity already tombstoned in state; `newly` is set when this plan tombstones it.
    fn decide_tombstone(&mut self, id: &EntityId, w: &Work<'a>, copies: &[CopyState<'_>], newly: bool) {
        let copies: Vec<CopyState<'_>> = if copies.is_empty() {
            (0..self.folders.len()).map(|fi| self.copy_in(w, fi, None)).collect()
        } else {
            copies.to_vec()
        };
        let deleted_in: Option<MemberId> = copies.iter().enumerate().find_map(|(fi, c)| {
            (matches!(c, CopyState::Deleted) && self.folders[fi].role.deletes_are_authoritative())
                .then(|| self.folders[fi].id.clone())
        });
        enum Outcome {
            Nothing,
            Drop,
            Forget(ItemId, Version),
            Delete { id: ItemId, version: Version, record: Option<ReplicaRecord> },
        }
        let mut outcomes = Vec::with_capacity(copies.len());
        for (fi, copy) in copies.iter().enumerate() {
            let ignores_edits = self.folders[fi].role.ignores_edits();
            let outcome = match *copy {
                CopyState::Missing => Outcome::Nothing,
                CopyState::OptedOut | CopyState::Deleted | CopyState::PersonalGone => Outcome::Drop,
                // The user's own item outlives the entity it stood in for: remembered as theirs.
                CopyState::Personal { item_id, version } => Outcome::Forget(item_id.clone(), version.clone()),
                CopyState::Unchanged(r) => {
                    if ignores_edits && r.ignored_base.is_some() {
                        Outcome::Forget(r.item_id.clone(), r.version.clone())
                    } else {
                        Outcome::Delete { id: r.item_id.clone(), version: r.version.clone(), record: None }
                    }
                }
                CopyState::Observed { prior, fetched, hash, ownership, change, .. } => {
                    let edited = change == Change::Changed || prior.is_some_and(|r| r.ignored_base.is_some());
                    if prior.is_none() && ownership == Ownership::Adopted {
                        // Matched by key in this very pass: it was never the group's; leave it.
                        Outcome::Forget(fetched.id.clone(), fetched.version.clone())
                    } else if ignores_edits && edited {
                        Outcome::Forget(fetched.id.clone(), fetched.version.clone())
                    } else {
                        let record = ReplicaRecord {
                            item_id: fetched.id.clone(),
                            version: fetched.version.clone(),
                            hash,
                            ownership,
                            ignored_base: prior.and_then(|r| r.ignored_base),
                        };
                        Outcome::Delete {
                            id: fetched.id.clone(),
                            version: fetched.version.clone(),
                            record: Some(record),
                        }
                    }
                }
            };
            outcomes.push(outcome);
        }

        // Copies in folders this plan leaves out (a member that could not be observed) are still
        // to be deleted when their folder is back: the tombstone stays for them.
        let left_out_copies = w
            .record
            .replicas
            .iter()
            .any(|(member, slot)| slot.replica().is_some() && !self.folders.iter().any(|f| f.id == member));
        let any_delete = outcomes.iter().any(|o| matches!(o, Outcome::Delete { .. })) || left_out_copies;
        let in_state = w.new_in.is_none();
        if !any_delete {
            if in_state {
                self.state.push(StateWrite::RemoveEntity { id: id.clone() });
            }
        } else if newly {
            self.state.push(StateWrite::PutEntity { id: id.clone(), base: None, match_key: None });
        }
        // A user's own item standing in for the entity in a folder this plan leaves out stays
        // theirs, remembered as such now: the entity it stood in for is going, and forgetting
        // the item with it would make it look new, and join the group, when its folder is back.
        for (member, slot) in &w.record.replicas {
            if let ReplicaSlot::Personal { item_id, version } = slot
                && !self.folders.iter().any(|f| f.id == member)
            {
                if any_delete {
                    self.state.push(StateWrite::RemoveReplica { entity: id.clone(), member: member.clone() });
                }
                let write =
                    StateWrite::PutForeign { member: member.clone(), id: item_id.clone(), version: version.clone() };
                self.foreign.push((self.folders.len(), write));
            }
        }
        let reason = match deleted_in {
            Some(m) => Reason::DeletedIn(m),
            None => Reason::Stale,
        };
        for (fi, outcome) in outcomes.into_iter().enumerate() {
            let member = self.folders[fi].id;
            let has_slot = w.record.replicas.contains_key(member);
            match outcome {
                Outcome::Nothing => {}
                Outcome::Drop => {
                    if any_delete && has_slot {
                        self.state.push(StateWrite::RemoveReplica { entity: id.clone(), member: member.clone() });
                    }
                }
                Outcome::Forget(item, version) => {
                    if any_delete && has_slot {
                        self.state.push(StateWrite::RemoveReplica { entity: id.clone(), member: member.clone() });
                    }
                    self.put_foreign(fi, &item, &version);
                }
                Outcome::Delete { id: item, version, record } => {
                    if let Some(record) = record {
                        let before = w.record.replicas.get(member);
                        self.put_slot(id, member, before, ReplicaSlot::Present(record));
                    }
                    self.push_action(
                        fi,
                        Action::Delete {
                            entity: id.clone(),
                            member: member.clone(),
                            id: item,
                            expected: Some(version),
                            reason: reason.clone(),
                        },
                    );
                }
            }
        }
    }

    /// The mass-delete guard, then the plan in its deterministic order.
    fn finish(mut self) -> Result<Plan> {
        if !self.input.allow_mass_delete {
            for (fi, actions) in self.actions.iter().enumerate() {
                let would_delete = actions.iter().filter(|a| matches!(a, Action::Delete { .. })).count();
                let member = self.folders[fi].id;
                let total = self.input.folder_sizes.get(member).copied().unwrap_or(0);
                let limit = self.group.mass_delete_guard.limit(total);
                if would_delete > limit {
                    return Err(Error::MassDelete {
                        group: self.group.id.clone(),
                        member: member.clone(),
                        would_delete,
                        total,
                        limit,
                    });
                }
            }
        }
        let mut actions = Vec::with_capacity(self.actions.iter().map(Vec::len).sum());
        for mut folder in self.actions {
            // Entities are decided in id order, so this is mostly a pass over sorted runs.
            folder.sort_by(|a, b| a.entity().cmp(b.entity()));
            actions.append(&mut folder);
        }
        self.foreign.sort_by_key(|(fi, _)| *fi);
        let mut state = self.state;
        state.extend(self.foreign.into_iter().map(|(_, w)| w));
        state.extend(self.tokens.into_iter().map(|(_, w)| w));
        Ok(Plan { state, actions, conflicts: self.conflicts, notices: self.notices })
    }
}
