//! The records both languages hand over: reports, status, conflicts, progress events, items of
//! a folder, in one shape that every foreign-function layer can carry (counts as `u64`, points
//! in time as [`SystemTime`], durations as [`Duration`], what the service's types compute, such
//! as a group's totals and readable text, computed once here).
//!
//! .NET exposes these types as they are (with the feature `uniffi`, they derive uniffi's records
//! and enums); Python wraps each in a class whose attributes read it.

use std::time::{Duration, SystemTime};

use exchange_sync::Trigger as ServiceTrigger;

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// An error with its context, as reports and events carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ErrorReport {
    /// The error kind in snake case (`not_found`, `throttled`, `mass_delete`, ...).
    pub kind: String,
    /// Whether retrying can help.
    pub retryable: bool,
    /// The full message, with context.
    pub message: String,
    /// The member folder concerned, when known.
    pub member: Option<String>,
    /// The item concerned, when known.
    pub item: Option<String>,
    /// The operation that failed, when known.
    pub operation: Option<String>,
}

impl From<&exchange_sync::ErrorReport> for ErrorReport {
    fn from(e: &exchange_sync::ErrorReport) -> Self {
        ErrorReport {
            kind: e.kind.clone(),
            retryable: e.retryable,
            message: e.message.clone(),
            member: e.member.clone(),
            item: e.item.clone(),
            operation: e.operation.clone(),
        }
    }
}

/// What one pass did in one folder of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct MemberReport {
    /// The member id (`hub` for the hub, `total` for a group's totals).
    pub member: String,
    /// Copies created.
    pub created: u64,
    /// Copies updated (reverts included).
    pub updated: u64,
    /// Copies deleted.
    pub deleted: u64,
    /// Local changes of a one-way member put back.
    pub reverted: u64,
    /// Field conflicts resolved in this folder's changes.
    pub conflicts: u64,
    /// Actions that failed here.
    pub errors: Vec<ErrorReport>,
}

impl From<&exchange_sync::MemberReport> for MemberReport {
    fn from(m: &exchange_sync::MemberReport) -> Self {
        MemberReport {
            member: m.member.clone(),
            created: count(m.created),
            updated: count(m.updated),
            deleted: count(m.deleted),
            reverted: count(m.reverted),
            conflicts: count(m.conflicts),
            errors: m.errors.iter().map(ErrorReport::from).collect(),
        }
    }
}

/// How a group's pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum PassOutcome {
    /// Every action succeeded (possibly there was nothing to do).
    Synced,
    /// The pass ran, but some actions failed; the next pass retries them.
    PartiallyFailed,
    /// The pass could not run (connection, state, configuration).
    Failed,
    /// The mass-delete guard stopped the group; nothing was deleted. An admin must confirm.
    StoppedByMassDeleteGuard,
    /// A dry run: nothing was written.
    Planned,
}

impl PassOutcome {
    /// The outcome in snake case, as Python names it.
    pub fn name(self) -> &'static str {
        match self {
            PassOutcome::Synced => "synced",
            PassOutcome::PartiallyFailed => "partially_failed",
            PassOutcome::Failed => "failed",
            PassOutcome::StoppedByMassDeleteGuard => "stopped_by_mass_delete_guard",
            PassOutcome::Planned => "planned",
        }
    }
}

impl From<exchange_sync::PassOutcome> for PassOutcome {
    fn from(o: exchange_sync::PassOutcome) -> Self {
        match o {
            exchange_sync::PassOutcome::Synced => PassOutcome::Synced,
            exchange_sync::PassOutcome::PartiallyFailed => PassOutcome::PartiallyFailed,
            exchange_sync::PassOutcome::Failed => PassOutcome::Failed,
            exchange_sync::PassOutcome::StoppedByMassDeleteGuard => PassOutcome::StoppedByMassDeleteGuard,
            exchange_sync::PassOutcome::Planned => PassOutcome::Planned,
        }
    }
}

/// One side's value in a conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ConflictSide {
    /// The member id (`hub` for the hub).
    pub member: String,
    /// The value as text; none when the side cleared the field.
    pub value: Option<String>,
}

/// One resolved conflict: a field edited differently on several sides, what was kept and what
/// was not (nobody's edit disappears without a trace).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ConflictEntry {
    /// The group.
    pub group: String,
    /// The entity (the logical item).
    pub entity: String,
    /// The field (`body` and `categories` for those).
    pub field: String,
    /// The value both sides started from.
    pub base: Option<String>,
    /// The value kept.
    pub winner: ConflictSide,
    /// The values not kept.
    pub losers: Vec<ConflictSide>,
    /// The policy that decided.
    pub policy: String,
    /// When.
    pub recorded_at: SystemTime,
    /// The entry as one readable line.
    pub text: String,
}

impl From<&exchange_sync::ConflictEntry> for ConflictEntry {
    fn from(c: &exchange_sync::ConflictEntry) -> Self {
        let side = |s: &exchange_sync::conflict_log::SideEntry| ConflictSide {
            member: s.member.clone(),
            value: s.value.clone(),
        };
        ConflictEntry {
            group: c.group.clone(),
            entity: c.entity.clone(),
            field: c.field.clone(),
            base: c.base.clone(),
            winner: side(&c.winner),
            losers: c.losers.iter().map(side).collect(),
            policy: c.policy.clone(),
            recorded_at: c.recorded_at.into(),
            text: c.to_string(),
        }
    }
}

/// What one pass did in one group.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct GroupReport {
    /// The group id.
    pub group: String,
    /// How the pass ended.
    pub outcome: PassOutcome,
    /// Per folder (hub first), only folders with writes, conflicts or errors.
    pub members: Vec<MemberReport>,
    /// Totals over every folder (`member` is `total`).
    pub totals: MemberReport,
    /// Conflicts resolved in this pass.
    pub conflicts: Vec<ConflictEntry>,
    /// Errors that stopped the pass (per-action errors are in `members`).
    pub errors: Vec<ErrorReport>,
    /// When the pass started.
    pub started_at: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// How many attempts it took.
    pub attempts: u32,
    /// The dry run's plan as text, one action per line (`Planned` outcome).
    pub plan: Option<String>,
    /// The report as one readable line.
    pub text: String,
}

impl GroupReport {
    /// The first error of the pass: one that stopped it, else the first failed action.
    pub fn first_error(&self) -> Option<&ErrorReport> {
        self.errors.first().or_else(|| self.members.iter().flat_map(|m| m.errors.first()).next())
    }
}

impl From<&exchange_sync::GroupReport> for GroupReport {
    fn from(g: &exchange_sync::GroupReport) -> Self {
        GroupReport {
            group: g.group.clone(),
            outcome: g.outcome.into(),
            members: g.members.iter().map(MemberReport::from).collect(),
            totals: MemberReport::from(&g.totals()),
            conflicts: g.conflicts.iter().map(ConflictEntry::from).collect(),
            errors: g.errors.iter().map(ErrorReport::from).collect(),
            started_at: g.started_at.into(),
            duration: g.duration,
            attempts: g.attempts,
            plan: g.plan.clone(),
            text: g.to_string(),
        }
    }
}

/// What one run (each selected group once) did.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RunReport {
    /// Per group.
    pub groups: Vec<GroupReport>,
    /// When the run started.
    pub started_at: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// Whether every group synced (or planned) without error.
    pub is_clean: bool,
    /// Whether the mass-delete guard stopped a group.
    pub mass_delete_stopped: bool,
}

impl RunReport {
    /// The first error of the first group that has one, with that group's id: what
    /// `raise_for_errors` (Python) and `ThrowIfFailed` (.NET) raise.
    pub fn first_error(&self) -> Option<crate::error::ErrorInfo> {
        self.groups.iter().find_map(|g| g.first_error().map(|e| crate::error::ErrorInfo::of_report(e, Some(&g.group))))
    }
}

impl From<&exchange_sync::RunReport> for RunReport {
    fn from(r: &exchange_sync::RunReport) -> Self {
        RunReport {
            groups: r.groups.iter().map(GroupReport::from).collect(),
            started_at: r.started_at.into(),
            duration: r.duration,
            is_clean: r.is_clean(),
            mass_delete_stopped: r.mass_delete_stopped(),
        }
    }
}

/// The status of one folder of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct MemberStatus {
    /// The member id (`hub` for the hub).
    pub member: String,
    /// The folder, as configured.
    pub folder: String,
    /// `hub`, `one_way` or `two_way`.
    pub direction: String,
    /// Whether the folder's initial sync completed.
    pub initialized: bool,
    /// When the folder last completed a sync.
    pub last_sync: Option<SystemTime>,
    /// The last error that stopped the folder's sync.
    pub last_error: Option<String>,
    /// How many copies of the group's items the folder holds.
    pub copies: u64,
    /// Creates started and not yet confirmed.
    pub pending_creates: u64,
}

impl From<&exchange_sync::MemberStatusReport> for MemberStatus {
    fn from(m: &exchange_sync::MemberStatusReport) -> Self {
        MemberStatus {
            member: m.member.clone(),
            folder: m.folder.clone(),
            direction: m.direction.clone(),
            initialized: m.initialized,
            last_sync: m.last_sync.map(SystemTime::from),
            last_error: m.last_error.clone(),
            copies: count(m.copies),
            pending_creates: count(m.pending_creates),
        }
    }
}

/// The status of one group.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct GroupStatus {
    /// The group id.
    pub group: String,
    /// The hub first, then the members.
    pub members: Vec<MemberStatus>,
    /// Whether the mass-delete guard stopped the group (an admin must confirm).
    pub stopped_by_mass_delete_guard: bool,
    /// The last pass's report, when this process ran one.
    pub last_report: Option<GroupReport>,
}

impl From<&exchange_sync::GroupStatus> for GroupStatus {
    fn from(s: &exchange_sync::GroupStatus) -> Self {
        GroupStatus {
            group: s.group.clone(),
            members: s.members.iter().map(MemberStatus::from).collect(),
            stopped_by_mass_delete_guard: s.stopped_by_mass_delete_guard,
            last_report: s.last_report.as_ref().map(GroupReport::from),
        }
    }
}

/// Why a pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum Trigger {
    /// The first pass after start.
    Start,
    /// A change notification from a folder.
    Notification,
    /// The polling interval elapsed.
    Poll,
    /// The periodic safety re-sync.
    Resync,
    /// Group membership changed.
    Membership,
    /// A retry after a retryable failure.
    Retry,
    /// Asked for explicitly (run once, plan).
    Manual,
    /// An admin's request posted through the state (the CLI or the status page).
    Request,
}

impl Trigger {
    /// The trigger in snake case, as Python names it.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Notification => "notification",
            Trigger::Poll => "poll",
            Trigger::Resync => "resync",
            Trigger::Membership => "membership",
            Trigger::Retry => "retry",
            Trigger::Manual => "manual",
            Trigger::Request => "request",
        }
    }
}

impl From<ServiceTrigger> for Trigger {
    fn from(t: ServiceTrigger) -> Self {
        match t {
            ServiceTrigger::Start => Trigger::Start,
            ServiceTrigger::Notification => Trigger::Notification,
            ServiceTrigger::Poll => Trigger::Poll,
            ServiceTrigger::Resync => Trigger::Resync,
            ServiceTrigger::Membership => Trigger::Membership,
            ServiceTrigger::Retry => Trigger::Retry,
            ServiceTrigger::Manual => Trigger::Manual,
            ServiceTrigger::Request => Trigger::Request,
        }
    }
}

/// One progress event of a service, or the news that a slow consumer missed some.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum ProgressEvent {
    /// The real-time service started with these groups.
    ServiceStarted {
        /// The group ids.
        groups: Vec<String>,
    },
    /// A pass of a group started.
    PassStarted {
        /// The group.
        group: String,
        /// Why.
        trigger: Trigger,
    },
    /// A pass planned its writes (before executing them).
    Planned {
        /// The group.
        group: String,
        /// How many server writes the plan holds.
        actions: u64,
        /// How many conflicts it resolved.
        conflicts: u64,
    },
    /// A pass wrote a batch: `done` of the plan's `total` server writes are finished.
    Written {
        /// The group.
        group: String,
        /// Writes finished so far in this pass.
        done: u64,
        /// Writes the pass planned.
        total: u64,
    },
    /// A pass finished (see the report's outcome).
    PassFinished {
        /// The report.
        report: GroupReport,
    },
    /// A pass failed with a retryable error and runs again after a delay.
    Retrying {
        /// The group.
        group: String,
        /// The error.
        error: ErrorReport,
        /// The attempt that failed (1-based).
        attempt: u32,
        /// The delay before the next attempt.
        retry_in: Duration,
    },
    /// A member joined a group (from a distribution group).
    MemberJoined {
        /// The group.
        group: String,
        /// The member.
        member: String,
    },
    /// A member left a group.
    MemberLeft {
        /// The group.
        group: String,
        /// The member.
        member: String,
        /// Whether the group's copies were removed from the member's folder.
        copies_removed: bool,
    },
    /// The real-time service stopped.
    ServiceStopped,
    /// The consumer fell behind and missed events.
    Lagged {
        /// How many.
        missed: u64,
    },
}

impl ProgressEvent {
    /// The group the event concerns, if any.
    pub fn group(&self) -> Option<&str> {
        match self {
            ProgressEvent::PassStarted { group, .. }
            | ProgressEvent::Planned { group, .. }
            | ProgressEvent::Written { group, .. }
            | ProgressEvent::Retrying { group, .. }
            | ProgressEvent::MemberJoined { group, .. }
            | ProgressEvent::MemberLeft { group, .. } => Some(group),
            ProgressEvent::PassFinished { report } => Some(&report.group),
            ProgressEvent::ServiceStarted { .. } | ProgressEvent::ServiceStopped | ProgressEvent::Lagged { .. } => None,
        }
    }
}

impl From<&exchange_sync::ProgressEvent> for ProgressEvent {
    fn from(e: &exchange_sync::ProgressEvent) -> Self {
        use exchange_sync::ProgressEvent as E;
        match e {
            E::ServiceStarted { groups } => ProgressEvent::ServiceStarted { groups: groups.clone() },
            E::PassStarted { group, trigger } => {
                ProgressEvent::PassStarted { group: group.clone(), trigger: (*trigger).into() }
            }
            E::Planned { group, actions, conflicts } => {
                ProgressEvent::Planned { group: group.clone(), actions: count(*actions), conflicts: count(*conflicts) }
            }
            E::Written { group, done, total } => {
                ProgressEvent::Written { group: group.clone(), done: count(*done), total: count(*total) }
            }
            E::PassFinished { report } => ProgressEvent::PassFinished { report: GroupReport::from(report) },
            E::Retrying { group, error, attempt, retry_in } => ProgressEvent::Retrying {
                group: group.clone(),
                error: ErrorReport::from(error),
                attempt: *attempt,
                retry_in: *retry_in,
            },
            E::MemberJoined { group, member } => {
                ProgressEvent::MemberJoined { group: group.clone(), member: member.clone() }
            }
            E::MemberLeft { group, member, copies_removed } => ProgressEvent::MemberLeft {
                group: group.clone(),
                member: member.clone(),
                copies_removed: *copies_removed,
            },
            E::ServiceStopped => ProgressEvent::ServiceStopped,
        }
    }
}

/// A child folder, as a folder lists its subfolders.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct FolderInfo {
    /// The folder's id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Its class (`IPF.Contact`, ...), when the server said.
    pub folder_class: Option<String>,
    /// How many items it holds, when the server said.
    pub total_count: Option<u32>,
    /// How many subfolders it has, when the server said.
    pub child_folder_count: Option<u32>,
}

impl From<exchange_sync::FolderSummary> for FolderInfo {
    fn from(f: exchange_sync::FolderSummary) -> Self {
        FolderInfo {
            id: f.id,
            name: f.name,
            folder_class: f.class,
            total_count: f.total_count,
            child_folder_count: f.child_folder_count,
        }
    }
}
