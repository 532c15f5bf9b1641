//! The outbox in PostgreSQL: reading a webhook's queue,
//! starting attempts and recording how they ended with the webhook statistics, skipping and
//! replaying. Every function runs inside the caller's transaction, which several nodes run at
//! once; each webhook's queue is driven by one node at a time ([`super::drivers`]).
//!
//! The circuit breaker: a failed attempt pauses its webhook (`paused_until`) until a delivery
//! succeeds, and the engine holds what was not tried yet meanwhile. Deliveries queued while it is
//! paused are written as usual. (SQLite writes none while paused and remembers the last event seq
//! that has rows, `held_after`; that is not done here: with concurrent transactions, sequence
//! values are not committed in order, so "every event up to seq N has its rows" can be false when
//! it is read, as an event with a lower seq may still commit, and events would be lost.
//! `webhooks.held_after` exists but stays NULL.)

use super::drivers::ALIVE;
use super::rows::{self, count_u32};
use crate::domain::Timestamp;
use crate::store::sql::QUEUES_WITH_PENDING;
use crate::store::{
    Advanced, AttemptEnd, Backlog, DeliveryJob, Finished, QueuePage, Queued, Replay, Started,
    Target,
};
use sqlx::{PgConnection, PgPool, Row};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The first `limit` pending deliveries of a webhook, in order, leaving out those in `skip`
/// (already known to the caller); `None` when it is gone, failed or expired.
pub(super) async fn load(
    pool: &PgPool,
    webhook_id: &str,
    limit: usize,
    skip: &[i64],
    now: Timestamp,
) -> Result<Option<QueuePage>, sqlx::Error> {
    let target = sqlx::query(
        "SELECT url, signing_algo, signing_key, metadata_policy, expire_at, \
         paused_until IS NOT NULL AS paused FROM webhooks \
         WHERE id = $1 AND NOT failed AND expire_at > $2",
    )
    .bind(webhook_id)
    .bind(now.millis())
    .fetch_optional(pool)
    .await?;
    let Some(target) = target else {
        return Ok(None);
    };
    let paused: bool = target.try_get("paused")?;
    let target = Target::from_columns(
        webhook_id.to_string(),
        target.try_get("url")?,
        target.try_get("signing_algo")?,
        target.try_get("signing_key")?,
        target.try_get("metadata_policy")?,
        rows::ts(&target, "expire_at")?,
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let deliveries = sqlx::query(
        "SELECT d.seq, d.id, d.call_seq, d.attempt, d.replayed_after, d.next_at, e.body \
         FROM deliveries d JOIN call_events e ON e.seq = d.event_seq \
         WHERE d.webhook_id = $1 AND d.status = 'pending' AND d.seq <> ALL($3) \
         ORDER BY d.seq LIMIT $2",
    )
    .bind(webhook_id)
    .bind(limit)
    .bind(skip)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(Queued {
            seq: r.try_get("seq")?,
            id: r.try_get("id")?,
            call_seq: r.try_get("call_seq")?,
            attempts: count_u32(r, "attempt")?,
            replayed_after: count_u32(r, "replayed_after")?,
            due: rows::ts(r, "next_at")?,
            event: Arc::from(r.try_get::<&str, _>("body")?),
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Some(QueuePage {
        target,
        paused,
        complete: (deliveries.len() as i64) < limit,
        deliveries,
    }))
}

/// The webhooks with pending deliveries (a loose scan of the queue index: one probe each) that
/// this node drives or may take over.
pub(super) async fn find(pool: &PgPool, node: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "{QUEUES_WITH_PENDING} SELECT q.webhook_id FROM q WHERE EXISTS ( \
           SELECT 1 FROM webhooks w WHERE w.id = q.webhook_id \
           AND (w.driver IS NULL OR w.driver = $1 OR NOT {ALIVE}))"
    ))
    .bind(node)
    .fetch_all(pool)
    .await
}

/// Records outcomes, then starts the attempts `start` asks for on the webhooks this node still
/// drives: see [`crate::store::Store::advance`].
pub(super) async fn advance(
    c: &mut PgConnection,
    node: &str,
    finished: &[Finished],
    start: &[i64],
    lease_until: Timestamp,
) -> Result<Advanced, sqlx::Error> {
    let (skipped, refilled) = finish_all(c, finished).await?;
    let started = if start.is_empty() {
        Vec::new()
    } else {
        let rows = sqlx::query(&format!(
            "UPDATE deliveries d SET attempt = d.attempt + 1, lease_until = $2 {}",
            startable("$1", "$3")
        ))
        .bind(start)
        .bind(lease_until.millis())
        .bind(node)
        .fetch_all(&mut *c)
        .await?;
        started_of(&rows)?
    };
    Ok(Advanced {
        started,
        skipped,
        refilled,
    })
}

/// [`advance`] when every outcome is a success (nearly always): one statement, so one round trip
/// and no transaction around it. `None` when it does not apply (a failure among the outcomes, or
/// a delivery both finished and started).
pub(super) async fn advance_successes(
    pool: &PgPool,
    node: &str,
    finished: &[Finished],
    start: &[i64],
    lease_until: Timestamp,
) -> Result<Option<Advanced>, sqlx::Error> {
    if finished.iter().any(|f| f.end != AttemptEnd::Delivered)
        || finished.iter().any(|f| start.contains(&f.job.seq))
    {
        return Ok(None);
    }
    let delivered: Vec<i64> = finished.iter().map(|f| f.job.seq).collect();
    let stats = Successes::of(finished);
    let started = sqlx::query(&format!(
        "WITH done AS ( \
           UPDATE deliveries SET status = 'delivered', lease_until = NULL WHERE seq = ANY($1)), \
         counted AS ( \
           UPDATE webhooks w SET total_attempts = w.total_attempts + u.n, \
           total_successes = w.total_successes + u.n, paused_until = NULL, \
           last_success = GREATEST(COALESCE(w.last_success, 0), u.last) \
           FROM UNNEST($2::text[], $3::bigint[], $4::bigint[]) AS u(id, n, last) \
           WHERE w.id = u.id AND w.id = ANY($2)) \
         UPDATE deliveries d SET attempt = d.attempt + 1, lease_until = $6 {}",
        startable("$5", "$7")
    ))
    .bind(&delivered)
    .bind(&stats.ids)
    .bind(&stats.counts)
    .bind(&stats.lasts)
    .bind(start)
    .bind(lease_until.millis())
    .bind(node)
    .fetch_all(pool)
    .await?;
    Ok(Some(Advanced {
        started: started_of(&started)?,
        skipped: 0,
        refilled: Vec::new(),
    }))
}

fn started_of(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<Started>, sqlx::Error> {
    rows.iter()
        .map(|r| {
            Ok(Started {
                seq: r.try_get("seq")?,
                attempt: count_u32(r, "attempt")?,
            })
        })
        .collect()
}

/// The successes of a batch of outcomes per webhook (in id order), as columns: how many, and
/// the latest.
struct Successes<'a> {
    ids: Vec<&'a str>,
    counts: Vec<i64>,
    lasts: Vec<i64>,
}

impl<'a> Successes<'a> {
    fn of(finished: &'a [Finished]) -> Successes<'a> {
        let mut per_webhook: BTreeMap<&str, (i64, Timestamp)> = BTreeMap::new();
        for f in finished.iter().filter(|f| f.end == AttemptEnd::Delivered) {
            let entry = per_webhook.entry(&f.job.webhook_id).or_insert((0, f.at));
            entry.0 += 1;
            entry.1 = entry.1.max(f.at);
        }
        Successes {
            ids: per_webhook.keys().copied().collect(),
            counts: per_webhook.values().map(|(n, _)| *n).collect(),
            lasts: per_webhook.values().map(|(_, at)| at.millis()).collect(),
        }
    }
}

/// The rest of the statement that starts attempts of the deliveries `seqs` (a parameter: their
/// `seq`s) that are still pending and whose webhook node `node` (a parameter) drives, returning
/// their `seq` and attempt. Each delivery is found through the primary key, whatever the planner
/// thinks of the table (a join with the webhook became a read of every pending delivery of it).
fn startable(seqs: &str, node: &str) -> String {
    format!(
        "WHERE d.seq = ANY(ARRAY( \
           SELECT p.seq FROM deliveries p WHERE p.seq = ANY({seqs}) AND p.status = 'pending' \
           AND (SELECT w.driver FROM webhooks w WHERE w.id = p.webhook_id) = {node})) \
         AND d.status = 'pending' RETURNING d.seq, d.attempt"
    )
}

/// Releases the leases of these deliveries, if still pending. Returns how many.
pub(super) async fn release(c: &mut PgConnection, seqs: &[i64]) -> Result<u64, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE deliveries SET lease_until = NULL WHERE seq = ANY($1) AND status = 'pending'",
    )
    .bind(seqs)
    .execute(c)
    .await?
    .rows_affected();
    Ok(n)
}

/// Records outcomes and the statistics that follow; returns how many deliveries were skipped
/// (and, as SQLite's does, the webhooks whose queue the store itself wrote to: none here). Successes are written all at once;
/// failures (rare) one by one, webhook by webhook in id order, so that two transactions over the
/// same webhooks lock their rows in the same order.
async fn finish_all(
    c: &mut PgConnection,
    finished: &[Finished],
) -> Result<(u64, Vec<String>), sqlx::Error> {
    let mut failures: Vec<&Finished> = finished
        .iter()
        .filter(|f| f.end != AttemptEnd::Delivered)
        .collect();
    failures.sort_by(|a, b| a.job.webhook_id.cmp(&b.job.webhook_id));
    let mut skipped = 0;
    for f in failures {
        skipped += finish_failed(c, &f.job, &f.end, f.at).await?;
    }
    let delivered: Vec<i64> = finished
        .iter()
        .filter(|f| f.end == AttemptEnd::Delivered)
        .map(|f| f.job.seq)
        .collect();
    if delivered.is_empty() {
        return Ok((skipped, Vec::new()));
    }
    sqlx::query(
        "UPDATE deliveries SET status = 'delivered', lease_until = NULL WHERE seq = ANY($1)",
    )
    .bind(&delivered)
    .execute(&mut *c)
    .await?;
    count_successes(c, finished).await?;
    Ok((skipped, Vec::new()))
}

async fn finish_failed(
    c: &mut PgConnection,
    job: &DeliveryJob,
    end: &AttemptEnd,
    now: Timestamp,
) -> Result<u64, sqlx::Error> {
    let mut skipped = 0;
    match end {
        AttemptEnd::Delivered => {}
        AttemptEnd::Retry { at } => {
            // A webhook that failed meanwhile (through another delivery) gets no retries.
            let live: bool = sqlx::query_scalar("SELECT NOT failed FROM webhooks WHERE id = $1")
                .bind(&job.webhook_id)
                .fetch_optional(&mut *c)
                .await?
                .unwrap_or(false);
            let status = if live { "pending" } else { "skipped" };
            skipped = u64::from(!live);
            sqlx::query(
                "UPDATE deliveries SET status = $2, next_at = $3, lease_until = NULL WHERE seq = $1",
            )
            .bind(job.seq)
            .bind(status)
            .bind(at.millis())
            .execute(&mut *c)
            .await?;
            if live {
                pause(c, job, *at).await?;
            }
        }
        AttemptEnd::Failed(failure) => {
            sqlx::query(
                "UPDATE deliveries SET status = 'failed', lease_until = NULL WHERE seq = $1",
            )
            .bind(job.seq)
            .execute(&mut *c)
            .await?;
            sqlx::query(
                "UPDATE webhooks SET total_attempts = total_attempts + 1, \
                 total_failures = total_failures + 1, failed = TRUE, last_failure = $2, \
                 last_http_error_code = $3, last_error_message = $4, paused_until = NULL \
                 WHERE id = $1",
            )
            .bind(&job.webhook_id)
            .bind(now.millis())
            .bind(&failure.code)
            .bind(&failure.message)
            .execute(&mut *c)
            .await?;
            // Not those in flight: they end by themselves (a lease left by a crash has run out).
            skipped = sqlx::query(
                "UPDATE deliveries SET status = 'skipped', lease_until = NULL \
                 WHERE webhook_id = $1 AND status = 'pending' \
                 AND (lease_until IS NULL OR lease_until <= $2)",
            )
            .bind(&job.webhook_id)
            .bind(now.millis())
            .execute(&mut *c)
            .await?
            .rows_affected();
        }
    }
    Ok(skipped)
}

/// Pauses a webhook after `probe`'s attempt failed (a circuit breaker): `probe` is retried at
/// `retry`; until a delivery succeeds, deliveries never tried may not go (the engine holds them).
/// So an endpoint that is down is tried once per retry interval. A success resumes it
/// ([`count_successes`]); a final failure skips what it held with the rest.
async fn pause(
    c: &mut PgConnection,
    probe: &DeliveryJob,
    retry: Timestamp,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE webhooks SET paused_until = $2 WHERE id = $1")
        .bind(&probe.webhook_id)
        .bind(retry.millis())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Adds the successes of a batch of outcomes to their webhooks' statistics, one statement for
/// all of them; a paused webhook that answered is resumed.
async fn count_successes(c: &mut PgConnection, finished: &[Finished]) -> Result<(), sqlx::Error> {
    let stats = Successes::of(finished);
    sqlx::query(
        "UPDATE webhooks w SET total_attempts = w.total_attempts + u.n, \
         total_successes = w.total_successes + u.n, paused_until = NULL, \
         last_success = GREATEST(COALESCE(w.last_success, 0), u.last) \
         FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) AS u(id, n, last) \
         WHERE w.id = u.id AND w.id = ANY($1)",
    )
    .bind(&stats.ids)
    .bind(&stats.counts)
    .bind(&stats.lasts)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Marks pending deliveries of failed or expired webhooks as skipped, and ends their pauses: a
/// renewed webhook starts afresh.
pub(super) async fn skip_undeliverable(
    c: &mut PgConnection,
    now: Timestamp,
) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "UPDATE webhooks SET paused_until = NULL \
         WHERE paused_until IS NOT NULL AND (failed OR expire_at <= $1)",
    )
    .bind(now.millis())
    .execute(&mut *c)
    .await?;
    let n = sqlx::query(
        "UPDATE deliveries SET status = 'skipped' WHERE status = 'pending' \
         AND (lease_until IS NULL OR lease_until <= $1) \
         AND webhook_id = ANY(ARRAY(SELECT id FROM webhooks WHERE failed OR expire_at <= $1))",
    )
    .bind(now.millis())
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(n)
}

/// Queues a live webhook's skipped deliveries again (those whose event happened at or after
/// `since`).
pub(super) async fn replay(
    c: &mut PgConnection,
    account_id: &str,
    user_id: &str,
    webhook_id: &str,
    since: Option<Timestamp>,
    now: Timestamp,
) -> Result<Replay, sqlx::Error> {
    let live: Option<bool> = sqlx::query_scalar(
        "SELECT NOT failed AND expire_at > $4 FROM webhooks \
         WHERE id = $1 AND account_id = $2 AND user_id = $3",
    )
    .bind(webhook_id)
    .bind(account_id)
    .bind(user_id)
    .bind(now.millis())
    .fetch_optional(&mut *c)
    .await?;
    match live {
        None => Ok(Replay::NoSuchWebhook),
        Some(false) => Ok(Replay::NotLive),
        Some(true) => {
            let n = sqlx::query(
                "UPDATE deliveries d SET status = 'pending', replayed_after = d.attempt, \
                 next_at = $2, lease_until = NULL \
                 WHERE d.webhook_id = $1 AND d.status = 'skipped' \
                 AND (SELECT e.at FROM call_events e WHERE e.seq = d.event_seq) >= $3",
            )
            .bind(webhook_id)
            .bind(now.millis())
            .bind(since.map_or(i64::MIN, Timestamp::millis))
            .execute(&mut *c)
            .await?
            .rows_affected();
            Ok(Replay::Queued(n))
        }
    }
}

/// How many deliveries are pending (held ones included) and when the oldest was queued.
pub(super) async fn backlog(pool: &PgPool) -> Result<Backlog, sqlx::Error> {
    let r = sqlx::query(
        "SELECT COUNT(*) AS pending, MIN(created_at) AS oldest FROM deliveries \
         WHERE status = 'pending'",
    )
    .fetch_one(pool)
    .await?;
    let pending: i64 = r.try_get("pending")?;
    Ok(Backlog {
        pending: u64::try_from(pending).unwrap_or(0),
        oldest: rows::opt_ts(&r, "oldest")?,
    })
}
