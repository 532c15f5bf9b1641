//! The outbox in PostgreSQL: queuing deliveries with a call event, claiming them under leases in
//! per-(webhook, call) order, recording outcomes and webhook statistics, skipping and replaying.
//! Every function runs inside the caller's transaction, which several nodes run at once.
//!
//! The circuit breaker is the form SQLite had before its schema version 4: a failed attempt
//! pauses its webhook and holds (never due) its other pending deliveries, and deliveries queued
//! meanwhile are written held too; a success resumes them. SQLite's version 4 instead writes no
//! row while paused and remembers the last event seq that has rows (`held_after`). That is not
//! done here: with concurrent transactions, sequence values are not committed in order, so "every
//! event up to seq N has its rows" can be false when it is read (an event with a lower seq may
//! still commit), and events would be lost. `webhooks.held_after` exists but stays NULL.

use super::rows::to_ts;
use super::rows::{self, count_u32};
use crate::domain::Timestamp;
use crate::domain::webhook::{MetadataPolicy, SigningAlgo};
use crate::store::{AttemptEnd, Backlog, Claim, Claimed, DeliveryJob, Finished, Replay};
use sqlx::{PgConnection, PgPool, Row};
use std::collections::BTreeMap;

/// `next_at` of the deliveries held while their webhook is paused (see [`pause`]): never due.
const HELD: i64 = Timestamp::LATEST.millis();

/// Queues one delivery of event `event_seq` per webhook of the call's user: `pending` for live
/// webhooks (due now, or held while the webhook is paused after a failure), `skipped` for failed
/// or expired ones. Returns how many are pending and skipped.
///
/// Webhook rows are read, not locked: a pause committed by another node after this read leaves
/// this event's row due now instead of held. That only costs the paused endpoint an early
/// attempt (the claim's per-call order still holds); locking would make every event wait for
/// every outcome recorded for its webhooks.
pub(super) async fn queue(
    c: &mut PgConnection,
    account_id: &str,
    user_id: &str,
    call_seq: i64,
    event_seq: i64,
    now: Timestamp,
) -> Result<(usize, usize), sqlx::Error> {
    let webhooks = sqlx::query(
        "SELECT id, NOT failed AND expire_at > $3 AS live, paused_until IS NOT NULL AS paused \
         FROM webhooks WHERE account_id = $1 AND user_id = $2 ORDER BY seq",
    )
    .bind(account_id)
    .bind(user_id)
    .bind(now.millis())
    .fetch_all(&mut *c)
    .await?;
    if webhooks.is_empty() {
        return Ok((0, 0));
    }
    let (mut ids, mut webhook_ids, mut statuses, mut due) = (vec![], vec![], vec![], vec![]);
    let mut pending = 0;
    for w in &webhooks {
        let live: bool = w.try_get("live")?;
        let paused: bool = w.try_get("paused")?;
        pending += usize::from(live);
        // Time-ordered ids keep the unique index append-only.
        ids.push(uuid::Uuid::now_v7().to_string());
        webhook_ids.push(w.try_get::<String, _>("id")?);
        statuses.push(if live { "pending" } else { "skipped" });
        due.push(if paused { HELD } else { now.millis() });
    }
    sqlx::query(
        "INSERT INTO deliveries (id, webhook_id, event_seq, call_seq, status, attempt, next_at, created_at) \
         SELECT r.id, r.webhook_id, $5, $6, r.status, 0, r.next_at, $7 \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[]) AS r(id, webhook_id, status, next_at)",
    )
    .bind(&ids)
    .bind(&webhook_ids)
    .bind(&statuses)
    .bind(&due)
    .bind(event_seq)
    .bind(call_seq)
    .bind(now.millis())
    .execute(&mut *c)
    .await?;
    Ok((pending, webhooks.len() - pending))
}

/// Candidates scanned per claimed delivery, to find enough that fit under the per-webhook cap.
const SCAN_FACTOR: usize = 4;

/// Claims due deliveries, as SQLite does, for one node among several: the candidates are locked
/// (`FOR UPDATE OF d SKIP LOCKED`: rows another node is claiming right now are passed over, not
/// waited for) and leased in the same transaction, and a leased row is not a candidate until
/// its lease runs out, so no delivery goes to two nodes while its lease holds. A delivery with an
/// earlier pending one of the same webhook and call is never a candidate, whichever node holds
/// that one, so each call's events go out in order across the cluster.
pub(super) async fn claim(c: &mut PgConnection, claim: &Claim) -> Result<Claimed, sqlx::Error> {
    let now = claim.now.millis();
    let scan = i64::try_from(claim.limit.saturating_mul(SCAN_FACTOR)).unwrap_or(i64::MAX);
    // Webhooks without room are left out in the query, not after it: otherwise the due
    // deliveries of a few saturated (say, hanging) webhooks could fill every scan and starve
    // the rest.
    let full: Vec<&str> = claim
        .room
        .iter()
        .filter(|(_, left)| **left == 0)
        .map(|(id, _)| id.as_str())
        .collect();
    let candidates = sqlx::query(
        "SELECT d.seq, d.id, d.webhook_id, w.url, w.signing_algo, w.signing_key, \
                w.metadata_policy, d.attempt, e.body, d.replayed_after \
         FROM deliveries d \
         JOIN webhooks w ON w.id = d.webhook_id \
         JOIN call_events e ON e.seq = d.event_seq \
         WHERE d.status = 'pending' AND d.next_at <= $1 \
           AND (d.lease_until IS NULL OR d.lease_until <= $1) \
           AND NOT w.failed AND w.expire_at > $1 \
           AND d.webhook_id <> ALL($3::text[]) \
           AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.webhook_id = d.webhook_id \
                           AND p.call_seq = d.call_seq AND p.status = 'pending' AND p.seq < d.seq) \
         ORDER BY d.next_at, d.seq LIMIT $2 \
         FOR UPDATE OF d SKIP LOCKED",
    )
    .bind(now)
    .bind(scan)
    .bind(&full)
    .fetch_all(&mut *c)
    .await?;
    let mut room = claim.room.clone();
    let mut jobs = Vec::new();
    for r in &candidates {
        if jobs.len() >= claim.limit {
            break;
        }
        let webhook_id: String = r.try_get("webhook_id")?;
        let left = room.entry(webhook_id.clone()).or_insert(claim.fresh_room);
        if *left == 0 {
            continue;
        }
        *left -= 1;
        let algo: String = r.try_get("signing_algo")?;
        let key: Option<String> = r.try_get("signing_key")?;
        let signing_key = key.filter(|k| {
            !k.is_empty() && SigningAlgo::parse(&algo) == Some(SigningAlgo::HmacSha256)
        });
        let policy: String = r.try_get("metadata_policy")?;
        jobs.push(DeliveryJob {
            seq: r.try_get("seq")?,
            id: r.try_get("id")?,
            webhook_id,
            url: r.try_get("url")?,
            signing_key,
            metadata_policy: MetadataPolicy::parse(&policy).unwrap_or(MetadataPolicy::None),
            attempt: count_u32(r, "attempt")?.saturating_add(1),
            replayed_after: count_u32(r, "replayed_after")?,
            event: r.try_get("body")?,
        });
    }
    if !jobs.is_empty() {
        let seqs: Vec<i64> = jobs.iter().map(|j| j.seq).collect();
        sqlx::query(
            "UPDATE deliveries SET lease_until = $2, attempt = attempt + 1 WHERE seq = ANY($1)",
        )
        .bind(&seqs)
        .bind(claim.lease_until.millis())
        .execute(&mut *c)
        .await?;
    }
    let next_retry: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(next_at) FROM deliveries WHERE status = 'pending' AND next_at > $1 \
         AND next_at < $2",
    )
    .bind(now)
    .bind(HELD)
    .fetch_one(&mut *c)
    .await?;
    Ok(Claimed {
        jobs,
        next_retry: next_retry.map(|ms| to_ts("next_at", ms)).transpose()?,
    })
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
/// and how many held ones were resumed. Outcomes are applied webhook by webhook (in id order,
/// each webhook's in the given order), so that nodes finishing batches over the same webhooks
/// lock their rows in the same order instead of deadlocking.
pub(super) async fn finish_all(
    c: &mut PgConnection,
    finished: &[Finished],
) -> Result<(u64, u64), sqlx::Error> {
    let mut ordered: Vec<&Finished> = finished.iter().collect();
    ordered.sort_by(|a, b| a.job.webhook_id.cmp(&b.job.webhook_id));
    let mut skipped = 0;
    for f in ordered {
        skipped += finish(c, &f.job, &f.end, f.at).await?;
    }
    let resumed = count_successes(c, finished).await?;
    Ok((skipped, resumed))
}

async fn finish(
    c: &mut PgConnection,
    job: &DeliveryJob,
    end: &AttemptEnd,
    now: Timestamp,
) -> Result<u64, sqlx::Error> {
    let mut skipped = 0;
    match end {
        AttemptEnd::Delivered => {
            sqlx::query(
                "UPDATE deliveries SET status = 'delivered', lease_until = NULL WHERE seq = $1",
            )
            .bind(job.seq)
            .execute(&mut *c)
            .await?;
            // The webhook's statistics are counted per batch: see `count_successes`.
        }
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
            skipped = sqlx::query(
                "UPDATE deliveries SET status = 'skipped', lease_until = NULL \
                 WHERE webhook_id = $1 AND status = 'pending' AND lease_until IS NULL",
            )
            .bind(&job.webhook_id)
            .execute(&mut *c)
            .await?
            .rows_affected();
        }
    }
    Ok(skipped)
}

/// Pauses a webhook after `probe`'s attempt failed (a circuit breaker): `probe` is retried at
/// `retry`, while the webhook's other pending deliveries not in flight, and those queued until a
/// delivery succeeds, are held (never due). So an endpoint that is down is tried once per retry
/// interval, and its backlog stays out of the claim's scan. A success releases them
/// ([`count_successes`]); a final failure skips them with the rest.
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
    sqlx::query(
        "UPDATE deliveries SET next_at = $3 WHERE webhook_id = $1 AND status = 'pending' \
         AND lease_until IS NULL AND seq <> $2 AND next_at < $3",
    )
    .bind(&probe.webhook_id)
    .bind(probe.seq)
    .bind(HELD)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Adds the successes of a batch of outcomes to their webhooks' statistics: one update per
/// webhook rather than one per delivery, in webhook id order. A paused webhook that answered is
/// resumed: its held deliveries are due now. Returns how many held deliveries were resumed.
async fn count_successes(c: &mut PgConnection, finished: &[Finished]) -> Result<u64, sqlx::Error> {
    let mut per_webhook: BTreeMap<&str, (i64, Timestamp)> = BTreeMap::new();
    for f in finished.iter().filter(|f| f.end == AttemptEnd::Delivered) {
        let entry = per_webhook.entry(&f.job.webhook_id).or_insert((0, f.at));
        entry.0 += 1;
        entry.1 = entry.1.max(f.at);
    }
    let mut resumed = 0;
    for (webhook_id, (count, last)) in per_webhook {
        // Through the partial index of pending deliveries by webhook: one index probe that
        // finds nothing unless the webhook was paused.
        resumed += sqlx::query(
            "UPDATE deliveries SET next_at = $2 WHERE webhook_id = $1 AND status = 'pending' \
             AND next_at = $3",
        )
        .bind(webhook_id)
        .bind(last.millis())
        .bind(HELD)
        .execute(&mut *c)
        .await?
        .rows_affected();
        sqlx::query(
            "UPDATE webhooks SET total_attempts = total_attempts + $2, \
             total_successes = total_successes + $2, paused_until = NULL, \
             last_success = GREATEST(COALESCE(last_success, 0), $3) WHERE id = $1",
        )
        .bind(webhook_id)
        .bind(count)
        .bind(last.millis())
        .execute(&mut *c)
        .await?;
    }
    Ok(resumed)
}

/// Marks pending deliveries of failed or expired webhooks as skipped; once per cluster (0 when
/// another node did it within the last second).
pub(super) async fn skip_undeliverable(
    c: &mut PgConnection,
    now: Timestamp,
) -> Result<u64, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE deliveries SET status = 'skipped' WHERE status = 'pending' AND lease_until IS NULL \
         AND webhook_id IN (SELECT id FROM webhooks WHERE failed OR expire_at <= $1)",
    )
    .bind(now.millis())
    .execute(c)
    .await?
    .rows_affected();
    Ok(n)
}

/// Queues a live webhook's skipped deliveries again (those whose event happened at or after
/// `since`), waking the nodes when there are any.
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
                "UPDATE deliveries SET status = 'pending', replayed_after = attempt, next_at = $2, \
                 lease_until = NULL WHERE webhook_id = $1 AND status = 'skipped' \
                 AND event_seq IN (SELECT seq FROM call_events WHERE at >= $3)",
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
