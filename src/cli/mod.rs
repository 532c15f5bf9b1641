//! The command line: clap definitions and dispatch. `serve` is the composition root; the other
//! commands are small clients. Only this layer uses `anyhow` and prints to the terminal.
//!
//! May depend on everything in the crate.

mod bench;
mod calls;
mod demo;
mod listen;
mod serve;
mod signals;
mod simulate;
mod token;
mod webhooks;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::time::Duration;

/// callhook: a self-hostable call-events platform that speaks the Vonage Integration Platform
/// (VIS) webhook API.
#[derive(Debug, Parser)]
#[command(name = "callhook", version, about, long_about = None)]
struct Cli {
    /// Log filter for stderr, e.g. `info`, `debug`, `callhook=debug,tower_http=info`.
    #[arg(long, global = true, env = "CALLHOOK_LOG", default_value = "info")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the platform: the VIS API, ingestion and background jobs, on an embedded SQLite file
    /// or a PostgreSQL database shared by several nodes.
    Serve(serve::ServeArgs),
    /// Bring a database's schema up to date (serve does it on start too) and print its version.
    Migrate(token::DbArg),
    /// Manage bearer tokens (and the users and accounts they name) in a database.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Measure events/s and latency from ingestion to a webhook against a baseline, and check
    /// that nothing is lost or reordered (starts its own serve; use a release build).
    Bench(bench::BenchArgs),
    /// Receive call-event deliveries: verify signatures, print each event, save, forward to
    /// another app, and exit with a verdict for scripts (--count, --timeout, --expect).
    Listen(listen::ListenArgs),
    /// Manage a user's webhooks on any VIS API (a local callhook or the public service): create,
    /// list, get, delete, renew, and clean up or re-create the failed ones.
    Webhooks(webhooks::WebhooksArgs),
    /// Control calls through the VIS call routes (list, place, answer, hold, transfer, end): on
    /// callhook they drive the simulated telephony; `ring` makes a simulated call ring a user.
    Calls(calls::CallsArgs),
    /// The first thing to run: starts the platform on a temporary database and a receiver,
    /// registers a webhook as the seed does, makes a few simulated calls and shows their events
    /// arriving, then prints the commands to do it by hand.
    Demo(demo::DemoArgs),
    /// Drive realistic call traffic (answered, missed, rejected, cancelled, held calls) through
    /// the ingestion API, reproducible from a seed, and summarise what the server accepted.
    Simulate(simulate::SimulateArgs),
}

async fn migrate(db: token::DbArg) -> anyhow::Result<()> {
    let database = crate::store::Database::parse(&db.db);
    let version = crate::store::open::migrate(&database).await?;
    println!("{}: schema version {version}", database.shown());
    Ok(())
}

/// Parses durations like `500ms`, `10s`, `15m`, `10d`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (use e.g. 500ms, 10s, 15m, 10d)"))
}

/// Runs the command line and returns the process exit code.
/// Threads for blocking work (tokio's default is 512).
const MAX_BLOCKING_THREADS: usize = 16;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // A log line that cannot be written (stderr on a full disk) is dropped; by default the
        // subscriber reports it with `eprintln!`, which panics when stderr is the failing file.
        .log_internal_errors(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Blocking work is SQLite reads (a pool of a few connections) and name lookups: more
        // threads than this would only wait, each with its own allocator heap.
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("callhook: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Migrate(db) => migrate(db).await,
            Command::Token(command) => token::run(command).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Simulate(args) => simulate::run(args).await,
            Command::Listen(args) => listen::run(args).await,
            Command::Webhooks(args) => webhooks::run(args).await,
            Command::Calls(args) => calls::run(args).await,
            Command::Demo(args) => demo::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callhook: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_the_documented_forms() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10d"), Ok(Duration::from_secs(10 * 86_400)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
