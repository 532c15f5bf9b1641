//! What the nodes sharing one database coordinate through it: which one runs the background jobs
//! ([`Leadership`], an advisory lock), and news of queues (`NOTIFY callhook_wake` naming the
//! webhooks whose queues changed, [`Announcer`]; handed to the local delivery engine by
//! [`PgStore::forward_wakeups`]), and revocations of tokens (`NOTIFY callhook_tokens`, after
//! which the listening node forgets the tokens it remembers, see [`super::tokens`]). Which node
//! drives which queue is [`super::drivers`]'.

use super::PgStore;
use super::tokens::TOKENS_CHANNEL;
use crate::store::QueueNews;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// The channel every node listens on.
pub const WAKE_CHANNEL: &str = "callhook_wake";
/// Pause before listening again after the connection failed.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);
/// The session advisory lock held by the node that runs the background jobs.
const HOUSEKEEPING_LOCK: i64 = 0x6361_6c6c_686b_0001;

/// Which node runs the background jobs (purge, skipping): the one holding a session-level
/// advisory lock on a connection of its own. Others try to take it on each of their turns; when
/// the leader dies, its connection closes, the lock goes with it, and the next node to try takes
/// over.
#[derive(Default)]
pub(super) struct Leadership {
    held: Mutex<Option<PgConnection>>,
}

impl Leadership {
    /// `true` while this node holds the lock (checking that its connection still answers), or
    /// after taking it now.
    pub(super) async fn lead(&self, options: &PgConnectOptions) -> Result<bool, sqlx::Error> {
        let mut held = self.held.lock().await;
        if let Some(conn) = held.as_mut() {
            if sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok() {
                return Ok(true);
            }
            *held = None;
        }
        let mut conn = PgConnection::connect_with(options).await?;
        let took: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(HOUSEKEEPING_LOCK)
            .fetch_one(&mut conn)
            .await?;
        if took {
            *held = Some(conn);
        } else {
            let _ = conn.close().await;
        }
        Ok(took)
    }
}

/// Tells every listening node which webhooks' queues changed, after the commit that changed them,
/// and coalesced: at most one `NOTIFY` in flight per node, carrying everything announced since
/// the last one began (`node|id,id,...`, or `node|*` for every queue). Not inside the transactions
/// that queue deliveries: PostgreSQL serializes the commits of every transaction that sent a
/// `NOTIFY` (a global lock on the notification queue), which measured as ingestion commits
/// queueing on `Lock:object` and throughput bounded by one fsync at a time.
#[derive(Default)]
pub(super) struct Announcer {
    /// A task is sending.
    busy: AtomicBool,
    /// What to send next.
    waiting: std::sync::Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    everything: bool,
    webhooks: BTreeSet<String>,
}

/// Webhook ids per notification at most (a payload must stay under 8,000 bytes); past it, the
/// notification says "every queue".
const MOST_IDS: usize = 100;

impl Announcer {
    /// Announces that these webhooks' queues changed.
    pub(super) fn announce(self: &Arc<Self>, pool: &PgPool, node: &Arc<str>, webhooks: &[String]) {
        if webhooks.is_empty() {
            return;
        }
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.webhooks.extend(webhooks.iter().cloned());
        }
        self.send(pool, node);
    }

    /// Announces that any queue may have changed or lost its driver.
    pub(super) fn announce_everything(self: &Arc<Self>, pool: &PgPool, node: &Arc<str>) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.everything = true;
        }
        self.send(pool, node);
    }

    fn take_payload(&self, node: &str) -> Option<String> {
        let mut waiting = self.waiting.lock().ok()?;
        let Waiting {
            everything,
            webhooks,
        } = std::mem::take(&mut *waiting);
        if everything || webhooks.len() > MOST_IDS {
            return Some(format!("{node}|*"));
        }
        if webhooks.is_empty() {
            return None;
        }
        let ids: Vec<String> = webhooks.into_iter().collect();
        Some(format!("{node}|{}", ids.join(",")))
    }

    fn send(self: &Arc<Self>, pool: &PgPool, node: &Arc<str>) {
        if self.busy.swap(true, Ordering::SeqCst) {
            return;
        }
        let (me, pool, node) = (self.clone(), pool.clone(), node.clone());
        tokio::spawn(async move {
            loop {
                while let Some(payload) = me.take_payload(&node) {
                    if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(WAKE_CHANNEL)
                        .bind(&payload)
                        .execute(&pool)
                        .await
                    {
                        // The other nodes' timers are the backstop.
                        tracing::debug!(error = %e, "could not notify the other nodes");
                    }
                }
                me.busy.store(false, Ordering::SeqCst);
                // Something announced after the last take and before `busy` was cleared.
                let more = me
                    .waiting
                    .lock()
                    .is_ok_and(|w| w.everything || !w.webhooks.is_empty());
                if !more || me.busy.swap(true, Ordering::SeqCst) {
                    return;
                }
            }
        });
    }
}

/// What a notification says, for a node other than its sender; `None` for the sender's own.
fn news_of(payload: &str, me: &str) -> Option<QueueNews> {
    let (from, what) = payload.split_once('|').unwrap_or(("", payload));
    if from == me {
        return None;
    }
    if what == "*" || what.is_empty() {
        return Some(QueueNews::Everything);
    }
    Some(QueueNews::Changed(
        what.split(',').map(str::to_string).collect(),
    ))
}

impl PgStore {
    /// Until `shutdown`, listens on [`WAKE_CHANNEL`] and hands what other nodes announce to this
    /// node's engine (through the store's news). Notifications sent while the connection was down
    /// are lost, so each time listening (re)starts the engine is told that any queue may have
    /// changed; after an error the listener is rebuilt after a short pause.
    pub async fn forward_wakeups(&self, shutdown: CancellationToken) {
        // One connection of its own, outside the store's pool, held for as long as it listens.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(self.options.clone());
        loop {
            let listening = tokio::select! {
                () = shutdown.cancelled() => return,
                l = listen(&pool) => l,
            };
            match listening {
                Ok(mut listener) => {
                    // What was announced while nobody listened is lost.
                    self.tokens.forget();
                    self.news.send(QueueNews::Everything);
                    loop {
                        let next = tokio::select! {
                            () = shutdown.cancelled() => return,
                            n = listener.try_recv() => n,
                        };
                        match next {
                            Ok(Some(n)) if n.channel() == TOKENS_CHANNEL => self.tokens.forget(),
                            Ok(Some(notification)) => {
                                if let Some(news) = news_of(notification.payload(), &self.node) {
                                    self.news.send(news);
                                }
                            }
                            // The connection dropped and the listener reconnected: whatever
                            // was sent meanwhile is lost.
                            Ok(None) => {
                                tracing::warn!(
                                    "wake-up listener reconnected after losing its connection"
                                );
                                self.tokens.forget();
                                self.news.send(QueueNews::Everything);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, db = %self.shown, "wake-up listener failed; listening again shortly");
                                break;
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, db = %self.shown, "cannot listen for wake-ups; trying again shortly");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(RELISTEN_AFTER) => {}
            }
        }
    }
}

async fn listen(pool: &sqlx::PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all([WAKE_CHANNEL, TOKENS_CHANNEL]).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_names_its_sender_and_the_queues_that_changed() {
        assert_eq!(
            news_of("a|w1,w2", "b"),
            Some(QueueNews::Changed(vec!["w1".into(), "w2".into()]))
        );
        assert_eq!(news_of("a|*", "b"), Some(QueueNews::Everything));
        assert_eq!(news_of("a|w1", "a"), None, "a node's own notification");
        assert_eq!(
            news_of("", "b"),
            Some(QueueNews::Everything),
            "an old node's empty payload"
        );
    }
}
