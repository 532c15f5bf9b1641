//! The outbox in SQLite: queuing deliveries with a call event, reading a webhook's queue,
//! starting attempts and recording how they ended with the webhook statistics, skipping and
//! replaying. Every function but [`load`] and [`find`] runs on the writer's connection, inside its
//! transaction; those two read.

use super::held::{HELD_CHUNK, insert, pause, write_held};
use crate::domain::Timestamp;
#[cfg(test)]
use crate::store::Failure;
use crate::store::sql::QUEUES_WITH_PENDING;
use crate::store::{
    Advanced, AttemptEnd, DeliveryJob, Finished, Fresh, QueuePage, Queued, Replay, Started, Target,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::sync::Arc;

/// Queues one delivery of event `event_seq` per webhook of the call's user: `pending` for live
/// webhooks, `skipped` for failed or expired ones. A live webhook that is paused after a failure,
/// or still working off what was held meanwhile, gets no row: its held range (`held_after`) covers
/// the event, and the row is written in turn once it resumes, or when it fails ([`write_held`]). So
/// a dead endpoint costs nothing per event, and a call's events keep their order. Returns how many
/// deliveries are pending (held ones included) and skipped, and the rows written pending, for the
/// engine.
pub(super) fn queue(
    c: &Connection,
    account_id: &str,
    user_id: &str,
    call_seq: i64,
    event_seq: i64,
    event: &Arc<str>,
    now: Timestamp,
) -> rusqlite::Result<(usize, usize, Vec<Fresh>)> {
    let webhooks: Vec<(String, bool, bool)> = c
        .prepare_cached(
            "SELECT id, failed = 0 AND expire_at > ?3, held_after IS NOT NULL \
             FROM webhooks WHERE account_id = ?1 AND user_id = ?2 ORDER BY seq",
        )?
        .query_map(params![account_id, user_id, now.millis()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut before = c.prepare_cached(
        "SELECT MAX(seq) FROM deliveries WHERE webhook_id = ?1 AND call_seq = ?2 \
         AND status = 'pending'",
    )?;
    let mut pending = 0;
    let mut fresh = Vec::new();
    for (webhook_id, live, held) in &webhooks {
        pending += usize::from(*live);
        if *live && *held {
            continue;
        }
        if !*live {
            insert(c, webhook_id, event_seq, call_seq, "skipped", now)?;
            continue;
        }
        let after: Option<i64> = before.query_row(params![webhook_id, call_seq], |r| r.get(0))?;
        let (seq, id) = insert(c, webhook_id, event_seq, call_seq, "pending", now)?;
        fresh.push(Fresh {
            webhook_id: webhook_id.clone(),
            delivery: Queued {
                seq,
                id,
                call_seq,
                attempts: 0,
                replayed_after: 0,
                due: now,
                event: event.clone(),
            },
            after,
        });
    }
    Ok((pending, webhooks.len() - pending, fresh))
}

/// The first `limit` pending deliveries of a webhook, in order, leaving out those in `skip`;
/// `None` when it is gone, failed or expired.
pub(super) fn load(
    c: &Connection,
    webhook_id: &str,
    limit: usize,
    skip: &[i64],
    now: Timestamp,
) -> rusqlite::Result<Option<QueuePage>> {
    let target = c
        .prepare_cached(
            "SELECT url, signing_algo, signing_key, metadata_policy, expire_at, \
             paused_until IS NOT NULL FROM webhooks \
             WHERE id = ?1 AND failed = 0 AND expire_at > ?2",
        )?
        .query_row(params![webhook_id, now.millis()], |r| {
            let (algo, policy): (String, String) = (r.get(1)?, r.get(3)?);
            let target = Target::from_columns(
                webhook_id.to_string(),
                r.get(0)?,
                &algo,
                r.get(2)?,
                &policy,
                r.get(4)?,
            );
            Ok((target, r.get::<_, bool>(5)?))
        })
        .optional()?;
    let Some((target, paused)) = target else {
        return Ok(None);
    };
    let skip_json = serde_json::to_string(skip).unwrap_or_else(|_| "[]".into());
    let deliveries: Vec<Queued> = c
        .prepare_cached(
            "SELECT d.seq, d.id, d.call_seq, d.attempt, d.replayed_after, d.next_at, e.body \
             FROM deliveries d JOIN call_events e ON e.seq = d.event_seq \
             WHERE d.webhook_id = ?1 AND d.status = 'pending' \
             AND d.seq NOT IN (SELECT value FROM json_each(?3)) ORDER BY d.seq LIMIT ?2",
        )?
        .query_map(params![webhook_id, limit as i64, skip_json], |r| {
            Ok(Queued {
                seq: r.get(0)?,
                id: r.get(1)?,
                call_seq: r.get(2)?,
                attempts: r.get(3)?,
                replayed_after: r.get(4)?,
                due: r.get(5)?,
                event: Arc::from(r.get::<_, String>(6)?),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(QueuePage {
        target,
        paused,
        complete: deliveries.len() < limit,
        deliveries,
    }))
}

/// The webhooks with pending deliveries, one index probe each (a loose scan of the queue index).
pub(super) fn find(c: &Connection) -> rusqlite::Result<Vec<String>> {
    c.prepare_cached(&format!(
        "{QUEUES_WITH_PENDING} SELECT webhook_id FROM q WHERE webhook_id IS NOT NULL"
    ))?
    .query_map([], |r| r.get(0))?
    .collect()
}

/// Records how attempts ended, then starts the attempts `start` asks for: see
/// [`crate::store::Store::advance`].
pub(super) fn advance(
    c: &Connection,
    finished: &[Finished],
    start: &[i64],
    lease_until: Timestamp,
) -> rusqlite::Result<Advanced> {
    let mut skipped = 0;
    for f in finished {
        skipped += self::finish(c, &f.job, &f.end, f.at)?;
    }
    let refilled = count_successes(c, finished)?;
    let mut begin = c.prepare_cached(
        "UPDATE deliveries SET attempt = attempt + 1, lease_until = ?2 \
         WHERE seq = ?1 AND status = 'pending' RETURNING attempt",
    )?;
    let mut started = Vec::with_capacity(start.len());
    for seq in start {
        if let Some(attempt) = begin
            .query_row(params![seq, lease_until.millis()], |r| r.get(0))
            .optional()?
        {
            started.push(Started { seq: *seq, attempt });
        }
    }
    Ok(Advanced {
        started,
        skipped,
        refilled,
    })
}

pub(super) fn release(c: &Connection, seqs: &[i64]) -> rusqlite::Result<u64> {
    let mut release = c.prepare_cached(
        "UPDATE deliveries SET lease_until = NULL WHERE seq = ?1 AND status = 'pending'",
    )?;
    let mut released = 0;
    for seq in seqs {
        released += release.execute([seq])? as u64;
    }
    Ok(released)
}

pub(super) fn finish(
    c: &Connection,
    job: &DeliveryJob,
    end: &AttemptEnd,
    now: Timestamp,
) -> rusqlite::Result<u64> {
    let mut skipped = 0;
    match end {
        AttemptEnd::Delivered => {
            c.prepare_cached(
                "UPDATE deliveries SET status = 'delivered', lease_until = NULL WHERE seq = ?1",
            )?
            .execute([job.seq])?;
            // The webhook's statistics are counted per batch: see `count_successes`.
        }
        AttemptEnd::Retry { at } => {
            // A webhook that failed meanwhile (through another delivery) gets no retries.
            let live: bool = c
                .prepare_cached("SELECT failed = 0 FROM webhooks WHERE id = ?1")?
                .query_row([&job.webhook_id], |r| r.get(0))
                .optional()?
                .unwrap_or(false);
            let status = if live { "pending" } else { "skipped" };
            skipped = u64::from(!live);
            c.prepare_cached(
                "UPDATE deliveries SET status = ?2, next_at = ?3, lease_until = NULL WHERE seq = ?1",
            )?
            .execute(params![job.seq, status, at.millis()])?;
            if live {
                pause(c, job, *at)?;
            }
        }
        AttemptEnd::Failed(failure) => {
            c.prepare_cached(
                "UPDATE deliveries SET status = 'failed', lease_until = NULL WHERE seq = ?1",
            )?
            .execute([job.seq])?;
            c.prepare_cached(
                "UPDATE webhooks SET total_attempts = total_attempts + 1, \
                 total_failures = total_failures + 1, failed = 1, last_failure = ?2, \
                 last_http_error_code = ?3, last_error_message = ?4, paused_until = NULL \
                 WHERE id = ?1",
            )?
            .execute(params![
                job.webhook_id,
                now.millis(),
                failure.code,
                failure.message
            ])?;
            // Written as skipped, so that a replay after a renewal finds them.
            skipped = write_held(c, &job.webhook_id, "skipped", now, None)?;
            // Not those in flight: they end by themselves (a lease left by a crash has run out).
            skipped += c
                .prepare_cached(
                    "UPDATE deliveries SET status = 'skipped', lease_until = NULL \
                     WHERE webhook_id = ?1 AND status = 'pending' \
                     AND (lease_until IS NULL OR lease_until <= ?2)",
                )?
                .execute(params![job.webhook_id, now.millis()])? as u64;
        }
    }
    Ok(skipped)
}

/// Adds the successes of a batch of outcomes to their webhooks' statistics: one update per webhook
/// rather than one per delivery. A paused webhook that answered is resumed, and the rows of the
/// events held meanwhile are written. Returns the webhooks whose queue got rows written.
pub(super) fn count_successes(
    c: &Connection,
    finished: &[Finished],
) -> rusqlite::Result<Vec<String>> {
    let mut per_webhook: HashMap<&str, (i64, Timestamp)> = HashMap::new();
    for f in finished.iter().filter(|f| f.end == AttemptEnd::Delivered) {
        let entry = per_webhook.entry(&f.job.webhook_id).or_insert((0, f.at));
        entry.0 += 1;
        entry.1 = entry.1.max(f.at);
    }
    let mut update = c.prepare_cached(
        "UPDATE webhooks SET total_attempts = total_attempts + ?2, \
         total_successes = total_successes + ?2, paused_until = NULL, \
         last_success = MAX(COALESCE(last_success, 0), ?3) WHERE id = ?1 \
         RETURNING held_after IS NOT NULL",
    )?;
    let mut pending = c.prepare_cached(
        "SELECT COUNT(*) FROM (SELECT 1 FROM deliveries WHERE webhook_id = ?1 \
         AND status = 'pending' LIMIT ?2)",
    )?;
    let mut refilled = Vec::new();
    for (webhook_id, (count, last)) in per_webhook {
        let held: bool = update
            .query_row(params![webhook_id, count, last.millis()], |r| r.get(0))
            .optional()?
            .unwrap_or(false);
        // A resumed webhook works off its held range a chunk at a time, as its rows go out.
        if held {
            let waiting: i64 =
                pending.query_row(params![webhook_id, HELD_CHUNK as i64], |r| r.get(0))?;
            if waiting < HELD_CHUNK as i64
                && write_held(c, webhook_id, "pending", last, Some(HELD_CHUNK))? > 0
            {
                refilled.push(webhook_id.to_string());
            }
        }
    }
    Ok(refilled)
}

pub(super) fn skip_undeliverable(c: &Connection, now: Timestamp) -> rusqlite::Result<u64> {
    // Expired while paused or working off a held range: the held events get their (skipped) rows,
    // for a replay after renewal, and the pause ends with the rest (its probe is skipped below),
    // so a renewed webhook starts afresh.
    let expired_held: Vec<String> = c
        .prepare_cached(
            "SELECT id FROM webhooks WHERE held_after IS NOT NULL AND (failed = 1 OR expire_at <= ?1)",
        )?
        .query_map([now.millis()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut n = 0;
    for webhook_id in &expired_held {
        n += write_held(c, webhook_id, "skipped", now, None)?;
        c.prepare_cached("UPDATE webhooks SET paused_until = NULL WHERE id = ?1")?
            .execute([webhook_id])?;
    }
    n += c.execute(
        "UPDATE deliveries SET status = 'skipped' WHERE status = 'pending' \
         AND (lease_until IS NULL OR lease_until <= ?1) \
         AND webhook_id IN (SELECT id FROM webhooks WHERE failed = 1 OR expire_at <= ?1)",
        [now.millis()],
    )? as u64;
    Ok(n)
}

pub(super) fn replay(
    c: &Connection,
    account_id: &str,
    user_id: &str,
    webhook_id: &str,
    since: Option<Timestamp>,
    now: Timestamp,
) -> rusqlite::Result<Replay> {
    let live: Option<bool> = c
        .query_row(
            "SELECT failed = 0 AND expire_at > ?4 FROM webhooks \
             WHERE id = ?1 AND account_id = ?2 AND user_id = ?3",
            params![webhook_id, account_id, user_id, now.millis()],
            |r| r.get(0),
        )
        .optional()?;
    match live {
        None => Ok(Replay::NoSuchWebhook),
        Some(false) => Ok(Replay::NotLive),
        Some(true) => {
            let n = c.execute(
                "UPDATE deliveries SET status = 'pending', replayed_after = attempt, next_at = ?2, lease_until = NULL \
                 WHERE webhook_id = ?1 AND status = 'skipped' \
                 AND (SELECT at FROM call_events e WHERE e.seq = event_seq) >= ?3",
                params![webhook_id, now.millis(), since.map_or(i64::MIN, Timestamp::millis)],
            )?;
            Ok(Replay::Queued(n as u64))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::held::backlog;
    use super::*;

    fn body() -> Arc<str> {
        Arc::from("{}")
    }

    /// A database with webhooks `a` and `b`, and `a_calls` calls of `a`'s user each with one due
    /// delivery, older than one due delivery of `b`.
    fn outbox(a_calls: i64) -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut c).unwrap();
        for (seq, id) in [(1, "a"), (2, "b")] {
            c.execute(
                "INSERT INTO webhooks (seq, id, account_id, user_id, url, events, signing_algo, \
                 metadata_policy, expire_at, created_at, created_by, purge_at) \
                 VALUES (?1, ?2, 'acc', ?2, 'http://x/', '[]', 'NONE', 'NONE', 2e14, 0, 'u', 2e14)",
                params![seq, id],
            )
            .unwrap();
        }
        let add = |call: i64, webhook: &str, at: i64| {
            c.execute(
                "INSERT INTO calls (seq, id, account_id, external_id, user_id, direction, \
                 phone_number, internal, ucp_type, state, start_time, duration, updated_at) \
                 VALUES (?1, ?1, 'acc', ?1, ?2, 'INBOUND', '1', 0, 'VBS', 'RINGING', 0, 0, 0)",
                params![call, webhook],
            )
            .unwrap();
            c.execute(
                "INSERT INTO call_events (seq, call_seq, state, at, body) VALUES (?1, ?1, 'RINGING', 0, '{}')",
                [call],
            )
            .unwrap();
            c.execute(
                "INSERT INTO deliveries (id, webhook_id, event_seq, call_seq, status, next_at, created_at) \
                 VALUES (?1, ?2, ?1, ?1, 'pending', ?3, ?3)",
                params![call, webhook, at],
            )
            .unwrap();
        };
        for call in 1..=a_calls {
            add(call, "a", 1);
        }
        add(a_calls + 1, "b", 2);
        c
    }

    /// Starts the first pending delivery of `webhook` as the engine would: read the queue, start
    /// its head.
    fn first_of(c: &Connection, webhook: &str) -> DeliveryJob {
        let now = Timestamp::from_millis(10).unwrap();
        let page = load(c, webhook, 1, &[], now)
            .unwrap()
            .expect("a live webhook");
        let first = &page.deliveries[0];
        let advanced = advance(c, &[], &[first.seq], Timestamp::from_millis(100).unwrap()).unwrap();
        DeliveryJob::new(&page.target, first, advanced.started[0])
    }

    #[test]
    fn a_queue_is_read_in_order_a_page_at_a_time_leaving_out_what_is_known() {
        let c = outbox(5);
        let now = Timestamp::from_millis(10).unwrap();
        let page = load(&c, "a", 3, &[], now).unwrap().unwrap();
        let seqs: Vec<i64> = page.deliveries.iter().map(|d| d.seq).collect();
        assert_eq!((seqs.as_slice(), page.complete), (&[1, 2, 3][..], false));
        let rest = load(&c, "a", 3, &[1, 3], now).unwrap().unwrap();
        let seqs: Vec<i64> = rest.deliveries.iter().map(|d| d.seq).collect();
        assert_eq!((seqs.as_slice(), rest.complete), (&[2, 4, 5][..], false));
        let all = load(&c, "a", 10, &[], now).unwrap().unwrap();
        assert!(all.complete);
        assert_eq!(page.target.url, "http://x/");
        assert_eq!(find(&c).unwrap(), ["a", "b"]);
        c.execute("UPDATE webhooks SET failed = 1 WHERE id = 'a'", [])
            .unwrap();
        assert_eq!(
            load(&c, "a", 3, &[], now).unwrap(),
            None,
            "nothing of a failed webhook"
        );
    }

    #[test]
    fn starting_counts_an_attempt_and_only_starts_what_is_still_pending() {
        let c = outbox(2);
        c.execute("UPDATE deliveries SET status = 'skipped' WHERE seq = 2", [])
            .unwrap();
        let lease = Timestamp::from_millis(100).unwrap();
        let first = advance(&c, &[], &[1, 2], lease).unwrap();
        assert_eq!(first.started, [Started { seq: 1, attempt: 1 }]);
        let again = advance(&c, &[], &[1], lease).unwrap();
        assert_eq!(
            again.started,
            [Started { seq: 1, attempt: 2 }],
            "a repeat counts higher"
        );
    }

    /// Whether `webhook`'s queue reads as paused, and when its first delivery is due.
    fn paused_and_first_due(c: &Connection, webhook: &str) -> (bool, i64) {
        let page = load(c, webhook, 10, &[], Timestamp::from_millis(10).unwrap())
            .unwrap()
            .expect("live");
        (page.paused, page.deliveries[0].due.millis())
    }

    #[test]
    fn a_failure_pauses_the_webhook_until_a_success_and_its_events_meanwhile_write_no_row() {
        let c = outbox(3);
        let probe = first_of(&c, "a");
        assert_eq!(probe.webhook_id, "a");
        let retry = Timestamp::from_millis(50).unwrap();
        finish(
            &c,
            &probe,
            &AttemptEnd::Retry { at: retry },
            Timestamp::from_millis(10).unwrap(),
        )
        .unwrap();
        // The queue reads paused, the probe due at its retry.
        assert_eq!(paused_and_first_due(&c, "a"), (true, 50));
        let rows = |c: &Connection| -> i64 {
            c.query_row(
                "SELECT COUNT(*) FROM deliveries WHERE webhook_id = 'a'",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        let before = rows(&c);
        c.execute(
            "INSERT INTO call_events (seq, call_seq, state, at, body) VALUES (99, 1, 'ACTIVE', 20, '{}')",
            [],
        )
        .unwrap();
        let (pending, skipped, _) = queue(
            &c,
            "acc",
            "a",
            1,
            99,
            &body(),
            Timestamp::from_millis(20).unwrap(),
        )
        .unwrap();
        assert_eq!((pending, skipped), (1, 0));
        assert_eq!(rows(&c), before, "queued while paused: no row written");
        assert_eq!(
            backlog(&c).unwrap().pending,
            5,
            "a, a, a (probe and two held), the held event, b"
        );
        assert!(
            !paused_and_first_due(&c, "b").0,
            "another webhook is not affected"
        );
        // The probe succeeds: the pause ends, and the held event gets its row.
        let delivered = Finished {
            job: probe.clone(),
            end: AttemptEnd::Delivered,
            at: Timestamp::from_millis(60).unwrap(),
        };
        finish(&c, &probe, &AttemptEnd::Delivered, delivered.at).unwrap();
        count_successes(&c, &[delivered]).unwrap();
        assert!(!paused_and_first_due(&c, "a").0);
        assert_eq!(
            rows(&c),
            before + 1,
            "the held event's row is written on resume"
        );
    }

    #[test]
    fn a_final_failure_writes_the_held_events_as_skipped_for_a_later_replay() {
        let c = outbox(1);
        let probe = first_of(&c, "a");
        let at = Timestamp::from_millis(10).unwrap();
        finish(&c, &probe, &AttemptEnd::Retry { at }, at).unwrap();
        for seq in [50, 51] {
            c.execute(
                "INSERT INTO call_events (seq, call_seq, state, at, body) VALUES (?1, 1, 'ACTIVE', 20, '{}')",
                [seq],
            )
            .unwrap();
            queue(&c, "acc", "a", 1, seq, &body(), at).unwrap();
        }
        let failure = Failure {
            code: "500".into(),
            message: "no".into(),
        };
        let skipped = finish(&c, &probe, &AttemptEnd::Failed(failure), at).unwrap();
        assert_eq!(skipped, 2);
        let statuses: Vec<(i64, String)> = c
            .prepare("SELECT event_seq, status FROM deliveries WHERE webhook_id = 'a' ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let skipped = |e: i64| (e, "skipped".to_string());
        assert_eq!(
            statuses,
            [(1, "failed".to_string()), skipped(50), skipped(51)]
        );
    }

    /// Pauses webhook `a` of `outbox(1)` (its one delivery fails and is retried) and queues
    /// `events` more events of call 1 while it is paused; returns the probe.
    fn paused_with_held_events(c: &Connection, events: i64) -> DeliveryJob {
        let probe = first_of(c, "a");
        let at = Timestamp::from_millis(10).unwrap();
        finish(c, &probe, &AttemptEnd::Retry { at }, at).unwrap();
        for seq in 100..100 + events {
            c.execute(
                "INSERT INTO call_events (seq, call_seq, state, at, body) VALUES (?1, 1, 'ACTIVE', 20, '{}')",
                [seq],
            )
            .unwrap();
            queue(c, "acc", "a", 1, seq, &body(), at).unwrap();
        }
        probe
    }

    fn rows_of_a(c: &Connection, status: &str) -> i64 {
        c.query_row(
            "SELECT COUNT(*) FROM deliveries WHERE webhook_id = 'a' AND status = ?1",
            [status],
            |r| r.get(0),
        )
        .unwrap()
    }

    fn held_after(c: &Connection) -> Option<i64> {
        c.query_row("SELECT held_after FROM webhooks WHERE id = 'a'", [], |r| {
            r.get(0)
        })
        .unwrap()
    }

    fn succeed(c: &Connection, job: &DeliveryJob, at: i64) {
        let f = Finished {
            job: job.clone(),
            end: AttemptEnd::Delivered,
            at: Timestamp::from_millis(at).unwrap(),
        };
        finish(c, job, &f.end, f.at).unwrap();
        count_successes(c, &[f]).unwrap();
    }

    #[test]
    fn a_resumed_webhook_works_off_its_held_events_a_chunk_at_a_time_in_order() {
        let held = HELD_CHUNK as i64 + 76;
        let c = outbox(1);
        let probe = paused_with_held_events(&c, held);
        assert_eq!(rows_of_a(&c, "pending"), 1, "only the probe has a row");
        assert_eq!(backlog(&c).unwrap().pending, 2 + held as u64);

        succeed(&c, &probe, 60);

        // The first chunk, in event order; the rest still held, and new events still wait behind.
        assert_eq!(rows_of_a(&c, "pending"), HELD_CHUNK as i64);
        assert_eq!(held_after(&c), Some(100 + HELD_CHUNK as i64 - 1));
        let first: Vec<i64> = c
            .prepare("SELECT event_seq FROM deliveries WHERE webhook_id = 'a' AND status = 'pending' ORDER BY seq LIMIT 3")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(first, [100, 101, 102]);
        assert_eq!(backlog(&c).unwrap().pending, 1 + held as u64, "b's and a's");

        // Once they went out, the next success writes the rest and ends the range.
        c.execute(
            "UPDATE deliveries SET status = 'delivered' WHERE webhook_id = 'a'",
            [],
        )
        .unwrap();
        succeed(&c, &probe, 70);
        assert_eq!(rows_of_a(&c, "pending"), 76);
        assert_eq!(held_after(&c), None);
        queue(
            &c,
            "acc",
            "a",
            1,
            1,
            &body(),
            Timestamp::from_millis(80).unwrap(),
        )
        .unwrap();
        assert_eq!(
            rows_of_a(&c, "pending"),
            77,
            "rows are written per event again"
        );
    }

    #[test]
    fn a_webhook_that_expires_while_paused_gets_its_held_events_skipped_and_starts_afresh() {
        let c = outbox(1);
        paused_with_held_events(&c, 3);
        c.execute("UPDATE webhooks SET expire_at = 5 WHERE id = 'a'", [])
            .unwrap();

        let skipped = skip_undeliverable(&c, Timestamp::from_millis(30).unwrap()).unwrap();

        assert_eq!(skipped, 4, "the three held events and the probe");
        assert_eq!(rows_of_a(&c, "skipped"), 4);
        assert_eq!(held_after(&c), None);
        // Renewed: new events are queued as usual, not held behind a probe that is gone.
        c.execute("UPDATE webhooks SET expire_at = 2e14 WHERE id = 'a'", [])
            .unwrap();
        queue(
            &c,
            "acc",
            "a",
            1,
            1,
            &body(),
            Timestamp::from_millis(40).unwrap(),
        )
        .unwrap();
        assert_eq!(rows_of_a(&c, "pending"), 1);
        assert!(!paused_and_first_due(&c, "a").0);
    }
}
