//! Reports, status, conflicts and progress events as Python objects.
//!
//! Each class is an owned, read-only copy of the Rust record of `exchange_sync::report`,
//! `status`, `conflict_log` and `event`: plain attributes (strings, numbers, `datetime`, lists),
//! durations in seconds as `float`.

use chrono::{DateTime, Utc};
use exchange_sync::report::{
    ErrorReport as RustErrorReport, GroupReport as RustGroupReport, MemberReport as RustMemberReport, PassOutcome,
    RunReport as RustRunReport,
};
use exchange_sync::status::{GroupStatus as RustGroupStatus, MemberStatusReport};
use exchange_sync::{ConflictEntry as RustConflictEntry, ProgressEvent as RustProgressEvent, Trigger};
use pyo3::prelude::*;

use crate::errors::{Context, exception};

/// An error with its context, as reports and events carry it.
#[pyclass(module = "exchange_sync", frozen, get_all)]
#[derive(Clone)]
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

#[pymethods]
impl ErrorReport {
    /// The exception this error would raise (`raise report.to_exception()`).
    fn to_exception(&self, py: Python<'_>) -> PyObject {
        let context = Context {
            member: self.member.clone(),
            item: self.item.clone(),
            operation: self.operation.clone(),
            ..Context::default()
        };
        exception(py, &self.kind, self.retryable, &self.message, context).into_value(py).into_any()
    }

    fn __str__(&self) -> String {
        self.message.clone()
    }

    fn __repr__(&self) -> String {
        format!("<ErrorReport {}: {}>", self.kind, self.message)
    }
}

impl From<&RustErrorReport> for ErrorReport {
    fn from(e: &RustErrorReport) -> Self {
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
#[pyclass(module = "exchange_sync", frozen, get_all)]
#[derive(Clone)]
pub struct MemberReport {
    /// The member id (`hub` for the hub, `total` for totals).
    pub member: String,
    /// Copies created.
    pub created: usize,
    /// Copies updated (reverts included).
    pub updated: usize,
    /// Copies deleted.
    pub deleted: usize,
    /// Local changes of a one-way member put back.
    pub reverted: usize,
    /// Field conflicts resolved in entities of this folder's changes.
    pub conflicts: usize,
    /// Actions that failed here.
    pub errors: Vec<ErrorReport>,
}

#[pymethods]
impl MemberReport {
    fn __repr__(&self) -> String {
        format!(
            "<MemberReport {}: {} created, {} updated ({} reverted), {} deleted, {} conflicts, {} errors>",
            self.member,
            self.created,
            self.updated,
            self.reverted,
            self.deleted,
            self.conflicts,
            self.errors.len()
        )
    }
}

impl From<&RustMemberReport> for MemberReport {
    fn from(m: &RustMemberReport) -> Self {
        MemberReport {
            member: m.member.clone(),
            created: m.created,
            updated: m.updated,
            deleted: m.deleted,
            reverted: m.reverted,
            conflicts: m.conflicts,
            errors: m.errors.iter().map(ErrorReport::from).collect(),
        }
    }
}

/// One side's value in a conflict.
#[pyclass(module = "exchange_sync", frozen, get_all)]
#[derive(Clone)]
pub struct SideEntry {
    /// The member id (`hub` for the hub).
    pub member: String,
    /// The value; `None` when the side cleared the field.
    pub value: Option<String>,
}

#[pymethods]
impl SideEntry {
    fn __repr__(&self) -> String {
        format!("<SideEntry {}={:?}>", self.member, self.value)
    }
}

/// One resolved conflict: a field edited differently on several sides, what was kept and what
/// was not (nobody's edit disappears without a trace).
#[pyclass(module = "exchange_sync", frozen, get_all)]
#[derive(Clone)]
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
    pub winner: SideEntry,
    /// The values not kept.
    pub losers: Vec<SideEntry>,
    /// The policy that decided.
    pub policy: String,
    /// When (UTC).
    pub recorded_at: DateTime<Utc>,
    text: String,
}

#[pymethods]
impl ConflictEntry {
    fn __str__(&self) -> String {
        self.text.clone()
    }

    fn __repr__(&self) -> String {
        format!("<ConflictEntry {}>", self.text)
    }
}

impl From<&RustConflictEntry> for ConflictEntry {
    fn from(c: &RustConflictEntry) -> Self {
        let side =
            |s: &exchange_sync::conflict_log::SideEntry| SideEntry { member: s.member.clone(), value: s.value.clone() };
        ConflictEntry {
            group: c.group.clone(),
            entity: c.entity.clone(),
            field: c.field.clone(),
            base: c.base.clone(),
            winner: side(&c.winner),
            losers: c.losers.iter().map(side).collect(),
            policy: c.policy.clone(),
            recorded_at: c.recorded_at,
            text: c.to_string(),
        }
    }
}

fn outcome_name(o: PassOutcome) -> &'static str {
    match o {
        PassOutcome::Synced => "synced",
        PassOutcome::PartiallyFailed => "partially_failed",
        PassOutcome::Failed => "failed",
        PassOutcome::StoppedByMassDeleteGuard => "stopped_by_mass_delete_guard",
        PassOutcome::Planned => "planned",
    }
}

fn trigger_name(t: Trigger) -> &'static str {
    match t {
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

/// What one pass did in one group.
#[pyclass(module = "exchange_sync", frozen, get_all)]
#[derive(Clone)]
pub struct GroupReport {
    /// The group id.
    pub group: String,
    /// How the pass ended: `synced`, `partially_failed`, `failed`,
    /// `stopped_by_mass_delete_guard` or `planned` (a dry run).
    pub outcome: String,
    /// Per folder (hub first), only folders with writes, conflicts or errors.
    pub members: Vec<MemberReport>,
    /// Conflicts resolved in this pass.
    pub conflicts: Vec<ConflictEntry>,
    /// Errors that stopped the pass (per-action errors are in `members`).
    pub errors: Vec<ErrorReport>,
    /// When the pass started (UTC).
    pub started_at: DateTime<Utc>,
    /// How long it took, in seconds.
    pub duration: f64,
    /// How many attempts it took.
    pub attempts: u32,
    /// The dry run's plan as text, one action per line (for `planned`).
    pub plan: Option<String>,
    totals: MemberReport,
    text: String,
}

#[pymethods]
impl GroupReport {
    /// Totals over every member (`member` is `"total"`).
    fn totals(&self) -> MemberReport {
        self.totals.clone()
    }

    /// The member report of `member`, if it wrote anything or had errors.
    fn member(&self, member: &str) -> Option<MemberReport> {
        self.members.iter().find(|m| m.member == member).cloned()
    }

    fn __str__(&self) -> String {
        self.text.clone()
    }

    fn __repr__(&self) -> String {
        format!("<GroupReport {}>", self.text)
    }
}

impl From<&RustGroupReport> for GroupReport {
    fn from(g: &RustGroupReport) -> Self {
        GroupReport {
            group: g.group.clone(),
            outcome: outcome_name(g.outcome).to_owned(),
            members: g.members.iter().map(MemberReport::from).collect(),
            conflicts: g.conflicts.iter().map(ConflictEntry::from).collect(),
            errors: g.errors.iter().map(ErrorReport::from).collect(),
            started_at: g.started_at,
            duration: g.duration.as_secs_f64(),
            attempts: g.attempts,
            plan: g.plan.clone(),
            totals: MemberReport::from(&g.totals()),
            text: g.to_string(),
        }
    }
}

/// What one run (each selected group once) did.
#[pyclass(module = "exchange_sync", frozen, get_all)]
#[derive(Clone)]
pub struct RunReport {
    /// Per group.
    pub groups: Vec<GroupReport>,
    /// When the run started (UTC).
    pub started_at: DateTime<Utc>,
    /// How long it took, in seconds.
    pub duration: f64,
}

#[pymethods]
impl RunReport {
    /// Whether every group synced (or planned) without error.
    fn is_clean(&self) -> bool {
        self.groups.iter().all(|g| g.outcome == "synced" || g.outcome == "planned")
    }

    /// Whether the mass-delete guard stopped a group.
    fn mass_delete_stopped(&self) -> bool {
        self.groups.iter().any(|g| g.outcome == "stopped_by_mass_delete_guard")
    }

    /// The report of one group.
    fn group(&self, group: &str) -> Option<GroupReport> {
        self.groups.iter().find(|g| g.group == group).cloned()
    }

    /// Raises the exception of the first error that stopped a group (`MassDeleteError`,
    /// `TransientError`, ...), or of the first failed action; does nothing for a clean run.
    fn raise_for_errors(&self, py: Python<'_>) -> PyResult<()> {
        for g in &self.groups {
            let first = g.errors.first().or_else(|| g.members.iter().flat_map(|m| m.errors.first()).next());
            if let Some(e) = first {
                let context = Context {
                    group: Some(g.group.clone()),
                    member: e.member.clone(),
                    item: e.item.clone(),
                    operation: e.operation.clone(),
                    ..Context::default()
                };
                return Err(exception(py, &e.kind, e.retryable, &e.message, context));
            }
        }
        Ok(())
    }

    fn __str__(&self) -> String {
        self.groups.iter().map(|g| g.text.clone()).collect::<Vec<_>>().join("\n")
    }

    fn __repr__(&self) -> String {
        format!("<RunReport groups={} duration={:.3}s>", self.groups.len(), self.duration)
    }
}

impl From<&RustRunReport> for RunReport {
    fn from(r: &RustRunReport) -> Self {
        RunReport {
            groups: r.groups.iter().map(GroupReport::from).collect(),
            started_at: r.started_at,
            duration: r.duration.as_secs_f64(),
        }
    }
}

/// The status of one folder of a group.
#[pyclass(module = "exchange_sync", frozen, get_all)]
#[derive(Clone)]
pub struct MemberStatus {
    /// The member id (`hub` for the hub).
    pub member: String,
    /// The folder, as configured.
    pub folder: String,
    /// `hub`, `one_way` or `two_way`.
    pub direction: String,
    /// Whether the folder's initial sync completed.
    pub initialized: bool,
    /// When the folder last completed a sync (UTC).
    pub last_sync: Option<DateTime<Utc>>,
    /// The last error that stopped the folder's sync.
    pub last_error: Option<String>,
    /// How many copies of the group's items the folder holds.
    pub copies: usize,
    /// Creates started and not yet confirmed.
    pub pending_creates: usize,
}

#[pymethods]
impl MemberStatus {
    fn __repr__(&self) -> String {
        format!("<MemberStatus {} {} copies={}>", self.member, self.direction, self.copies)
    }
}

impl From<&MemberStatusReport> for MemberStatus {
    fn from(m: &MemberStatusReport) -> Self {
        MemberStatus {
            member: m.member.clone(),
            folder: m.folder.clone(),
            direction: m.direction.clone(),
            initialized: m.initialized,
            last_sync: m.last_sync,
            last_error: m.last_error.clone(),
            copies: m.copies,
            pending_creates: m.pending_creates,
        }
    }
}

/// The status of one group.
#[pyclass(module = "exchange_sync", frozen, get_all)]
#[derive(Clone)]
pub struct GroupStatus {
    /// The group id.
    pub group: String,
    /// The hub first, then the members.
    pub members: Vec<MemberStatus>,
    /// Whether the mass-delete guard stopped the group.
    pub stopped_by_mass_delete_guard: bool,
    /// The last pass's report, when this process ran one.
    pub last_report: Option<GroupReport>,
}

#[pymethods]
impl GroupStatus {
    fn __repr__(&self) -> String {
        format!("<GroupStatus {} folders={}>", self.group, self.members.len())
    }
}

impl From<&RustGroupStatus> for GroupStatus {
    fn from(g: &RustGroupStatus) -> Self {
        GroupStatus {
            group: g.group.clone(),
            members: g.members.iter().map(MemberStatus::from).collect(),
            stopped_by_mass_delete_guard: g.stopped_by_mass_delete_guard,
            last_report: g.last_report.as_ref().map(GroupReport::from),
        }
    }
}

/// One progress event. `kind` says which; the attributes that do not apply are `None`.
///
/// Kinds: `service_started` (groups), `pass_started` (group, trigger), `planned` (group, actions,
/// conflicts), `written` (group, written, actions: writes done out of the planned total),
/// `pass_finished` (group, report), `retrying` (group, error, attempt, retry_in),
/// `member_joined` (group, member), `member_left` (group, member, copies_removed),
/// `service_stopped`, and `lagged` (missed: how many events a slow consumer missed).
#[pyclass(module = "exchange_sync", frozen, get_all)]
#[derive(Clone, Default)]
pub struct ProgressEvent {
    /// Which event this is.
    pub kind: String,
    /// The group concerned.
    pub group: Option<String>,
    /// Why a pass started: `start`, `notification`, `poll`, `resync`, `membership`, `retry`, `manual`.
    pub trigger: Option<String>,
    /// The groups of a starting service.
    pub groups: Option<Vec<String>>,
    /// A finished pass's report.
    pub report: Option<GroupReport>,
    /// How many writes a plan holds.
    pub actions: Option<usize>,
    /// How many conflicts a plan resolved.
    pub conflicts: Option<usize>,
    /// Writes of the pass done so far (`written`; `actions` then holds the planned total).
    pub written: Option<usize>,
    /// The error of a retried pass.
    pub error: Option<ErrorReport>,
    /// The failed attempt (1-based).
    pub attempt: Option<u32>,
    /// The delay before the next attempt, in seconds.
    pub retry_in: Option<f64>,
    /// The member that joined or left.
    pub member: Option<String>,
    /// Whether a leaver's copies were removed.
    pub copies_removed: Option<bool>,
    /// How many events were missed (`lagged`).
    pub missed: Option<u64>,
}

#[pymethods]
impl ProgressEvent {
    fn __repr__(&self) -> String {
        match &self.group {
            Some(g) => format!("<ProgressEvent {} group={g}>", self.kind),
            None => format!("<ProgressEvent {}>", self.kind),
        }
    }
}

impl ProgressEvent {
    /// The event telling a consumer it missed `missed` events.
    pub fn lagged(missed: u64) -> Self {
        ProgressEvent { kind: "lagged".into(), missed: Some(missed), ..ProgressEvent::default() }
    }
}

impl From<&RustProgressEvent> for ProgressEvent {
    fn from(e: &RustProgressEvent) -> Self {
        let group = e.group().map(str::to_owned);
        let base = ProgressEvent { group, ..ProgressEvent::default() };
        match e {
            RustProgressEvent::ServiceStarted { groups } => {
                ProgressEvent { kind: "service_started".into(), groups: Some(groups.clone()), ..base }
            }
            RustProgressEvent::PassStarted { trigger, .. } => {
                ProgressEvent { kind: "pass_started".into(), trigger: Some(trigger_name(*trigger).into()), ..base }
            }
            RustProgressEvent::Planned { actions, conflicts, .. } => {
                ProgressEvent { kind: "planned".into(), actions: Some(*actions), conflicts: Some(*conflicts), ..base }
            }
            RustProgressEvent::Written { done, total, .. } => {
                ProgressEvent { kind: "written".into(), written: Some(*done), actions: Some(*total), ..base }
            }
            RustProgressEvent::PassFinished { report } => {
                ProgressEvent { kind: "pass_finished".into(), report: Some(GroupReport::from(report)), ..base }
            }
            RustProgressEvent::Retrying { error, attempt, retry_in, .. } => ProgressEvent {
                kind: "retrying".into(),
                error: Some(ErrorReport::from(error)),
                attempt: Some(*attempt),
                retry_in: Some(retry_in.as_secs_f64()),
                ..base
            },
            RustProgressEvent::MemberJoined { member, .. } => {
                ProgressEvent { kind: "member_joined".into(), member: Some(member.clone()), ..base }
            }
            RustProgressEvent::MemberLeft { member, copies_removed, .. } => ProgressEvent {
                kind: "member_left".into(),
                member: Some(member.clone()),
                copies_removed: Some(*copies_removed),
                ..base
            },
            RustProgressEvent::ServiceStopped => ProgressEvent { kind: "service_stopped".into(), ..base },
        }
    }
}

/// Adds the report classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ErrorReport>()?;
    m.add_class::<MemberReport>()?;
    m.add_class::<SideEntry>()?;
    m.add_class::<ConflictEntry>()?;
    m.add_class::<GroupReport>()?;
    m.add_class::<RunReport>()?;
    m.add_class::<MemberStatus>()?;
    m.add_class::<GroupStatus>()?;
    m.add_class::<ProgressEvent>()?;
    Ok(())
}
