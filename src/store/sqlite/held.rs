//! The circuit breaker's side of the SQLite outbox: pausing a webhook after a failed attempt,
//! and its held range, the events that wrote no delivery row for it while it was paused (or while
//! it works off what was held), written a chunk at a time once it resumes, or all at once as
//! skipped when it fails or expires. Runs on the writer's connection, inside its transaction;
//! used by [`super::deliveries`].

use crate::domain::Timestamp;
use crate::store::{Backlog, DeliveryJob};
use rusqlite::{Connection, params};

/// Writes one delivery row, due at `now`; returns its `seq` and id.
pub(super) fn insert(
    c: &Connection,
    webhook_id: &str,
    event_seq: i64,
    call_seq: i64,
    status: &str,
    now: Timestamp,
) -> rusqlite::Result<(i64, String)> {
    // Time-ordered ids keep the unique index append-only.
    let id = uuid::Uuid::now_v7().to_string();
    c.prepare_cached(
        "INSERT INTO deliveries (id, webhook_id, event_seq, call_seq, status, attempt, next_at, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6)",
    )?
    .execute(params![id, webhook_id, event_seq, call_seq, status, now.millis()])?;
    Ok((c.last_insert_rowid(), id))
}

/// The events of a webhook's user after its `held_after` without a row for it: its held range.
const HELD_EVENTS: &str = "FROM webhooks w \
     JOIN calls k ON k.account_id = w.account_id AND k.user_id = w.user_id \
     JOIN call_events e ON e.call_seq = k.seq AND e.seq > w.held_after \
     WHERE NOT EXISTS (SELECT 1 FROM deliveries d \
         WHERE d.webhook_id = w.id AND d.call_seq = e.call_seq AND d.event_seq = e.seq)";

/// How many deliveries are waiting: pending rows, and the held ranges of paused live webhooks
/// (rows not written yet).
pub(super) fn backlog(c: &Connection) -> rusqlite::Result<Backlog> {
    let (rows, oldest): (i64, Option<Timestamp>) = c
        .prepare_cached(
            "SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE status = 'pending'",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let held: i64 = c
        .prepare_cached(&format!(
            "SELECT COUNT(*) {HELD_EVENTS} AND w.held_after IS NOT NULL AND w.failed = 0"
        ))?
        .query_row([], |r| r.get(0))?;
    // While a webhook is paused its probe is pending, older than any held event: `oldest` holds.
    Ok(Backlog {
        pending: (rows + held) as u64,
        oldest,
    })
}

/// Rows written at a time when a resumed webhook works off its held range: its pending rows stay
/// under about twice this, so a long outage does not turn into one huge write, nor into a block of
/// one webhook's rows that every claim has to read past while that webhook has no room.
pub(super) const HELD_CHUNK: usize = 1024;

/// Writes rows for a webhook's held range (the events of its user after `held_after` that have no
/// row for it yet, in event order), with `status`, due at `now`: the first `limit` of them, or all.
/// The range then starts after the last one written, or ends (`held_after` NULL) when none is left.
/// Returns how many rows were written.
pub(super) fn write_held(
    c: &Connection,
    webhook_id: &str,
    status: &str,
    now: Timestamp,
    limit: Option<usize>,
) -> rusqlite::Result<u64> {
    let limit = limit.map_or(-1, |n| n as i64);
    // Events in seq order from the range's start (the events table's own order), each checked
    // for its call's owner and for a row already written: a chunk costs about its own size,
    // however long the range is.
    let events: Vec<(i64, i64)> = c
        .prepare_cached(
            "SELECT e.seq, e.call_seq FROM webhooks w CROSS JOIN call_events e \
             CROSS JOIN calls k ON k.seq = e.call_seq \
             WHERE w.id = ?1 AND e.seq > w.held_after \
             AND k.account_id = w.account_id AND k.user_id = w.user_id \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = w.id \
                 AND d.call_seq = e.call_seq AND d.event_seq = e.seq) \
             ORDER BY e.seq LIMIT ?2",
        )?
        .query_map(params![webhook_id, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (event_seq, call_seq) in &events {
        insert(c, webhook_id, *event_seq, *call_seq, status, now)?;
    }
    let more = limit >= 0 && events.len() as i64 == limit;
    let held_after = events.last().filter(|_| more).map(|(seq, _)| *seq);
    c.prepare_cached("UPDATE webhooks SET held_after = ?2 WHERE id = ?1")?
        .execute(params![webhook_id, held_after])?;
    Ok(events.len() as u64)
}

/// Pauses a webhook after `probe`'s attempt failed (a circuit breaker): `probe` is retried at
/// `retry`; until a delivery succeeds, deliveries never tried may not go (the engine holds them),
/// and the events that follow write no row for it (`held_after`: every event so far has its
/// row). So an endpoint that is down is tried once per retry interval, and neither its backlog
/// nor new events weigh on the outbox. A success resumes it
/// ([`super::deliveries::count_successes`]); a final failure skips what it held with the rest.
pub(super) fn pause(c: &Connection, probe: &DeliveryJob, retry: Timestamp) -> rusqlite::Result<()> {
    c.prepare_cached(
        "UPDATE webhooks SET paused_until = ?2, \
         held_after = COALESCE(held_after, (SELECT MAX(seq) FROM call_events)) WHERE id = ?1",
    )?
    .execute(params![probe.webhook_id, retry.millis()])?;
    Ok(())
}
