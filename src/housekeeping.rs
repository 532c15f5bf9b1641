//! Background jobs that keep the store tidy: deleting webhooks whose `purgeAt` has passed, and
//! recording deliveries still queued for expired webhooks as skipped. On a database several
//! nodes share, only the node the store says leads runs them.
//!
//! May depend on: `domain`, `metrics`, the `store::Store` trait.

use crate::domain::Timestamp;
use crate::metrics::Metrics;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Longest sleep between purges, as a backstop for changes made by other processes.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// How often a node that does not lead housekeeping (another node of a cluster does) tries to
/// take over.
const FOLLOWER_POLL: Duration = Duration::from_secs(10);
/// Wait after a storage failure before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Purges webhooks as their `purgeAt` passes: sleeps until the earliest `purgeAt` (at most
/// [`MAX_SLEEP`]), or until `changed` says webhooks were created or renewed.
pub async fn run(
    store: Arc<dyn Store>,
    changed: Arc<Notify>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    loop {
        let wait = match store.leads_housekeeping().await {
            Ok(true) => run_jobs(store.as_ref(), &metrics).await,
            Ok(false) => FOLLOWER_POLL,
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell whether this node runs the background jobs; will retry");
                RETRY_AFTER
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = changed.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One turn of the jobs; returns how long to sleep before the next.
async fn run_jobs(store: &dyn Store, metrics: &Metrics) -> Duration {
    let now = Timestamp::now();
    match store.skip_undeliverable(now).await {
        Ok(skipped) => metrics.skipped(skipped),
        Err(e) => tracing::warn!(error = %e, "skipping deliveries of expired webhooks failed"),
    }
    match purge_once(store, now).await {
        Ok(Some(next)) => Duration::from_millis(next.since(now) as u64).min(MAX_SLEEP),
        Ok(None) => MAX_SLEEP,
        Err(e) => {
            tracing::warn!(error = %e, "purging webhooks failed; will retry");
            RETRY_AFTER
        }
    }
}

/// Deletes what is due and returns the next `purgeAt`.
async fn purge_once(
    store: &dyn Store,
    now: Timestamp,
) -> Result<Option<Timestamp>, crate::store::StoreError> {
    let purged = store.purge_webhooks(now).await?;
    if purged > 0 {
        tracing::info!(purged, "purged webhooks past purgeAt");
    }
    store.next_purge_at().await
}
