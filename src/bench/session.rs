//! What every scenario is made of (with its [`Tally`]):
//! - the [`Rig`] shared by the whole run: the load generator's HTTP client, the counting
//!   receiver and the numbering of its webhook paths;
//! - a [`Session`]: a scenario's own `serve` nodes (one, or several on PostgreSQL) on a fresh
//!   database, with its ingest token and the [`Group`]s of users and webhooks it set up.

use super::figures::Resources;
use super::load::{self, RoundRobin, Sink};
use super::platform::{DeliveryCounters, Platform};
use super::receiver::Receiver;
use super::report::Verification;
use super::resources as proc;
use super::tally::{Measured, Tally};
use super::verify::Since;
use super::{BenchError, Settings};
use reqwest::Client;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// At the end of a scenario, how long `serve` may take to record the outcomes of deliveries the
/// receiver already got (its queue empties), polled this often.
const QUIET_TIMEOUT: Duration = Duration::from_secs(5);
const QUIET_POLL: Duration = Duration::from_millis(20);
/// The receiver path of webhooks that must never get anything.
pub const NEVER: u32 = u32::MAX;

/// What the whole run shares.
pub struct Rig<'s> {
    pub settings: &'s Settings,
    pub client: Client,
    pub receiver: Receiver,
    next_webhook: AtomicU32,
}

impl<'s> Rig<'s> {
    pub async fn start(settings: &'s Settings) -> Result<Rig<'s>, BenchError> {
        Ok(Rig {
            settings,
            client: load::client()?,
            receiver: Receiver::start().await?,
            next_webhook: AtomicU32::new(0),
        })
    }

    /// `n` receiver paths (`/webhook/{i}`) no other webhook of the run uses.
    pub fn webhook_paths(&self, n: u32) -> Range<u32> {
        let first = self.next_webhook.fetch_add(n, Ordering::Relaxed);
        first..first + n
    }

    pub async fn stop(self) {
        self.receiver.stop().await;
    }
}

/// Users of account `bench`, each with a run of receiver webhooks.
pub struct Group {
    pub names: Vec<String>,
    pub webhooks: Vec<Range<u32>>,
}

impl Group {
    /// `users` users named `{prefix}{i}` with `per_user` fresh receiver paths each.
    pub fn new(rig: &Rig<'_>, prefix: &str, users: u32, per_user: u32) -> Group {
        Group {
            names: (0..users).map(|u| format!("{prefix}{u}")).collect(),
            webhooks: (0..users).map(|_| rig.webhook_paths(per_user)).collect(),
        }
    }

    pub fn webhooks_of(&self, user: u32) -> Range<u32> {
        self.webhooks[user as usize % self.webhooks.len()].clone()
    }
}

/// A scenario's own `serve` nodes, with an ingest token (created once: the nodes share the
/// database).
pub struct Session<'r> {
    pub tally: Tally<'r>,
    pub platform: Platform,
    ingest: String,
    /// Reports the database got, in every phase (for bytes per event).
    pub stored: u64,
}

impl<'r> Session<'r> {
    /// Starts `serve` with the run's `--serve-arg`s plus `extra` (those the user gave win).
    pub async fn start(
        rig: &'r Rig<'r>,
        extra: &[(&str, &str)],
    ) -> Result<Session<'r>, BenchError> {
        let extra: Vec<(&str, &str)> = UNLIMITED.iter().chain(extra).copied().collect();
        let args = serve_args(&rig.settings.serve_args, &extra);
        let platform = Platform::start(&rig.settings.exe, &args, &rig.settings.store).await?;
        let ingest = platform
            .create_token(&["--role", "ingest", "--name", "bench-ingest"])
            .await?;
        Ok(Session {
            tally: Tally::new(rig, Since::Accepted),
            platform,
            ingest,
            stored: 0,
        })
    }

    /// The `serve` nodes' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.platform.pids()
    }

    /// Creates the group's users (one token each) and their webhooks, pointing at the receiver.
    pub async fn create(&self, group: &Group) -> Result<(), BenchError> {
        let rig = self.tally.rig;
        for (name, paths) in group.names.iter().zip(&group.webhooks) {
            let token = self.user_token(name).await?;
            let urls = paths.clone().map(|n| rig.receiver.webhook_url(n));
            self.platform
                .create_webhooks(&rig.client, &token, urls)
                .await?;
        }
        Ok(())
    }

    /// A token for user `name` of account `bench`.
    pub async fn user_token(&self, name: &str) -> Result<String, BenchError> {
        self.platform
            .create_token(&["--account", "bench", "--user", name, "--name", "bench"])
            .await
    }

    /// The ingestion sink for the group's users.
    pub fn sink(&self, group: &Group) -> Result<Arc<Sink>, BenchError> {
        let urls = self
            .platform
            .base_urls()
            .into_iter()
            .map(|base| format!("{base}/ingest/v1/call-events").parse())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BenchError::Setup(format!("serve's address is not a URL: {e}")))?;
        Ok(Arc::new(Sink::Ingest {
            urls: RoundRobin::new(urls)
                .ok_or_else(|| BenchError::Setup("no serve node is running".into()))?,
            auth: format!("Bearer {}", self.ingest)
                .parse()
                .map_err(|_| BenchError::Setup("the ingest token is not a header value".into()))?,
            users: group.names.clone(),
        }))
    }

    /// A closed-loop phase against this serve.
    pub async fn closed(
        &mut self,
        label: &str,
        group: &Group,
        calls: u32,
    ) -> Result<Measured, BenchError> {
        let sink = self.sink(group)?;
        let pids = self.pids();
        let measured = self.tally.closed(label, group, sink, calls, &pids).await;
        self.stored += measured.driven.accepted();
        Ok(measured)
    }

    /// An open-loop phase against this serve.
    pub async fn open(
        &mut self,
        label: &str,
        group: &Group,
        calls: u32,
        rate: f64,
    ) -> Result<Measured, BenchError> {
        let sink = self.sink(group)?;
        let pids = self.pids();
        let measured = self
            .tally
            .open(label, group, sink, calls, rate, &pids)
            .await;
        self.stored += measured.driven.accepted();
        Ok(measured)
    }

    /// Waits for serve's queue to empty, reads its resources, stops it, and verifies the
    /// scenario.
    pub async fn finish(self) -> (Resources, Verification) {
        let counters = self.quiet_counters().await;
        let peak_rss = proc::largest_peak_rss_bytes(&self.pids());
        let db_bytes = self.platform.db_bytes().await;
        let shutdown = self.platform.stop().await.ok();
        let (verification, totals) = self.tally.verify().await;
        let resources = Resources::new(totals, self.stored, peak_rss, db_bytes, counters, shutdown);
        (resources, verification)
    }

    /// serve's counters once its delivery queue is empty (or as they are after a while: a
    /// delivery that never arrived keeps it from emptying).
    async fn quiet_counters(&self) -> Option<DeliveryCounters> {
        let client = &self.tally.rig.client;
        let deadline = tokio::time::Instant::now() + QUIET_TIMEOUT;
        loop {
            let counters = self.platform.delivery_counters(client).await.ok();
            let quiet = counters.as_ref().is_some_and(|c| c.queue_depth == 0);
            if quiet || tokio::time::Instant::now() >= deadline {
                return counters;
            }
            tokio::time::sleep(QUIET_POLL).await;
        }
    }
}

/// Given to every `serve` under test unless the user's `--serve-arg`s name them: the bench sends
/// tens of thousands of requests a second with one ingest token, and the population scenario gives
/// 4 users 100,000 webhooks, so neither the per-token rate limit nor the per-user webhook cap may
/// apply.
const UNLIMITED: [(&str, &str); 2] = [("--rate-limit", "0"), ("--max-webhooks-per-user", "0")];

/// The user's `--serve-arg`s, then each of `extra` as `--flag=value` unless the user named it.
fn serve_args(user: &[String], extra: &[(&str, &str)]) -> Vec<String> {
    let mut args = user.to_vec();
    for (flag, value) in extra {
        if !user
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
        {
            args.push(format!("{flag}={value}"));
        }
    }
    args
}

/// Calls needed for `events` reports (three per call), at least one.
pub fn calls_for(events: u64) -> u32 {
    events.div_ceil(3).clamp(1, u64::from(u32::MAX)) as u32
}

/// Calls needed to offer `rate` reports/s for `step`.
pub fn calls_at(rate: f64, step: Duration) -> u32 {
    ((rate * step.as_secs_f64()) / 3.0).round().max(1.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_flag_is_added_unless_the_user_gave_it() {
        let user = vec![
            "--retries=1".to_string(),
            "--concurrency".into(),
            "512".into(),
        ];
        let extra = [("--retries", "100000"), ("--retry-interval", "100ms")];
        assert_eq!(
            serve_args(&user, &extra),
            [
                "--retries=1",
                "--concurrency",
                "512",
                "--retry-interval=100ms"
            ]
        );
    }

    #[test]
    fn whole_calls_cover_the_events_asked_for() {
        assert_eq!(calls_for(60_000), 20_000);
        assert_eq!(calls_for(100_000), 33_334);
        assert_eq!(calls_for(0), 1);
        assert_eq!(calls_at(1_000.0, Duration::from_secs(10)), 3_333);
    }
}
