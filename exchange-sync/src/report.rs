//! Structured results: per run, per group and per member.
//!
//! Reports are owned, plain records (strings, numbers, durations) so that the CLI prints them,
//! `serde` writes them as JSON, and the Python and .NET bindings hand them over without wrapping
//! engine types.

use std::time::Duration;

use chrono::{DateTime, Utc};
use exchange_sync_core::{ErrorKind, Plan, Reason};
use serde::{Deserialize, Serialize};

use crate::conflict_log::ConflictEntry;
use crate::names::PlannedAction;

/// An error's message with the causes its text does not already say (SQLite's reason behind a
/// state error, the TLS library's behind an untrusted certificate), each once.
pub fn message_with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// An error with its context, as reports and events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The item concerned as a person names it (`contact "Anna Berg" <anna.berg@contoso.test>`),
    /// when known.
    #[serde(default)]
    pub item_name: Option<String>,
    /// What to do about it, when there is something an admin can do (the setting to check, the
    /// right to grant, the command to run).
    #[serde(default)]
    pub hint: Option<String>,
}

/// The snake-case name of an error kind.
pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "not_found",
        ErrorKind::PreconditionFailed => "precondition_failed",
        ErrorKind::Throttled => "throttled",
        ErrorKind::InvalidSyncToken => "invalid_sync_token",
        ErrorKind::Auth => "auth",
        ErrorKind::Unreachable => "unreachable",
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
            exchange_sync_core::Error::MassDelete { member, .. }
            | exchange_sync_core::Error::Vanished { member, .. } => Some(member.to_string()),
            _ => context.and_then(|c| c.member.as_ref().map(ToString::to_string)),
        };
        ErrorReport {
            kind: kind_name(error.kind()).to_owned(),
            retryable: error.is_retryable(),
            message: message_with_causes(error),
            member,
            item: context.and_then(|c| c.item.as_ref().map(ToString::to_string)),
            operation: context.and_then(|c| c.operation.map(str::to_owned)),
            item_name: None,
            hint: None,
        }
    }

    /// A report of a service error.
    pub fn from_service(error: &crate::error::Error) -> Self {
        match error {
            crate::error::Error::Sync(e) => Self::from_core(e),
            other => ErrorReport {
                kind: kind_name(other.kind()).to_owned(),
                retryable: other.is_retryable(),
                message: message_with_causes(other),
                member: None,
                item: None,
                operation: None,
                item_name: None,
                hint: None,
            },
        }
    }

    /// The message, with the hint on a line of its own when there is one.
    pub fn with_hint(&self) -> String {
        match &self.hint {
            Some(hint) => format!("{}\n    hint: {hint}", self.message),
            None => self.message.clone(),
        }
    }
}

/// What one pass did in one folder of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReport {
    /// The member id (`hub` for the hub).
    pub member: String,
    /// The folder as configured (`alice@contoso.test/contacts/Company Contacts`, `public folder
    /// Company Contacts`), when known.
    #[serde(default)]
    pub folder: Option<String>,
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
    /// Writes that raced with a user's edit or deletion of the same copy (the user was first):
    /// not errors; the next pass re-reads those copies.
    pub races: usize,
    /// Copies edited by their user in the instant they were deleted, and put back: the edit
    /// wins, and the next pass spreads it.
    pub restored: usize,
    /// Writes not sent because the folder's server asked to back off; the pass after the
    /// back-off sends them.
    pub deferred: usize,
    /// Until when the folder is parked at its server's request (no request goes to it before).
    pub parked_until: Option<DateTime<Utc>>,
    /// Why the folder was left out of the pass (it could not be opened or observed, it is parked,
    /// it is being re-homed, or every copy vanished), when it was.
    pub left_out: Option<String>,
    /// Actions that failed here, and the error that left the folder out.
    pub errors: Vec<ErrorReport>,
}

impl MemberReport {
    /// Whether anything was written.
    pub fn wrote_anything(&self) -> bool {
        self.created + self.updated + self.deleted + self.restored > 0
    }

    /// Whether there is anything to say about the folder beyond its writes.
    fn noteworthy(&self) -> bool {
        self.conflicts > 0 || self.races > 0 || self.deferred > 0 || self.left_out.is_some() || !self.errors.is_empty()
    }
}

/// How a group's pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// Why the mass-delete guard stopped a group (or holds a folder whose every copy vanished), and
/// what confirming would delete: an admin confirms knowing what goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardStop {
    /// The folder that would lose the items, as configured.
    pub folder: String,
    /// Its member id (`hub` for the hub).
    pub member: String,
    /// How many of its copies would be deleted.
    pub would_delete: usize,
    /// How many copies of the group it holds.
    pub total: usize,
    /// The most deletions the guard lets through without a confirmation.
    pub limit: usize,
    /// Where the deletions come from, in words (`the hub (public folder Company Contacts)
    /// deleted them`, `every copy in ... vanished at once`).
    pub origin: String,
    /// What confirming would delete, in every folder (the first [`GuardStop::LISTED`]).
    pub deletions: Vec<PlannedAction>,
    /// How many deletions confirming would carry out in all.
    pub deletions_total: usize,
    /// The commands that confirm.
    pub confirm: String,
    /// Whether every copy the group knew in the folder vanished at once (rather than a share
    /// beyond the guard's limit being deleted).
    #[serde(default)]
    pub vanished: bool,
}

impl GuardStop {
    /// The most deletions a stop lists (the total is said too).
    pub const LISTED: usize = 50;
}

impl GuardStop {
    /// The listed deletions by item, each with the folders it would go from, in order.
    pub fn by_item(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for d in &self.deletions {
            match out.iter_mut().find(|(item, _)| *item == d.item) {
                Some((_, folders)) => folders.push(d.folder.clone()),
                None => out.push((d.item.clone(), vec![d.folder.clone()])),
            }
        }
        out
    }

    /// How many deletions each folder would get, in words (`12 in alice@..., 12 in carol@...`).
    pub fn per_folder(&self) -> String {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for d in &self.deletions {
            match counts.iter_mut().find(|(f, _)| *f == d.folder) {
                Some((_, n)) => *n += 1,
                None => counts.push((d.folder.clone(), 1)),
            }
        }
        let parts: Vec<String> = counts.iter().map(|(f, n)| format!("{n} in {f}")).collect();
        parts.join(", ")
    }

    /// The stop in one sentence: what happened, what it would delete, that nothing was deleted.
    pub fn summary(&self) -> String {
        if self.vanished {
            format!("{}. Nothing was deleted.", self.origin)
        } else {
            format!(
                "{}; carrying that out would delete {} of the {} copies in {} (the guard allows {} without a \
                 confirmation). Nothing was deleted.",
                self.origin, self.would_delete, self.total, self.folder, self.limit
            )
        }
    }
}

impl std::fmt::Display for GuardStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "mass-delete guard: {}", self.summary())?;
        if self.deletions_total > 0 {
            let shown = if self.deletions_total > self.deletions.len() {
                format!(", the first {} listed", self.deletions.len())
            } else {
                String::new()
            };
            writeln!(f, "confirming deletes {} copies ({}{shown}):", self.deletions_total, self.per_folder())?;
            for (item, folders) in self.by_item() {
                writeln!(f, "  - delete {item} from {}", folders.join(", "))?;
            }
        }
        write!(f, "if the deletions are intended, confirm them: {}", self.confirm)
    }
}

/// What one pass did in one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// What the admin should know that is not a write, in words: folders left out and why, users'
    /// own items kept, re-homed folders, folders a dry run would create, departures.
    pub notices: Vec<String>,
    /// Whether another pass should follow soon although nothing failed (users' edits raced with
    /// this pass's writes, or a deleted copy was restored): the service runs one after its
    /// debounce delay.
    pub follow_up: bool,
    /// When the group (its hub) or one of its folders may be sent requests again after its server
    /// asked to back off: the service schedules the next pass then, not earlier.
    pub parked_until: Option<DateTime<Utc>>,
    /// Whether deletions wait for an admin's confirmation: the mass-delete guard stopped the group,
    /// or a folder is held because every copy the group knew there vanished at once.
    pub needs_confirmation: bool,
    /// Why the mass-delete guard stopped the group, and what confirming would delete.
    #[serde(default)]
    pub guard: Option<GuardStop>,
    /// Why the pass ran (`start`, `notification`, `poll`, ...), when a service ran it.
    #[serde(default)]
    pub trigger: Option<crate::event::Trigger>,
    /// When the pass started.
    pub started_at: DateTime<Utc>,
    /// How long it took (`duration_ms` in JSON).
    #[serde(rename = "duration_ms", with = "millis")]
    pub duration: Duration,
    /// How many attempts it took (retries of retryable failures).
    pub attempts: u32,
    /// A dry run's writes (for [`PassOutcome::Planned`]), each named as a person names it.
    #[serde(default)]
    pub planned: Vec<PlannedAction>,
    /// The dry run's plan as text (for [`PassOutcome::Planned`]), one action per line; the same
    /// as [`GroupReport::planned`] and the notices, so JSON carries only those.
    #[serde(skip)]
    pub plan: Option<String>,
}

/// Durations as whole milliseconds (the field names say `_ms`).
pub(crate) mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = <u64 as serde::Deserialize>::deserialize(d)?;
        Ok(Duration::from_millis(ms))
    }
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
            notices: Vec::new(),
            follow_up: false,
            parked_until: None,
            needs_confirmation: false,
            guard: None,
            trigger: None,
            started_at: Utc::now(),
            duration: Duration::ZERO,
            attempts: 1,
            planned: Vec::new(),
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
            t.races += m.races;
            t.restored += m.restored;
            t.deferred += m.deferred;
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

    /// Drops the rows of folders with nothing to report.
    pub(crate) fn keep_noteworthy_members(&mut self) {
        self.members.retain(|m| m.wrote_anything() || m.noteworthy());
    }

    /// Every error of the pass: those that stopped it and those of single folders.
    pub fn all_errors(&self) -> impl Iterator<Item = &ErrorReport> {
        self.errors.iter().chain(self.members.iter().flat_map(|m| m.errors.iter()))
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
        )?;
        // Races and restored copies are no errors: users were editing while the pass wrote.
        if t.races > 0 {
            let writes = if t.races == 1 { "1 write".to_owned() } else { format!("{} writes", t.races) };
            write!(f, "; {writes} raced with users' edits, the next pass re-reads them")?;
        }
        if t.restored > 0 {
            write!(f, "; {} deleted copies were edited as they were deleted and put back (the edit wins)", t.restored)?;
        }
        if t.deferred > 0 {
            write!(f, "; {} writes wait for a server's back-off", t.deferred)?;
        }
        Ok(())
    }
}

/// What one run (every group once) did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Per group.
    pub groups: Vec<GroupReport>,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// How long it took (`duration_ms` in JSON).
    #[serde(rename = "duration_ms", with = "millis")]
    pub duration: Duration,
}

impl RunReport {
    /// Whether every group synced without error.
    pub fn is_clean(&self) -> bool {
        self.groups.iter().all(|g| matches!(g.outcome, PassOutcome::Synced | PassOutcome::Planned))
    }

    /// Every error of every group, with its group.
    pub fn errors(&self) -> impl Iterator<Item = (&str, &ErrorReport)> {
        self.groups.iter().flat_map(|g| g.all_errors().map(move |e| (g.group.as_str(), e)))
    }

    /// Whether the mass-delete guard stopped a group, or a folder is held because every copy
    /// vanished: deletions wait for an admin's confirmation.
    pub fn mass_delete_stopped(&self) -> bool {
        self.groups.iter().any(|g| g.outcome == PassOutcome::StoppedByMassDeleteGuard || g.needs_confirmation)
    }
}
