//! Exponential backoff for retryable failures, honouring the server's own delay when it gives one.

use std::time::Duration;

use crate::config::RetrySettings;

/// The delay before attempt `attempt + 1` after `attempt` failed (1-based), doubling from the
/// initial delay up to the maximum. A delay the server asked for (throttling) wins when longer.
pub fn delay_after(settings: &RetrySettings, attempt: u32, server_asked: Option<Duration>) -> Duration {
    let doublings = attempt.saturating_sub(1).min(30);
    let ours = settings.initial_delay.saturating_mul(1u32 << doublings).min(settings.max_delay);
    match server_asked {
        Some(asked) => ours.max(asked.min(settings.max_delay)),
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
        let delays: Vec<u128> = (1..=6).map(|a| delay_after(&settings(), a, None).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn the_server_delay_wins_when_longer_but_stays_bounded() {
        assert_eq!(delay_after(&settings(), 1, Some(Duration::from_millis(700))), Duration::from_millis(700));
        assert_eq!(delay_after(&settings(), 3, Some(Duration::from_millis(10))), Duration::from_millis(400));
        assert_eq!(delay_after(&settings(), 1, Some(Duration::from_secs(90))), Duration::from_secs(1));
    }
}
