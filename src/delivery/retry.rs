//! The retry schedule, as a pure function: a failed attempt is retried `retries` times,
//! `interval` apart; after that the delivery has failed.

use crate::domain::Timestamp;
use std::time::Duration;

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(Timestamp),
    GiveUp,
}

/// `attempt` counts from 1; attempt `retries + 1` is the last.
pub fn after_failure(
    attempt: u32,
    retries: u32,
    interval: Duration,
    now: Timestamp,
) -> AfterFailure {
    if attempt <= retries {
        AfterFailure::RetryAt(now.plus(interval))
    } else {
        AfterFailure::GiveUp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_retries_mean_six_attempts_ten_seconds_apart() {
        let now = Timestamp::from_millis(1_000).unwrap();
        let interval = Duration::from_secs(10);
        for attempt in 1..=5 {
            assert_eq!(
                after_failure(attempt, 5, interval, now),
                AfterFailure::RetryAt(Timestamp::from_millis(11_000).unwrap())
            );
        }
        assert_eq!(after_failure(6, 5, interval, now), AfterFailure::GiveUp);
        assert_eq!(after_failure(7, 5, interval, now), AfterFailure::GiveUp);
        assert_eq!(after_failure(1, 0, interval, now), AfterFailure::GiveUp);
    }
}
