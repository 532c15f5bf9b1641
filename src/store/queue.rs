//! The outbox seen as one queue per webhook: what the delivery engine reads from the store, and
//! the news a store gives its own process's engine when queues change.
//!
//! The store is the durable record of every queue. The engine drives a webhook's queue by reading
//! it a page at a time in order ([`QueuePage`]); deliveries queued by this process's own call
//! reports are also handed to it right after their commit ([`QueueNews::Fresh`]), so that a
//! webhook keeping up never has to be read back. On a database several processes share, each
//! webhook's queue is driven by one of them at a time.
//!
//! May depend on: `domain`.

use crate::domain::Timestamp;
use crate::domain::webhook::{MetadataPolicy, SigningAlgo};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Where and how every delivery to one webhook is sent. A webhook's URL, key and policy never
/// change after it is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub webhook_id: String,
    pub url: String,
    /// The key to sign with, when deliveries must be signed (`HMAC_SHA256` and a non-empty key).
    pub signing_key: Option<String>,
    pub metadata_policy: MetadataPolicy,
    /// Nothing more is sent from this instant on (the webhook expires; a renewal moves it).
    pub expire_at: Timestamp,
}

impl Target {
    /// From a webhook's stored columns: the key only when deliveries must be signed with it, the
    /// policy `NONE` when the stored one is unknown.
    pub fn from_columns(
        webhook_id: String,
        url: String,
        signing_algo: &str,
        signing_key: Option<String>,
        metadata_policy: &str,
        expire_at: Timestamp,
    ) -> Target {
        let signs = SigningAlgo::parse(signing_algo) == Some(SigningAlgo::HmacSha256);
        Target {
            webhook_id,
            url,
            signing_key: signing_key.filter(|key| signs && !key.is_empty()),
            metadata_policy: MetadataPolicy::parse(metadata_policy).unwrap_or(MetadataPolicy::None),
            expire_at,
        }
    }
}

/// A pending delivery in its webhook's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// Its place in the outbox: within one call, a later event's delivery has a higher `seq`.
    pub seq: i64,
    /// The `deliveryId`: the same on every attempt.
    pub id: String,
    /// The call it is about: a webhook gets one call's events one after the other.
    pub call_seq: i64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Attempts made before the delivery was last replayed: the retry budget counts from there.
    pub replayed_after: u32,
    /// When it may be sent: when it was queued, or its retry's time. While its webhook is paused
    /// only deliveries tried before (since their last replay) may go, each at its time.
    pub due: Timestamp,
    /// The event, as canonical JSON.
    pub event: Arc<str>,
}

/// A delivery a call report of this process just queued, announced after the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fresh {
    pub webhook_id: String,
    pub delivery: Queued,
    /// The latest earlier delivery of the same webhook and call that was still pending when this
    /// one was queued: it must go out first.
    pub after: Option<i64>,
}

/// What changed in the queues, as a store tells its own process's delivery engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueNews {
    /// Deliveries queued by call reports this process committed.
    Fresh(Vec<Fresh>),
    /// These webhooks' queues changed in the store (a replay, a renewal, a deletion, reports
    /// committed by another process): read them again.
    Changed(Vec<String>),
    /// Any queue may have changed, or lost its driver (a process stopped, news may have been
    /// missed): look for queues to drive again.
    Everything,
}

/// The start of a webhook's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePage {
    pub target: Target,
    /// A failed attempt paused the webhook and no delivery to it has succeeded since: only
    /// deliveries tried before may go (the circuit breaker).
    pub paused: bool,
    /// Its first pending deliveries, in `seq` order.
    pub deliveries: Vec<Queued>,
    /// Whether `deliveries` is the whole queue (fewer than asked for were pending).
    pub complete: bool,
}

/// An attempt a driver may make now: the delivery's `seq` and this attempt's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    pub seq: i64,
    pub attempt: u32,
}

/// What recording outcomes and starting attempts did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advanced {
    /// The attempts that may be made: those asked for whose delivery is still pending (and, on a
    /// shared database, whose webhook this process still drives).
    pub started: Vec<Started>,
    /// Deliveries skipped because a webhook failed.
    pub skipped: u64,
    /// Webhooks whose queue got deliveries from the store itself (a paused webhook that answered
    /// again has the events held meanwhile written out): read them again.
    pub refilled: Vec<String>,
}

/// The sending half of a store's news, for the one engine that subscribes. Nothing is kept
/// before someone subscribes (a store opened by `token create` has no engine).
#[derive(Debug, Default)]
pub struct NewsFeed {
    subscriber: Mutex<Option<mpsc::UnboundedSender<QueueNews>>>,
}

impl NewsFeed {
    /// The receiving half; a second subscription replaces the first.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<QueueNews> {
        let (send, receive) = mpsc::unbounded_channel();
        if let Ok(mut subscriber) = self.subscriber.lock() {
            *subscriber = Some(send);
        }
        receive
    }

    pub fn send(&self, news: QueueNews) {
        let empty = match &news {
            QueueNews::Fresh(fresh) => fresh.is_empty(),
            QueueNews::Changed(ids) => ids.is_empty(),
            QueueNews::Everything => false,
        };
        if empty {
            return;
        }
        if let Ok(subscriber) = self.subscriber.lock()
            && let Some(send) = subscriber.as_ref()
        {
            let _ = send.send(news);
        }
    }

    /// Tells the engine that `webhook_id`'s queue changed.
    pub fn changed(&self, webhook_id: &str) {
        self.send(QueueNews::Changed(vec![webhook_id.to_string()]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn news_reaches_the_subscriber_and_nothing_is_kept_without_one() {
        let feed = NewsFeed::default();
        feed.changed("w0");
        let mut news = feed.subscribe();
        feed.send(QueueNews::Fresh(vec![]));
        feed.changed("w1");
        assert_eq!(news.try_recv(), Ok(QueueNews::Changed(vec!["w1".into()])));
        assert!(news.try_recv().is_err(), "empty news is not sent");
    }
}
