//! Reports, status, conflicts and progress events as Python objects.
//!
//! Each class wraps a record of `exchange_sync_bindings::records` and reads it: plain attributes
//! (strings, numbers, `datetime` in UTC, lists), durations in seconds as `float`.

use chrono::{DateTime, Utc};
use exchange_sync_bindings::ErrorInfo;
use exchange_sync_bindings::records as rec;
use pyo3::prelude::*;

use crate::class::record_class;
use crate::errors::exception;

record_class! {
    /// An error with its context, as reports and events carry it.
    ErrorReport(rec::ErrorReport) {
        kind: String, retryable: bool, message: String, member: Option<String>, item: Option<String>,
        operation: Option<String>,
    }

    /// The exception this error would raise (`raise report.to_exception()`).
    fn to_exception(&self, py: Python<'_>) -> PyObject {
        exception(py, ErrorInfo::of_report(&self.0, None)).into_value(py).into_any()
    }

    fn __str__(&self) -> String {
        self.0.message.clone()
    }

    fn __repr__(&self) -> String {
        format!("<ErrorReport {}: {}>", self.0.kind, self.0.message)
    }
}

record_class! {
    /// What one pass did in one folder of a group.
    MemberReport(rec::MemberReport) {
        member: String, created: u64, updated: u64, deleted: u64, reverted: u64, conflicts: u64,
        errors: Vec<ErrorReport>,
    }

    fn __repr__(&self) -> String {
        let m = &self.0;
        format!(
            "<MemberReport {}: {} created, {} updated ({} reverted), {} deleted, {} conflicts, {} errors>",
            m.member, m.created, m.updated, m.reverted, m.deleted, m.conflicts, m.errors.len()
        )
    }
}

record_class! {
    /// One side's value in a conflict.
    SideEntry(rec::ConflictSide) { member: String, value: Option<String> }

    fn __repr__(&self) -> String {
        format!("<SideEntry {}={:?}>", self.0.member, self.0.value)
    }
}

record_class! {
    /// One resolved conflict: a field edited differently on several sides, what was kept and
    /// what was not (nobody's edit disappears without a trace).
    ConflictEntry(rec::ConflictEntry) {
        group: String, entity: String, field: String, base: Option<String>, losers: Vec<SideEntry>,
        policy: String, recorded_at: DateTime<Utc>, text: String,
    }

    /// The value kept.
    #[getter]
    fn winner(&self) -> SideEntry {
        SideEntry(self.0.winner.clone())
    }

    fn __str__(&self) -> String {
        self.0.text.clone()
    }

    fn __repr__(&self) -> String {
        format!("<ConflictEntry {}>", self.0.text)
    }
}

record_class! {
    /// What one pass did in one group. `outcome` is `synced`, `partially_failed`, `failed`,
    /// `stopped_by_mass_delete_guard` or `planned` (a dry run).
    GroupReport(rec::GroupReport) {
        group: String, members: Vec<MemberReport>, conflicts: Vec<ConflictEntry>, errors: Vec<ErrorReport>,
        started_at: DateTime<Utc>, duration: f64, attempts: u32, plan: Option<String>, text: String,
    }

    /// How the pass ended.
    #[getter]
    fn outcome(&self) -> &'static str {
        self.0.outcome.name()
    }

    /// Totals over every member (`member` is `"total"`).
    fn totals(&self) -> MemberReport {
        MemberReport(self.0.totals.clone())
    }

    /// The member report of `member`, if it wrote anything or had errors.
    fn member(&self, member: &str) -> Option<MemberReport> {
        self.0.members.iter().find(|m| m.member == member).cloned().map(MemberReport)
    }

    fn __str__(&self) -> String {
        self.0.text.clone()
    }

    fn __repr__(&self) -> String {
        format!("<GroupReport {}>", self.0.text)
    }
}

record_class! {
    /// What one run (each selected group once) did.
    RunReport(rec::RunReport) { groups: Vec<GroupReport>, started_at: DateTime<Utc>, duration: f64 }

    /// Whether every group synced (or planned) without error.
    fn is_clean(&self) -> bool {
        self.0.is_clean
    }

    /// Whether the mass-delete guard stopped a group.
    fn mass_delete_stopped(&self) -> bool {
        self.0.mass_delete_stopped
    }

    /// The report of one group.
    fn group(&self, group: &str) -> Option<GroupReport> {
        self.0.groups.iter().find(|g| g.group == group).cloned().map(GroupReport)
    }

    /// Raises the exception of the first error that stopped a group (`MassDeleteError`,
    /// `TransientError`, ...), or of the first failed action; does nothing for a clean run.
    fn raise_for_errors(&self, py: Python<'_>) -> PyResult<()> {
        match self.0.first_error() {
            Some(e) => Err(exception(py, e)),
            None => Ok(()),
        }
    }

    fn __str__(&self) -> String {
        self.0.groups.iter().map(|g| g.text.clone()).collect::<Vec<_>>().join("\n")
    }

    fn __repr__(&self) -> String {
        format!("<RunReport groups={} duration={:.3}s>", self.0.groups.len(), self.0.duration.as_secs_f64())
    }
}

record_class! {
    /// The status of one folder of a group (`direction`: `hub`, `one_way` or `two_way`).
    MemberStatus(rec::MemberStatus) {
        member: String, folder: String, direction: String, initialized: bool, last_sync: Option<DateTime<Utc>>,
        last_error: Option<String>, copies: u64, pending_creates: u64,
    }

    fn __repr__(&self) -> String {
        format!("<MemberStatus {} {} copies={}>", self.0.member, self.0.direction, self.0.copies)
    }
}

record_class! {
    /// The status of one group: the hub first, then the members.
    GroupStatus(rec::GroupStatus) {
        group: String, members: Vec<MemberStatus>, stopped_by_mass_delete_guard: bool,
    }

    /// The last pass's report, when this process ran one.
    #[getter]
    fn last_report(&self) -> Option<GroupReport> {
        self.0.last_report.clone().map(GroupReport)
    }

    fn __repr__(&self) -> String {
        format!("<GroupStatus {} folders={}>", self.0.group, self.0.members.len())
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
    pub kind: &'static str,
    /// The group concerned.
    pub group: Option<String>,
    /// Why a pass started: `start`, `notification`, `poll`, `resync`, `membership`, `retry`,
    /// `manual`, `request`.
    pub trigger: Option<&'static str>,
    /// The groups of a starting service.
    pub groups: Option<Vec<String>>,
    /// A finished pass's report.
    pub report: Option<GroupReport>,
    /// How many writes a plan holds (`written`: the planned total).
    pub actions: Option<u64>,
    /// How many conflicts a plan resolved.
    pub conflicts: Option<u64>,
    /// Writes of the pass done so far.
    pub written: Option<u64>,
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

impl From<rec::ProgressEvent> for ProgressEvent {
    fn from(e: rec::ProgressEvent) -> Self {
        use rec::ProgressEvent as E;
        let base = ProgressEvent { group: e.group().map(str::to_owned), ..ProgressEvent::default() };
        match e {
            E::ServiceStarted { groups } => ProgressEvent { kind: "service_started", groups: Some(groups), ..base },
            E::PassStarted { trigger, .. } => {
                ProgressEvent { kind: "pass_started", trigger: Some(trigger.name()), ..base }
            }
            E::Planned { actions, conflicts, .. } => {
                ProgressEvent { kind: "planned", actions: Some(actions), conflicts: Some(conflicts), ..base }
            }
            E::Written { done, total, .. } => {
                ProgressEvent { kind: "written", written: Some(done), actions: Some(total), ..base }
            }
            E::PassFinished { report } => {
                ProgressEvent { kind: "pass_finished", report: Some(GroupReport(report)), ..base }
            }
            E::Retrying { error, attempt, retry_in, .. } => ProgressEvent {
                kind: "retrying",
                error: Some(ErrorReport(error)),
                attempt: Some(attempt),
                retry_in: Some(retry_in.as_secs_f64()),
                ..base
            },
            E::MemberJoined { member, .. } => ProgressEvent { kind: "member_joined", member: Some(member), ..base },
            E::MemberLeft { member, copies_removed, .. } => ProgressEvent {
                kind: "member_left",
                member: Some(member),
                copies_removed: Some(copies_removed),
                ..base
            },
            E::ServiceStopped => ProgressEvent { kind: "service_stopped", ..base },
            E::Lagged { missed } => ProgressEvent { kind: "lagged", missed: Some(missed), ..base },
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
