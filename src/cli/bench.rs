//! `callhook bench`: runs the benchmark (see [`crate::bench`]) against a `serve` started from this
//! very binary, prints the table, writes the JSON, and fails when an event was lost, repeated or
//! reordered.

use crate::bench::{self, Settings};
use anyhow::{Context, bail};
use std::path::PathBuf;
use std::time::Duration;

/// Reports in the throughput phase of a full run.
const FULL_EVENTS: u64 = 60_000;
/// ...and of a `--quick` run.
const QUICK_EVENTS: u64 = 3_000;
/// Length of the latency phase of a full run.
const FULL_DURATION: Duration = Duration::from_secs(10);
/// ...and of a `--quick` run.
const QUICK_DURATION: Duration = Duration::from_secs(2);
/// Waiting for deliveries ends when none arrived for this long (longer than one retry interval
/// of a default `serve`, so a retried delivery is still seen).
const STALL_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Reports ingested in the throughput phase (and posted in the baseline), rounded up to whole
    /// calls of three. Default: 60000, or 3000 with --quick.
    #[arg(long, value_name = "N", env = "CALLHOOK_BENCH_EVENTS", value_parser = clap::value_parser!(u64).range(3..))]
    events: Option<u64>,

    /// Calls in flight at once in the throughput phase and the baseline.
    #[arg(long, value_name = "N", env = "CALLHOOK_BENCH_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,

    /// Users the calls are spread over; each gets one webhook.
    #[arg(long, value_name = "N", env = "CALLHOOK_BENCH_USERS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    users: u32,

    /// Reports per second offered in the latency phase (open loop).
    #[arg(long, value_name = "N", env = "CALLHOOK_BENCH_RATE", default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(3..=1_000_000))]
    rate: u32,

    /// Length of the latency phase. Default: 10s, or 2s with --quick.
    #[arg(long, value_name = "D", env = "CALLHOOK_BENCH_DURATION", value_parser = super::parse_duration)]
    duration: Option<Duration>,

    /// Also write every figure as JSON to this file.
    #[arg(long, value_name = "FILE", env = "CALLHOOK_BENCH_JSON")]
    json: Option<PathBuf>,

    /// A short run (well under a minute) that checks correctness, e.g. for CI.
    #[arg(long)]
    quick: bool,

    /// An extra argument for the `serve` under test, e.g. `--serve-arg=--concurrency=512`
    /// (repeat for several). Without it, serve runs with its defaults.
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true)]
    serve_args: Vec<String>,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let settings = Settings {
        exe: std::env::current_exe().context("finding the callhook binary to start serve from")?,
        serve_args: args.serve_args,
        events: args.events.unwrap_or(if args.quick {
            QUICK_EVENTS
        } else {
            FULL_EVENTS
        }),
        concurrency: args.concurrency as usize,
        users: args.users,
        rate: f64::from(args.rate),
        latency_duration: args.duration.unwrap_or(if args.quick {
            QUICK_DURATION
        } else {
            FULL_DURATION
        }),
        stall_timeout: STALL_TIMEOUT,
        quick: args.quick,
    };
    if cfg!(debug_assertions) {
        tracing::warn!("a debug build: the figures say little; use `cargo build --release`");
    }
    let report = tokio::select! {
        report = bench::run(&settings) => report.context("the bench could not run")?,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if !report.passed {
        bail!("the run FAILED: {}", report.failures.join("; "));
    }
    Ok(())
}
