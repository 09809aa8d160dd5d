//! What `status` shows: per group and member, how far syncing got and what went wrong; and what
//! `check` finds when it opens every folder.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::report::{ErrorReport, GroupReport, GuardStop};

/// The status of one folder of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberStatusReport {
    /// The member id (`hub` for the hub).
    pub member: String,
    /// The folder, as configured (`alice@contoso.test/contacts`, `public folder Company Contacts`).
    pub folder: String,
    /// `hub`, `one_way` or `two_way` (`unknown` for a folder only the state knows).
    pub direction: String,
    /// How the member belongs to the group: `hub`, `listed` (in the configuration), `distribution
    /// group <address>` (as the service last expanded it), or `no longer configured` (the state
    /// holds its copies; the next run handles it as a leave).
    #[serde(default)]
    pub source: String,
    /// How the folder's last pass ended: `clean`, `interrupted`, `failed_writes`, `recheck`,
    /// `unobservable`, `parked` or `vanished` (see `exchange_sync_core::state::FolderCondition`).
    #[serde(default)]
    pub condition: String,
    /// Until when the folder is parked at its server's request.
    #[serde(default)]
    pub parked_until: Option<DateTime<Utc>>,
    /// Whether the folder's initial sync completed.
    pub initialized: bool,
    /// When the folder last completed a sync.
    pub last_sync: Option<DateTime<Utc>>,
    /// The last error that stopped the folder's sync.
    pub last_error: Option<String>,
    /// How many copies of the group's items the folder holds.
    pub copies: usize,
    /// Creates started and not yet confirmed (resolved by the next pass).
    pub pending_creates: usize,
}

/// The status of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// The group id.
    pub group: String,
    /// The hub first, then the members.
    pub members: Vec<MemberStatusReport>,
    /// Whether the mass-delete guard stopped the group, or holds one of its folders because every
    /// copy there vanished (an admin must confirm), as of the last pass.
    pub stopped_by_mass_delete_guard: bool,
    /// What the guard stopped, and what confirming would delete.
    #[serde(default)]
    pub guard: Option<GuardStop>,
    /// How the last pass ended (`synced`, `partially_failed`, `failed`,
    /// `stopped_by_mass_delete_guard`), when one ran.
    #[serde(default)]
    pub last_outcome: Option<crate::report::PassOutcome>,
    /// When the last pass started.
    #[serde(default)]
    pub last_pass: Option<DateTime<Utc>>,
    /// The errors of the last pass (the one that stopped it, and each folder's), with hints.
    #[serde(default)]
    pub last_errors: Vec<ErrorReport>,
    /// How many conflicts the conflict log holds for the group.
    #[serde(default)]
    pub conflicts: usize,
    /// Admin requests posted and not yet carried out (a running service picks them up within
    /// seconds; without one, the next run does), in words.
    pub pending_requests: Vec<String>,
    /// Whether an admin's confirmation of deletions is among them.
    pub confirmation_pending: bool,
    /// The last pass's report, as the service (or `run --once`) that ran it kept it in the state.
    pub last_report: Option<GroupReport>,
    /// Which worker owns the group, when several workers share a PostgreSQL state: its name, and
    /// whether its lease expired (a worker died; another takes the group over shortly).
    #[serde(default)]
    pub lease: Option<exchange_sync_core::state::LeaseInfo>,
}

impl GroupStatus {
    /// Whether anything needs an admin: a guard stop, a failed pass, a folder with a problem.
    pub fn needs_attention(&self) -> bool {
        self.stopped_by_mass_delete_guard
            || !self.last_errors.is_empty()
            || self.members.iter().any(|m| m.last_error.is_some())
    }
}

/// What `check` found for one folder of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FolderCheck {
    /// The member id (`hub` for the hub).
    pub member: String,
    /// The folder, as configured.
    pub folder: String,
    /// Why the folder cannot be reached (no mailbox, impersonation denied, no such public
    /// folder, server unreachable), when it cannot.
    pub problem: Option<ErrorReport>,
    /// What the next run would do with the folder beyond syncing it (create it, re-home it).
    pub notes: Vec<String>,
}

impl FolderCheck {
    pub(crate) fn reachable(member: &str, folder: &str) -> Self {
        FolderCheck { member: member.to_owned(), folder: folder.to_owned(), problem: None, notes: Vec::new() }
    }

    pub(crate) fn unreachable(member: &str, folder: &str, error: &crate::Error) -> Self {
        FolderCheck {
            member: member.to_owned(),
            folder: folder.to_owned(),
            problem: Some(ErrorReport::from_service(error)),
            notes: Vec::new(),
        }
    }
}

/// What `check` found for one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupCheck {
    /// The group id.
    pub group: String,
    /// The hub first, then each member (listed, then from distribution groups).
    pub folders: Vec<FolderCheck>,
    /// Why the state could not be compared with the folders (re-homes are not known then).
    pub state_error: Option<String>,
    /// What the server's version means for the group (no streaming notifications on Exchange
    /// 2007 SP1: real time uses pull subscriptions).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl GroupCheck {
    /// The folders that cannot be reached.
    pub fn unreachable(&self) -> impl Iterator<Item = &FolderCheck> {
        self.folders.iter().filter(|f| f.problem.is_some())
    }
}

/// One copy of an entity, as `exchange-sync show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyView {
    /// The member (`hub` for the hub).
    pub member: String,
    /// The folder, as configured (the member id when it is no longer configured).
    pub folder: String,
    /// `copy` (the group's copy), `opted_out` (a one-way member deleted it and ignores the group's
    /// copy), or `users_own_item` (the user's own item, matched by key, stands in for it and stays
    /// untouched).
    pub slot: String,
    /// The item's id in that folder (EWS ItemId), when there is one.
    pub item_id: Option<String>,
    /// Its version (EWS ChangeKey) when last seen or written.
    pub version: Option<String>,
    /// How the copy joined the group: `created` (the group wrote it) or `adopted`.
    pub ownership: Option<String>,
    /// Whether the copy held the entity's content when last seen (`false`: it waits for a write,
    /// or holds an edit the next pass takes up).
    pub in_sync: Option<bool>,
}

/// An entity as `exchange-sync show` shows it: its item, every copy, its conflict history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityView {
    /// The group.
    pub group: String,
    /// The entity's id.
    pub entity: String,
    /// The item as a person names it.
    pub item: String,
    /// `live`, or `being deleted` (its remaining copies are deleted at the next passes).
    pub state: String,
    /// The entity's content (its last converged fields), as text.
    pub fields: std::collections::BTreeMap<String, String>,
    /// Every copy (and stand-in) in the group's folders.
    pub copies: Vec<CopyView>,
    /// Creates started and not yet confirmed, by member.
    pub pending_creates: Vec<String>,
    /// The conflicts recorded for it, oldest first.
    pub conflicts: Vec<crate::conflict_log::ConflictEntry>,
}

impl EntityView {
    /// The view of a state record; `paths` names members' folders.
    pub fn of(
        group: &str,
        record: &exchange_sync_core::state::EntityRecord,
        paths: &std::collections::BTreeMap<String, String>,
        conflicts: &[exchange_sync_core::state::ConflictRecord],
        pending: &[exchange_sync_core::state::PendingCreate],
    ) -> Self {
        use exchange_sync_core::state::{Ownership, ReplicaSlot};
        let item = record.base.as_ref().or(record.earlier_bases.last());
        let base_hash = record.base_hash();
        let copies = record
            .replicas
            .iter()
            .map(|(member, slot)| {
                let folder = paths.get(member.as_str()).cloned().unwrap_or_else(|| member.to_string());
                let member = member.to_string();
                match slot {
                    ReplicaSlot::Present(r) => CopyView {
                        member,
                        folder,
                        slot: "copy".into(),
                        item_id: Some(r.item_id.to_string()),
                        version: Some(r.version.to_string()),
                        ownership: Some(
                            match r.ownership {
                                Ownership::Created => "created",
                                Ownership::Adopted => "adopted",
                            }
                            .into(),
                        ),
                        in_sync: base_hash.map(|h| h == r.hash),
                    },
                    ReplicaSlot::OptedOut => CopyView {
                        member,
                        folder,
                        slot: "opted_out".into(),
                        item_id: None,
                        version: None,
                        ownership: None,
                        in_sync: None,
                    },
                    ReplicaSlot::Personal { item_id, version } => CopyView {
                        member,
                        folder,
                        slot: "users_own_item".into(),
                        item_id: Some(item_id.to_string()),
                        version: Some(version.to_string()),
                        ownership: None,
                        in_sync: None,
                    },
                }
            })
            .collect();
        let fields = item
            .map(|i| i.canonical().fields.iter().map(|(k, v)| (k.clone(), crate::names::value_text(v))).collect())
            .unwrap_or_default();
        let name = item.map(crate::names::item_name);
        EntityView {
            group: group.to_owned(),
            entity: record.id.to_string(),
            item: name.clone().unwrap_or_else(|| format!("entity {}", record.id)),
            state: if record.base.is_some() { "live" } else { "being deleted" }.into(),
            fields,
            copies,
            pending_creates: pending.iter().filter(|p| p.entity == record.id).map(|p| p.member.to_string()).collect(),
            conflicts: conflicts
                .iter()
                .filter(|c| c.entity == record.id)
                .map(|c| crate::conflict_log::ConflictEntry::from_record(group, c).named(name.clone()))
                .collect(),
        }
    }
}

impl std::fmt::Display for EntityView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} in group {} (entity {}, {})", self.item, self.group, self.entity, self.state)?;
        for (k, v) in &self.fields {
            writeln!(f, "  {k:<28} {v}")?;
        }
        writeln!(f, "  copies:")?;
        for c in &self.copies {
            let what = match c.slot.as_str() {
                "copy" => {
                    let sync = match c.in_sync {
                        Some(true) => "holds the shared content",
                        Some(false) => "differs from the shared content (the next pass takes it up)",
                        None => "",
                    };
                    format!(
                        "{} copy, item {}, version {}; {sync}",
                        c.ownership.as_deref().unwrap_or("?"),
                        c.item_id.as_deref().unwrap_or("?"),
                        c.version.as_deref().unwrap_or("?")
                    )
                }
                "opted_out" => "none: the member deleted its copy and ignores the group's (on_delete = ignore)".into(),
                _ => format!(
                    "the user's own item {} stands in for it (matched by key, kept untouched)",
                    c.item_id.as_deref().unwrap_or("?")
                ),
            };
            writeln!(f, "    {:<28} {}: {what}", c.member, c.folder)?;
        }
        for m in &self.pending_creates {
            writeln!(f, "    {m:<28} a create was started and not yet confirmed (the next pass resolves it)")?;
        }
        if self.conflicts.is_empty() {
            write!(f, "  no conflicts recorded")?;
        } else {
            write!(f, "  conflicts:")?;
            for c in &self.conflicts {
                write!(f, "\n    {c}")?;
            }
        }
        Ok(())
    }
}
