//! Per-mailbox faults, and the record of every back-off the emulator asked for.
//!
//! Exchange charges throttling to the mailbox a request acts on and tells that mailbox to back
//! off: ErrorServerBusy with `BackOffMilliseconds` (a SOAP fault, or a response message of an
//! HTTP 200 answer), or HTTP 503 with `Retry-After`. A request to the mailbox that arrives before
//! the back-off has ended is one the server asked not to get. The ledger keeps, per mailbox,
//! when the last back-off it was told ends, and counts the requests that arrive inside one
//! ([`crate::RequestStats::inside_back_off`]): a client that honours back-offs sends none.
//!
//! The mailbox of a request is the one it acts on, as the client's own throttling state is keyed:
//! the impersonated mailbox, else the public folder mailbox of `X-PublicFolderMailbox`, else the
//! `X-AnchorMailbox`, else the login.
//!
//! It also holds the per-mailbox fault knobs ([`crate::RunningEmulator::throttle_mailbox`],
//! [`crate::RunningEmulator::set_mailbox_access`]) and, when
//! [`crate::EmulatorConfig::request_log`] allows it, a bounded log of the requests
//! ([`LoggedRequest`]) for benchmarks to take apart.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How a throttled mailbox is told to back off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackOffAnswer {
    /// HTTP 503 with `Retry-After` (whole seconds, rounded up).
    ServiceUnavailable,
    /// ErrorServerBusy as a SOAP fault (HTTP 500) with `BackOffMilliseconds`.
    ServerBusy,
    /// HTTP 200 with one ErrorServerBusy response message carrying `BackOffMilliseconds`.
    ServerBusyInMessage,
}

/// A busy window of one mailbox (see [`crate::RunningEmulator::throttle_mailbox`]): the next
/// request to it is answered `answer` with `back_off`, and so is every request to it until that
/// back-off has ended (with what is left of it); then the mailbox is served again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxThrottle {
    /// The kind of answer.
    pub answer: BackOffAnswer,
    /// The back-off asked for.
    pub back_off: Duration,
}

/// Whether requests may act on a mailbox through impersonation (see
/// [`crate::RunningEmulator::set_mailbox_access`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MailboxAccess {
    /// As the tenant says (the default).
    #[default]
    Granted,
    /// ErrorImpersonateUserDenied: the mailbox is outside the impersonating account's management
    /// scope.
    ImpersonationDenied,
    /// ErrorNonExistentMailbox: the mailbox was removed or disabled.
    NoMailbox,
}

/// One request, as the log keeps it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// When it arrived (after its body was read).
    pub at: Instant,
    /// The mailbox it acts on (lower case; see the module documentation).
    pub mailbox: String,
    /// The EWS operation.
    pub operation: String,
    /// A hash of the request body: a request sent again unchanged has the same one.
    pub fingerprint: u64,
    /// How it was answered: the response code (`NoError`, the first error of a batch, a fault
    /// code), `HTTP 503`, or `dropped`.
    pub code: String,
    /// The back-off the answer asked for, if any.
    pub back_off: Option<Duration>,
    /// Whether it arrived inside a back-off told to its mailbox before.
    pub inside_back_off: bool,
}

/// What the ledger needs to know of an answer (carried as an HTTP response extension from
/// where the answer is made to where it is recorded).
#[derive(Debug, Clone)]
pub(crate) struct AnswerNote {
    /// The code to log.
    pub code: String,
    /// The back-off the answer asked for.
    pub back_off: Option<Duration>,
}

/// A request on its way through the server.
#[derive(Debug)]
pub(crate) struct Arrival {
    at: Instant,
    mailbox: String,
    operation: String,
    fingerprint: u64,
    inside: bool,
}

impl Arrival {
    /// The mailbox the request acts on.
    pub(crate) fn mailbox(&self) -> &str {
        &self.mailbox
    }
}

#[derive(Debug)]
struct Throttling {
    throttle: MailboxThrottle,
    /// When the window ends; `None` until the first request to the mailbox is answered.
    until: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    /// When the last back-off told to each mailbox ends.
    windows: HashMap<String, Instant>,
    throttles: HashMap<String, Throttling>,
    access: HashMap<String, MailboxAccess>,
    log: VecDeque<LoggedRequest>,
    told: u64,
    inside: u64,
}

/// Back-off windows per mailbox, per-mailbox faults and the request log.
#[derive(Debug)]
pub(crate) struct Ledger {
    state: Mutex<State>,
    log_cap: usize,
}

/// Windows kept before the ended ones are forgotten.
const MAX_WINDOWS: usize = 10_000;

impl Ledger {
    /// A ledger keeping at most `log_cap` requests in its log (0: no log).
    pub(crate) fn new(log_cap: usize) -> Self {
        Ledger { state: Mutex::new(State::default()), log_cap }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether requests are logged (then answers carry their code).
    pub(crate) fn logging(&self) -> bool {
        self.log_cap > 0
    }

    /// Notes a request to `mailbox`; counts it when it arrives inside a back-off.
    pub(crate) fn arrive(&self, mailbox: &str, operation: &str, body: &[u8]) -> Arrival {
        let at = Instant::now();
        let mailbox = mailbox.to_ascii_lowercase();
        let fingerprint = if self.logging() {
            let mut h = DefaultHasher::new();
            h.write(body);
            h.finish()
        } else {
            0
        };
        let mut s = self.lock();
        let inside = s.windows.get(&mailbox).is_some_and(|end| *end > at);
        if inside {
            s.inside += 1;
            tracing::debug!(mailbox, operation, "request inside the back-off told to its mailbox");
        }
        drop(s);
        Arrival { at, mailbox, operation: operation.to_owned(), fingerprint, inside }
    }

    /// Records how a request was answered: a back-off opens (or extends) its mailbox's window.
    pub(crate) fn answered(&self, arrival: Arrival, note: Option<AnswerNote>) {
        let back_off = note.as_ref().and_then(|n| n.back_off);
        if back_off.is_none() && !self.logging() {
            return;
        }
        let now = Instant::now();
        let mut s = self.lock();
        if let Some(d) = back_off {
            s.told += 1;
            if s.windows.len() >= MAX_WINDOWS {
                s.windows.retain(|_, end| *end > now);
            }
            let end = now + d;
            let slot = s.windows.entry(arrival.mailbox.clone()).or_insert(end);
            if *slot < end {
                *slot = end;
            }
        }
        if self.logging() {
            if s.log.len() >= self.log_cap {
                s.log.pop_front();
            }
            s.log.push_back(LoggedRequest {
                at: arrival.at,
                mailbox: arrival.mailbox,
                operation: arrival.operation,
                fingerprint: arrival.fingerprint,
                code: note.map_or_else(|| "dropped".to_owned(), |n| n.code),
                back_off,
                inside_back_off: arrival.inside,
            });
        }
    }

    /// Starts a busy window for `mailbox` (see [`MailboxThrottle`]).
    pub(crate) fn throttle(&self, mailbox: &str, throttle: MailboxThrottle) {
        self.lock().throttles.insert(mailbox.to_ascii_lowercase(), Throttling { throttle, until: None });
    }

    /// The back-off answer a request must get from its mailbox's busy window, with the back-off
    /// left, or `None` when the mailbox is served.
    pub(crate) fn throttled(&self, arrival: &Arrival) -> Option<(BackOffAnswer, Duration)> {
        let mut s = self.lock();
        let t = s.throttles.get_mut(&arrival.mailbox)?;
        let answer = t.throttle.answer;
        match t.until {
            None => {
                t.until = Some(arrival.at + t.throttle.back_off);
                Some((answer, t.throttle.back_off))
            }
            Some(end) if end > arrival.at => Some((answer, end - arrival.at)),
            Some(_) => {
                s.throttles.remove(&arrival.mailbox);
                None
            }
        }
    }

    /// Sets whether a mailbox may be impersonated.
    pub(crate) fn set_access(&self, mailbox: &str, access: MailboxAccess) {
        let mut s = self.lock();
        match access {
            MailboxAccess::Granted => s.access.remove(&mailbox.to_ascii_lowercase()),
            other => s.access.insert(mailbox.to_ascii_lowercase(), other),
        };
    }

    /// Whether a mailbox may be impersonated.
    pub(crate) fn access(&self, mailbox: &str) -> MailboxAccess {
        let s = self.lock();
        if s.access.is_empty() {
            return MailboxAccess::Granted;
        }
        s.access.get(&mailbox.to_ascii_lowercase()).copied().unwrap_or_default()
    }

    /// (back-off answers given, requests that arrived inside a back-off).
    pub(crate) fn counts(&self) -> (u64, u64) {
        let s = self.lock();
        (s.told, s.inside)
    }

    /// The requests logged so far, oldest first.
    pub(crate) fn log(&self) -> Vec<LoggedRequest> {
        self.lock().log.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(back_off: Option<Duration>) -> Option<AnswerNote> {
        Some(AnswerNote { code: "x".into(), back_off })
    }

    #[test]
    fn requests_inside_a_back_off_are_counted_per_mailbox() {
        let l = Ledger::new(10);
        let a = l.arrive("Alice@x", "GetItem", b"one");
        l.answered(a, note(Some(Duration::from_secs(60))));
        let inside = l.arrive("alice@x", "GetItem", b"one");
        let other = l.arrive("bob@x", "GetItem", b"one");
        assert!(inside.inside && !other.inside);
        l.answered(inside, note(None));
        l.answered(other, note(None));
        assert_eq!(l.counts(), (1, 1));
        let log = l.log();
        assert_eq!(log.len(), 3);
        assert_eq!(log[0].fingerprint, log[1].fingerprint, "the same body, the same fingerprint");
        assert_eq!(log[0].back_off, Some(Duration::from_secs(60)));
        assert!(log[1].inside_back_off && !log[2].inside_back_off);
    }

    #[test]
    fn a_busy_window_starts_at_the_first_request_and_ends() {
        let l = Ledger::new(0);
        l.throttle("alice@x", MailboxThrottle { answer: BackOffAnswer::ServerBusy, back_off: Duration::ZERO });
        let a = l.arrive("alice@x", "GetItem", b"");
        assert_eq!(l.throttled(&a), Some((BackOffAnswer::ServerBusy, Duration::ZERO)));
        let b = l.arrive("alice@x", "GetItem", b"");
        assert_eq!(l.throttled(&b), None, "a window of zero has ended");
        l.throttle("bob@x", MailboxThrottle { answer: BackOffAnswer::ServerBusy, back_off: Duration::from_secs(60) });
        let first = l.arrive("bob@x", "GetItem", b"");
        assert_eq!(l.throttled(&first).map(|t| t.1), Some(Duration::from_secs(60)));
        let again = l.arrive("bob@x", "GetItem", b"");
        let left = l.throttled(&again).map(|t| t.1).unwrap_or_default();
        assert!(left <= Duration::from_secs(60) && left > Duration::from_secs(50), "{left:?}");
        assert!(l.log().is_empty(), "no log without a cap");
    }

    #[test]
    fn access_is_granted_unless_withdrawn() {
        let l = Ledger::new(0);
        assert_eq!(l.access("alice@x"), MailboxAccess::Granted);
        l.set_access("Alice@X", MailboxAccess::NoMailbox);
        assert_eq!(l.access("alice@x"), MailboxAccess::NoMailbox);
        l.set_access("alice@x", MailboxAccess::Granted);
        assert_eq!(l.access("alice@x"), MailboxAccess::Granted);
    }
}
