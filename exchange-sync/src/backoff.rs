//! Retry delays of whole passes: exponential backoff with jitter, honouring a delay the server
//! asked for.
//!
//! The service retries a pass only for errors nobody retried yet (design rule 13): a connector's
//! client retries its own requests and marks what it gave up on as exhausted, and those are
//! never retried here. The jitter spreads the retries of many groups that failed together (a
//! server restart) instead of sending them all back at the same instant.

use std::time::Duration;

use rand::Rng;

use crate::config::RetrySettings;

/// The backoff delay before attempt `attempt + 1` after `attempt` failed (1-based): doubling
/// from the initial delay up to the maximum, without jitter.
pub fn base_delay(settings: &RetrySettings, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(30);
    settings.initial_delay.saturating_mul(1u32 << doublings).min(settings.max_delay)
}

/// A delay drawn at random from its upper half (`[d/2, d]`, "equal jitter"): never much shorter
/// than the backoff asks, and retries that failed together come back spread out.
pub fn jittered(delay: Duration) -> Duration {
    let half = delay / 2;
    let spread = u64::try_from((delay - half).as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(rand::thread_rng().gen_range(0..=spread))
}

/// The delay before attempt `attempt + 1` after `attempt` failed: the jittered backoff delay, or
/// the delay the server asked for (throttling) when that is longer: a server's back-off is
/// honoured in full, never shortened.
pub fn delay_after(settings: &RetrySettings, attempt: u32, server_asked: Option<Duration>) -> Duration {
    let ours = jittered(base_delay(settings, attempt));
    match server_asked {
        Some(asked) => ours.max(asked),
        None => ours,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RetrySettings {
        RetrySettings { initial_delay: Duration::from_millis(100), max_delay: Duration::from_secs(1), max_attempts: 5 }
    }

    #[test]
    fn doubles_up_to_the_maximum() {
        let delays: Vec<u128> = (1..=6).map(|a| base_delay(&settings(), a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn jitter_stays_in_the_upper_half_and_spreads() {
        let base = Duration::from_millis(800);
        let drawn: Vec<Duration> = (0..200).map(|_| jittered(base)).collect();
        assert!(drawn.iter().all(|d| *d >= base / 2 && *d <= base), "{drawn:?}");
        let distinct: std::collections::BTreeSet<_> = drawn.iter().collect();
        assert!(distinct.len() > 10, "retries that failed together come back spread out");
    }

    #[test]
    fn the_server_delay_is_honoured_in_full() {
        assert!(delay_after(&settings(), 1, Some(Duration::from_millis(700))) >= Duration::from_millis(700));
        let short = delay_after(&settings(), 3, Some(Duration::from_millis(10)));
        assert!(short >= Duration::from_millis(200) && short <= Duration::from_millis(400), "{short:?}");
        assert_eq!(delay_after(&settings(), 1, Some(Duration::from_secs(90))), Duration::from_secs(90));
    }
}
