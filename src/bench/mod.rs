//! `callhook bench`: how fast the platform moves call events from ingestion to a webhook, next to
//! what the same machine does without it, and whether every event arrived exactly once and in
//! order. Everything runs on loopback in one run:
//!
//! 1. a counting [`receiver`] starts in this process;
//! 2. **baseline**: the [`load`] generator posts the event bodies straight to the receiver
//!    (closed loop, `concurrency` calls in flight): the ceiling every figure is compared with;
//! 3. a real `serve` child process starts on a fresh database ([`platform`]), with an ingest
//!    token and one webhook per user pointing at the receiver;
//! 4. **throughput**: whole calls (RINGING, ACTIVE, ANSWERED) ingested closed-loop; events/s from
//!    the first report sent to the last delivery received;
//! 5. **latency**: whole calls ingested open-loop at a fixed rate; from the 202 read to the
//!    receiver got it, and ingestion alone;
//! 6. [`verify`]: every accepted report arrived once per webhook, each call's in order. A run
//!    that lost, repeated or reordered anything has `passed = false`.
//!
//! A client of the binary: it talks to `serve` over HTTP and runs `token create` as a process,
//! so it depends on nothing else in the crate. Progress goes to `tracing`; the CLI prints.

mod load;
pub mod platform;
mod receiver;
mod report;
mod resources;
mod table;
mod verify;

pub use report::Report;

use load::{Driven, Sink};
use platform::Platform;
use receiver::Receiver;
use report::{Latency, Machine, ServeFigures, SettingsEcho, Throughput, Verification};
use reqwest::Client;
use resources::{CpuMark, CpuUse};
use serde::Serialize;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use verify::Ledger;

/// One webhook per user for now; fan-out sweeps will raise it.
const WEBHOOKS_PER_USER: u32 = 1;
/// In the latency phase, the time between the reports of one call.
const STEP_SPACING: Duration = Duration::from_millis(100);
/// How long after the last phase the receiver keeps listening for late repeats.
const SETTLE: Duration = Duration::from_millis(250);

/// What to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `callhook` binary to start `serve` and `token create` from.
    pub exe: PathBuf,
    /// Extra arguments for `serve` (default settings otherwise).
    pub serve_args: Vec<String>,
    /// Reports in the baseline and throughput phases (rounded up to whole calls).
    pub events: u64,
    /// Calls in flight in the closed-loop phases.
    pub concurrency: usize,
    /// Users the calls are spread over (one webhook each).
    pub users: u32,
    /// Reports per second in the latency phase.
    pub rate: f64,
    /// Length of the latency phase.
    pub latency_duration: Duration,
    /// Give up waiting for deliveries when none arrived for this long.
    pub stall_timeout: Duration,
    pub quick: bool,
}

/// The phases of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    Baseline,
    Throughput,
    Latency,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Baseline => "baseline",
            Phase::Throughput => "throughput",
            Phase::Latency => "latency",
        }
    }
}

/// Why a run could not be carried out (as opposed to a run that found lost events, which is a
/// [`Report`] with `passed = false`).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{0}")]
    Setup(String),
}

impl BenchError {
    fn io(what: impl Into<String>, source: std::io::Error) -> BenchError {
        BenchError::Io {
            what: what.into(),
            source,
        }
    }

    fn http(what: impl Into<String>, source: reqwest::Error) -> BenchError {
        BenchError::Http {
            what: what.into(),
            source,
        }
    }
}

/// A phase's load and what it cost.
struct PhaseRun {
    driven: Driven,
    cpu: CpuUse,
}

/// Runs the whole bench. The `serve` child and its directory are gone when this returns, also
/// on error.
pub async fn run(settings: &Settings) -> Result<Report, BenchError> {
    let machine = Machine::this();
    let client = load::client()?;
    let receiver = Receiver::start().await?;
    let mut ledger = Ledger::default();
    let calls = settings.events.div_ceil(3).max(1) as u32;

    tracing::info!(
        events = calls * 3,
        "baseline: posting straight to the receiver"
    );
    let webhooks = (0..settings.users)
        .map(|u| receiver.webhook_url(u).parse())
        .collect::<Result<_, _>>()
        .map_err(|e| BenchError::Setup(format!("the receiver's address is not a URL: {e}")))?;
    let sink = Sink::Direct { webhooks };
    let mark = Mark::now(&receiver, None);
    let driven = load::closed_loop(
        &client,
        Arc::new(sink),
        "base",
        calls,
        settings.users,
        settings.concurrency,
    )
    .await;
    let baseline = settle_phase(
        Phase::Baseline,
        driven,
        mark,
        &mut ledger,
        &receiver,
        settings,
    )
    .await;

    let platform = Platform::start(&settings.exe, &settings.serve_args).await?;
    tracing::info!(url = platform.base_url(), "serve started");
    let phases = platform_phases(&platform, &client, &receiver, &mut ledger, settings).await;
    let counters = platform.delivery_counters(&client).await.ok();
    let peak_rss = resources::peak_rss_bytes(&platform.pid().to_string());
    let shutdown = platform.stop().await.ok();
    let (throughput, latency) = phases?;

    let arrivals = receiver.arrivals();
    let malformed = receiver.malformed();
    receiver.stop().await;
    let checked = ledger.check(&arrivals);
    let phase = |p: Phase| checked.phases.get(&p).cloned().unwrap_or_default();
    let baseline = Throughput::measure(&baseline.driven, &phase(Phase::Baseline), baseline.cpu);
    let mut end_to_end = Throughput::measure(
        &throughput.driven,
        &phase(Phase::Throughput),
        throughput.cpu,
    );
    if baseline.events_per_second > 0.0 {
        end_to_end.ratio_to_baseline =
            Some(end_to_end.events_per_second / baseline.events_per_second);
    }
    let latency = Latency::measure(
        settings.rate,
        &latency.driven,
        &phase(Phase::Latency),
        latency.cpu,
    );
    let verification = Verification::from_check(&checked, malformed);
    let failures = verification.failures();
    Ok(Report {
        callhook_version: env!("CARGO_PKG_VERSION"),
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        passed: failures.is_empty(),
        failures,
        settings: SettingsEcho {
            quick: settings.quick,
            events: settings.events,
            concurrency: settings.concurrency,
            users: settings.users,
            webhooks_per_user: WEBHOOKS_PER_USER,
            rate: settings.rate,
            latency_seconds: settings.latency_duration.as_secs_f64(),
            serve_args: settings.serve_args.clone(),
        },
        machine,
        baseline,
        throughput: end_to_end,
        latency,
        verification,
        serve: ServeFigures {
            delivery_counters: counters,
            peak_rss_bytes: peak_rss,
            shutdown_seconds: shutdown.map(|d| d.as_secs_f64()),
        },
    })
}

/// Setup on `serve`, then the throughput and latency phases.
async fn platform_phases(
    platform: &Platform,
    client: &Client,
    receiver: &Receiver,
    ledger: &mut Ledger,
    settings: &Settings,
) -> Result<(PhaseRun, PhaseRun), BenchError> {
    let ingest = platform
        .create_token(&["--role", "ingest", "--name", "bench-ingest"])
        .await?;
    for user in 0..settings.users {
        let name = format!("u{user}");
        let token = platform
            .create_token(&["--account", "bench", "--user", &name, "--name", "bench"])
            .await?;
        for webhook in webhooks_of(user) {
            platform
                .create_webhook(client, &token, &receiver.webhook_url(webhook))
                .await?;
        }
    }
    let sink = Arc::new(Sink::Ingest {
        url: format!("{}/ingest/v1/call-events", platform.base_url())
            .parse()
            .map_err(|e| BenchError::Setup(format!("serve's address is not a URL: {e}")))?,
        auth: format!("Bearer {ingest}")
            .parse()
            .map_err(|_| BenchError::Setup("the ingest token is not a header value".into()))?,
    });

    let calls = settings.events.div_ceil(3).max(1) as u32;
    tracing::info!(
        events = calls * 3,
        concurrency = settings.concurrency,
        "throughput: ingesting whole calls"
    );
    let mark = Mark::now(receiver, Some(platform.pid()));
    let driven = load::closed_loop(
        client,
        sink.clone(),
        "tp",
        calls,
        settings.users,
        settings.concurrency,
    )
    .await;
    let throughput =
        settle_phase(Phase::Throughput, driven, mark, ledger, receiver, settings).await;

    let calls = ((settings.rate * settings.latency_duration.as_secs_f64()) / 3.0)
        .round()
        .max(1.0) as u32;
    tracing::info!(
        rate = settings.rate,
        events = calls * 3,
        "latency: ingesting at a fixed rate"
    );
    let mark = Mark::now(receiver, Some(platform.pid()));
    let driven = load::open_loop(
        client,
        sink,
        "lat",
        calls,
        settings.users,
        settings.rate,
        STEP_SPACING,
    )
    .await;
    let latency = settle_phase(Phase::Latency, driven, mark, ledger, receiver, settings).await;
    tokio::time::sleep(SETTLE).await;
    Ok((throughput, latency))
}

/// Where a phase started: CPU counters and deliveries received so far.
struct Mark {
    cpu: CpuMark,
    received: usize,
}

impl Mark {
    fn now(receiver: &Receiver, serve_pid: Option<u32>) -> Mark {
        Mark {
            cpu: CpuMark::now(serve_pid),
            received: receiver.count(),
        }
    }
}

/// Records what a phase's load got accepted and waits until the receiver has had that many more
/// deliveries than when the phase began (or nothing arrived for the stall timeout).
async fn settle_phase(
    phase: Phase,
    driven: Driven,
    mark: Mark,
    ledger: &mut Ledger,
    receiver: &Receiver,
    settings: &Settings,
) -> PhaseRun {
    let before = ledger.expected(phase);
    for outcome in &driven.outcomes {
        ledger.add(phase, outcome, webhooks_of(outcome.user));
    }
    let expected = ledger.expected(phase) - before;
    let mut target = mark.received + expected as usize;
    let mut complete = receiver.wait_for(target, settings.stall_timeout).await;
    let cpu = mark.cpu.used();
    // Repeats count towards the target too: go on while something is still missing.
    while complete {
        let checked = ledger.check(&receiver.arrivals());
        let missing = checked.phases.get(&phase).map_or(0, |p| p.missing);
        if missing == 0 {
            break;
        }
        target = receiver.count() + missing as usize;
        complete = receiver.wait_for(target, settings.stall_timeout).await;
    }
    if !complete {
        tracing::warn!(
            phase = phase.name(),
            expected,
            received = receiver.count(),
            "gave up waiting for deliveries"
        );
    }
    PhaseRun { driven, cpu }
}

/// The receiver paths (`/webhook/{n}`) of user `user`'s webhooks.
fn webhooks_of(user: u32) -> Range<u32> {
    user * WEBHOOKS_PER_USER..(user + 1) * WEBHOOKS_PER_USER
}
