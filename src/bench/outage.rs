//! The scenarios where the receiver is away. `serve` runs with a short retry interval and a
//! retry budget no outage of the bench exhausts ([`RETRY_ARGS`]), so nothing fails for good and
//! the first retry after the receiver comes back is at most one interval away.
//! - **backlog**: the receiver answers 503 while `backlog_events` reports are ingested; then it
//!   comes up: how long the queue takes to empty, and deliveries/s while it drains;
//! - **restart**: a database with `restart_events` stored reports, of which the last
//!   `restart_pending` were ingested while the receiver was down and are still pending; `serve`
//!   gets SIGTERM, the receiver comes up, and `serve` starts again on the same database: time
//!   from the spawn to its listening line and to the first delivery, and the drain.

use super::BenchError;
use super::figures::per_second;
use super::load::{self, Driven};
use super::receiver::Receiver;
use super::report::{Backlog, Restart};
use super::session::{Group, Rig, Session, calls_for};
use super::tally::Mark;
use super::verify::PhaseCheck;
use std::time::Instant;

/// `serve` flags for these scenarios (a `--serve-arg` naming the same flag wins).
pub const RETRY_ARGS: [(&str, &str); 2] = [("--retry-interval", "100ms"), ("--retries", "100000")];

/// The receiver answers 503 until this is dropped.
struct Outage<'a>(&'a Receiver);

impl<'a> Outage<'a> {
    fn begin(receiver: &'a Receiver) -> Outage<'a> {
        receiver.set_down(true);
        Outage(receiver)
    }
}

impl Drop for Outage<'_> {
    fn drop(&mut self) {
        self.0.set_down(false);
    }
}

pub async fn backlog(rig: &Rig<'_>) -> Result<Backlog, BenchError> {
    let settings = rig.settings;
    let mut session = Session::start(rig, &RETRY_ARGS).await?;
    let group = Group::new(rig, "bl-u", settings.users, 1);
    session.create(&group).await?;
    let label = "backlog";
    let refused_before = rig.receiver.refused();
    let outage = Outage::begin(&rig.receiver);
    let (mark, driven, expected) =
        ingest_unreceived(&mut session, label, &group, settings.backlog_events).await?;
    let queued = queue_depth(&session).await;
    let up = Instant::now();
    drop(outage);
    tracing::info!(queued, "backlog: the receiver is up");
    let refused = rig.receiver.refused() - refused_before;
    let check = session
        .tally
        .await_deliveries(label, mark.received, expected)
        .await;
    let cpu = mark.cpu_used();
    session.tally.charge(driven.accepted(), &cpu);
    let drain_seconds = since(up, &check);
    let fill_seconds = driven.finished.duration_since(driven.started).as_secs_f64();
    let (resources, verification) = session.finish().await;
    Ok(Backlog {
        events: driven.accepted(),
        fill_seconds,
        accepted_per_second: per_second(driven.accepted(), fill_seconds),
        refused_attempts: refused,
        queued,
        drain_seconds,
        drain_per_second: per_second(check.delivered, drain_seconds),
        ratio_to_baseline: None,
        resources,
        verification,
    })
}

pub async fn restart(rig: &Rig<'_>) -> Result<Restart, BenchError> {
    let settings = rig.settings;
    let mut session = Session::start(rig, &RETRY_ARGS).await?;
    let group = Group::new(rig, "rs-u", settings.users, 1);
    session.create(&group).await?;
    let pending_events = settings.restart_pending.min(settings.restart_events);
    let delivered_events = settings.restart_events - pending_events;
    let filling = Instant::now();
    if delivered_events > 0 {
        tracing::info!(
            events = delivered_events,
            "restart: storing delivered events"
        );
        session
            .closed("restart delivered", &group, calls_for(delivered_events))
            .await?;
    }
    let label = "restart pending";
    let outage = Outage::begin(&rig.receiver);
    let (mark, driven, expected) =
        ingest_unreceived(&mut session, label, &group, pending_events).await?;
    let cpu = mark.cpu_used();
    session.tally.charge(driven.accepted(), &cpu);
    let fill_seconds = filling.elapsed().as_secs_f64();
    let pending = queue_depth(&session).await;

    tracing::info!(stored = session.stored, pending, "restart: stopping serve");
    let at_stop = session.platform.db_bytes().await;
    let stop_seconds = session.platform.halt().await.as_secs_f64();
    let after_stop = session.platform.db_bytes().await;
    drop(outage);
    let resumed = session.platform.resume().await?;
    tracing::info!(listening_in = ?resumed.listening_in, pids = ?session.platform.pids(), "restart: serve is listening again");
    let after = session.tally.mark(&session.pids());
    let check = session
        .tally
        .await_deliveries(label, mark.received, expected)
        .await;
    session.tally.charge(0, &after.cpu_used());
    let drain_seconds = since(resumed.spawned, &check);
    let stored_events = session.stored;
    let (resources, verification) = session.finish().await;
    Ok(Restart {
        stored_events,
        fill_seconds,
        fill_per_second: per_second(stored_events, fill_seconds),
        pending,
        db_bytes_at_stop: at_stop.map(|(db, _)| db),
        wal_bytes_at_stop: at_stop.and_then(|(_, wal)| wal),
        wal_bytes_after_stop: after_stop.and_then(|(_, wal)| wal),
        stop_seconds,
        listening_seconds: resumed.listening_in.as_secs_f64(),
        first_delivery_seconds: check
            .first_arrival
            .map(|a| a.saturating_duration_since(resumed.spawned).as_secs_f64()),
        drain_seconds,
        drain_per_second: per_second(check.delivered, drain_seconds),
        ratio_to_baseline: None,
        resources,
        verification,
    })
}

/// Ingests `events` reports closed loop while nothing can be delivered, and records them;
/// returns the phase's mark, its load and the deliveries it expects.
async fn ingest_unreceived(
    session: &mut Session<'_>,
    label: &str,
    group: &Group,
    events: u64,
) -> Result<(Mark, Driven, u64), BenchError> {
    let rig = session.tally.rig;
    let calls = calls_for(events);
    tracing::info!(
        label,
        events = calls * 3,
        "ingesting while the receiver answers 503"
    );
    let mark = session.tally.mark(&session.pids());
    let sink = session.sink(group)?;
    let driven = load::closed_loop(&rig.client, sink, label, calls, rig.settings.concurrency).await;
    let expected = session.tally.record(label, group, &driven);
    session.stored += driven.accepted();
    Ok((mark, driven, expected))
}

/// `serve`'s delivery queue depth now (0 when unreadable).
async fn queue_depth(session: &Session<'_>) -> u64 {
    let client = &session.tally.rig.client;
    session
        .platform
        .delivery_counters(client)
        .await
        .map_or(0, |c| c.queue_depth)
}

/// Seconds from `start` to the phase's last delivery.
fn since(start: Instant, check: &PhaseCheck) -> f64 {
    check
        .last_arrival
        .map_or(0.0, |a| a.saturating_duration_since(start).as_secs_f64())
}
