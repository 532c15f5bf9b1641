//! `callhook simulate`: draws a call plan from a seed (see [`crate::simulate`]), checks the target,
//! plays the plan with a progress line on stderr (only on a terminal), and prints the summary
//! (a table, or JSON with `--json`). `--dry-run` prints the plan instead of sending it.

use crate::simulate::driver::{self, Live, Playback};
use crate::simulate::{Plan, PlanSettings, Summary, Target};
use anyhow::{Context, bail};
use reqwest::Url;
use serde_json::{Value, json};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// Width of the progress bar, in characters.
const BAR: usize = 24;

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Root URL of the callhook to drive (reports go to URL/ingest/v1/call-events).
    #[arg(long, value_name = "URL", env = "CALLHOOK_URL", default_value = "http://127.0.0.1:8080", value_parser = parse_base_url)]
    base_url: Url,

    /// An ingest token (`callhook token create --role ingest`); not needed with --dry-run.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "CALLHOOK_INGEST_TOKEN",
        hide_env_values = true,
        required_unless_present = "dry_run"
    )]
    token: Option<String>,

    /// Calls to simulate.
    #[arg(long, value_name = "N", env = "CALLHOOK_SIMULATE_CALLS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    calls: u32,

    /// Calls started per second of real time, on average (Poisson arrivals).
    #[arg(long, value_name = "CALLS_PER_S", env = "CALLHOOK_SIMULATE_RATE", default_value_t = 5.0, value_parser = parse_rate)]
    rate: f64,

    /// Users the calls are spread over: user-1 .. user-K.
    #[arg(long, value_name = "K", env = "CALLHOOK_SIMULATE_USERS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    users: u32,

    /// Accounts the users are dealt to in turn: user-k is in acct-((k-1) mod A + 1).
    #[arg(long, value_name = "A", env = "CALLHOOK_SIMULATE_ACCOUNTS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    accounts: u32,

    /// Seed of the plan: the same seed and settings give the same calls, states, numbers and
    /// order. Default: a random seed, printed in the summary.
    #[arg(long, value_name = "S", env = "CALLHOOK_SIMULATE_SEED")]
    seed: Option<u64>,

    /// How much faster than real time a call plays: with 1000 a 60 s call lasts 60 ms. The
    /// reported times (`at`) keep the real durations.
    #[arg(long, value_name = "X", env = "CALLHOOK_SIMULATE_SPEEDUP", default_value_t = 60.0, value_parser = parse_speedup)]
    speedup: f64,

    /// Print the summary (or, with --dry-run, the plan) as JSON on stdout.
    #[arg(long)]
    json: bool,

    /// Print the plan and send nothing.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    if args.accounts > args.users {
        bail!(
            "--accounts ({}) is more than --users ({}): every account needs at least one user",
            args.accounts,
            args.users
        );
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let plan = Plan::generate(PlanSettings {
        calls: args.calls,
        rate: args.rate,
        users: args.users,
        accounts: args.accounts,
        seed,
    });
    if args.dry_run {
        return print_out(&plan_listing(&plan, args.json));
    }
    let target = Target {
        base: args.base_url,
        token: args.token.unwrap_or_default(),
    };
    let client = driver::client()?;
    driver::check(&client, &target).await?;

    let playback = Playback {
        speedup: args.speedup,
        run: format!("{:08x}", rand::random::<u32>()),
    };
    let live = Arc::new(Live::default());
    let cancel = CancellationToken::new();
    let interrupt = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        }
    });
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| tokio::spawn(show_progress(live.clone(), plan.settings.calls)));
    let started = Instant::now();
    let driven = driver::drive(
        &client,
        &target,
        &plan,
        &playback,
        live.clone(),
        cancel.clone(),
    )
    .await;
    let elapsed = started.elapsed();
    interrupt.abort();
    if let Some(progress) = progress {
        progress.abort();
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
    let results = match driven {
        Ok(results) => results,
        Err(e) => match live.started.load(Ordering::Relaxed) {
            0 => return Err(e.into()),
            n => bail!(
                "{e} (the run stopped after {n} of {} calls had started)",
                args.calls
            ),
        },
    };

    let summary = Summary::new(&plan, &playback.run, &results, elapsed);
    if args.json {
        print_out(&(serde_json::to_string_pretty(&summary)? + "\n"))?;
    } else {
        print_out(&summary.table())?;
    }
    if cancel.is_cancelled() {
        bail!(
            "interrupted after {} of {} calls; calls in progress were left unfinished",
            summary.calls,
            summary.planned
        );
    }
    if summary.errors > 0 {
        bail!(
            "{} calls stopped on a refused report or a failed request (first: {})",
            summary.errors,
            summary.error_samples.first().map_or("", String::as_str)
        );
    }
    Ok(())
}

/// Redraws one progress line on stderr until aborted.
async fn show_progress(live: Arc<Live>, calls: u32) {
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    loop {
        tick.tick().await;
        // `finished` first: a call counted there was counted in `started` before.
        let finished = live.finished.load(Ordering::Relaxed);
        let started = live.started.load(Ordering::Relaxed);
        let filled = (finished as usize * BAR) / calls.max(1) as usize;
        let mut stderr = std::io::stderr().lock();
        let _ = write!(
            stderr,
            "\r\x1b[2Ksimulate [{}{}] {finished}/{calls} calls  {} in progress  {} events  {} errors",
            "#".repeat(filled),
            ".".repeat(BAR - filled.min(BAR)),
            started.saturating_sub(finished),
            live.events.load(Ordering::Relaxed),
            live.errors.load(Ordering::Relaxed),
        );
        let _ = stderr.flush();
    }
}

/// Writes `text` to stdout; a reader that went away (`| head`) is not an error.
fn print_out(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written.context("writing to stdout"),
    }
}

/// `--dry-run`: the plan as a table (one line per call) or as JSON.
fn plan_listing(plan: &Plan, json: bool) -> String {
    use std::fmt::Write as _;
    if json {
        let calls: Vec<Value> = plan
            .calls
            .iter()
            .map(|c| {
                json!({
                    "number": c.number,
                    "userId": c.user_id(),
                    "accountId": c.account_id(),
                    "direction": c.direction.as_str(),
                    "phoneNumber": c.phone_number,
                    "callerId": c.caller_id,
                    "startMs": c.start.as_millis() as u64,
                    "finalState": c.final_state().as_str(),
                    "steps": c.steps.iter().map(|s| json!({
                        "state": s.state.as_str(),
                        "afterMs": s.after.as_millis() as u64,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let out = json!({
            "seed": plan.settings.seed,
            "planHash": plan.hash(),
            "reports": plan.reports(),
            "calls": calls,
        });
        return serde_json::to_string_pretty(&out).unwrap_or_default() + "\n";
    }
    let mut text = String::new();
    let _ = writeln!(
        text,
        "plan {} (seed {}): {} calls, {} reports",
        plan.hash(),
        plan.settings.seed,
        plan.calls.len(),
        plan.reports()
    );
    for c in &plan.calls {
        let steps: Vec<String> = c
            .steps
            .iter()
            .map(|s| format!("{} {:.1}s", s.state.as_str(), s.after.as_secs_f64()))
            .collect();
        let _ = writeln!(
            text,
            "{:>6}  +{:>8.3}s  {:<10} {:<8} {:<9} {:<14} {:<18} {}",
            c.number,
            c.start.as_secs_f64(),
            c.user_id(),
            c.account_id(),
            c.direction.as_str(),
            c.phone_number,
            c.caller_id.as_deref().unwrap_or("(withheld)"),
            steps.join(" > ")
        );
    }
    text
}

fn parse_base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{e} (use e.g. http://127.0.0.1:8080)"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(url)
}

fn parse_rate(text: &str) -> Result<f64, String> {
    parse_positive(text, 100_000.0)
}

fn parse_speedup(text: &str) -> Result<f64, String> {
    parse_positive(text, 1_000_000.0)
}

fn parse_positive(text: &str, max: f64) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x <= max => Ok(x),
        _ => Err(format!("must be a number above 0 and at most {max}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_must_be_http_with_a_host() {
        assert!(parse_base_url("http://127.0.0.1:8080").is_ok());
        assert!(parse_base_url("ftp://example.com").is_err());
        assert!(parse_base_url("127.0.0.1:8080").is_err());
    }

    #[test]
    fn rates_and_speedups_must_be_positive_numbers() {
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        assert!(parse_rate("0").is_err());
        assert!(parse_speedup("inf").is_err());
        assert!(parse_speedup("fast").is_err());
    }
}
