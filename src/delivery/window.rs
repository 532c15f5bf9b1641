//! Per-webhook concurrency windows: how many attempts each webhook may have in flight at once.
//! Pure bookkeeping, no I/O; the engine owns one behind a lock.
//!
//! A webhook this process has not sent to lately starts with a window of one attempt; each success
//! widens it by one (so it doubles per round of answers) up to the configured cap, and any failure
//! shrinks it back to one. An endpoint that hangs, refuses or errors therefore holds at most one of
//! the engine's slots however many calls are waiting for it, and healthy endpoints keep the rest:
//! without this, a hundred endpoints hanging until the response timeout could take every slot and
//! delay the healthy ones behind them. (That a failing endpoint is then tried only once per retry
//! interval is the store's doing: a failed attempt holds the webhook's other deliveries until one
//! succeeds, see `store::sqlite::deliveries::pause`.) A webhook is forgotten when it has failed for
//! good, and idle webhooks are forgotten all at once when more than [`PRUNE_AT`] are remembered
//! (they start small again next time, and grow back within a few rounds of answers), so memory
//! stays bounded.

use std::collections::HashMap;

/// The window of a webhook not (or no longer) in the map.
pub const INITIAL_WINDOW: usize = 1;
/// Remembered webhooks beyond which the idle ones are forgotten.
pub const PRUNE_AT: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    in_flight: usize,
    limit: usize,
}

/// How an attempt ended, as far as the window cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Delivered,
    /// Failed; the delivery will be retried.
    Retrying,
    /// Failed for good: the webhook is marked failed and gets nothing more until renewed.
    GaveUp,
}

/// The windows of the webhooks with attempts in flight or failing.
#[derive(Debug)]
pub struct Windows {
    cap: usize,
    by_webhook: HashMap<String, Window>,
}

impl Windows {
    /// `cap`: the widest a window grows (at least 1).
    pub fn new(cap: usize) -> Windows {
        Windows {
            cap: cap.max(1),
            by_webhook: HashMap::new(),
        }
    }

    /// How many more attempts each tracked webhook may start now; webhooks not listed may start
    /// [`Windows::fresh_room`].
    pub fn room(&self) -> HashMap<String, usize> {
        self.by_webhook
            .iter()
            .map(|(id, w)| (id.clone(), w.limit.saturating_sub(w.in_flight)))
            .collect()
    }

    /// How many attempts a webhook not in [`Windows::room`] may start.
    pub fn fresh_room(&self) -> usize {
        INITIAL_WINDOW.min(self.cap)
    }

    /// An attempt to `webhook` started.
    pub fn started(&mut self, webhook: &str) {
        let initial = self.fresh_room();
        self.by_webhook
            .entry(webhook.to_string())
            .or_insert(Window {
                in_flight: 0,
                limit: initial,
            })
            .in_flight += 1;
    }

    /// An attempt to `webhook` ended.
    pub fn ended(&mut self, webhook: &str, how: Ended) {
        let Some(w) = self.by_webhook.get_mut(webhook) else {
            return;
        };
        w.in_flight = w.in_flight.saturating_sub(1);
        w.limit = match how {
            Ended::Delivered => (w.limit + 1).min(self.cap),
            Ended::Retrying | Ended::GaveUp => INITIAL_WINDOW.min(self.cap),
        };
        if w.in_flight == 0 && how == Ended::GaveUp {
            self.by_webhook.remove(webhook);
        }
        if self.by_webhook.len() > PRUNE_AT {
            self.by_webhook.retain(|_, w| w.in_flight > 0);
        }
    }

    /// Webhooks tracked (for tests and metrics).
    pub fn len(&self) -> usize {
        self.by_webhook.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_webhook.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room_of(w: &Windows, id: &str) -> usize {
        w.room().get(id).copied().unwrap_or(w.fresh_room())
    }

    #[test]
    fn a_new_webhook_starts_with_one_attempt_and_grows_by_one_per_success_up_to_the_cap() {
        let mut w = Windows::new(3);
        assert_eq!(room_of(&w, "a"), 1);
        w.started("a");
        assert_eq!(room_of(&w, "a"), 0, "one in flight fills the first window");
        w.started("a"); // a second attempt (say, after a claim raced) still counts
        w.ended("a", Ended::Delivered);
        assert_eq!(room_of(&w, "a"), 1, "limit 2, one in flight");
        w.started("a");
        w.ended("a", Ended::Delivered);
        assert_eq!(room_of(&w, "a"), 2, "limit 3, one in flight");
        w.started("a");
        w.started("a");
        w.ended("a", Ended::Delivered);
        assert_eq!(room_of(&w, "a"), 1, "capped at 3 with two in flight");
    }

    #[test]
    fn a_failure_shrinks_the_window_to_one_and_keeps_the_webhook_while_it_retries() {
        let mut w = Windows::new(8);
        for _ in 0..4 {
            w.started("a");
            w.ended("a", Ended::Delivered);
            w.started("a");
        }
        w.ended("a", Ended::Retrying);
        // Three still in flight, limit back to one: no room until they end.
        assert_eq!(room_of(&w, "a"), 0);
        for _ in 0..3 {
            w.ended("a", Ended::Retrying);
        }
        assert_eq!(w.len(), 1, "a retrying webhook is remembered while idle");
        assert_eq!(room_of(&w, "a"), 1);
    }

    #[test]
    fn a_webhook_keeps_its_window_while_idle_and_is_forgotten_when_it_gives_up() {
        let mut w = Windows::new(8);
        w.started("ok");
        w.ended("ok", Ended::Delivered);
        assert_eq!(room_of(&w, "ok"), 2, "idle, the window stays grown");
        w.started("dead");
        w.ended("dead", Ended::GaveUp);
        assert_eq!(w.len(), 1, "{w:?}");
        w.ended("unknown", Ended::Delivered);
        assert_eq!(w.len(), 1, "an unknown webhook ending changes nothing");
    }

    #[test]
    fn beyond_the_prune_threshold_idle_webhooks_are_forgotten_and_busy_ones_kept() {
        let mut w = Windows::new(8);
        w.started("busy");
        for n in 0..PRUNE_AT {
            let id = format!("w{n}");
            w.started(&id);
            w.ended(&id, Ended::Delivered);
        }
        assert_eq!(
            w.len(),
            1,
            "only the webhook with an attempt in flight is left"
        );
        assert_eq!(room_of(&w, "busy"), 0);
        assert_eq!(room_of(&w, "w0"), INITIAL_WINDOW);
    }

    #[test]
    fn webhooks_are_independent() {
        let mut w = Windows::new(4);
        w.started("dead");
        w.ended("dead", Ended::Retrying);
        w.started("ok");
        w.started("ok");
        w.ended("ok", Ended::Delivered);
        assert_eq!(room_of(&w, "dead"), 1);
        assert_eq!(room_of(&w, "ok"), 1, "limit 2, one in flight");
    }
}
