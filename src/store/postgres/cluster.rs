//! What the nodes sharing one database coordinate through it: background jobs that run once per
//! cluster (`cluster_jobs`), and wake-ups (`NOTIFY callhook_wake` when deliveries become due,
//! forwarded to the local delivery engine's `Notify` by [`PgStore::forward_wakeups`]).

use super::PgStore;
use crate::domain::Timestamp;
use sqlx::PgConnection;
use sqlx::postgres::{PgListener, PgPoolOptions};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The channel every node listens on.
pub const WAKE_CHANNEL: &str = "callhook_wake";
/// Names in `cluster_jobs`.
pub(super) const PURGE_JOB: &str = "purge_webhooks";
pub(super) const SKIP_JOB: &str = "skip_undeliverable";
/// A job that ran this recently (by the `now` its caller passed) is not run again.
const JOB_INTERVAL_MS: i64 = 1000;
/// Pause before listening again after the connection failed.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

/// Claims this run of job `name` for this node, inside the caller's transaction: `true` when no
/// node ran it within the last second (by `now`). A node that comes second waits on the row
/// until the first one's transaction ends, then finds it fresh and skips the job.
pub(super) async fn take_job(
    c: &mut PgConnection,
    name: &str,
    now: Timestamp,
) -> Result<bool, sqlx::Error> {
    let taken = sqlx::query(
        "INSERT INTO cluster_jobs (name, ran_at) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET ran_at = $2 WHERE cluster_jobs.ran_at <= $2 - $3 \
         RETURNING 1",
    )
    .bind(name)
    .bind(now.millis())
    .bind(JOB_INTERVAL_MS)
    .fetch_optional(c)
    .await?;
    Ok(taken.is_some())
}

/// Tells every listening node (this one included) that deliveries became due. Sent when the
/// caller's transaction commits, and not at all if it rolls back; notifications of one
/// transaction are folded into one.
pub(super) async fn wake_nodes(c: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(WAKE_CHANNEL)
        .execute(c)
        .await?;
    Ok(())
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
