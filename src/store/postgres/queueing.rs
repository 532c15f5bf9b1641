//! Writing a batch's events and the deliveries they queue, in one statement, and reading the
//! webhooks of the batch's users beforehand (outside the batch's transaction, while it locks the
//! calls: webhook rows are read, not locked, so when in the batch they are read does not matter;
//! locking them would make every event wait for every outcome recorded for its webhooks).
//!
//! Each event gets one delivery per webhook of its call's user: `pending` for live webhooks,
//! `skipped` for failed or expired ones. Each pending one comes back with the latest earlier
//! pending delivery of its webhook and call (the calls' rows are locked, so that is exact) and
//! with who drives its queue, for this node's engine and for the announcements to the others.

use super::drivers::{ALIVE, Driver};
use super::rows;
use crate::domain::Timestamp;
use crate::store::{Fresh, Queued};
use sqlx::{PgConnection, PgPool, Row};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What queuing an event's deliveries did.
#[derive(Debug, Default)]
pub(super) struct QueuedRows {
    /// Deliveries pending (held ones included) and skipped.
    pub pending: usize,
    pub skipped: usize,
    /// The pending rows of webhooks this node drives, or that nobody drives: for this node's
    /// engine, after the commit.
    pub fresh: Vec<Fresh>,
    /// Webhooks another node drives, or nobody: to be told after the commit.
    pub announce: Vec<String>,
}

/// An event to write: its call's owner and row, what it says, when its report was taken.
#[derive(Debug)]
pub(super) struct NewEvent {
    pub account_id: String,
    pub user_id: String,
    pub call_seq: i64,
    pub state: &'static str,
    pub at: i64,
    pub body: Arc<str>,
    /// Webhooks expired by then skip it.
    pub now: Timestamp,
}

/// A webhook of a user, as queuing reads it.
#[derive(Debug)]
pub(super) struct Hook {
    id: String,
    failed: bool,
    expire_at: i64,
    driver: Driver,
}

/// The webhooks of each user, in creation order.
pub(super) type Hooks = BTreeMap<(String, String), Vec<Hook>>;

/// The webhooks of `owners` (account, user), each owner's through the owner index (a lateral
/// join, whatever the planner thinks of the table's size).
pub(super) async fn webhooks_of(
    pool: &PgPool,
    node: &str,
    owners: &BTreeSet<(String, String)>,
) -> Result<Hooks, sqlx::Error> {
    let (accounts, users): (Vec<&str>, Vec<&str>) =
        owners.iter().map(|(a, u)| (a.as_str(), u.as_str())).unzip();
    let webhooks = sqlx::query(&format!(
        "SELECT w.account_id, w.user_id, w.id, w.failed, w.expire_at, \
         CASE WHEN w.driver = $3 THEN 0 WHEN {ALIVE} THEN 1 ELSE 2 END AS driver \
         FROM UNNEST($1::text[], $2::text[]) AS k(a, u) CROSS JOIN LATERAL \
         (SELECT * FROM webhooks x WHERE x.account_id = k.a AND x.user_id = k.u) w \
         ORDER BY w.seq"
    ))
    .bind(&accounts)
    .bind(&users)
    .bind(node)
    .fetch_all(pool)
    .await?;
    let mut hooks = Hooks::new();
    for w in &webhooks {
        let owner = (w.try_get("account_id")?, w.try_get("user_id")?);
        hooks.entry(owner).or_default().push(Hook {
            id: w.try_get("id")?,
            failed: w.try_get("failed")?,
            expire_at: w.try_get("expire_at")?,
            driver: Driver::from_code(w.try_get("driver")?),
        });
    }
    Ok(hooks)
}

/// Writes `events` (in order) and their deliveries in one statement inside the caller's
/// transaction; returns, per event, what was queued.
pub(super) async fn write_events(
    c: &mut PgConnection,
    hooks: &Hooks,
    events: &[NewEvent],
) -> Result<Vec<QueuedRows>, sqlx::Error> {
    let mut queued: Vec<QueuedRows> = events.iter().map(|_| QueuedRows::default()).collect();
    if events.is_empty() {
        return Ok(queued);
    }
    let mut rows = Rows::default();
    let mut drivers: BTreeMap<&str, Driver> = BTreeMap::new();
    for (index, event) in events.iter().enumerate() {
        let owner = (event.account_id.clone(), event.user_id.clone());
        for hook in hooks.get(&owner).map(Vec::as_slice).unwrap_or_default() {
            let live = !hook.failed && hook.expire_at > event.now.millis();
            if live {
                queued[index].pending += 1;
                drivers.insert(&hook.id, hook.driver);
            } else {
                queued[index].skipped += 1;
            }
            rows.push(index, event, &hook.id, live);
        }
    }
    let texts: Vec<&str> = events.iter().map(|e| &*e.body).collect();
    // Events are inserted, and their identity drawn, in the order of their ordinality, so their
    // seqs in ascending order number them as the batch does; each delivery names its event by
    // that number. The insert of the deliveries does not see its own rows: an earlier delivery
    // of the same webhook and call in this batch is found below.
    let mut inserted = sqlx::query(
        "WITH ev AS ( \
           INSERT INTO call_events (call_seq, state, at, body) \
           SELECT r.call_seq, r.state, r.at, r.body \
           FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[]) \
           WITH ORDINALITY AS r(call_seq, state, at, body, n) ORDER BY r.n RETURNING seq), \
         numbered AS (SELECT seq, row_number() OVER (ORDER BY seq) AS n FROM ev), \
         ins AS ( \
           INSERT INTO deliveries (id, webhook_id, event_seq, call_seq, status, attempt, \
             next_at, created_at) \
           SELECT d.id, d.webhook_id, e.seq, d.call_seq, d.status, 0, d.next_at, d.created_at \
           FROM UNNEST($5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::text[], \
             $10::bigint[], $11::bigint[]) WITH ORDINALITY \
             AS d(id, webhook_id, event_n, call_seq, status, next_at, created_at, k) \
           JOIN numbered e ON e.n = d.event_n ORDER BY d.k \
           RETURNING seq, id, webhook_id, event_seq, call_seq, status, next_at, \
             (SELECT MAX(p.seq) FROM deliveries p WHERE p.webhook_id = deliveries.webhook_id \
              AND p.call_seq = deliveries.call_seq AND p.status = 'pending' \
              AND p.seq < deliveries.seq) AS after) \
         SELECT i.seq, i.id, i.webhook_id, i.call_seq, i.status, i.next_at, i.after, e.n \
         FROM ins i JOIN numbered e ON e.seq = i.event_seq",
    )
    .bind(events.iter().map(|e| e.call_seq).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.state).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.at).collect::<Vec<_>>())
    .bind(&texts)
    .bind(&rows.id)
    .bind(&rows.webhook_id)
    .bind(&rows.event_n)
    .bind(&rows.call_seq)
    .bind(&rows.status)
    .bind(&rows.next_at)
    .bind(&rows.created_at)
    .fetch_all(&mut *c)
    .await?;
    inserted.sort_by_key(|r| r.try_get::<i64, _>("seq").unwrap_or_default());
    let mut last_in_batch: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for r in &inserted {
        if r.try_get::<&str, _>("status")? != "pending" {
            continue;
        }
        let seq: i64 = r.try_get("seq")?;
        let webhook_id: String = r.try_get("webhook_id")?;
        let call_seq: i64 = r.try_get("call_seq")?;
        let n: i64 = r.try_get("n")?;
        let Some(index) = usize::try_from(n - 1).ok().filter(|i| *i < events.len()) else {
            continue;
        };
        let after = match last_in_batch.insert((webhook_id.clone(), call_seq), seq) {
            Some(previous) => Some(previous),
            None => r.try_get("after")?,
        };
        let driver = drivers
            .get(webhook_id.as_str())
            .copied()
            .unwrap_or(Driver::Nobody);
        let target = &mut queued[index];
        if driver != Driver::Me {
            target.announce.push(webhook_id.clone());
        }
        if driver == Driver::Other {
            continue;
        }
        target.fresh.push(Fresh {
            webhook_id,
            delivery: Queued {
                seq,
                id: r.try_get("id")?,
                call_seq,
                attempts: 0,
                replayed_after: 0,
                due: rows::ts(r, "next_at")?,
                event: events[index].body.clone(),
            },
            after,
        });
    }
    Ok(queued)
}

/// The delivery rows to insert, as columns.
#[derive(Default)]
struct Rows {
    id: Vec<String>,
    webhook_id: Vec<String>,
    /// The event's number in the batch, from 1.
    event_n: Vec<i64>,
    call_seq: Vec<i64>,
    status: Vec<&'static str>,
    next_at: Vec<i64>,
    created_at: Vec<i64>,
}

impl Rows {
    fn push(&mut self, index: usize, event: &NewEvent, webhook_id: &str, live: bool) {
        // Time-ordered ids keep the unique index append-only.
        self.id.push(uuid::Uuid::now_v7().to_string());
        self.webhook_id.push(webhook_id.to_string());
        self.event_n.push(index as i64 + 1);
        self.call_seq.push(event.call_seq);
        self.status.push(if live { "pending" } else { "skipped" });
        self.next_at.push(event.now.millis());
        self.created_at.push(event.now.millis());
    }
}
