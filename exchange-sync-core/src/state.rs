//! The state store: the engine's memory between runs.
//!
//! It holds, per group: entities with their merge base, the replica of each entity in each folder,
//! items known to belong to users rather than to the group ("foreign" items, never touched),
//! sync tokens, each folder's identity and condition, write-ahead intents for creates (crash
//! safety), conflict records, the requests admins post to a running service, and records the
//! service keeps for readers beside it (its last report per group).
//!
//! Writes go through [`StateStore::apply`] as one atomic [`StateTransaction`]: a sync token is
//! always written together with the state derived from its page, and each executed action commits
//! its own outcome, so a crash at any point loses nothing and repeats nothing.
//!
//! The trait uses only owned, plain data so that a PostgreSQL implementation can follow the
//! embedded ones.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::id::{EntityId, GroupId, ItemId, MemberId, SyncToken, Version};
use crate::item::{ContentHash, FieldValue, Item};
use crate::origin::OriginStamp;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod columns;
#[cfg(any(test, feature = "testkit"))]
pub mod conformance;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod share;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// How a replica came to belong to the group. The engine only ever modifies or deletes items it
/// created or adopted (design rule 6); this records which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    /// The engine created the item (it carries our origin stamp).
    Created,
    /// The item existed and joined the group (hub items, two-way members' new items, initial
    /// matches).
    Adopted,
}

/// One entity's copy in one folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaRecord {
    /// The item's id in that folder.
    pub item_id: ItemId,
    /// The version last seen or written.
    pub version: Version,
    /// The content hash of the copy at `version`. When it differs from the base's hash while the
    /// version is unchanged, the copy is stale and gets the base (this is how an interrupted run
    /// resumes).
    pub hash: ContentHash,
    /// How the copy joined the group.
    pub ownership: Ownership,
    /// Set when a one-way member's edit is being ignored (policy `Ignore`): the base hash at that
    /// moment. The copy is left alone while the base keeps this hash.
    pub ignored_base: Option<ContentHash>,
}

/// An entity's slot in one folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "slot", rename_all = "snake_case")]
pub enum ReplicaSlot {
    /// The folder holds a copy.
    Present(ReplicaRecord),
    /// A one-way member deleted its copy under policy `Ignore`: do not deliver this entity there.
    OptedOut,
    /// The folder holds the user's own item with this entity's match key, whose content differs
    /// from the entity's: it stays the user's, untouched (design rules 6 and 9), and the folder
    /// gets no second copy of the entity while that item exists. Its version is remembered so that
    /// a later change is looked at (an item that comes to hold the entity's content joins it).
    Personal {
        /// The user's item.
        item_id: ItemId,
        /// Its version when last seen.
        version: Version,
    },
}

impl ReplicaSlot {
    /// The replica, when present.
    pub fn replica(&self) -> Option<&ReplicaRecord> {
        match self {
            ReplicaSlot::Present(r) => Some(r),
            ReplicaSlot::OptedOut | ReplicaSlot::Personal { .. } => None,
        }
    }

    /// The item id the slot names in its folder: the copy, or the user's own item.
    pub fn item_id(&self) -> Option<&ItemId> {
        match self {
            ReplicaSlot::Present(r) => Some(&r.item_id),
            ReplicaSlot::Personal { item_id, .. } => Some(item_id),
            ReplicaSlot::OptedOut => None,
        }
    }
}

/// An entity: the logical item, its merge base and its copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityRecord {
    /// The entity's id.
    pub id: EntityId,
    /// The last converged content, the base of three-way merges. `None` marks an entity being
    /// deleted: its remaining copies are to be deleted, and the record disappears with the last.
    pub base: Option<Item>,
    /// The entity's value of the group's match key (see [`crate::SyncGroup::match_key`]).
    pub match_key: Option<String>,
    /// The entity's slot in each folder that has one.
    pub replicas: BTreeMap<MemberId, ReplicaSlot>,
    /// Earlier bases that some copy may still hold: when the base moved on while a copy could not
    /// be updated (its folder was left out of a pass, or the update failed), that copy's content
    /// is the earlier base, and a later edit of it is merged against that, field by field,
    /// instead of against the newer base, which would turn the other sides' changes into
    /// conflicts with the user's. Kept only while a replica's hash names one of them.
    pub earlier_bases: Vec<Item>,
}

impl EntityRecord {
    /// A live entity with this base and no copies yet.
    pub fn new(id: EntityId, base: Option<Item>, match_key: Option<String>) -> Self {
        EntityRecord { id, base, match_key, replicas: BTreeMap::new(), earlier_bases: Vec::new() }
    }

    /// The base's content hash.
    pub fn base_hash(&self) -> Option<ContentHash> {
        self.base.as_ref().map(Item::content_hash)
    }

    /// The earlier base with this content hash, if the entity keeps one.
    pub fn earlier_base(&self, hash: ContentHash) -> Option<&Item> {
        self.earlier_bases.iter().find(|b| b.content_hash() == hash)
    }
}

/// An item id the store knows in a folder: a replica of an entity, or a user's own item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownItem {
    /// The item id.
    pub id: ItemId,
    /// The version last seen.
    pub version: Version,
    /// The entity it is a replica of; `None` for a foreign (user's own) item.
    pub entity: Option<EntityId>,
}

/// A write-ahead intent, recorded before a create is sent (design rule 7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCreate {
    /// The entity being copied.
    pub entity: EntityId,
    /// The folder it is being created in.
    pub member: MemberId,
    /// The stamp the new copy carries, by which recovery finds it.
    pub origin: OriginStamp,
    /// When the intent was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// One side's value in a conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideValue {
    /// The folder that held the value.
    pub member: MemberId,
    /// The value (`None`: the side cleared the field).
    pub value: Option<FieldValue>,
}

/// A field edited differently on several sides since the merge base, and how it was resolved.
/// Kept so that nobody's edit disappears without a trace (design rule 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictRecord {
    /// The entity.
    pub entity: EntityId,
    /// The canonical field name (`body` and `categories` for those).
    pub field: String,
    /// The base value both sides started from.
    pub base: Option<FieldValue>,
    /// The value that was kept.
    pub winner: SideValue,
    /// The values that were not kept.
    pub losers: Vec<SideValue>,
    /// Which policy decided (e.g. `hub_wins`).
    pub policy: String,
    /// When the conflict was resolved.
    pub recorded_at: DateTime<Utc>,
}

/// Which server folder holds a member's (or the hub's) copies: what the engine compares to tell
/// a folder that changed from items that were deleted (design rule 11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderIdentity {
    /// The server's id of the folder ([`crate::Connector::folder_id`]).
    pub id: String,
    /// The folder as configured, e.g. `alice@contoso.test/contacts/Company Contacts`: for
    /// messages, and to tell an admin which folder the copies were in.
    pub path: String,
}

/// How a folder's last pass ended: what `status` shows, and what the next pass must do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "condition", rename_all = "snake_case")]
pub enum FolderCondition {
    /// The last pass observed the folder and completed every write to it.
    #[default]
    Clean,
    /// A pass started writing to the folder and did not finish (a crash, a shutdown, a lost
    /// state store): the next pass checks every entity of the group against the folder.
    Interrupted,
    /// Some planned writes failed; the next pass plans these entities again (only these: one
    /// item the server keeps refusing must not make every pass reload the whole group).
    FailedWrites {
        /// How many writes failed.
        count: usize,
        /// The first failure, for `status`.
        first_error: String,
        /// The entities whose writes failed (and those whose writes raced with a user's change),
        /// at most [`FolderCondition::MAX_RETRIED_ENTITIES`] (more make the condition
        /// [`FolderCondition::Interrupted`]).
        entities: Vec<EntityId>,
    },
    /// Users changed or deleted copies while the last pass wrote them (their writes lost the
    /// race, harmlessly): the next pass plans these entities again. Not a problem.
    Recheck {
        /// The entities concerned, at most [`FolderCondition::MAX_RETRIED_ENTITIES`].
        entities: Vec<EntityId>,
    },
    /// The folder could not be opened or observed (no mailbox, no rights, server error) and was
    /// left out of the last pass; the group synced without it.
    Unobservable {
        /// Why, for `status` (never a secret).
        reason: String,
    },
    /// The server told this mailbox to back off for longer than a pass waits: it was left out and
    /// gets its turn when the back-off ends (no request goes to it before).
    Parked {
        /// When the back-off ends.
        until: DateTime<Utc>,
        /// What the server said.
        reason: String,
    },
    /// Every copy the group knew in the folder vanished at once (a wrong folder, lost rights, a
    /// wiped mailbox, or every item deleted on purpose). Nothing was propagated; the folder is
    /// held until an admin confirms ([`AdminRequest::ConfirmDeletions`]).
    Vanished {
        /// How many copies vanished.
        copies: usize,
    },
}

impl FolderCondition {
    /// The most entities a [`FolderCondition::FailedWrites`] names.
    pub const MAX_RETRIED_ENTITIES: usize = 10_000;

    /// What went wrong, in words, when something did.
    pub fn problem(&self) -> Option<String> {
        match self {
            FolderCondition::Clean | FolderCondition::Recheck { .. } => None,
            FolderCondition::Interrupted => Some("sync interrupted before all planned writes completed".to_owned()),
            FolderCondition::FailedWrites { count, first_error, .. } => {
                Some(format!("{count} of the planned writes failed; first: {first_error}"))
            }
            FolderCondition::Unobservable { reason } => Some(format!("left out of the last pass: {reason}")),
            FolderCondition::Parked { until, reason } => {
                Some(format!("parked until {} at the server's request: {reason}", until.to_rfc3339()))
            }
            FolderCondition::Vanished { copies } => Some(format!(
                "every one of the {copies} copies the group knew here vanished at once; nothing was propagated \
                 until an admin confirms"
            )),
        }
    }
}

/// Per-folder bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Whether the folder's initial sync completed (matching done, every entity delivered).
    pub initialized: bool,
    /// When the folder last completed a sync.
    pub last_sync: Option<DateTime<Utc>>,
    /// Which server folder holds the copies (recorded at the first pass that observed it).
    pub folder: Option<FolderIdentity>,
    /// How the last pass ended for the folder.
    pub condition: FolderCondition,
}

impl MemberStatus {
    /// The last problem of the folder, for `status` displays.
    pub fn last_error(&self) -> Option<String> {
        self.condition.problem()
    }
}

/// An admin's request to whoever runs a group, passed through the state: a running service is
/// the only writer of its state (design rule 12), so admin commands post requests here and the
/// service picks them up within a second or two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum AdminRequest {
    /// Confirms the deletions the mass-delete guard stopped, and folders held because every copy
    /// vanished: the group's next pass may carry them out, once.
    ConfirmDeletions,
    /// Compares a member's folder (or every folder of the group) completely at the next pass,
    /// keeping its state: nothing is forgotten, anything missed is found.
    Resync {
        /// The folder (`None`: every folder of the group).
        member: Option<MemberId>,
    },
}

/// A request as posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedRequest {
    /// The store's id of the request (growing in posting order).
    pub id: u64,
    /// What is asked.
    pub request: AdminRequest,
    /// When it was posted.
    pub posted_at: DateTime<Utc>,
}

/// A group's lease, where several workers share a state database: which worker owns the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    /// The group.
    pub group: GroupId,
    /// The worker holding (or last holding) it.
    pub owner: String,
    /// The fencing token: grows with every takeover.
    pub token: i64,
    /// When the lease ends unless renewed.
    pub expires_at: DateTime<Utc>,
    /// Whether it has ended (by the database's clock): any worker may take the group.
    pub expired: bool,
}

/// What a renewal of a worker's leases found ([`StateStore::renew_leases`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseRenewal {
    /// Groups whose leases were lost to another worker (this worker was paused or cut off past
    /// their expiry): their work must stop, their writes are refused.
    pub lost: Vec<GroupId>,
    /// Groups this worker holds beyond its fair share of the live workers' groups (see
    /// [`share`]): it gives them up between two of their passes, never in the middle of one,
    /// so that a worker under its share takes them over and resumes them from the state.
    pub surplus: Vec<GroupId>,
}

/// One write of a [`StateTransaction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateWrite {
    /// Creates the entity or replaces its base and match key (its replicas are kept).
    PutEntity {
        /// The entity.
        id: EntityId,
        /// The new base (`None`: the entity is being deleted).
        base: Option<Item>,
        /// The match key value.
        match_key: Option<String>,
    },
    /// Replaces the earlier bases of an existing entity (see [`EntityRecord::earlier_bases`]).
    PutEarlierBases {
        /// The entity.
        entity: EntityId,
        /// The bases some copy may still hold.
        bases: Vec<Item>,
    },
    /// Removes the entity and every slot of it.
    RemoveEntity {
        /// The entity.
        id: EntityId,
    },
    /// Sets an entity's slot in a folder (the entity must exist).
    PutReplica {
        /// The entity.
        entity: EntityId,
        /// The folder.
        member: MemberId,
        /// The slot.
        slot: ReplicaSlot,
    },
    /// Removes an entity's slot in a folder. If the entity is being deleted (`base` is `None`)
    /// and this was its last slot, the entity goes too.
    RemoveReplica {
        /// The entity.
        entity: EntityId,
        /// The folder.
        member: MemberId,
    },
    /// Records a user's own item (never touched; remembered so it is not fetched again).
    PutForeign {
        /// The folder.
        member: MemberId,
        /// The item id.
        id: ItemId,
        /// The version seen.
        version: Version,
    },
    /// Forgets a user's own item (it was deleted, or it joined the group).
    RemoveForeign {
        /// The folder.
        member: MemberId,
        /// The item id.
        id: ItemId,
    },
    /// Sets or clears a folder's sync token.
    SetToken {
        /// The folder.
        member: MemberId,
        /// The token (`None` clears it: the next sync starts over).
        token: Option<SyncToken>,
    },
    /// Sets a folder's bookkeeping.
    SetMemberStatus {
        /// The folder.
        member: MemberId,
        /// The status.
        status: MemberStatus,
    },
    /// Records a create intent (replacing one for the same entity and folder).
    PutPending(PendingCreate),
    /// Clears the create intent of an entity in a folder.
    RemovePending {
        /// The entity.
        entity: EntityId,
        /// The folder.
        member: MemberId,
    },
    /// Appends a conflict record.
    AddConflict(ConflictRecord),
    /// Forgets everything the group knows about a folder (a member left the group).
    RemoveMember {
        /// The folder.
        member: MemberId,
    },
    /// Removes an admin request once it has been carried out.
    RemoveRequest {
        /// The request's id.
        id: u64,
    },
    /// Sets (or, with `None`, removes) one of the group's records: what the service keeps about
    /// the group beside the engine's state, for readers beside it (its last report, the members
    /// its distribution groups held). The value is opaque to the store (the service writes JSON).
    PutRecord {
        /// The record's name, e.g. `last_report`.
        key: String,
        /// The value (`None` removes the record).
        value: Option<String>,
    },
}

/// Writes applied atomically: all or none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateTransaction {
    /// The writes, applied in order.
    pub writes: Vec<StateWrite>,
}

impl StateTransaction {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a write.
    pub fn push(&mut self, write: StateWrite) {
        self.writes.push(write);
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

impl From<Vec<StateWrite>> for StateTransaction {
    fn from(writes: Vec<StateWrite>) -> Self {
        StateTransaction { writes }
    }
}

/// Persistent memory of the engine. Every method is scoped to one group; groups never see each
/// other's state. Implementations must make [`StateStore::apply`] atomic and durable.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Applies writes atomically.
    async fn apply(&self, group: &GroupId, tx: StateTransaction) -> Result<()>;

    /// Loads entities by id (missing ids are skipped).
    async fn entities(&self, group: &GroupId, ids: &[EntityId]) -> Result<Vec<EntityRecord>>;

    /// The slots of these entities in one folder, by entity (entities without a slot there, and
    /// unknown ones, are left out): what a write to one folder needs to know, without every
    /// other folder's slots. Stores that keep replicas by folder answer it with one search per
    /// entity; the default reads the whole records.
    async fn slots_in(
        &self,
        group: &GroupId,
        member: &MemberId,
        ids: &[EntityId],
    ) -> Result<BTreeMap<EntityId, ReplicaSlot>> {
        Ok(self
            .entities(group, ids)
            .await?
            .into_iter()
            .filter_map(|mut r| r.replicas.remove(member).map(|slot| (r.id, slot)))
            .collect())
    }

    /// One page of entity ids in id order, starting after `after`; for full scans (a new member's
    /// initial sync) without loading everything at once.
    async fn entity_ids(&self, group: &GroupId, after: Option<&EntityId>, limit: usize) -> Result<Vec<EntityId>>;

    /// Entities whose match key is one of `keys`: `(key, entity)` pairs.
    async fn entities_by_match_key(&self, group: &GroupId, keys: &[String]) -> Result<Vec<(String, EntityId)>>;

    /// What the store knows about these item ids in a folder (replicas and foreign items).
    async fn lookup_items(&self, group: &GroupId, member: &MemberId, ids: &[ItemId]) -> Result<Vec<KnownItem>>;

    /// Every item id the store knows in a folder, for diffing a snapshot listing.
    async fn known_items(&self, group: &GroupId, member: &MemberId) -> Result<Vec<KnownItem>>;

    /// Every folder the group's state knows anything about (a replica slot, a foreign item, a
    /// sync token, bookkeeping or a create intent), in id order. Lets a service find members that
    /// were removed from its configuration while it was not running, to clean up after them.
    async fn members(&self, group: &GroupId) -> Result<Vec<MemberId>>;

    /// How many replicas (present copies) a folder holds; the mass-delete guard's denominator.
    async fn replica_count(&self, group: &GroupId, member: &MemberId) -> Result<usize>;

    /// A folder's sync token.
    async fn token(&self, group: &GroupId, member: &MemberId) -> Result<Option<SyncToken>>;

    /// A folder's bookkeeping (default when never written).
    async fn member_status(&self, group: &GroupId, member: &MemberId) -> Result<MemberStatus>;

    /// The bookkeeping of several folders, each as [`StateStore::member_status`] answers it: what
    /// a pass reads of every folder of its group when it starts. A store across a network reads
    /// them with one request (a group of 3,000 folders otherwise waits for 3,000 round trips);
    /// the default asks folder by folder.
    async fn member_statuses(&self, group: &GroupId, members: &[MemberId]) -> Result<BTreeMap<MemberId, MemberStatus>> {
        let mut statuses = BTreeMap::new();
        for member in members {
            statuses.insert(member.clone(), self.member_status(group, member).await?);
        }
        Ok(statuses)
    }

    /// Every create intent still open.
    async fn pending_creates(&self, group: &GroupId) -> Result<Vec<PendingCreate>>;

    /// Conflict records, oldest first.
    async fn conflicts(&self, group: &GroupId) -> Result<Vec<ConflictRecord>>;

    /// Every group the store holds anything for, in id order (`status` of groups no longer
    /// configured, admin tools).
    async fn groups(&self) -> Result<Vec<GroupId>>;

    /// Posts an admin request for a group (see [`AdminRequest`]); answers its id. Works on a
    /// store opened for reading beside a running service: it is the one write an admin command
    /// makes, and it is carried out by the service, the state's only writer.
    async fn post_request(&self, group: &GroupId, request: AdminRequest) -> Result<u64>;

    /// The requests posted for a group and not yet removed, oldest first.
    async fn requests(&self, group: &GroupId) -> Result<Vec<PostedRequest>>;

    /// The id of the newest request not yet removed, for every group that has one (groups
    /// without a request are left out). A running service looks for admin requests with it once
    /// a second for all its groups together: one query instead of one per group, so an idle
    /// service of hundreds of groups does not spend its time asking the state for nothing.
    async fn newest_requests(&self) -> Result<BTreeMap<GroupId, u64>>;

    /// One of the group's records ([`StateWrite::PutRecord`]), when it was written.
    async fn record(&self, group: &GroupId, key: &str) -> Result<Option<String>>;

    /// Takes the group's lease, or renews it when this store holds it; `Ok(false)` while another
    /// worker holds it, and while a free group is better left to a live worker under its fair
    /// share (see [`share`]; asking again later takes it if nobody did). Only stores that several workers share have leases (the PostgreSQL
    /// store opened with a worker identity); a store with one writer owns every group, which is
    /// the default.
    async fn acquire_lease(&self, group: &GroupId) -> Result<bool> {
        let _ = group;
        Ok(true)
    }

    /// Renews every lease this store holds, and tells the other workers this one is alive;
    /// answers the groups whose leases were lost to another worker (their work must stop: their
    /// writes are refused) and those this worker should give up so that the groups spread evenly
    /// over the live workers.
    async fn renew_leases(&self) -> Result<LeaseRenewal> {
        Ok(LeaseRenewal::default())
    }

    /// Gives the group's lease up (a worker shutting down, or giving a group of its surplus
    /// back between two passes): another worker may take it at once.
    async fn release_lease(&self, group: &GroupId) -> Result<()> {
        let _ = group;
        Ok(())
    }

    /// Tells the other workers this one stops (after it released its leases): they stop counting
    /// it among the live workers at once, so the groups it gave up are spread over them without
    /// waiting for its heartbeat to age.
    async fn leave_workers(&self) -> Result<()> {
        Ok(())
    }

    /// Every lease the store knows: which worker owns which group (empty without leases).
    async fn leases(&self) -> Result<Vec<LeaseInfo>> {
        Ok(Vec::new())
    }

    /// How long a lease of this store lasts without renewal (`None`: no leases).
    fn lease_duration(&self) -> Option<std::time::Duration> {
        None
    }
}
