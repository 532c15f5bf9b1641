//! What the nodes sharing one database coordinate through it: which one runs the background jobs
//! ([`Leadership`], an advisory lock), and wake-ups (`NOTIFY callhook_wake` when deliveries become due,
//! forwarded to the local delivery engine's `Notify` by [`PgStore::forward_wakeups`]).

use super::PgStore;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, Notify};
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

/// Tells every listening node (this one included) that deliveries became due, after the commit
/// that made them due, and coalesced: at most one `NOTIFY` in flight per node, plus one more for
/// whatever came during it. Not inside the transactions that queue deliveries: PostgreSQL
/// serializes the commits of every transaction that sent a `NOTIFY` (a global lock on the
/// notification queue), which measured as ingestion commits queueing on `Lock:object` and
/// throughput bounded by one fsync at a time.
#[derive(Default)]
pub(super) struct Announcer {
    /// A task is sending.
    busy: AtomicBool,
    /// Something became due since the task's last `NOTIFY` began.
    again: AtomicBool,
}

impl Announcer {
    pub(super) fn announce(self: &Arc<Self>, pool: &PgPool) {
        self.again.store(true, Ordering::SeqCst);
        if self.busy.swap(true, Ordering::SeqCst) {
            return;
        }
        let (me, pool) = (self.clone(), pool.clone());
        tokio::spawn(async move {
            loop {
                while me.again.swap(false, Ordering::SeqCst) {
                    if let Err(e) = sqlx::query("SELECT pg_notify($1, '')")
                        .bind(WAKE_CHANNEL)
                        .execute(&pool)
                        .await
                    {
                        // The other nodes' timers are the backstop.
                        tracing::debug!(error = %e, "could not notify the other nodes");
                    }
                }
                me.busy.store(false, Ordering::SeqCst);
                // A request that came after the last swap and before `busy` was cleared.
                if !me.again.load(Ordering::SeqCst) || me.busy.swap(true, Ordering::SeqCst) {
                    return;
                }
            }
        });
    }
}

impl PgStore {
    /// Until `shutdown`, listens on [`WAKE_CHANNEL`] and calls `wake.notify_one()` for every
    /// notification. Notifications sent while the connection was down are lost, so `wake` is
    /// also notified each time listening (re)starts; after an error the listener is rebuilt
    /// after a short pause. The engine's own timers remain the backstop.
    pub async fn forward_wakeups(&self, wake: Arc<Notify>, shutdown: CancellationToken) {
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
                    wake.notify_one();
                    loop {
                        let next = tokio::select! {
                            () = shutdown.cancelled() => return,
                            n = listener.try_recv() => n,
                        };
                        match next {
                            Ok(Some(_)) => wake.notify_one(),
                            // The connection dropped and the listener reconnected: whatever
                            // was sent meanwhile is lost.
                            Ok(None) => {
                                tracing::warn!(
                                    "wake-up listener reconnected after losing its connection"
                                );
                                wake.notify_one();
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
    listener.listen(WAKE_CHANNEL).await?;
    Ok(listener)
}
