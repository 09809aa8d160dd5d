//! Progress events, and the callback interface C# implements to receive them.
//!
//! A `ProgressListener` given to `RunOnce`, `Plan` or `Start` receives every event of the
//! service while the call (or the background run) lasts. Events arrive on a runtime thread, one
//! at a time and in order; a listener must return quickly and must not call blocking methods of
//! the bindings (use the `...Async` ones, or queue the event for another thread). A listener that
//! falls behind by more than 1024 events gets one `Lagged` event instead of the ones it missed.
//! An exception a listener throws is logged (warning) and does not stop the run.

use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use crate::reports::{ErrorReport, GroupReport};

/// Why a pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
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
}

impl From<exchange_sync::Trigger> for Trigger {
    fn from(t: exchange_sync::Trigger) -> Self {
        match t {
            exchange_sync::Trigger::Start => Trigger::Start,
            exchange_sync::Trigger::Notification => Trigger::Notification,
            exchange_sync::Trigger::Poll => Trigger::Poll,
            exchange_sync::Trigger::Resync => Trigger::Resync,
            exchange_sync::Trigger::Membership => Trigger::Membership,
            exchange_sync::Trigger::Retry => Trigger::Retry,
            // An admin's request through the state is a manual pass to .NET callers.
            exchange_sync::Trigger::Manual | exchange_sync::Trigger::Request => Trigger::Manual,
        }
    }
}

/// One progress event.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
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

impl From<&exchange_sync::ProgressEvent> for ProgressEvent {
    fn from(e: &exchange_sync::ProgressEvent) -> Self {
        use exchange_sync::ProgressEvent as E;
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        match e {
            E::ServiceStarted { groups } => ProgressEvent::ServiceStarted { groups: groups.clone() },
            E::PassStarted { group, trigger } => {
                ProgressEvent::PassStarted { group: group.clone(), trigger: (*trigger).into() }
            }
            E::Planned { group, actions, conflicts } => {
                ProgressEvent::Planned { group: group.clone(), actions: n(*actions), conflicts: n(*conflicts) }
            }
            E::Written { group, done, total } => {
                ProgressEvent::Written { group: group.clone(), done: n(*done), total: n(*total) }
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

/// Receives the service's progress events (implemented in C#).
#[uniffi::export(callback_interface)]
pub trait ProgressListener: Send + Sync {
    /// One event. Called on a runtime thread; return quickly, and call only `...Async` methods.
    fn on_event(&self, event: ProgressEvent);
}

/// Delivers the service's events to a listener while a future runs.
pub struct EventPump {
    events: broadcast::Receiver<exchange_sync::ProgressEvent>,
    listener: Option<Box<dyn ProgressListener>>,
}

impl EventPump {
    /// A pump of `events` to `listener` (none: events are dropped).
    pub fn new(
        events: broadcast::Receiver<exchange_sync::ProgressEvent>,
        listener: Option<Box<dyn ProgressListener>>,
    ) -> Self {
        EventPump { events, listener }
    }

    fn deliver(&self, event: ProgressEvent) {
        if let Some(l) = &self.listener {
            // An exception thrown by the C# listener reaches Rust as a panic of the callback:
            // it must not end the run (or the subscription), so it is logged and the run goes on.
            let delivered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l.on_event(event)));
            if delivered.is_err() {
                tracing::warn!("a progress listener threw an exception; the event was dropped");
            }
        }
    }

    /// Runs `future`, delivering events as they come, then those still queued.
    pub async fn pump_until<F: std::future::Future>(&mut self, future: F) -> F::Output {
        tokio::pin!(future);
        let mut open = self.listener.is_some();
        let output = loop {
            tokio::select! {
                output = &mut future => break output,
                event = self.events.recv(), if open => match event {
                    Ok(e) => self.deliver(ProgressEvent::from(&e)),
                    Err(RecvError::Lagged(n)) => self.deliver(ProgressEvent::Lagged { missed: n }),
                    Err(RecvError::Closed) => open = false,
                },
            }
        };
        loop {
            match self.events.try_recv() {
                Ok(e) => self.deliver(ProgressEvent::from(&e)),
                Err(TryRecvError::Lagged(n)) => self.deliver(ProgressEvent::Lagged { missed: n }),
                Err(_) => break,
            }
        }
        output
    }
}
