//! The population scenario: does matching an event to its webhooks scan? One `serve`; the calls
//! go to `users` users with one webhook each (so one webhook matches each event), while
//! [`OTHER_USERS`] other users of the same account hold the rest of the registered webhooks
//! (created through the VIS API, a token each). At each population size the same closed-loop
//! load runs; its events/s is compared with the smallest size's.

use super::BenchError;
use super::figures::Throughput;
use super::report::{Population, PopulationLevel};
use super::resources::largest_peak_rss_bytes;
use super::session::{Group, NEVER, Rig, Session, calls_for};
use std::time::Instant;

/// Users holding the webhooks that never match (each a `token create` process).
pub const OTHER_USERS: usize = 4;

pub async fn run(rig: &Rig<'_>) -> Result<Population, BenchError> {
    let settings = rig.settings;
    let mut session = Session::start(rig, &[]).await?;
    let matching = Group::new(rig, "pop-u", settings.users, 1);
    session.create(&matching).await?;
    let mut others = Vec::new();
    for i in 0..OTHER_USERS {
        others.push(session.user_token(&format!("pop-other{i}")).await?);
    }
    // Webhooks of the others: never delivered to (an arrival there is unexpected).
    let never = rig.receiver.webhook_url(NEVER);
    let mut registered = u64::from(settings.users);
    let mut sizes = settings.populations.clone();
    sizes.sort_unstable();
    let mut levels = Vec::new();
    for size in sizes {
        let started = Instant::now();
        let add = size.saturating_sub(registered);
        tracing::info!(
            webhooks = size,
            creating = add,
            "population: registering webhooks"
        );
        for (i, token) in others.iter().enumerate() {
            let share = add / OTHER_USERS as u64 + u64::from((i as u64) < add % OTHER_USERS as u64);
            let urls = (0..share).map(|_| never.clone());
            session
                .platform
                .create_webhooks(&rig.client, token, urls)
                .await?;
        }
        registered += add;
        let setup_seconds = started.elapsed().as_secs_f64();

        let calls = calls_for(settings.events);
        tracing::info!(
            webhooks = registered,
            events = calls * 3,
            "population: ingesting whole calls"
        );
        let label = format!("population {registered}");
        let m = session.closed(&label, &matching, calls).await?;
        levels.push(PopulationLevel {
            webhooks: registered,
            matching: u64::from(settings.users),
            setup_seconds,
            throughput: Throughput::measure(&m.driven, &m.check, m.cpu),
            ratio_to_first: None,
            peak_rss_bytes: largest_peak_rss_bytes(&session.pids()),
        });
    }
    let (resources, verification) = session.finish().await;
    Ok(Population {
        levels,
        resources,
        verification,
    })
}
