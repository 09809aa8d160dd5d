//! Plans: what the engine observed, and the actions it decided on.
//!
//! The [`crate::planner`] turns observations and state into a [`Plan`]; the
//! [`crate::executor`] carries it out. A plan prints as a readable list (`Display`): that is the
//! dry run an admin reads before anything is written.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use crate::connector::FetchedItem;
use crate::id::{EntityId, ItemId, MemberId, SyncToken, Version};
use crate::item::{ContentHash, Item};
use crate::origin::OriginStamp;
use crate::state::{ConflictRecord, EntityRecord, FolderCondition, Ownership, StateWrite};

/// One thing seen in a folder since the last sync.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// An item that is new, or whose version differs from the one in state, with its content.
    Present(FetchedItem),
    /// An item that is gone.
    Deleted(ItemId),
}

/// What the engine saw in one folder since the last sync.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderObservation {
    /// The folder (hub or member).
    pub member: MemberId,
    /// The changes.
    pub changes: Vec<Observed>,
    /// The sync token to store with the state derived from these changes (incremental folders).
    pub token: Option<SyncToken>,
}

/// Everything the planner needs: the state it may read, and what was observed.
///
/// The engine loads only the entities the observations touch (plus every entity for a folder
/// whose initial sync runs), so planning cost and memory follow what changed, not folder size.
#[derive(Debug, Clone, Default)]
pub struct PlanInput {
    /// The relevant entities, by id: every entity an observed item id is a replica of, every
    /// entity named by the origin stamp (of this group) of an observed new item, every entity the
    /// match keys of observed new items point to, and every entity of the group when a folder's
    /// initial sync runs. Entities without observations are planned too (stale copies, missing
    /// copies, pending deletions).
    pub entities: BTreeMap<EntityId, EntityRecord>,
    /// Entities by their match key value, for initial matching (design rule 9).
    pub match_keys: BTreeMap<String, EntityId>,
    /// The observations, one per folder that was looked at.
    pub observations: Vec<FolderObservation>,
    /// The number of present replicas per folder before this run, for the mass-delete guards.
    /// The engine counts only the folders a guard may need (see `GroupSync`); a folder left out
    /// counts as empty, so that deleting more there than the guard's fixed allowance stops the
    /// plan, and the engine plans again with it counted.
    pub folder_sizes: BTreeMap<MemberId, usize>,
    /// Set by an admin to let a run exceed the mass-delete guard once.
    pub allow_mass_delete: bool,
    /// The time to stamp on conflict records (planning is pure: the caller reads the clock).
    pub now: chrono::DateTime<chrono::Utc>,
    /// The folders whose initial sync has completed ([`crate::state::MemberStatus::initialized`]).
    /// A two-way member adopts new items only once initialized: what a folder already holds at its
    /// initial sync (a user's personal contacts) must not flood the hub.
    pub initialized: BTreeSet<MemberId>,
}

/// Why an action is planned; shown in the dry run and in reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A new item in this folder joins the group.
    NewIn(MemberId),
    /// The entity changed in these folders (merged field by field when several).
    ChangedIn(Vec<MemberId>),
    /// A one-way member's local change is reverted.
    Revert,
    /// The entity was deleted in this folder.
    DeletedIn(MemberId),
    /// A deletion lost against a modification: the entity is restored.
    Restore,
    /// The folder lacks a copy (initial sync, a new member, a failed create).
    Missing,
    /// The copy does not hold the base content (an interrupted run is resumed).
    Stale,
    /// A copy carrying this group's origin stamp that belongs to no entity any more (or is a
    /// second copy of one) in a one-way member: the group made it, so the group removes it.
    /// The action names the stamp's entity, or, when that entity holds another copy in the
    /// folder (the orphan is a duplicate), an id no entity has: removing the named entity's
    /// replica in the folder after the delete never forgets a live copy.
    Orphan,
    /// The item no longer matches what the member receives (its view's filter).
    FilteredOut,
    /// A user's own item matched the entity by key and the group takes it over (an admin opted
    /// in): its differing values were recorded in the conflict log first.
    TakeOver,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NewIn(m) => write!(f, "new in {m}"),
            Reason::ChangedIn(ms) => {
                let names: Vec<&str> = ms.iter().map(MemberId::as_str).collect();
                write!(f, "changed in {}", names.join(", "))
            }
            Reason::Revert => f.write_str("revert local change of a one-way member"),
            Reason::DeletedIn(m) => write!(f, "deleted in {m}"),
            Reason::Restore => f.write_str("restore: a modification beats a deletion"),
            Reason::Missing => f.write_str("missing copy"),
            Reason::Stale => f.write_str("stale copy"),
            Reason::FilteredOut => f.write_str("no longer matches the member's filter"),
            Reason::Orphan => f.write_str("orphan copy made by this group"),
            Reason::TakeOver => f.write_str("take over the user's matching item; its values are in the conflict log"),
        }
    }
}

/// One server write.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create a copy of an entity in a folder.
    Create {
        /// The entity.
        entity: EntityId,
        /// The folder.
        member: MemberId,
        /// The content to write: shared by every folder that receives the same content, so that
        /// a fan-out to many mailboxes holds one copy of each item, not one per mailbox.
        item: Arc<Item>,
        /// The content hash of `item`, computed once per entity (the replica record keeps it).
        hash: ContentHash,
        /// The origin stamp the copy carries.
        origin: OriginStamp,
        /// Why.
        reason: Reason,
    },
    /// Update a copy, guarded by its expected version.
    Update {
        /// The entity.
        entity: EntityId,
        /// The folder.
        member: MemberId,
        /// The copy's id.
        id: ItemId,
        /// The version the copy must still have.
        expected: Version,
        /// The new content (shared, like a create's).
        item: Arc<Item>,
        /// The content hash of `item`.
        hash: ContentHash,
        /// The content the copy holds now, when known (lets connectors send only differences).
        /// Boxed: most actions of a large plan are creates, and an item inline would make every
        /// action of the plan as large as an update.
        previous: Option<Box<Item>>,
        /// Whether the group created the copy or adopted it, as the state holds it: the
        /// executor records the updated copy with it, without reading the folder's slot back
        /// (a pass over a large state would read every updated slot twice).
        ownership: Ownership,
        /// Why.
        reason: Reason,
    },
    /// Delete a copy the group created or adopted.
    Delete {
        /// The entity.
        entity: EntityId,
        /// The folder.
        member: MemberId,
        /// The copy's id.
        id: ItemId,
        /// The version last seen.
        expected: Option<Version>,
        /// Why.
        reason: Reason,
    },
}

impl Action {
    /// The folder the action writes to.
    pub fn member(&self) -> &MemberId {
        match self {
            Action::Create { member, .. } | Action::Update { member, .. } | Action::Delete { member, .. } => member,
        }
    }

    /// The entity the action concerns.
    pub fn entity(&self) -> &EntityId {
        match self {
            Action::Create { entity, .. } | Action::Update { entity, .. } | Action::Delete { entity, .. } => entity,
        }
    }
}

/// A short label for an item in the dry run: its most telling field.
pub fn label(item: &Item) -> String {
    use crate::field;
    let candidates = [field::DISPLAY_NAME, field::SUBJECT, field::FILE_AS, field::EMAIL1];
    for name in candidates {
        if let Some(v) = item.text(name) {
            return format!("{} {v:?}", item.kind);
        }
    }
    let given = item.text(field::GIVEN_NAME).unwrap_or_default();
    let surname = item.text(field::SURNAME).unwrap_or_default();
    let name = format!("{given} {surname}");
    if name.trim().is_empty() { item.kind.to_string() } else { format!("{} {:?}", item.kind, name.trim()) }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Create { entity, member, item, reason, .. } => {
                write!(f, "create {} in {member} (entity {entity}; {reason})", label(item))
            }
            Action::Update { entity, member, item, previous, reason, .. } => {
                write!(f, "update {} in {member} (entity {entity}; {reason})", label(item))?;
                if let Some(prev) = previous {
                    let changed = changed_fields(prev, item);
                    if !changed.is_empty() {
                        write!(f, ": {}", changed.join(", "))?;
                    }
                }
                Ok(())
            }
            Action::Delete { entity, member, id, reason, .. } => {
                write!(f, "delete item {id} in {member} (entity {entity}; {reason})")
            }
        }
    }
}

/// The names of the content fields that differ between two items (including `body` and
/// `categories`), in name order.
pub fn changed_fields(a: &Item, b: &Item) -> Vec<String> {
    let (a, b) = (a.canonical(), b.canonical());
    let mut names: Vec<String> =
        a.fields.keys().chain(b.fields.keys()).filter(|k| a.fields.get(*k) != b.fields.get(*k)).cloned().collect();
    names.sort();
    names.dedup();
    if a.body != b.body {
        names.push("body".into());
    }
    if a.categories != b.categories {
        names.push("categories".into());
    }
    names
}

/// Something an admin should know about a pass that is not a write.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A folder the pass leaves out, and why: nothing is written there, and nothing it shows is
    /// propagated (see [`FolderCondition`]).
    LeftOut {
        /// The folder.
        member: MemberId,
        /// Why.
        condition: FolderCondition,
    },
    /// A user's own item matched an entity by the group's match key but holds other content: it
    /// stays the user's, untouched, and the folder gets no copy of the entity while it exists
    /// (design rules 6 and 9).
    KeptPersonal {
        /// The folder.
        member: MemberId,
        /// The entity it matched.
        entity: EntityId,
        /// The user's item.
        item: ItemId,
        /// What the item is, as the dry run names items.
        label: String,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::LeftOut { member, condition } => match condition.problem() {
                Some(problem) => write!(f, "{member} is left out: {problem}"),
                None => write!(f, "{member} is left out"),
            },
            Notice::KeptPersonal { member, entity, label, .. } => write!(
                f,
                "kept the user's own {label} in {member}: it matches entity {entity} by key but differs; it is not \
                 touched and {member} gets no second copy"
            ),
        }
    }
}

/// The outcome of planning: state to record first, then server writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// State derived from the observations (new bases, observed versions, foreign items, tokens,
    /// conflict records). The executor applies these in one transaction before any action, so a
    /// token is stored with the state derived from its page.
    pub state: Vec<StateWrite>,
    /// Server writes, each committing its own outcome when it completes.
    pub actions: Vec<Action>,
    /// Conflicts resolved by this plan (also among `state` as records).
    pub conflicts: Vec<ConflictRecord>,
    /// What the admin should know that is not a write.
    pub notices: Vec<Notice>,
}

impl Plan {
    /// Whether the plan would neither write to a server nor change state: a clean sync's next
    /// plan is empty (design rule 10). Notices do not count.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.state.is_empty()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for notice in &self.notices {
            writeln!(f, "* {notice}")?;
        }
        if self.actions.is_empty() {
            writeln!(f, "nothing to write")?;
        }
        for action in &self.actions {
            writeln!(f, "- {action}")?;
        }
        for c in &self.conflicts {
            let losers: Vec<String> = c
                .losers
                .iter()
                .map(|l| format!("{} had {}", l.member, l.value.as_ref().map_or("nothing".into(), ToString::to_string)))
                .collect();
            writeln!(
                f,
                "! conflict on {} of entity {}: kept {} from {} ({}); {}",
                c.field,
                c.entity,
                c.winner.value.as_ref().map_or("nothing".into(), ToString::to_string),
                c.winner.member,
                c.policy,
                losers.join(", ")
            )?;
        }
        Ok(())
    }
}
