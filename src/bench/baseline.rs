//! The baseline scenario: the load generator posts the event bodies straight to the receiver,
//! no platform in between, over the same loopback and keep-alive client. First closed loop (the
//! ceiling in requests/s), then each rate of the latency sweep open loop (latency from the
//! request sent to the receiver got it). Every other figure is compared with these.

use super::figures::{Latency, Throughput};
use super::load::Sink;
use super::report::Baseline;
use super::session::{Group, Rig, calls_at, calls_for};
use super::tally::Tally;
use super::verify::Since;
use std::sync::Arc;

pub async fn run(rig: &Rig<'_>) -> Baseline {
    let settings = rig.settings;
    let group = Group::new(rig, "base-u", settings.users, 1);
    let webhooks = group
        .webhooks
        .iter()
        .map(|w| rig.receiver.webhook_url(w.start).parse())
        .collect::<Result<_, _>>()
        .expect("the receiver's webhook URLs parse");
    let sink = Arc::new(Sink::Direct { webhooks });
    let mut tally = Tally::new(rig, Since::Sent);

    let calls = calls_for(settings.events);
    tracing::info!(
        events = calls * 3,
        "baseline: posting straight to the receiver"
    );
    let m = tally
        .closed("baseline", &group, sink.clone(), calls, &[])
        .await;
    let throughput = Throughput::measure(&m.driven, &m.check, m.cpu);

    let mut latency = Vec::new();
    for &rate in &settings.rates {
        let calls = calls_at(rate, settings.step);
        tracing::info!(
            rate,
            events = calls * 3,
            "baseline: posting at a fixed rate"
        );
        let label = format!("baseline {}/s", rate as u64);
        let m = tally
            .open(&label, &group, sink.clone(), calls, rate, &[])
            .await;
        latency.push(Latency::measure(rate, &m.driven, &m.check, m.cpu));
    }
    let (verification, _) = tally.verify().await;
    Baseline {
        throughput,
        latency,
        verification,
    }
}
