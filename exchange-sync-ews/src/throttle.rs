//! Per-mailbox throttling state: adaptive concurrency (a semaphore whose size halves when the
//! server says it is busy and grows back by one after a run of successes, AIMD, bounded by
//! EWSMaxConcurrency). The core's `BackOffGate` holds every request to a mailbox until the
//! back-off the server asked for has ended.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Debug)]
struct State {
    limit: usize,
    in_use: usize,
    successes: usize,
}

/// A concurrency limit that adapts to throttling.
#[derive(Debug)]
pub struct AdaptiveLimit {
    max: usize,
    state: Mutex<State>,
    freed: Notify,
}

/// A slot of an [`AdaptiveLimit`], released on drop.
#[derive(Debug)]
pub struct Permit {
    limit: Arc<AdaptiveLimit>,
}

impl AdaptiveLimit {
    /// A limit starting (and capped) at `max` concurrent requests.
    pub fn new(max: usize) -> Arc<Self> {
        let max = max.max(1);
        Arc::new(Self { max, state: Mutex::new(State { limit: max, in_use: 0, successes: 0 }), freed: Notify::new() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked while counting; the counts are still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a slot.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            let notified = self.freed.notified();
            {
                let mut s = self.lock();
                if s.in_use < s.limit {
                    s.in_use += 1;
                    return Permit { limit: Arc::clone(self) };
                }
            }
            notified.await;
        }
    }

    /// The current limit.
    pub fn current(&self) -> usize {
        self.lock().limit
    }

    /// The server said it is busy: halve the limit (at least one).
    pub fn on_busy(&self) {
        let mut s = self.lock();
        s.limit = (s.limit / 2).max(1);
        s.successes = 0;
        tracing::debug!(limit = s.limit, "concurrency reduced after throttling");
    }

    /// A request succeeded: after `limit` successes in a row, allow one more concurrent request.
    pub fn on_success(&self) {
        let mut s = self.lock();
        s.successes += 1;
        if s.successes >= s.limit && s.limit < self.max {
            s.limit += 1;
            s.successes = 0;
            drop(s);
            self.freed.notify_waiters();
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut s = self.limit.lock();
        s.in_use = s.in_use.saturating_sub(1);
        drop(s);
        self.limit.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shrinks_on_busy_and_grows_back() {
        let l = AdaptiveLimit::new(8);
        l.on_busy();
        assert_eq!(l.current(), 4);
        l.on_busy();
        l.on_busy();
        l.on_busy();
        assert_eq!(l.current(), 1);
        for _ in 0..100 {
            l.on_success();
        }
        assert_eq!(l.current(), 8);
    }

    #[tokio::test]
    async fn waits_for_a_free_slot() {
        let l = AdaptiveLimit::new(1);
        let p = l.acquire().await;
        let l2 = Arc::clone(&l);
        let waiter = tokio::spawn(async move {
            let _p = l2.acquire().await;
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(p);
        waiter.await.unwrap();
    }
}
