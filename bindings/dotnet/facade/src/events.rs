//! Progress events, and the callback interface C# implements to receive them.
//!
//! A `ProgressListener` receives the service's events on a runtime thread, one at a time and in
//! order (or on the calling thread, for `RunOnceWithProgress`); a listener must return quickly
//! and must not call blocking methods of the bindings. A listener that falls behind by more than
//! 1024 events gets one `Lagged` event instead of the ones it missed. An exception a listener
//! throws is logged (warning) and does not stop the run.

use std::time::Duration;

use exchange_sync_bindings::events::EventSink;
use exchange_sync_bindings::records::{ErrorReport, GroupReport, ProgressEvent, Trigger};

/// Why a pass runs.
#[uniffi::remote(Enum)]
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
    /// Asked for explicitly (`RunOnce`, `Plan`).
    Manual,
    /// An admin's request posted through the state (the CLI or the status page).
    Request,
}

/// One progress event.
#[uniffi::remote(Enum)]
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
    /// A pass wrote a batch: `done` of the plan's `total` server writes are finished (for
    /// progress bars on long initial syncs).
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
    /// The listener fell behind and missed events.
    Lagged {
        /// How many.
        missed: u64,
    },
}

/// Receives the service's progress events (implemented in C#).
#[uniffi::export(callback_interface)]
pub trait ProgressListener: Send + Sync {
    /// One event. Called on a runtime thread; return quickly, and call only `...Async` methods.
    fn on_event(&self, event: ProgressEvent);
}

/// The pump's sink: the C# listener.
pub struct Listener(pub Box<dyn ProgressListener>);

impl EventSink for Listener {
    fn deliver(&mut self, event: ProgressEvent) {
        // An exception thrown by the C# listener reaches Rust as a panic of the callback: it must
        // not end the run (or the subscription), so it is logged and the run goes on.
        let delivered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.0.on_event(event)));
        if delivered.is_err() {
            tracing::warn!("a progress listener threw an exception; the event was dropped");
        }
    }
}
