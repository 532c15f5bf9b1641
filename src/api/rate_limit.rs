//! The per-token request rate limit: a keyed GCRA limiter (`governor`) over the SHA-256 hash of
//! each authenticated bearer token (never the token itself), allowing `N` requests per second with
//! a burst of `N`. Requests without a valid token never reach it, so only live tokens take memory,
//! and [`RateLimit::prune_until`] forgets the tokens that have been quiet long enough to be back at
//! a full burst.
//!
//! May depend on: `governor`, tokio. Knows nothing of HTTP: the auth extractor asks it and turns a
//! refusal into a 429.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The key: the token's SHA-256 hash, as stored.
type TokenHash = [u8; 32];

/// How often the state of quiet tokens is dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Requests per second per token, or nothing when the limit is off.
pub struct RateLimit {
    limiter: Option<DefaultKeyedRateLimiter<TokenHash>>,
    clock: DefaultClock,
}

impl RateLimit {
    /// `per_second` requests per second per token, in bursts of up to `per_second`; 0 turns the
    /// limit off.
    pub fn new(per_second: u32) -> RateLimit {
        let limiter = NonZeroU32::new(per_second)
            .map(|n| RateLimiter::dashmap(Quota::per_second(n).allow_burst(n)));
        RateLimit {
            limiter,
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request of `token` from its allowance; when none is left, how long until one is.
    pub fn check(&self, token: &TokenHash) -> Result<(), Duration> {
        match &self.limiter {
            None => Ok(()),
            Some(limiter) => limiter
                .check_key(token)
                .map_err(|not_until| not_until.wait_time_from(self.clock.now())),
        }
    }

    /// How many tokens have state kept (for tests and diagnostics).
    pub fn tracked(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }

    /// Forgets every token whose allowance is full again.
    pub fn prune(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Prunes every [`PRUNE_EVERY`] until `shutdown`, so memory stays bounded by the tokens active
    /// in the last minute.
    pub async fn prune_until(&self, shutdown: CancellationToken) {
        if self.limiter.is_none() {
            return;
        }
        let mut every = tokio::time::interval(PRUNE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = every.tick() => self.prune(),
            }
        }
    }
}

/// A wait as a `Retry-After` value: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_gets_its_burst_then_a_wait_and_others_are_unaffected() {
        let limit = RateLimit::new(3);
        let (a, b) = ([1u8; 32], [2u8; 32]);
        for _ in 0..3 {
            assert_eq!(limit.check(&a), Ok(()));
        }
        let wait = limit
            .check(&a)
            .expect_err("the fourth request in a burst of 3");
        assert!(wait <= Duration::from_millis(334), "{wait:?}");
        assert_eq!(limit.check(&b), Ok(()));
        assert_eq!(limit.tracked(), 2);
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limit = RateLimit::new(0);
        for _ in 0..10_000 {
            assert_eq!(limit.check(&[7u8; 32]), Ok(()));
        }
        assert_eq!(limit.tracked(), 0);
    }

    #[test]
    fn pruning_forgets_tokens_whose_allowance_is_full_again() {
        let limit = RateLimit::new(1_000_000);
        limit.check(&[1u8; 32]).unwrap();
        assert_eq!(limit.tracked(), 1);
        // One request's worth (1 µs) after the request, its allowance is full again.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while limit.tracked() > 0 && std::time::Instant::now() < deadline {
            limit.prune();
        }
        assert_eq!(limit.tracked(), 0);
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }
}
