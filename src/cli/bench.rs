//! `callhook bench`: runs the benchmark (see [`crate::bench`]) against `serve`s started from this
//! very binary (on SQLite, or on PostgreSQL with one or more nodes), prints the table, writes the
//! JSON and the latency plot, and fails when an event was lost, repeated or reordered.

use crate::bench::{self, Scenario, Settings, StoreChoice};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Sizes of a full run and of a `--quick` one.
struct Sizes {
    events: u64,
    step: Duration,
    populations: &'static [u64],
    backlog: u64,
    restart_events: u64,
    restart_pending: u64,
}

const FULL: Sizes = Sizes {
    events: 60_000,
    step: Duration::from_secs(10),
    populations: &[1_000, 100_000],
    backlog: 100_000,
    restart_events: 1_000_000,
    restart_pending: 100_000,
};

const QUICK: Sizes = Sizes {
    events: 900,
    step: Duration::from_millis(500),
    populations: &[100, 1_000],
    backlog: 900,
    restart_events: 900,
    restart_pending: 300,
};

/// Waiting for deliveries ends when none arrived for this long (longer than one retry interval
/// of a default `serve`, so a retried delivery is still seen).
const STALL_TIMEOUT: Duration = Duration::from_secs(15);
/// The plot's file name when neither `--plot` nor `--json` says where.
const PLOT_FILE: &str = "bench-latency.png";

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Run only these scenarios (repeat, or separate with commas): baseline, throughput, latency,
    /// fanout, population, backlog, restart, faults, sip. Default: all (with --db-server: baseline,
    /// throughput, latency, the only ones that mode runs). Without baseline, no ratios.
    #[arg(
        long = "scenario",
        value_name = "NAME",
        value_enum,
        value_delimiter = ','
    )]
    scenarios: Vec<Scenario>,

    /// Reports in the baseline, throughput and each population phase, rounded up to whole calls
    /// of three; deliveries in each fan-out phase. Default: 60000, or 900 with --quick.
    #[arg(long, value_name = "N", env = "CALLHOOK_BENCH_EVENTS", value_parser = clap::value_parser!(u64).range(3..))]
    events: Option<u64>,

    /// Calls in flight at once in the closed-loop phases.
    #[arg(long, value_name = "N", env = "CALLHOOK_BENCH_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,

    /// Users the calls are spread over.
    #[arg(long, value_name = "N", env = "CALLHOOK_BENCH_USERS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    users: u32,

    /// Reports per second of the latency sweep, open loop (also the baseline's).
    #[arg(long, value_name = "N,...", env = "CALLHOOK_BENCH_RATES", value_delimiter = ',', default_value = "100,1000,5000", value_parser = clap::value_parser!(u32).range(3..=1_000_000))]
    rates: Vec<u32>,

    /// Length of each open-loop step (each rate; each fan-out latency). Default: 10s, or 500ms
    /// with --quick.
    #[arg(long, value_name = "D", env = "CALLHOOK_BENCH_DURATION", value_parser = super::parse_duration)]
    duration: Option<Duration>,

    /// Webhooks per user in the fan-out sweep.
    #[arg(long, value_name = "N,...", value_delimiter = ',', default_value = "1,10,100", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    fanout: Vec<u32>,

    /// Registered webhooks in the population sweep. Default: 1000,100000, or 100,1000 with
    /// --quick.
    #[arg(long, value_name = "N,...", value_delimiter = ',')]
    population: Vec<u64>,

    /// Reports queued in the backlog scenario. Default: 100000, or 900 with --quick.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(3..))]
    backlog: Option<u64>,

    /// Reports stored before the restart. Default: 1000000, or 900 with --quick.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(3..))]
    restart_events: Option<u64>,

    /// Of those, the last ones still pending delivery at the restart. Default: 100000, or 300
    /// with --quick.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(3..))]
    restart_pending: Option<u64>,

    /// Also write every figure as JSON to this file.
    #[arg(long, value_name = "FILE", env = "CALLHOOK_BENCH_JSON")]
    json: Option<PathBuf>,

    /// Where to write the latency plot (PNG). Default: bench-latency.png next to the --json
    /// file, else in the current directory. Written when the latency scenario ran.
    #[arg(long, value_name = "FILE", env = "CALLHOOK_BENCH_PLOT")]
    plot: Option<PathBuf>,

    /// A short run (well under a minute) that checks correctness, e.g. for CI.
    #[arg(long)]
    quick: bool,

    /// A PostgreSQL server (e.g. postgres://postgres@127.0.0.1:5432/test): each scenario then
    /// gets a fresh database of its own on it (created and dropped by the bench) instead of a
    /// SQLite file. The user needs the right to create databases.
    #[arg(long, value_name = "URL", env = "CALLHOOK_BENCH_DB_SERVER")]
    db_server: Option<String>,

    /// `serve` nodes per scenario, sharing its database; the load is spread over them in turn.
    /// More than one needs --db-server.
    #[arg(long, value_name = "N", default_value_t = 1)]
    nodes: u32,

    /// An extra argument for each `serve` under test, e.g. `--serve-arg=--concurrency=512`
    /// (repeat for several). Without it, serve runs with its defaults.
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true)]
    serve_args: Vec<String>,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let sizes = if args.quick { &QUICK } else { &FULL };
    let store = StoreChoice::from_flags(args.db_server.as_deref(), args.nodes)
        .map_err(anyhow::Error::msg)?;
    let scenarios = store
        .scenarios(&args.scenarios)
        .map_err(anyhow::Error::msg)?;
    let restart_events = args.restart_events.unwrap_or(sizes.restart_events);
    let settings = Settings {
        exe: std::env::current_exe().context("finding the callhook binary to start serve from")?,
        serve_args: args.serve_args,
        store,
        scenarios,
        events: args.events.unwrap_or(sizes.events),
        concurrency: args.concurrency as usize,
        users: args.users,
        rates: args.rates.iter().map(|r| f64::from(*r)).collect(),
        step: args.duration.unwrap_or(sizes.step),
        fanouts: args.fanout,
        populations: if args.population.is_empty() {
            sizes.populations.to_vec()
        } else {
            args.population
        },
        backlog_events: args.backlog.unwrap_or(sizes.backlog),
        restart_events,
        restart_pending: args
            .restart_pending
            .unwrap_or(sizes.restart_pending)
            .min(restart_events),
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
    let plot = args
        .plot
        .unwrap_or_else(|| plot_next_to(args.json.as_deref()));
    match bench::write_latency_plot(&report, &plot) {
        Ok(true) => eprintln!("latency plot written to {}", plot.display()),
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(plot = %plot.display(), error = %e, "could not draw the latency plot")
        }
    }
    if !report.passed {
        bail!("the run FAILED: {}", report.failures.join("; "));
    }
    Ok(())
}

/// `bench-latency.png` in the directory of the JSON file, or in the current directory.
fn plot_next_to(json: Option<&Path>) -> PathBuf {
    json.and_then(Path::parent)
        .map_or_else(|| PathBuf::from(PLOT_FILE), |dir| dir.join(PLOT_FILE))
}
