//! The back-off gate: when requests to one mailbox may be sent again.
//!
//! Servers throttle per mailbox and say for how long (EWS's `BackOffMilliseconds`, Graph's
//! `Retry-After`). Every connector must then hold *every* request to that mailbox, from every
//! clone of its client, until the back-off has ended, or the server extends the back-off and may
//! lock the application out. The rule does not depend on the transport, so the gate lives here and
//! each connector keeps one per mailbox.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// When requests to a mailbox may be sent again: closed for the back-off the server asked for (or
/// the client chose when the server named none), open otherwise.
///
/// Two answers asking for a back-off keep the longer one: a short `Retry-After` arriving after a
/// long one never reopens the gate early.
///
/// ```
/// use std::time::Duration;
/// use exchange_sync_core::BackOffGate;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let gate = BackOffGate::new();
/// assert_eq!(gate.remaining(), None);
/// gate.close_for(Duration::from_secs(30));
/// gate.close_for(Duration::from_secs(5));
/// assert!(gate.remaining().is_some_and(|left| left > Duration::from_secs(5)));
/// # }
/// ```
#[derive(Debug, Default)]
pub struct BackOffGate {
    until: Mutex<Option<Instant>>,
}

impl BackOffGate {
    /// A gate that is open.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Option<Instant>> {
        // A poisoned lock only means another thread panicked while setting an instant.
        self.until.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes the gate for `delay` from now; a later end already set stays. Answers the remaining
    /// back-off.
    pub fn close_for(&self, delay: Duration) -> Duration {
        let now = Instant::now();
        let wanted = now + delay;
        let mut until = self.lock();
        let end = match *until {
            Some(t) if t > wanted => t,
            _ => wanted,
        };
        *until = Some(end);
        end - now
    }

    /// How long the gate stays closed, or `None` when it is open.
    pub fn remaining(&self) -> Option<Duration> {
        let mut until = self.lock();
        let end = (*until)?;
        let now = Instant::now();
        if end <= now {
            *until = None;
            return None;
        }
        Some(end - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_gate_keeps_the_longest_back_off() {
        let gate = BackOffGate::new();
        assert_eq!(gate.remaining(), None);
        assert_eq!(gate.close_for(Duration::from_secs(10)), Duration::from_secs(10));
        assert_eq!(
            gate.close_for(Duration::from_secs(2)),
            Duration::from_secs(10),
            "a shorter one does not shorten it"
        );
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(gate.remaining(), Some(Duration::from_secs(6)));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(gate.remaining(), None);
    }
}
