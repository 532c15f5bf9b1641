//! Call reports in PostgreSQL, several in one transaction: each node has a [`Writer`] whose
//! workers take whatever reports are waiting and apply them together, in a handful of statements
//! whatever their number (lock the calls, write the calls, the events, the deliveries), with one
//! commit. So the rate a node ingests at is bounded by round trips and flushes per batch, not per
//! report, and a slow link to the database costs a batch a few round trips rather than costing
//! every report eight.
//!
//! Several nodes (and several workers of one) may apply reports of one call at once. The calls'
//! rows are locked (`FOR UPDATE`, in `seq` order) before the state machine runs, so reports of one
//! call are applied one after the other and [`call::apply`] always sees the latest state; this
//! also keeps the events, and so the deliveries, of one call in `seq` order, which each webhook's
//! queue relies on. A new call is inserted with `ON CONFLICT DO NOTHING`: when another transaction
//! created it meanwhile, that call's reports are taken out of the batch and applied again in the
//! next one, which finds it. A batch that fails for another reason is applied again one report at
//! a time, so that one bad report fails alone.

use super::errors::{self, classify};
use super::queueing::{self, Hooks, NewEvent, QueuedRows};
use super::rows::{self, CALL_COLUMNS};
use crate::domain::Timestamp;
use crate::domain::call::{self, Applied, Call, TransitionError};
use crate::domain::event::CallEvent;
use crate::domain::report::CallReport;
use crate::store::{ApplyError, ApplyOutcome};
use sqlx::{PgConnection, PgPool, Row};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Reports applied in one transaction at most.
const MAX_BATCH: usize = 128;
/// Transactions a node's writer runs at once.
const WORKERS: usize = 2;
/// Times a batch runs again after a serialization failure or a deadlock.
const RETRIES: u32 = 3;

/// What applying one report gives: its outcome and what its deliveries need after the commit,
/// or the refusal.
pub(super) type Reply = Result<(ApplyOutcome, QueuedRows), ApplyError>;

struct Job {
    report: CallReport,
    now: Timestamp,
    reply: oneshot::Sender<Reply>,
}

/// A node's report writer. Dropping it lets the workers finish what is queued and stop.
pub(super) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the workers on `pool`, for node `node`.
    pub(super) fn start(pool: PgPool, node: Arc<str>) -> Writer {
        let (jobs, queue) = mpsc::unbounded_channel();
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..WORKERS {
            let (pool, node, queue) = (pool.clone(), node.clone(), queue.clone());
            tokio::spawn(async move { work(pool, node, queue).await });
        }
        Writer { jobs }
    }

    /// Applies `report` in the next batch and waits for its commit.
    pub(super) async fn apply(&self, report: &CallReport, now: Timestamp) -> Reply {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            report: report.clone(),
            now,
            reply,
        };
        let closed = || {
            ApplyError::Store(crate::store::StoreError::Unavailable(
                "the store is shut down".into(),
            ))
        };
        self.jobs.send(job).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

async fn work(pool: PgPool, node: Arc<str>, queue: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>) {
    loop {
        let mut batch = Vec::new();
        {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        while !batch.is_empty() {
            batch = apply_and_reply(&pool, &node, batch).await;
        }
    }
}

/// Applies a batch and answers its reports; returns the reports to apply again (their call was
/// created by another transaction meanwhile).
async fn apply_and_reply(pool: &PgPool, node: &str, batch: Vec<Job>) -> Vec<Job> {
    let reports: Vec<(CallReport, Timestamp)> =
        batch.iter().map(|j| (j.report.clone(), j.now)).collect();
    match run(pool, node, &reports).await {
        Ok(results) => {
            let mut again = Vec::new();
            for (job, result) in batch.into_iter().zip(results) {
                match result {
                    Some(reply) => {
                        let _ = job.reply.send(reply);
                    }
                    None => again.push(job),
                }
            }
            again
        }
        Err(e) if batch.len() > 1 => {
            tracing::debug!(error = %e, reports = batch.len(), "a batch of reports failed; applying them one by one");
            let mut again = Vec::new();
            for job in batch {
                again.extend(Box::pin(apply_and_reply(pool, node, vec![job])).await);
            }
            again
        }
        Err(e) => {
            if let Some(job) = batch.into_iter().next() {
                let _ = job.reply.send(Err(ApplyError::Store(classify(e))));
            }
            Vec::new()
        }
    }
}

/// One transaction, run again after a serialization failure or a deadlock.
async fn run(
    pool: &PgPool,
    node: &str,
    reports: &[(CallReport, Timestamp)],
) -> Result<Vec<Option<Reply>>, sqlx::Error> {
    let owners: BTreeSet<(String, String)> = reports
        .iter()
        .map(|(r, _)| (r.account_id.clone(), r.user_id.clone()))
        .collect();
    let mut retries = 0;
    loop {
        let attempt = async {
            // The webhooks are read on another connection while the transaction starts and
            // locks the calls: two round trips at once.
            let locked = async {
                let mut tx = pool.begin().await?;
                let slots = lock_calls(&mut tx, reports).await?;
                Ok::<_, sqlx::Error>((tx, slots))
            };
            let (hooks, locked) = tokio::join!(queueing::webhooks_of(pool, node, &owners), locked);
            let (hooks, (mut tx, slots)) = (hooks?, locked?);
            let results = apply_batch(&mut tx, &hooks, slots, reports).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(results)
        }
        .await;
        match attempt {
            Err(e) if retries < RETRIES && errors::is_retryable(&e) => retries += 1,
            other => return other,
        }
    }
}

/// A call the batch touches: its row (if it exists), its state as the batch moves it.
#[derive(Default)]
struct Slot {
    seq: Option<i64>,
    call: Option<Call>,
    changed: bool,
}

type Key = (String, String);

fn key_of(report: &CallReport) -> Key {
    (report.account_id.clone(), report.external_id.clone())
}

/// What a report did to its call, before the rows are written.
enum Step {
    Refused(TransitionError),
    Repeated(Call),
    /// The change, and its index among the batch's changes.
    Changed(usize),
}

/// Applies `reports` in order inside the caller's transaction, the calls they name locked and
/// read (`slots`), the webhooks of their users read (`hooks`). `None` for a report whose call
/// another transaction created meanwhile: it must be applied again.
async fn apply_batch(
    c: &mut PgConnection,
    hooks: &Hooks,
    mut slots: BTreeMap<Key, Slot>,
    reports: &[(CallReport, Timestamp)],
) -> Result<Vec<Option<Reply>>, sqlx::Error> {
    let mut changes: Vec<(Key, Call, Timestamp)> = Vec::new();
    let mut steps = Vec::with_capacity(reports.len());
    for (report, now) in reports {
        let key = key_of(report);
        let slot = slots.entry(key.clone()).or_default();
        let step = match call::apply(
            slot.call.as_ref(),
            report,
            || uuid::Uuid::now_v7().to_string(),
            *now,
        ) {
            Err(refused) => Step::Refused(refused),
            Ok(Applied::Repeated(call)) => Step::Repeated(call),
            Ok(Applied::Changed(next)) => {
                slot.call = Some(next.clone());
                slot.changed = true;
                changes.push((key, next, *now));
                Step::Changed(changes.len() - 1)
            }
        };
        steps.push(step);
    }
    let conflicted = write_calls(c, &mut slots).await?;
    let kept: Vec<usize> = (0..changes.len())
        .filter(|i| !conflicted.contains(&changes[*i].0))
        .collect();
    let mut events = Vec::with_capacity(kept.len());
    for i in &kept {
        let (key, call, now) = &changes[*i];
        let body = serde_json::to_string(&CallEvent::from(call))
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        events.push(NewEvent {
            account_id: call.account_id.clone(),
            user_id: call.user_id.clone(),
            call_seq: slots[key].seq.unwrap_or_default(),
            state: call.state.as_str(),
            at: call.updated_at.millis(),
            body: body.into(),
            now: *now,
        });
    }
    let mut queued: BTreeMap<usize, QueuedRows> = kept
        .iter()
        .copied()
        .zip(queueing::write_events(c, hooks, &events).await?)
        .collect();
    Ok(reports
        .iter()
        .zip(steps)
        .map(|((report, _), step)| {
            if conflicted.contains(&key_of(report)) {
                return None;
            }
            Some(match step {
                Step::Refused(refused) => Err(ApplyError::Refused(refused)),
                Step::Repeated(call) => Ok((
                    outcome(Applied::Repeated(call), 0, 0),
                    QueuedRows::default(),
                )),
                Step::Changed(i) => {
                    let rows = queued.remove(&i).unwrap_or_default();
                    let applied = Applied::Changed(changes[i].1.clone());
                    Ok((outcome(applied, rows.pending, rows.skipped), rows))
                }
            })
        })
        .collect())
}

fn outcome(applied: Applied, deliveries: usize, skipped: usize) -> ApplyOutcome {
    ApplyOutcome {
        applied,
        deliveries,
        skipped,
    }
}

/// Locks the calls the reports name that exist, in `seq` order, and reads them.
async fn lock_calls(
    c: &mut PgConnection,
    reports: &[(CallReport, Timestamp)],
) -> Result<BTreeMap<Key, Slot>, sqlx::Error> {
    let keys: BTreeSet<Key> = reports.iter().map(|(r, _)| key_of(r)).collect();
    let (accounts, externals): (Vec<&str>, Vec<&str>) =
        keys.iter().map(|(a, e)| (a.as_str(), e.as_str())).unzip();
    // Each call found through the unique index, whatever the planner thinks of the table's
    // size (a young table has no statistics, and a join here became a scan of every call).
    let rows = sqlx::query(&format!(
        "SELECT {} FROM UNNEST($1::text[], $2::text[]) AS k(a, e) \
         JOIN calls c ON c.account_id = k.a AND c.external_id = k.e \
         ORDER BY c.seq FOR UPDATE OF c",
        CALL_COLUMNS
            .split(", ")
            .map(|col| format!("c.{}", col.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .bind(&accounts)
    .bind(&externals)
    .fetch_all(&mut *c)
    .await?;
    let mut slots = BTreeMap::new();
    for row in &rows {
        let (seq, call) = rows::call(row)?;
        let slot = Slot {
            seq: Some(seq),
            call: Some(call.clone()),
            changed: false,
        };
        slots.insert((call.account_id, call.external_id), slot);
    }
    Ok(slots)
}

/// Writes the calls the batch changed, as they end up, in one statement: new ones inserted (in
/// key order, so that two transactions creating the same calls wait for each other rather than
/// deadlock), the ones this transaction locked updated. Returns the new calls another
/// transaction created first (neither inserted nor updated here).
async fn write_calls(
    c: &mut PgConnection,
    slots: &mut BTreeMap<Key, Slot>,
) -> Result<BTreeSet<Key>, sqlx::Error> {
    let changed: Vec<(Option<i64>, &Call)> = slots
        .values()
        .filter(|s| s.changed)
        .filter_map(|s| Some((s.seq, s.call.as_ref()?)))
        .collect();
    if changed.is_empty() {
        return Ok(BTreeSet::new());
    }
    let locked: Vec<i64> = changed.iter().filter_map(|(seq, _)| *seq).collect();
    let calls: Vec<&Call> = changed.iter().map(|(_, call)| *call).collect();
    let mut conflicted: BTreeSet<Key> = calls
        .iter()
        .map(|k| (k.account_id.clone(), k.external_id.clone()))
        .collect();
    let written = Columns::of(&calls)
        .bind(sqlx::query(
            "INSERT INTO calls (id, external_id, account_id, user_id, direction, phone_number, \
             caller_id, internal, ucp_type, state, start_time, answer_time, end_time, duration, \
             updated_at) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::bool[], $9::text[], $10::text[], $11::bigint[], \
             $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[]) \
             ON CONFLICT (account_id, external_id) DO UPDATE SET state = EXCLUDED.state, \
             answer_time = EXCLUDED.answer_time, end_time = EXCLUDED.end_time, \
             duration = EXCLUDED.duration, updated_at = EXCLUDED.updated_at \
             WHERE calls.seq = ANY($16) \
             RETURNING account_id, external_id, seq",
        ))
        .bind(&locked)
        .fetch_all(&mut *c)
        .await?;
    for row in &written {
        let key: Key = (row.try_get("account_id")?, row.try_get("external_id")?);
        conflicted.remove(&key);
        if let Some(slot) = slots.get_mut(&key) {
            slot.seq = Some(row.try_get("seq")?);
        }
    }
    Ok(conflicted)
}

/// The columns of calls, for UNNEST.
struct Columns<'a> {
    id: Vec<&'a str>,
    external_id: Vec<&'a str>,
    account_id: Vec<&'a str>,
    user_id: Vec<&'a str>,
    direction: Vec<&'a str>,
    phone_number: Vec<&'a str>,
    caller_id: Vec<Option<&'a str>>,
    internal: Vec<bool>,
    ucp_type: Vec<&'a str>,
    state: Vec<&'a str>,
    start_time: Vec<i64>,
    answer_time: Vec<Option<i64>>,
    end_time: Vec<Option<i64>>,
    duration: Vec<i64>,
    updated_at: Vec<i64>,
}

impl<'a> Columns<'a> {
    fn of(calls: &[&'a Call]) -> Columns<'a> {
        Columns {
            id: calls.iter().map(|k| k.id.as_str()).collect(),
            external_id: calls.iter().map(|k| k.external_id.as_str()).collect(),
            account_id: calls.iter().map(|k| k.account_id.as_str()).collect(),
            user_id: calls.iter().map(|k| k.user_id.as_str()).collect(),
            direction: calls.iter().map(|k| k.direction.as_str()).collect(),
            phone_number: calls.iter().map(|k| k.phone_number.as_str()).collect(),
            caller_id: calls.iter().map(|k| k.caller_id.as_deref()).collect(),
            internal: calls.iter().map(|k| k.internal).collect(),
            ucp_type: calls.iter().map(|k| k.ucp_type.as_str()).collect(),
            state: calls.iter().map(|k| k.state.as_str()).collect(),
            start_time: calls.iter().map(|k| k.start_time.millis()).collect(),
            answer_time: calls
                .iter()
                .map(|k| k.answer_time.map(Timestamp::millis))
                .collect(),
            end_time: calls
                .iter()
                .map(|k| k.end_time.map(Timestamp::millis))
                .collect(),
            duration: calls.iter().map(|k| k.duration).collect(),
            updated_at: calls.iter().map(|k| k.updated_at.millis()).collect(),
        }
    }

    /// Binds every column, in the order of the table's insert.
    fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(&self.id)
            .bind(&self.external_id)
            .bind(&self.account_id)
            .bind(&self.user_id)
            .bind(&self.direction)
            .bind(&self.phone_number)
            .bind(&self.caller_id)
            .bind(&self.internal)
            .bind(&self.ucp_type)
            .bind(&self.state)
            .bind(&self.start_time)
            .bind(&self.answer_time)
            .bind(&self.end_time)
            .bind(&self.duration)
            .bind(&self.updated_at)
    }
}
