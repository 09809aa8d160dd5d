//! The in-memory state store: for tests, demos and dry runs, where nothing has to survive the
//! process.
//!
//! All groups live under one lock. [`StateStore::apply`] applies the writes in order to the live
//! state while recording how to undo each one; if a write fails, the writes already applied are
//! undone before the lock is released, so a failed transaction leaves nothing behind and no reader
//! ever sees half of one.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::id::{EntityId, GroupId, ItemId, MemberId, SyncToken, Version};
use crate::item::Item;
use crate::state::{
    AdminRequest, ConflictRecord, EntityRecord, KnownItem, MemberStatus, PendingCreate, PostedRequest, ReplicaSlot,
    StateStore, StateTransaction, StateWrite,
};

/// A [`StateStore`] that keeps everything in memory.
///
/// It implements exactly the semantics of the persistent stores (the shared conformance suite
/// runs against it), so tests that use it exercise the same rules as production.
#[derive(Debug, Default)]
pub struct MemoryStore {
    groups: Mutex<HashMap<GroupId, GroupState>>,
    /// The id of the next admin request (shared by every group, growing in posting order).
    next_request: std::sync::atomic::AtomicU64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, HashMap<GroupId, GroupState>>> {
        // A panic while holding the lock cannot leave a group half-written (writes are undone
        // before `apply` returns, and nothing in it panics on input), so a poisoned lock is
        // reported rather than recovered silently.
        self.groups.lock().map_err(|_| Error::State {
            message: "in-memory state store lock poisoned by an earlier panic".to_owned(),
            source: None,
        })
    }

    fn read<T>(&self, group: &GroupId, f: impl FnOnce(&GroupState) -> T) -> Result<T> {
        let groups = self.lock()?;
        let empty = GroupState::default();
        Ok(f(groups.get(group).unwrap_or(&empty)))
    }
}

/// Who an item id in a folder belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ItemOwner {
    /// A present replica of this entity, at this version (a copy of the replica's).
    Replica(EntityId, Version),
    /// A user's own item standing in for this entity (a [`ReplicaSlot::Personal`] slot).
    Personal(EntityId, Version),
    /// A user's own item, with the version last seen.
    Foreign(Version),
}

/// Everything one group knows.
#[derive(Debug, Default)]
struct GroupState {
    entities: BTreeMap<EntityId, EntityRecord>,
    /// Match key -> entities carrying it (derived from `entities`).
    by_match_key: BTreeMap<String, BTreeSet<EntityId>>,
    /// Folder -> item id -> owner. Replica entries are derived from `entities`; foreign entries
    /// live only here.
    items: HashMap<MemberId, BTreeMap<ItemId, ItemOwner>>,
    tokens: HashMap<MemberId, SyncToken>,
    statuses: HashMap<MemberId, MemberStatus>,
    pending: BTreeMap<(EntityId, MemberId), PendingCreate>,
    conflicts: Vec<ConflictRecord>,
    requests: BTreeMap<u64, PostedRequest>,
    records: BTreeMap<String, String>,
}

impl GroupState {
    /// Whether the group holds nothing at all.
    fn is_empty(&self) -> bool {
        self.entities.is_empty()
            && self.items.is_empty()
            && self.tokens.is_empty()
            && self.statuses.is_empty()
            && self.pending.is_empty()
            && self.conflicts.is_empty()
            && self.requests.is_empty()
            && self.records.is_empty()
    }
}

/// One primitive change to a [`GroupState`]; applying one returns the change that undoes it.
/// Changes are as small as the writes they serve, so that undo information stays cheap.
#[derive(Debug)]
enum Change {
    /// Creates, replaces or removes a whole entity record.
    Entity(EntityId, Option<EntityRecord>),
    /// Sets the base and match key of an existing entity.
    Head(EntityId, Option<Item>, Option<String>),
    /// Sets the earlier bases of an existing entity.
    EarlierBases(EntityId, Vec<Item>),
    /// Adds or removes an admin request.
    Request(u64, Option<PostedRequest>),
    /// Sets or removes one of the group's records.
    Record(String, Option<String>),
    /// Sets or removes one slot of an existing entity.
    Slot(EntityId, MemberId, Option<ReplicaSlot>),
    Foreign(MemberId, ItemId, Option<Version>),
    Token(MemberId, Option<SyncToken>),
    Status(MemberId, Option<MemberStatus>),
    Pending((EntityId, MemberId), Option<PendingCreate>),
    TruncateConflicts(usize),
    AddConflict(ConflictRecord),
}

impl GroupState {
    /// Applies a primitive change and returns its inverse. Keeps the derived indexes in step.
    fn change(&mut self, change: Change) -> Change {
        match change {
            Change::Entity(id, record) => {
                let old = match record {
                    Some(record) => self.entities.insert(id.clone(), record),
                    None => self.entities.remove(&id),
                };
                if let Some(old) = &old {
                    self.unindex_key(&id, old.match_key.as_ref());
                    for (member, slot) in &old.replicas {
                        self.unindex_slot(&id, member, slot);
                    }
                }
                if let Some(new) = self.entities.get(&id) {
                    let key = new.match_key.clone();
                    let slots: Vec<(MemberId, ReplicaSlot)> =
                        new.replicas.iter().map(|(m, s)| (m.clone(), s.clone())).collect();
                    self.index_key(&id, key.as_ref());
                    for (member, slot) in &slots {
                        self.index_slot(&id, member, slot);
                    }
                }
                Change::Entity(id, old)
            }
            Change::Head(id, base, match_key) => {
                let Some(record) = self.entities.get_mut(&id) else { return Change::Head(id, base, match_key) };
                let old_base = std::mem::replace(&mut record.base, base);
                let old_key = std::mem::replace(&mut record.match_key, match_key.clone());
                if old_key != match_key {
                    self.unindex_key(&id, old_key.as_ref());
                    self.index_key(&id, match_key.as_ref());
                }
                Change::Head(id, old_base, old_key)
            }
            Change::EarlierBases(id, bases) => {
                let Some(record) = self.entities.get_mut(&id) else { return Change::EarlierBases(id, bases) };
                let old = std::mem::replace(&mut record.earlier_bases, bases);
                Change::EarlierBases(id, old)
            }
            Change::Request(id, request) => {
                let old = match request {
                    Some(r) => self.requests.insert(id, r),
                    None => self.requests.remove(&id),
                };
                Change::Request(id, old)
            }
            Change::Record(key, value) => {
                let old = match value {
                    Some(v) => self.records.insert(key.clone(), v),
                    None => self.records.remove(&key),
                };
                Change::Record(key, old)
            }
            Change::Slot(id, member, slot) => {
                let Some(record) = self.entities.get_mut(&id) else { return Change::Slot(id, member, slot) };
                let old = match slot.clone() {
                    Some(slot) => record.replicas.insert(member.clone(), slot),
                    None => record.replicas.remove(&member),
                };
                if let Some(old) = &old {
                    self.unindex_slot(&id, &member, old);
                }
                if let Some(new) = &slot {
                    self.index_slot(&id, &member, new);
                }
                Change::Slot(id, member, old)
            }
            Change::Foreign(member, item, version) => {
                let folder = self.items.entry(member.clone()).or_default();
                let old = match version {
                    Some(v) => folder.insert(item.clone(), ItemOwner::Foreign(v)),
                    None => folder.remove(&item),
                };
                let old = match old {
                    Some(ItemOwner::Foreign(v)) => Some(v),
                    // Callers never overwrite a replica entry with a foreign one (checked before).
                    Some(owner @ (ItemOwner::Replica(..) | ItemOwner::Personal(..))) => {
                        folder.insert(item.clone(), owner);
                        None
                    }
                    None => None,
                };
                if folder.is_empty() {
                    self.items.remove(&member);
                }
                Change::Foreign(member, item, old)
            }
            Change::Token(member, token) => {
                let old = match token {
                    Some(t) => self.tokens.insert(member.clone(), t),
                    None => self.tokens.remove(&member),
                };
                Change::Token(member, old)
            }
            Change::Status(member, status) => {
                let old = match status {
                    Some(s) => self.statuses.insert(member.clone(), s),
                    None => self.statuses.remove(&member),
                };
                Change::Status(member, old)
            }
            Change::Pending(key, pending) => {
                let old = match pending {
                    Some(p) => self.pending.insert(key.clone(), p),
                    None => self.pending.remove(&key),
                };
                Change::Pending(key, old)
            }
            Change::AddConflict(record) => {
                let len = self.conflicts.len();
                self.conflicts.push(record);
                Change::TruncateConflicts(len)
            }
            Change::TruncateConflicts(len) => {
                // Only ever used to undo an append: the removed records are the appended ones.
                let removed = self.conflicts.split_off(len.min(self.conflicts.len()));
                match removed.into_iter().next() {
                    Some(record) => Change::AddConflict(record),
                    None => Change::TruncateConflicts(len),
                }
            }
        }
    }

    fn index_key(&mut self, id: &EntityId, key: Option<&String>) {
        if let Some(key) = key {
            self.by_match_key.entry(key.clone()).or_default().insert(id.clone());
        }
    }

    fn unindex_key(&mut self, id: &EntityId, key: Option<&String>) {
        if let Some(key) = key
            && let Some(ids) = self.by_match_key.get_mut(key)
        {
            ids.remove(id);
            if ids.is_empty() {
                self.by_match_key.remove(key);
            }
        }
    }

    fn index_slot(&mut self, id: &EntityId, member: &MemberId, slot: &ReplicaSlot) {
        let (item, owner) = match slot {
            ReplicaSlot::Present(r) => (&r.item_id, ItemOwner::Replica(id.clone(), r.version.clone())),
            ReplicaSlot::Personal { item_id, version } => (item_id, ItemOwner::Personal(id.clone(), version.clone())),
            ReplicaSlot::OptedOut => return,
        };
        self.items.entry(member.clone()).or_default().insert(item.clone(), owner);
    }

    fn unindex_slot(&mut self, id: &EntityId, member: &MemberId, slot: &ReplicaSlot) {
        if let Some(item) = slot.item_id()
            && let Some(folder) = self.items.get_mut(member)
        {
            let owned = matches!(folder.get(item), Some(ItemOwner::Replica(owner, _) | ItemOwner::Personal(owner, _)) if owner == id);
            if owned {
                folder.remove(item);
            }
            if folder.is_empty() {
                self.items.remove(member);
            }
        }
    }

    /// Removes an entity's slot in a folder. An entity being deleted (no base) whose last copy
    /// this was has done its job and goes too (an opted-out slot is not a copy and does not keep
    /// it alive).
    fn remove_slot(&mut self, entity: &EntityId, member: &MemberId, undo: &mut Vec<Change>) {
        let Some(record) = self.entities.get(entity) else { return };
        if !record.replicas.contains_key(member) {
            return;
        }
        let spent =
            record.base.is_none() && !record.replicas.iter().any(|(m, slot)| m != member && slot.replica().is_some());
        if spent {
            self.record(Change::Entity(entity.clone(), None), undo);
        } else {
            self.record(Change::Slot(entity.clone(), member.clone(), None), undo);
        }
    }

    /// Applies every write of a transaction, or none: on the first failing write, the writes
    /// already applied are undone.
    fn apply(&mut self, group: &GroupId, tx: StateTransaction) -> Result<()> {
        let mut undo = Vec::new();
        for write in tx.writes {
            if let Err(err) = self.apply_write(group, write, &mut undo) {
                while let Some(change) = undo.pop() {
                    self.change(change);
                }
                return Err(err);
            }
        }
        Ok(())
    }

    fn record(&mut self, change: Change, undo: &mut Vec<Change>) {
        let inverse = self.change(change);
        undo.push(inverse);
    }

    fn apply_write(&mut self, group: &GroupId, write: StateWrite, undo: &mut Vec<Change>) -> Result<()> {
        match write {
            StateWrite::PutEntity { id, base, match_key } => {
                if self.entities.contains_key(&id) {
                    self.record(Change::Head(id, base, match_key), undo);
                } else {
                    let record = EntityRecord::new(id.clone(), base, match_key);
                    self.record(Change::Entity(id, Some(record)), undo);
                }
            }
            StateWrite::PutEarlierBases { entity, bases } => {
                if !self.entities.contains_key(&entity) {
                    return Err(Error::State {
                        message: format!("cannot set earlier bases of unknown entity {entity} in group {group}"),
                        source: None,
                    });
                }
                self.record(Change::EarlierBases(entity, bases), undo);
            }
            StateWrite::RemoveRequest { id } => {
                if self.requests.contains_key(&id) {
                    self.record(Change::Request(id, None), undo);
                }
            }
            StateWrite::PutRecord { key, value } => self.record(Change::Record(key, value), undo),
            StateWrite::RemoveEntity { id } => {
                if self.entities.contains_key(&id) {
                    self.record(Change::Entity(id, None), undo);
                }
            }
            StateWrite::PutReplica { entity, member, slot } => {
                if !self.entities.contains_key(&entity) {
                    return Err(Error::State {
                        message: format!(
                            "cannot put a replica of unknown entity {entity} in member {member} of group {group}"
                        ),
                        source: None,
                    });
                }
                if let Some(item) = slot.item_id() {
                    match self.items.get(&member).and_then(|f| f.get(item)) {
                        Some(ItemOwner::Replica(other, _) | ItemOwner::Personal(other, _)) if *other != entity => {
                            return Err(Error::State {
                                message: format!(
                                    "cannot put item {item} in the slot of entity {entity} in member {member} of \
                                     group {group}: it already fills the slot of entity {other}"
                                ),
                                source: None,
                            });
                        }
                        // The item joins the group (or stands in for an entity): it is no longer
                        // only a user's own item.
                        Some(ItemOwner::Foreign(_)) => {
                            self.record(Change::Foreign(member.clone(), item.clone(), None), undo);
                        }
                        _ => {}
                    }
                }
                self.record(Change::Slot(entity, member, Some(slot)), undo);
            }
            // Idempotent: removing what is already gone (e.g. a retried delete) is not an error.
            StateWrite::RemoveReplica { entity, member } => self.remove_slot(&entity, &member, undo),
            StateWrite::PutForeign { member, id, version } => {
                if let Some(ItemOwner::Replica(entity, _) | ItemOwner::Personal(entity, _)) =
                    self.items.get(&member).and_then(|f| f.get(&id))
                {
                    return Err(Error::State {
                        message: format!(
                            "cannot record item {id} in member {member} of group {group} as a user's own item: it \
                             fills the slot of entity {entity} (remove the slot first)"
                        ),
                        source: None,
                    });
                }
                self.record(Change::Foreign(member, id, Some(version)), undo);
            }
            StateWrite::RemoveForeign { member, id } => {
                if let Some(ItemOwner::Foreign(_)) = self.items.get(&member).and_then(|f| f.get(&id)) {
                    self.record(Change::Foreign(member, id, None), undo);
                }
            }
            StateWrite::SetToken { member, token } => self.record(Change::Token(member, token), undo),
            StateWrite::SetMemberStatus { member, status } => self.record(Change::Status(member, Some(status)), undo),
            StateWrite::PutPending(pending) => {
                let key = (pending.entity.clone(), pending.member.clone());
                self.record(Change::Pending(key, Some(pending)), undo);
            }
            StateWrite::RemovePending { entity, member } => self.record(Change::Pending((entity, member), None), undo),
            StateWrite::AddConflict(record) => self.record(Change::AddConflict(record), undo),
            StateWrite::RemoveMember { member } => {
                let touched: Vec<EntityId> =
                    self.entities.values().filter(|e| e.replicas.contains_key(&member)).map(|e| e.id.clone()).collect();
                for id in touched {
                    self.remove_slot(&id, &member, undo);
                }
                let foreign: Vec<ItemId> = self
                    .items
                    .get(&member)
                    .map(|f| {
                        f.iter().filter(|(_, o)| matches!(o, ItemOwner::Foreign(_))).map(|(i, _)| i.clone()).collect()
                    })
                    .unwrap_or_default();
                for id in foreign {
                    self.record(Change::Foreign(member.clone(), id, None), undo);
                }
                let pending: Vec<_> = self.pending.keys().filter(|(_, m)| *m == member).cloned().collect();
                for key in pending {
                    self.record(Change::Pending(key, None), undo);
                }
                self.record(Change::Token(member.clone(), None), undo);
                self.record(Change::Status(member, None), undo);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn apply(&self, group: &GroupId, tx: StateTransaction) -> Result<()> {
        if tx.is_empty() {
            return Ok(());
        }
        let mut groups = self.lock()?;
        groups.entry(group.clone()).or_default().apply(group, tx)
    }

    async fn entities(&self, group: &GroupId, ids: &[EntityId]) -> Result<Vec<EntityRecord>> {
        self.read(group, |g| {
            let mut seen = HashSet::new();
            ids.iter().filter(|id| seen.insert(*id)).filter_map(|id| g.entities.get(id).cloned()).collect()
        })
    }

    async fn entity_ids(&self, group: &GroupId, after: Option<&EntityId>, limit: usize) -> Result<Vec<EntityId>> {
        use std::ops::Bound;
        self.read(group, |g| {
            let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
            g.entities.range::<EntityId, _>((lower, Bound::Unbounded)).take(limit).map(|(id, _)| id.clone()).collect()
        })
    }

    async fn entities_by_match_key(&self, group: &GroupId, keys: &[String]) -> Result<Vec<(String, EntityId)>> {
        self.read(group, |g| {
            let mut keys: Vec<&String> = keys.iter().collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .filter_map(|k| g.by_match_key.get(k).map(|ids| (k, ids)))
                .flat_map(|(k, ids)| ids.iter().map(move |id| (k.clone(), id.clone())))
                .collect()
        })
    }

    async fn lookup_items(&self, group: &GroupId, member: &MemberId, ids: &[ItemId]) -> Result<Vec<KnownItem>> {
        self.read(group, |g| {
            let Some(folder) = g.items.get(member) else { return Vec::new() };
            let mut seen = HashSet::new();
            ids.iter()
                .filter(|id| seen.insert(*id))
                .filter_map(|id| folder.get(id).map(|owner| known_item(id, owner)))
                .collect()
        })
    }

    async fn known_items(&self, group: &GroupId, member: &MemberId) -> Result<Vec<KnownItem>> {
        self.read(group, |g| {
            g.items
                .get(member)
                .map(|folder| folder.iter().map(|(id, owner)| known_item(id, owner)).collect())
                .unwrap_or_default()
        })
    }

    async fn members(&self, group: &GroupId) -> Result<Vec<MemberId>> {
        self.read(group, |g| {
            let mut members: BTreeSet<MemberId> =
                g.entities.values().flat_map(|e| e.replicas.keys().cloned()).collect();
            members.extend(g.items.iter().filter(|(_, f)| !f.is_empty()).map(|(m, _)| m.clone()));
            members.extend(g.tokens.keys().cloned());
            members.extend(g.statuses.keys().cloned());
            members.extend(g.pending.keys().map(|(_, m)| m.clone()));
            members.into_iter().collect()
        })
    }

    async fn replica_count(&self, group: &GroupId, member: &MemberId) -> Result<usize> {
        self.read(group, |g| {
            g.items.get(member).map_or(0, |f| f.values().filter(|o| matches!(o, ItemOwner::Replica(..))).count())
        })
    }

    async fn token(&self, group: &GroupId, member: &MemberId) -> Result<Option<SyncToken>> {
        self.read(group, |g| g.tokens.get(member).cloned())
    }

    async fn member_status(&self, group: &GroupId, member: &MemberId) -> Result<MemberStatus> {
        self.read(group, |g| g.statuses.get(member).cloned().unwrap_or_default())
    }

    async fn pending_creates(&self, group: &GroupId) -> Result<Vec<PendingCreate>> {
        self.read(group, |g| g.pending.values().cloned().collect())
    }

    async fn conflicts(&self, group: &GroupId) -> Result<Vec<ConflictRecord>> {
        self.read(group, |g| g.conflicts.clone())
    }

    async fn groups(&self) -> Result<Vec<GroupId>> {
        let groups = self.lock()?;
        let mut ids: Vec<GroupId> = groups.iter().filter(|(_, g)| !g.is_empty()).map(|(id, _)| id.clone()).collect();
        ids.sort();
        Ok(ids)
    }

    async fn post_request(&self, group: &GroupId, request: AdminRequest) -> Result<u64> {
        let mut groups = self.lock()?;
        let id = self.next_request.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let posted = PostedRequest { id, request, posted_at: chrono::Utc::now() };
        groups.entry(group.clone()).or_default().requests.insert(id, posted);
        Ok(id)
    }

    async fn requests(&self, group: &GroupId) -> Result<Vec<PostedRequest>> {
        self.read(group, |g| g.requests.values().cloned().collect())
    }

    async fn newest_requests(&self) -> Result<BTreeMap<GroupId, u64>> {
        let groups = self.lock()?;
        Ok(groups
            .iter()
            .filter_map(|(id, g)| g.requests.last_key_value().map(|(newest, _)| (id.clone(), *newest)))
            .collect())
    }

    async fn record(&self, group: &GroupId, key: &str) -> Result<Option<String>> {
        self.read(group, |g| g.records.get(key).cloned())
    }
}

fn known_item(id: &ItemId, owner: &ItemOwner) -> KnownItem {
    match owner {
        ItemOwner::Foreign(version) => KnownItem { id: id.clone(), version: version.clone(), entity: None },
        ItemOwner::Replica(entity, version) | ItemOwner::Personal(entity, version) => {
            KnownItem { id: id.clone(), version: version.clone(), entity: Some(entity.clone()) }
        }
    }
}

#[cfg(test)]
mod conformance {
    crate::state_conformance_tests!(|| async { super::MemoryStore::new() });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{Item, ItemKind};
    use crate::state::{Ownership, ReplicaRecord};

    fn replica(item: &str) -> ReplicaSlot {
        let base = Item::new(ItemKind::Contact);
        ReplicaSlot::Present(ReplicaRecord {
            item_id: ItemId::new(item),
            version: Version::new("v1"),
            hash: base.content_hash(),
            ownership: Ownership::Created,
            ignored_base: None,
        })
    }

    #[tokio::test]
    async fn failing_write_undoes_the_whole_transaction() {
        let store = MemoryStore::new();
        let g = GroupId::new("g");
        let e = EntityId::new("e1");
        let tx = vec![
            StateWrite::PutEntity { id: e.clone(), base: Some(Item::new(ItemKind::Contact)), match_key: None },
            StateWrite::PutReplica { entity: e.clone(), member: MemberId::new("hub"), slot: replica("a") },
            StateWrite::SetToken { member: MemberId::new("hub"), token: Some(SyncToken::new("t")) },
            StateWrite::PutReplica { entity: EntityId::new("nope"), member: MemberId::new("m1"), slot: replica("b") },
        ];
        let err = store.apply(&g, tx.into()).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("nope") && text.contains("m1"), "{text}");
        assert!(store.entities(&g, &[e]).await.unwrap().is_empty());
        assert_eq!(store.token(&g, &MemberId::new("hub")).await.unwrap(), None);
        assert!(store.known_items(&g, &MemberId::new("hub")).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn removing_the_last_copy_of_a_tombstone_removes_the_entity() {
        let store = MemoryStore::new();
        let g = GroupId::new("g");
        let e = EntityId::new("e1");
        let hub = MemberId::new("hub");
        let tx = vec![
            StateWrite::PutEntity { id: e.clone(), base: None, match_key: None },
            StateWrite::PutReplica { entity: e.clone(), member: hub.clone(), slot: replica("a") },
        ];
        store.apply(&g, tx.into()).await.unwrap();
        assert_eq!(store.entities(&g, std::slice::from_ref(&e)).await.unwrap().len(), 1);
        store.apply(&g, vec![StateWrite::RemoveReplica { entity: e.clone(), member: hub }].into()).await.unwrap();
        assert!(store.entities(&g, &[e]).await.unwrap().is_empty());
    }
}
