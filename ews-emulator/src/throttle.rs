//! Per-account concurrency limit (EWSMaxConcurrency) and fault injection.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::{Fault, FaultRates};

/// Counts requests in flight per account.
#[derive(Debug)]
pub struct ConcurrencyLimit {
    max: usize,
    in_flight: Mutex<HashMap<String, usize>>,
}

/// A slot held while a request runs; released on drop.
#[derive(Debug)]
pub struct Permit {
    limit: Arc<ConcurrencyLimit>,
    account: String,
}

impl ConcurrencyLimit {
    /// A limit of `max` concurrent requests per account.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(ConcurrencyLimit { max: max.max(1), in_flight: Mutex::new(HashMap::new()) })
    }

    /// Takes a slot, or None when the account is at its limit.
    pub fn try_acquire(self: &Arc<Self>, account: &str) -> Option<Permit> {
        let mut m = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(account.to_string()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Permit { limit: Arc::clone(self), account: account.to_string() })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut m = self.limit.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.account) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.account);
            }
        }
    }
}

/// Decides which requests get a fault: queued faults first, then random rates.
#[derive(Debug)]
pub struct FaultInjector {
    queue: Mutex<VecDeque<Fault>>,
    rng: Mutex<StdRng>,
    rates: FaultRates,
    busy_rate: f64,
}

impl FaultInjector {
    /// An injector with random rates and a seed.
    pub fn new(rates: FaultRates, busy_rate: f64, seed: u64) -> Self {
        FaultInjector {
            queue: Mutex::new(VecDeque::new()),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            rates,
            busy_rate,
        }
    }

    /// Queues a fault for the next request it applies to (DropAfterWrite waits for a write).
    pub fn push(&self, fault: Fault) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).push_back(fault);
    }

    /// The fault for this request, if any. Queued DropAfterWrite waits for a write and
    /// StopBatchAfter for an item batch.
    pub fn next(&self, is_write: bool, is_item_batch: bool) -> Option<Fault> {
        {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(f) = q.front().copied() {
                let applies = match f {
                    Fault::DropAfterWrite => is_write,
                    Fault::StopBatchAfter(_) => is_item_batch,
                    _ => true,
                };
                if applies {
                    q.pop_front();
                    return Some(f);
                }
            }
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        if self.busy_rate > 0.0 && rng.gen_bool(self.busy_rate.clamp(0.0, 1.0)) {
            return Some(Fault::ServerBusy);
        }
        if self.rates.internal_error > 0.0 && rng.gen_bool(self.rates.internal_error.clamp(0.0, 1.0)) {
            return Some(Fault::InternalServerError);
        }
        if self.rates.unavailable > 0.0 && rng.gen_bool(self.rates.unavailable.clamp(0.0, 1.0)) {
            return Some(Fault::ServiceUnavailable);
        }
        if is_write && self.rates.drop_after_write > 0.0 && rng.gen_bool(self.rates.drop_after_write.clamp(0.0, 1.0)) {
            return Some(Fault::DropAfterWrite);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_counts_per_account_and_releases() {
        let l = ConcurrencyLimit::new(2);
        let a = l.try_acquire("a").unwrap();
        let _b = l.try_acquire("a").unwrap();
        assert!(l.try_acquire("a").is_none());
        assert!(l.try_acquire("b").is_some());
        drop(a);
        assert!(l.try_acquire("a").is_some());
    }

    #[test]
    fn queued_drop_waits_for_a_write() {
        let f = FaultInjector::new(FaultRates::default(), 0.0, 1);
        f.push(Fault::DropAfterWrite);
        assert_eq!(f.next(false, false), None);
        assert_eq!(f.next(true, true), Some(Fault::DropAfterWrite));
        assert_eq!(f.next(true, true), None);
        f.push(Fault::StopBatchAfter(1));
        assert_eq!(f.next(true, false), None);
        assert_eq!(f.next(false, true), Some(Fault::StopBatchAfter(1)));
    }
}
