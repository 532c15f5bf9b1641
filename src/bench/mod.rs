//! `callhook bench`: how fast the platform moves call events from ingestion to a webhook, next to
//! what the same machine does without it, and whether every event arrived exactly once and in
//! order. Everything runs on loopback, one [`Scenario`] after another:
//!
//! - **baseline** ([`baseline`]): the [`load`] generator posts the event bodies straight to the
//!   counting [`receiver`], closed loop and then at each fixed rate: the ceiling;
//! - **throughput**, **latency**, **fanout** ([`sweeps`]): whole calls (RINGING, ACTIVE,
//!   ANSWERED) ingested into a real `serve` child ([`platform`]) as fast as they are accepted, at
//!   fixed rates (open loop), and with 1, 10, 100 webhooks per user;
//! - **population** ([`population`]): the same load with 1,000 and 100,000 registered webhooks
//!   of which one per event matches;
//! - **backlog** and **restart** ([`outage`]): events queued while the receiver answers 503, then
//!   drained; a database full of events and pending deliveries, stopped and started again;
//! - **faults** ([`faults`]): the latency load with healthy webhooks alone, then next to 100
//!   endpoints that hang, refuse, reset or answer 500;
//! - **sip** ([`sip`]): SIPp calls at rising rates straight to a SIPp callee and through
//!   `serve --sip` ([`sipp`] runs SIPp): calls/s without failures, added INVITE->200 latency.
//!
//! Each platform scenario gets its own `serve` ([`platform`], [`node`]) on a fresh database
//! ([`session`]; its books in [`tally`]), so its peak RSS, CPU and database size are its own
//! ([`resources`]). That database is a SQLite file, or with `--db-server` one of its own on a
//! PostgreSQL server ([`scratch_db`]) shared by one or more nodes that the load is spread over
//! ([`store`] says which scenarios that mode runs). [`verify`]
//! checks every scenario: every accepted report arrived once per webhook, each call's in order;
//! a run that lost, repeated or reordered anything has `passed = false`. The figures, their ratios to the baseline
//! and the targets are in [`report`], [`figures`] and [`targets`] (with the machine and settings
//! in [`context`]); [`table`] and [`plot`] render them.
//!
//! A client of the binary: it talks to `serve` over HTTP and runs `token create` as a process,
//! so it depends on nothing else in the crate. Progress goes to `tracing`; the CLI prints.

mod baseline;
mod context;
mod faults;
mod figures;
mod load;
mod node;
mod outage;
pub mod platform;
mod plot;
mod population;
mod receiver;
mod report;
mod resources;
mod scratch_db;
mod session;
mod sip;
pub mod sipp;
pub mod store;
mod sweeps;
mod table;
mod tally;
mod targets;
mod verify;

pub use plot::write_latency_plot;
pub use report::Report;
pub use store::StoreChoice;

use context::{Machine, SettingsEcho};
use session::Rig;
use std::path::PathBuf;
use std::time::Duration;

/// What to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `callhook` binary to start `serve` and `token create` from.
    pub exe: PathBuf,
    /// Extra arguments for `serve` (default settings otherwise).
    pub serve_args: Vec<String>,
    /// The store each session's `serve` nodes share, and how many nodes.
    pub store: StoreChoice,
    /// The scenarios to run, in the order of [`Scenario::ALL`].
    pub scenarios: Vec<Scenario>,
    /// Reports in the baseline, throughput and each population phase (rounded up to whole
    /// calls); deliveries in each fan-out phase.
    pub events: u64,
    /// Calls in flight in the closed-loop phases.
    pub concurrency: usize,
    /// Users the calls are spread over.
    pub users: u32,
    /// Reports per second in the latency sweep.
    pub rates: Vec<f64>,
    /// Length of each open-loop step (each rate, each fan-out latency).
    pub step: Duration,
    /// Webhooks per user in the fan-out sweep.
    pub fanouts: Vec<u32>,
    /// Registered webhooks in the population sweep.
    pub populations: Vec<u64>,
    /// Reports queued while the receiver is down.
    pub backlog_events: u64,
    /// Reports stored before the restart...
    pub restart_events: u64,
    /// ...of which the last ones are still pending delivery at the restart.
    pub restart_pending: u64,
    /// Give up waiting for deliveries when none arrived for this long.
    pub stall_timeout: Duration,
    pub quick: bool,
}

/// The scenarios of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Scenario {
    Baseline,
    Throughput,
    Latency,
    Fanout,
    Population,
    Backlog,
    Restart,
    Faults,
    Sip,
}

impl Scenario {
    pub const ALL: [Scenario; 9] = [
        Scenario::Baseline,
        Scenario::Throughput,
        Scenario::Latency,
        Scenario::Fanout,
        Scenario::Population,
        Scenario::Backlog,
        Scenario::Restart,
        Scenario::Faults,
        Scenario::Sip,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Baseline => "baseline",
            Scenario::Throughput => "throughput",
            Scenario::Latency => "latency",
            Scenario::Fanout => "fanout",
            Scenario::Population => "population",
            Scenario::Backlog => "backlog",
            Scenario::Restart => "restart",
            Scenario::Faults => "faults",
            Scenario::Sip => "sip",
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

/// Runs the selected scenarios. Every `serve` child, its directory and its PostgreSQL database
/// are gone when this returns, also on error.
pub async fn run(settings: &Settings) -> Result<Report, BenchError> {
    let machine = Machine::this();
    let rig = Rig::start(settings).await?;
    let mut report = Report::new(machine, SettingsEcho::from(settings));
    for scenario in Scenario::ALL {
        if !settings.scenarios.contains(&scenario) {
            continue;
        }
        tracing::info!(scenario = scenario.name(), "scenario starting");
        match scenario {
            Scenario::Baseline => report.baseline = Some(baseline::run(&rig).await),
            Scenario::Throughput => report.throughput = Some(sweeps::throughput(&rig).await?),
            Scenario::Latency => report.latency = Some(sweeps::latency(&rig).await?),
            Scenario::Fanout => report.fanout = Some(sweeps::fanout(&rig).await?),
            Scenario::Population => report.population = Some(population::run(&rig).await?),
            Scenario::Backlog => report.backlog = Some(outage::backlog(&rig).await?),
            Scenario::Restart => report.restart = Some(outage::restart(&rig).await?),
            Scenario::Faults => report.faults = Some(faults::run(&rig).await?),
            Scenario::Sip => report.sip = sip::run(&rig).await?,
        }
    }
    rig.stop().await;
    report.conclude();
    Ok(report)
}
