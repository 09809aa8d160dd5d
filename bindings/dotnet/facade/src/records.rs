//! Run, group and member reports, status, and the conflict log: the records of
//! `exchange_sync_bindings::records`, exported as they are. Records carry no methods across the
//! FFI, so what the Rust reports compute (totals, whether a run is clean, the readable text)
//! comes as fields.

use std::time::{Duration, SystemTime};

use exchange_sync_bindings::records::{
    ConflictEntry, ConflictSide, ErrorReport, GroupReport, GroupStatus, MemberReport, MemberStatus, PassOutcome,
    RunReport,
};

use crate::errors::{ExchangeSyncError, Result};

/// An error with its context, as reports and events carry it.
#[uniffi::remote(Record)]
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

/// What one pass did in one folder of a group.
#[uniffi::remote(Record)]
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

/// How a group's pass ended.
#[uniffi::remote(Enum)]
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

/// One side's value in a conflict.
#[uniffi::remote(Record)]
pub struct ConflictSide {
    /// The member id (`hub` for the hub).
    pub member: String,
    /// The value as text; `null` when the side cleared the field.
    pub value: Option<String>,
}

/// One resolved conflict: a field edited differently on several sides, what was kept and what
/// was not.
#[uniffi::remote(Record)]
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

/// What one pass did in one group.
#[uniffi::remote(Record)]
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

/// What one run (each selected group once) did.
#[uniffi::remote(Record)]
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

/// Throws the first error of a run as the exception it would be; does nothing for a clean run.
#[uniffi::export]
pub fn throw_if_failed(report: RunReport) -> Result<()> {
    match report.first_error() {
        Some(e) => Err(ExchangeSyncError::from(e)),
        None => Ok(()),
    }
}

/// The status of one folder of a group.
#[uniffi::remote(Record)]
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
#[uniffi::remote(Record)]
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
