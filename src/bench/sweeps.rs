//! The end-to-end scenarios on a default `serve`, one webhook per user unless swept:
//! - **throughput**: whole calls ingested closed loop, `concurrency` in flight, until the last
//!   delivery arrived;
//! - **latency**: the rate sweep, open loop; from the 202 read to the receiver got it;
//! - **fanout**: 1, 10, 100 webhooks per user; deliveries/s closed loop, and latency open loop at
//!   [`FANOUT_DELIVERY_RATE`] deliveries/s (so each level loads the receiver alike).

use super::BenchError;
use super::figures::{Latency, Throughput};
use super::report::{Fanout, FanoutLevel, LatencyScenario, ThroughputScenario};
use super::session::{Group, Rig, Session, calls_at, calls_for};

/// Deliveries per second offered in each fan-out latency step.
pub const FANOUT_DELIVERY_RATE: f64 = 1_000.0;

pub async fn throughput(rig: &Rig<'_>) -> Result<ThroughputScenario, BenchError> {
    let settings = rig.settings;
    let mut session = Session::start(rig, &[]).await?;
    let group = Group::new(rig, "tp-u", settings.users, 1);
    session.create(&group).await?;
    let calls = calls_for(settings.events);
    tracing::info!(
        events = calls * 3,
        concurrency = settings.concurrency,
        "throughput: ingesting whole calls"
    );
    let m = session.closed("throughput", &group, calls).await?;
    let throughput = Throughput::measure(&m.driven, &m.check, m.cpu);
    let (resources, verification) = session.finish().await;
    Ok(ThroughputScenario {
        throughput,
        resources,
        verification,
    })
}

pub async fn latency(rig: &Rig<'_>) -> Result<LatencyScenario, BenchError> {
    let settings = rig.settings;
    let mut session = Session::start(rig, &[]).await?;
    let group = Group::new(rig, "lat-u", settings.users, 1);
    session.create(&group).await?;
    let mut sweep = Vec::new();
    for &rate in &settings.rates {
        let calls = calls_at(rate, settings.step);
        tracing::info!(
            rate,
            events = calls * 3,
            "latency: ingesting at a fixed rate"
        );
        let label = format!("latency {}/s", rate as u64);
        let m = session.open(&label, &group, calls, rate).await?;
        sweep.push(Latency::measure(rate, &m.driven, &m.check, m.cpu));
    }
    let (resources, verification) = session.finish().await;
    Ok(LatencyScenario {
        sweep,
        resources,
        verification,
    })
}

pub async fn fanout(rig: &Rig<'_>) -> Result<Fanout, BenchError> {
    let settings = rig.settings;
    let mut session = Session::start(rig, &[]).await?;
    let mut levels = Vec::new();
    for &per_user in &settings.fanouts {
        let per_user = per_user.max(1);
        let group = Group::new(rig, &format!("fan{per_user}-u"), settings.users, per_user);
        session.create(&group).await?;

        let calls = calls_for(settings.events.div_ceil(u64::from(per_user)));
        tracing::info!(
            per_user,
            events = calls * 3,
            "fanout: ingesting whole calls"
        );
        let m = session
            .closed(&format!("fanout {per_user}"), &group, calls)
            .await?;
        let throughput = Throughput::measure(&m.driven, &m.check, m.cpu);

        let rate = FANOUT_DELIVERY_RATE / f64::from(per_user);
        let calls = calls_at(rate, settings.step);
        tracing::info!(
            per_user,
            rate,
            events = calls * 3,
            "fanout: ingesting at a fixed rate"
        );
        let label = format!("fanout {per_user} at {}/s", FANOUT_DELIVERY_RATE as u64);
        let m = session.open(&label, &group, calls, rate).await?;
        // The rate shown is that of deliveries, the one every level shares.
        let latency = Latency::measure(FANOUT_DELIVERY_RATE, &m.driven, &m.check, m.cpu);
        levels.push(FanoutLevel {
            webhooks_per_user: per_user,
            users: settings.users,
            throughput,
            latency,
        });
    }
    let (resources, verification) = session.finish().await;
    Ok(Fanout {
        levels,
        resources,
        verification,
    })
}
