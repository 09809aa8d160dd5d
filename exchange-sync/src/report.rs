//! Structured results: per run, per group and per member.
//!
//! Reports are owned, plain records (strings, numbers, durations) so that the CLI prints them,
//! `serde` writes them as JSON, and the Python and .NET bindings hand them over without wrapping
//! engine types.

use std::time::Duration;

use chrono::{DateTime, Utc};
use exchange_sync_core::{ErrorKind, Plan, Reason};
use serde::Serialize;

use crate::conflict_log::ConflictEntry;

/// An error with its context, as reports and events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorReport {
    /// The error class in snake case (`not_found`, `throttled`, `mass_delete`, ...).
    pub kind: String,
    /// Whether retrying can help.
    pub retryable: bool,
    /// The full message, with context (never a secret).
    pub message: String,
    /// The member folder concerned, when known.
    pub member: Option<String>,
    /// The item concerned, when known.
    pub item: Option<String>,
    /// The operation that failed, when known.
    pub operation: Option<String>,
}

/// The snake-case name of an error kind.
pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "not_found",
        ErrorKind::PreconditionFailed => "precondition_failed",
        ErrorKind::Throttled => "throttled",
        ErrorKind::InvalidSyncToken => "invalid_sync_token",
        ErrorKind::Auth => "auth",
        ErrorKind::Transient => "transient",
        ErrorKind::Permanent => "permanent",
        ErrorKind::State => "state",
        ErrorKind::MassDelete => "mass_delete",
        ErrorKind::Config => "config",
    }
}

impl ErrorReport {
    /// A report of a core error.
    pub fn from_core(error: &exchange_sync_core::Error) -> Self {
        let context = error.context();
        let member = match error {
            exchange_sync_core::Error::MassDelete { member, .. } => Some(member.to_string()),
            _ => context.and_then(|c| c.member.as_ref().map(ToString::to_string)),
        };
        ErrorReport {
            kind: kind_name(error.kind()).to_owned(),
            retryable: error.is_retryable(),
            message: error.to_string(),
            member,
            item: context.and_then(|c| c.item.as_ref().map(ToString::to_string)),
            operation: context.and_then(|c| c.operation.map(str::to_owned)),
        }
    }

    /// A report of a service error.
    pub fn from_service(error: &crate::error::Error) -> Self {
        match error {
            crate::error::Error::Sync(e) => Self::from_core(e),
            other => ErrorReport {
                kind: kind_name(other.kind()).to_owned(),
                retryable: other.is_retryable(),
                message: other.to_string(),
                member: None,
                item: None,
                operation: None,
            },
        }
    }
}

/// What one pass did in one folder of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemberReport {
    /// The member id (`hub` for the hub).
    pub member: String,
    /// Copies created.
    pub created: usize,
    /// Copies updated (reverts included).
    pub updated: usize,
    /// Copies deleted.
    pub deleted: usize,
    /// Local changes of a one-way member put back (planned writes among `updated` and `created`).
    pub reverted: usize,
    /// Field conflicts resolved in entities of this folder's changes.
    pub conflicts: usize,
    /// Actions that failed here.
    pub errors: Vec<ErrorReport>,
}

impl MemberReport {
    /// Whether anything was written.
    pub fn wrote_anything(&self) -> bool {
        self.created + self.updated + self.deleted > 0
    }
}

/// How a group's pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PassOutcome {
    /// Every action succeeded (possibly there was nothing to do).
    Synced,
    /// The pass ran, but some actions failed; they are retried by the next pass.
    PartiallyFailed,
    /// The pass could not run (connection, state, configuration).
    Failed,
    /// The mass-delete guard stopped the group; nothing was deleted. An admin must confirm.
    StoppedByMassDeleteGuard,
    /// A dry run: nothing was written.
    Planned,
}

/// What one pass did in one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupReport {
    /// The group id.
    pub group: String,
    /// How the pass ended.
    pub outcome: PassOutcome,
    /// Per folder (hub first), only folders with writes, conflicts or errors.
    pub members: Vec<MemberReport>,
    /// Conflicts resolved in this pass.
    pub conflicts: Vec<ConflictEntry>,
    /// Errors that stopped the pass (per-action errors are in `members`).
    pub errors: Vec<ErrorReport>,
    /// When the pass started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
    /// How many attempts it took (retries of retryable failures).
    pub attempts: u32,
    /// The dry run's plan as text (for [`PassOutcome::Planned`]), one action per line.
    pub plan: Option<String>,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl GroupReport {
    /// An empty report of a pass that starts now.
    pub fn started(group: impl Into<String>) -> Self {
        GroupReport {
            group: group.into(),
            outcome: PassOutcome::Synced,
            members: Vec::new(),
            conflicts: Vec::new(),
            errors: Vec::new(),
            started_at: Utc::now(),
            duration: Duration::ZERO,
            attempts: 1,
            plan: None,
        }
    }

    /// The report of a member, created on first use.
    pub fn member_mut(&mut self, member: &str) -> &mut MemberReport {
        if let Some(i) = self.members.iter().position(|m| m.member == member) {
            return &mut self.members[i];
        }
        self.members.push(MemberReport { member: member.to_owned(), ..MemberReport::default() });
        let last = self.members.len() - 1;
        &mut self.members[last]
    }

    /// Totals over every member.
    pub fn totals(&self) -> MemberReport {
        let mut t = MemberReport { member: "total".into(), ..MemberReport::default() };
        for m in &self.members {
            t.created += m.created;
            t.updated += m.updated;
            t.deleted += m.deleted;
            t.reverted += m.reverted;
            t.conflicts += m.conflicts;
            t.errors.extend(m.errors.iter().cloned());
        }
        t
    }

    /// Counts what a plan would write, per member (a dry run's report).
    pub fn count_plan(&mut self, plan: &Plan) {
        for action in &plan.actions {
            let m = self.member_mut(action.member().as_str());
            match action {
                exchange_sync_core::Action::Create { reason, .. } => {
                    m.created += 1;
                    m.reverted += usize::from(*reason == Reason::Revert);
                }
                exchange_sync_core::Action::Update { reason, .. } => {
                    m.updated += 1;
                    m.reverted += usize::from(*reason == Reason::Revert);
                }
                exchange_sync_core::Action::Delete { .. } => m.deleted += 1,
            }
        }
    }

    /// Whether the pass wrote nothing and found nothing wrong.
    pub fn is_quiet(&self) -> bool {
        self.errors.is_empty()
            && self.conflicts.is_empty()
            && self.members.iter().all(|m| !m.wrote_anything() && m.errors.is_empty())
    }
}

impl std::fmt::Display for GroupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.totals();
        write!(
            f,
            "group {}: {:?} in {} ms: {} created, {} updated ({} reverted), {} deleted, {} conflicts, {} errors",
            self.group,
            self.outcome,
            self.duration.as_millis(),
            t.created,
            t.updated,
            t.reverted,
            t.deleted,
            self.conflicts.len(),
            self.errors.len() + t.errors.len()
        )
    }
}

/// What one run (every group once) did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// Per group.
    pub groups: Vec<GroupReport>,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
}

impl RunReport {
    /// Whether every group synced without error.
    pub fn is_clean(&self) -> bool {
        self.groups.iter().all(|g| matches!(g.outcome, PassOutcome::Synced | PassOutcome::Planned))
    }

    /// Whether the mass-delete guard stopped a group.
    pub fn mass_delete_stopped(&self) -> bool {
        self.groups.iter().any(|g| g.outcome == PassOutcome::StoppedByMassDeleteGuard)
    }
}
