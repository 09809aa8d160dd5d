//! Progress events: what the service is doing, as it does it.
//!
//! The service publishes events on a `tokio::sync::broadcast` channel
//! ([`crate::SyncService::subscribe`]); the CLI draws progress from them, the bindings forward
//! them to Python callbacks / async iterators and to .NET callback interfaces. Events are owned,
//! plain data; a slow subscriber misses old events (it is told how many) rather than slowing the
//! service down.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::report::{ErrorReport, GroupReport};

/// Why a pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The first pass after start (initial sync of new folders, catch-up of the others).
    Start,
    /// A change notification from a folder.
    Notification,
    /// The polling interval elapsed.
    Poll,
    /// The periodic safety re-sync.
    Resync,
    /// Group membership changed (a member joined or left).
    Membership,
    /// A retry after a retryable failure, a follow-up after users' edits raced with a pass, or
    /// the end of a server's back-off.
    Retry,
    /// Asked for explicitly (`run_once`, the CLI).
    Manual,
    /// An admin's request posted through the state (`exchange-sync confirm`, `exchange-sync
    /// resync`), picked up by the running service.
    Request,
}

/// One progress event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// The service started with these groups.
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
        actions: usize,
        /// How many conflicts it resolved.
        conflicts: usize,
    },
    /// Writes of a pass done so far (sent after each batch), out of the plan's total: what progress
    /// bars of long initial syncs show.
    Written {
        /// The group.
        group: String,
        /// Items written (or failed) so far in this pass.
        done: usize,
        /// The writes the pass planned.
        total: usize,
    },
    /// A pass finished (successfully or not: see the report's outcome).
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
        /// The delay before the next attempt (`retry_in_ms` in JSON).
        #[serde(rename = "retry_in_ms", serialize_with = "millis")]
        retry_in: Duration,
    },
    /// A member joined a group (from a distribution group); its initial sync follows.
    MemberJoined {
        /// The group.
        group: String,
        /// The member.
        member: String,
    },
    /// A member left a group; its copies were removed or kept per the group's leave policy.
    MemberLeft {
        /// The group.
        group: String,
        /// The member.
        member: String,
        /// Whether the group's copies were removed from the member's folder.
        copies_removed: bool,
    },
    /// The service stopped.
    ServiceStopped,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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
            ProgressEvent::ServiceStarted { .. } | ProgressEvent::ServiceStopped => None,
        }
    }
}
