//! Run, group and member reports, status, and the conflict log, as plain records.
//!
//! Records carry no methods across the FFI, so what the Rust reports compute (totals, whether a
//! run is clean, the readable text) is computed here and handed over as fields.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::errors::{ErrorContext, ExchangeSyncError, mailbox_of};

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn time(t: DateTime<Utc>) -> SystemTime {
    SystemTime::from(t)
}

/// An error with its context, as reports and events carry it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ErrorReport {
    /// The error class in snake case (`not_found`, `throttled`, `mass_delete`, ...).
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
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
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
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ConflictSide {
    /// The member id (`hub` for the hub).
    pub member: String,
    /// The value as text; `null` when the side cleared the field.
    pub value: Option<String>,
}

/// One resolved conflict: a field edited differently on several sides, what was kept and what
/// was not.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
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
            recorded_at: time(c.recorded_at),
            text: c.to_string(),
        }
    }
}

/// What one pass did in one group.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
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

impl From<&exchange_sync::GroupReport> for GroupReport {
    fn from(g: &exchange_sync::GroupReport) -> Self {
        GroupReport {
            group: g.group.clone(),
            outcome: g.outcome.into(),
            members: g.members.iter().map(MemberReport::from).collect(),
            totals: MemberReport::from(&g.totals()),
            conflicts: g.conflicts.iter().map(ConflictEntry::from).collect(),
            errors: g.errors.iter().map(ErrorReport::from).collect(),
            started_at: time(g.started_at),
            duration: g.duration,
            attempts: g.attempts,
            plan: g.plan.clone(),
            text: g.to_string(),
        }
    }
}

/// What one run (each selected group once) did.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
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

impl From<&exchange_sync::RunReport> for RunReport {
    fn from(r: &exchange_sync::RunReport) -> Self {
        RunReport {
            groups: r.groups.iter().map(GroupReport::from).collect(),
            started_at: time(r.started_at),
            duration: r.duration,
            is_clean: r.is_clean(),
            mass_delete_stopped: r.mass_delete_stopped(),
        }
    }
}

/// The first error of a run as the exception it would be (`null` when the run is clean);
/// scripts that want failures thrown call `ExchangeSyncFunctions.ThrowIfFailed(report)`.
#[uniffi::export]
pub fn throw_if_failed(report: RunReport) -> Result<(), ExchangeSyncError> {
    for g in &report.groups {
        let first = g.errors.first().or_else(|| g.members.iter().flat_map(|m| m.errors.iter()).next());
        if let Some(e) = first {
            let context = ErrorContext {
                group: Some(g.group.clone()),
                member: e.member.clone(),
                item: e.item.clone(),
                operation: e.operation.clone(),
                mailbox: e.member.as_deref().and_then(mailbox_of),
                ..ErrorContext::default()
            };
            return Err(ExchangeSyncError::of_kind(&e.kind, e.message.clone(), context, None));
        }
    }
    Ok(())
}

/// The status of one folder of a group.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
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

/// The status of one group.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
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
            members: s
                .members
                .iter()
                .map(|m| MemberStatus {
                    member: m.member.clone(),
                    folder: m.folder.clone(),
                    direction: m.direction.clone(),
                    initialized: m.initialized,
                    last_sync: m.last_sync.map(time),
                    last_error: m.last_error.clone(),
                    copies: count(m.copies),
                    pending_creates: count(m.pending_creates),
                })
                .collect(),
            stopped_by_mass_delete_guard: s.stopped_by_mass_delete_guard,
            last_report: s.last_report.as_ref().map(GroupReport::from),
        }
    }
}
