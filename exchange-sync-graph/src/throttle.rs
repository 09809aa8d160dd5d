//! Per-mailbox throttling state: at most 4 requests in flight to one mailbox (Graph's limit for
//! Outlook resources), and the [`BackOffGate`] that holds every request to a mailbox until the
//! back-off Graph asked for (`Retry-After`) has ended.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Graph's limit of concurrent requests per mailbox and application.
pub const MAILBOX_CONCURRENCY: usize = 4;

/// When requests to a mailbox may be sent again.
#[derive(Debug, Default)]
pub struct BackOffGate {
    until: Mutex<Option<Instant>>,
}

impl BackOffGate {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // A poisoned lock only means another thread panicked while setting an instant.
        self.until.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Closes the gate for `delay` from now, keeping a later end already set; answers the
    /// remaining back-off.
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

/// What a client keeps per mailbox.
#[derive(Debug)]
pub struct MailboxState {
    /// Requests in flight.
    pub slots: Semaphore,
    /// Back-off.
    pub gate: BackOffGate,
}

impl MailboxState {
    /// A state allowing `concurrency` requests at once.
    pub fn new(concurrency: usize) -> Self {
        MailboxState { slots: Semaphore::new(concurrency.max(1)), gate: BackOffGate::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_gate_keeps_the_longest_back_off() {
        let gate = BackOffGate::default();
        assert_eq!(gate.remaining(), None);
        assert_eq!(gate.close_for(Duration::from_secs(10)), Duration::from_secs(10));
        assert_eq!(gate.close_for(Duration::from_secs(2)), Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(gate.remaining(), None);
    }
}
