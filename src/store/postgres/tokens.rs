//! A node's short memory of the tokens it authenticated, so that a report does not cost a round
//! trip to the database to find its token. An entry is trusted for [`TRUSTED_FOR`] at most;
//! revoking a token forgets every entry at once on the node that revoked it and, through
//! `NOTIFY callhook_tokens` ([`TOKENS_CHANNEL`]), on every node listening; a node whose listener
//! was down forgets everything when it listens again. Only successes are remembered: a token
//! created a moment ago works at once, and unknown tokens cannot fill the memory.
//!
//! May depend on: `domain`.

use crate::domain::Timestamp;
use crate::domain::identity::Principal;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The channel on which a revocation tells every node to forget the tokens it remembers.
pub const TOKENS_CHANNEL: &str = "callhook_tokens";
/// The longest a remembered token is used without asking the database again: the longest a
/// revoked token can still be accepted by a node that missed the notification.
pub const TRUSTED_FOR: Duration = Duration::from_secs(1);
/// Tokens remembered at most; past it, the memory starts again empty.
const MOST: usize = 10_000;

/// What a token authenticated as, and until when it may be used.
#[derive(Clone)]
struct Remembered {
    principal: Principal,
    expires_at: Option<Timestamp>,
    fetched: Instant,
}

#[derive(Default)]
pub(super) struct TokenCache {
    entries: Mutex<HashMap<[u8; 32], Remembered>>,
}

impl TokenCache {
    /// The principal of a token authenticated less than [`TRUSTED_FOR`] ago and not expired at
    /// `now`.
    pub(super) fn get(&self, hash: &[u8; 32], now: Timestamp) -> Option<Principal> {
        let entries = self.entries.lock().ok()?;
        let r = entries.get(hash)?;
        let fresh = r.fetched.elapsed() < TRUSTED_FOR;
        let valid = r.expires_at.is_none_or(|at| at > now);
        (fresh && valid).then(|| r.principal.clone())
    }

    /// Remembers a token the database just authenticated.
    pub(super) fn put(&self, hash: [u8; 32], principal: Principal, expires_at: Option<Timestamp>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MOST {
                entries.clear();
            }
            let fetched = Instant::now();
            entries.insert(
                hash,
                Remembered {
                    principal,
                    expires_at,
                    fetched,
                },
            );
        }
    }

    /// Forgets every token (one was revoked, or a revocation may have been missed).
    pub(super) fn forget(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identity::Role;

    fn principal() -> Principal {
        Principal {
            token_id: "tok_1".into(),
            role: Role::User,
            account_id: Some("a".into()),
            user_id: Some("u".into()),
        }
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms).expect("a time")
    }

    #[test]
    fn a_remembered_token_is_used_until_it_expires_or_is_forgotten() {
        let cache = TokenCache::default();
        let now = at(1_000);
        assert!(cache.get(&[1; 32], now).is_none(), "nothing remembered yet");
        cache.put([1; 32], principal(), Some(at(2_000)));
        assert_eq!(
            cache.get(&[1; 32], now).map(|p| p.token_id),
            Some("tok_1".into())
        );
        assert!(cache.get(&[2; 32], now).is_none(), "another token");
        assert!(cache.get(&[1; 32], at(2_000)).is_none(), "expired");
        cache.forget();
        assert!(cache.get(&[1; 32], now).is_none(), "forgotten");
    }
}
