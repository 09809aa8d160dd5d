//! Fault injection for the in-memory connector: scheduled failures, throttling, lost responses
//! and simulated crashes.
//!
//! Faults are scheduled per operation ("the 3rd create from now fails with a transient error"),
//! so that a test or a property test can place a failure exactly where it wants one and replay it
//! deterministically.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::error::{Error, ErrorContext, ErrorKind};

/// A connector call, as fault rules name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// [`crate::Connector::changes`].
    Changes,
    /// [`crate::Connector::list`].
    List,
    /// [`crate::Connector::get`].
    Get,
    /// [`crate::Connector::create`].
    Create,
    /// [`crate::Connector::update`].
    Update,
    /// [`crate::Connector::delete`].
    Delete,
    /// [`crate::Connector::find_by_origin`].
    FindByOrigin,
}

impl Operation {
    /// Every operation, for tests that pick one at random.
    pub const ALL: [Operation; 7] = [
        Operation::Changes,
        Operation::List,
        Operation::Get,
        Operation::Create,
        Operation::Update,
        Operation::Delete,
        Operation::FindByOrigin,
    ];

    /// The operation's name, as used in error contexts.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Changes => "changes",
            Operation::List => "list",
            Operation::Get => "get",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::FindByOrigin => "find_by_origin",
        }
    }

    /// Whether the operation writes (create, update, delete).
    pub fn is_write(self) -> bool {
        matches!(self, Operation::Create | Operation::Update | Operation::Delete)
    }
}

/// What happens when a fault fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// The whole call fails with an error of this kind; nothing is applied.
    Fail(ErrorKind),
    /// The whole call is refused with [`Error::Throttled`] carrying this delay; nothing is applied.
    Throttle(Duration),
    /// The call is applied, but the caller gets a transient error instead of the answer (a
    /// network failure after the server did the work).
    LoseResponse,
    /// The item at this position of the batch fails with an error of this kind; its neighbours
    /// are applied normally (a per-item failure, as EWS reports them).
    FailItem {
        /// The position in the batch (ignored when the batch is shorter).
        index: usize,
        /// The error kind of that item.
        kind: ErrorKind,
    },
    /// The process "dies" before the call reaches the server: nothing is applied, the call never
    /// returns and the connector's [`CrashSignal`] fires. A test drops the engine's future when the
    /// signal fires (see [`run_until_crash`]).
    Crash,
    /// The process "dies" after the server applied the call but before the answer arrived: the
    /// write is applied, the call never returns and the [`CrashSignal`] fires.
    CrashAfterWrite,
}

/// A scheduled fault: the `nth` call (1 = the next one) of `operation` (any operation when
/// `None`) fails as `kind` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The operation whose calls are counted; `None` counts every call.
    pub operation: Option<Operation>,
    /// Which matching call fires the fault, counted from the moment it is scheduled (1-based).
    pub nth: u64,
    /// What happens.
    pub kind: FaultKind,
}

impl Fault {
    /// The `nth` call of `operation` fails as `kind` says.
    pub fn on(operation: Operation, nth: u64, kind: FaultKind) -> Self {
        Fault { operation: Some(operation), nth: nth.max(1), kind }
    }

    /// The `nth` call of any operation fails as `kind` says.
    pub fn on_any(nth: u64, kind: FaultKind) -> Self {
        Fault { operation: None, nth: nth.max(1), kind }
    }
}

/// Scheduled faults of one connector, each with the number of matching calls still to go.
#[derive(Debug, Default)]
pub(crate) struct FaultSchedule {
    pending: Vec<Fault>,
}

impl FaultSchedule {
    pub(crate) fn add(&mut self, fault: Fault) {
        self.pending.push(fault);
    }

    pub(crate) fn clear(&mut self) {
        self.pending.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Counts one call of `op` and answers the fault that fires on it, if any (the first one
    /// scheduled wins when several fire on the same call; the others are dropped with it).
    pub(crate) fn on_call(&mut self, op: Operation) -> Option<FaultKind> {
        let mut fired = None;
        self.pending.retain_mut(|fault| {
            if fault.operation.is_some_and(|o| o != op) {
                return true;
            }
            fault.nth -= 1;
            if fault.nth == 0 {
                if fired.is_none() {
                    fired = Some(fault.kind.clone());
                }
                false
            } else {
                true
            }
        });
        fired
    }
}

/// An error of the given kind, as a server would report it.
pub fn error_of_kind(kind: ErrorKind, context: ErrorContext) -> Error {
    let context = Box::new(context);
    match kind {
        ErrorKind::NotFound => Error::NotFound { context },
        ErrorKind::PreconditionFailed => Error::PreconditionFailed { context },
        ErrorKind::Throttled => Error::Throttled { retry_after: None, exhausted: false, context },
        ErrorKind::InvalidSyncToken => Error::InvalidSyncToken { context },
        ErrorKind::Auth => Error::Auth { message: "injected: access denied".into(), context },
        ErrorKind::Unreachable => {
            Error::Unreachable { message: "injected: connection refused".into(), context, source: None }
        }
        ErrorKind::Transient => {
            Error::Transient { message: "injected: connection reset".into(), exhausted: false, context, source: None }
        }
        ErrorKind::State => Error::State { message: "injected: state failure".into(), source: None },
        ErrorKind::Config => Error::Config { message: "injected: bad configuration".into() },
        ErrorKind::Permanent | ErrorKind::MassDelete => {
            Error::Permanent { message: "injected: request rejected".into(), context, source: None }
        }
    }
}

/// Fires when a connector simulates a crash ([`FaultKind::Crash`], [`FaultKind::CrashAfterWrite`]).
///
/// Share one signal between every connector of a group (`MemoryConnector::with_crash_signal`) and
/// race the engine against [`CrashSignal::fired`]: when it fires, drop the engine's future, which
/// is what a process crash does to in-flight work. State committed so far stays; nothing else runs.
#[derive(Debug, Clone, Default)]
pub struct CrashSignal {
    inner: Arc<CrashInner>,
}

#[derive(Debug, Default)]
struct CrashInner {
    fired: AtomicBool,
    notify: Notify,
}

impl CrashSignal {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the signal.
    pub fn fire(&self) {
        self.inner.fired.store(true, Ordering::SeqCst);
        self.inner.notify.notify_one();
    }

    /// Whether the signal fired since it was created or last reset.
    pub fn has_fired(&self) -> bool {
        self.inner.fired.load(Ordering::SeqCst)
    }

    /// Re-arms the signal after a simulated restart.
    pub fn reset(&self) {
        self.inner.fired.store(false, Ordering::SeqCst);
    }

    /// Completes once the signal has fired.
    pub async fn fired(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.has_fired() {
                return;
            }
            notified.await;
        }
    }
}

/// Runs `work` until it completes or `signal` fires; on a crash the future is dropped mid-flight
/// (as a process crash would stop it) and `None` is answered.
pub async fn run_until_crash<F: std::future::Future>(work: F, signal: &CrashSignal) -> Option<F::Output> {
    tokio::select! {
        biased;
        () = signal.fired() => None,
        out = work => Some(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_call_of_the_right_operation_fires_once() {
        let mut s = FaultSchedule::default();
        s.add(Fault::on(Operation::Create, 2, FaultKind::LoseResponse));
        assert_eq!(s.on_call(Operation::Update), None);
        assert_eq!(s.on_call(Operation::Create), None);
        assert_eq!(s.on_call(Operation::Create), Some(FaultKind::LoseResponse));
        assert_eq!(s.on_call(Operation::Create), None);
        assert!(s.is_empty());
    }

    #[test]
    fn any_operation_counts_every_call() {
        let mut s = FaultSchedule::default();
        s.add(Fault::on_any(3, FaultKind::Fail(ErrorKind::Transient)));
        assert_eq!(s.on_call(Operation::Get), None);
        assert_eq!(s.on_call(Operation::List), None);
        assert_eq!(s.on_call(Operation::Delete), Some(FaultKind::Fail(ErrorKind::Transient)));
    }

    #[test]
    fn errors_have_the_requested_kind() {
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::PreconditionFailed,
            ErrorKind::Throttled,
            ErrorKind::InvalidSyncToken,
            ErrorKind::Auth,
            ErrorKind::Transient,
            ErrorKind::Permanent,
        ] {
            assert_eq!(error_of_kind(kind, ErrorContext::default()).kind(), kind);
        }
    }

    #[tokio::test]
    async fn crash_signal_wakes_a_waiter_even_when_fired_first() {
        let s = CrashSignal::new();
        s.fire();
        assert!(run_until_crash(std::future::pending::<()>(), &s).await.is_none());
        s.reset();
        assert_eq!(run_until_crash(async { 7 }, &s).await, Some(7));
    }
}
