//! `callhook listen`: the seed's Express/Flask receiver, done properly. Parses the flags, opens
//! the save file, binds the listener, prints where it receives (on stderr, so stdout carries
//! events only), and runs [`crate::receiver`] until its verdict, a deadline or SIGINT/SIGTERM.

use super::signals::StopSignals;
use crate::domain::CallState;
use crate::receiver::{self, Format, Forwarder, Goal, Outcome, Output, SaveFile, Settings};
use anyhow::{Context, bail};
use axum::http::StatusCode;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct ListenArgs {
    /// Address to receive on; port 0 picks a free port. The real URL is printed on stderr.
    #[arg(
        long,
        env = "CALLHOOK_LISTEN_ADDR",
        value_name = "ADDR",
        default_value = "127.0.0.1:3000"
    )]
    listen: String,

    /// The path deliveries are posted to; other paths answer 404.
    #[arg(
        long,
        env = "CALLHOOK_LISTEN_PATH",
        value_name = "PATH",
        default_value = "/webhook"
    )]
    path: String,

    /// Verify each delivery's signature (X-VON-Signature, or metadata.signature in the body) with
    /// this key; a missing or wrong signature is answered 401. Without a key nothing is verified.
    #[arg(
        long,
        env = "CALLHOOK_LISTEN_SIGNING_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    signing_key: Option<String>,

    /// How events are printed on stdout: text (one readable line per event, coloured on a
    /// terminal, with a running tally) or json (the received body, one compact line per event).
    #[arg(
        long,
        env = "CALLHOOK_LISTEN_FORMAT",
        value_enum,
        default_value = "text"
    )]
    format: Format,

    /// Answer deliveries with this status instead of 200, to try failure handling.
    #[arg(
        long,
        env = "CALLHOOK_LISTEN_STATUS",
        value_name = "CODE",
        default_value_t = 200,
        value_parser = clap::value_parser!(u16).range(200..=599),
        conflicts_with = "forward_to"
    )]
    status: u16,

    /// Relay each verified delivery (method, headers, raw body) to this URL and answer with that
    /// app's status and body: 502 when it cannot be reached, 504 when it does not answer.
    #[arg(long, env = "CALLHOOK_LISTEN_FORWARD_TO", value_name = "URL")]
    forward_to: Option<String>,

    /// Append every delivery (time, headers, body, verification result, status) to this file as
    /// one JSON line.
    #[arg(long, env = "CALLHOOK_LISTEN_SAVE", value_name = "FILE")]
    save: Option<PathBuf>,

    /// Exit after this many events (deliveries answered 2xx; redeliveries of a call's latest
    /// state are not counted again).
    #[arg(
        long,
        env = "CALLHOOK_LISTEN_COUNT",
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    count: Option<u64>,

    /// Stop after this long (500ms, 10s, 2m); with --count or --expect, exit non-zero if they
    /// are not met by then.
    #[arg(
        long,
        env = "CALLHOOK_LISTEN_TIMEOUT",
        value_name = "D",
        value_parser = super::parse_duration
    )]
    timeout: Option<Duration>,

    /// Exit 0 only if every call seen went through exactly these states, e.g.
    /// RINGING,ACTIVE,ANSWERED. A call that leaves the sequence ends the run at once (non-zero);
    /// without --count the run ends once every call seen has completed it.
    #[arg(
        long,
        env = "CALLHOOK_LISTEN_EXPECT",
        value_name = "STATES",
        value_delimiter = ','
    )]
    expect: Option<Vec<String>>,
}

pub async fn run(args: ListenArgs) -> anyhow::Result<()> {
    if !args.path.starts_with('/') {
        bail!("--path must start with /, got {:?}", args.path);
    }
    let expect = args.expect.as_deref().map(parse_states).transpose()?;
    let forward = args.forward_to.as_deref().map(Forwarder::new).transpose()?;
    let save = args.save.as_deref().map(SaveFile::open).transpose()?;
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener
        .local_addr()
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let signals = StopSignals::install().context("installing signal handlers")?;

    let mut notes = Vec::new();
    if args.signing_key.is_some() {
        notes.push("verifying signatures".to_string());
    }
    if let Some(f) = &forward {
        notes.push(format!("forwarding to {}", f.target()));
    }
    if let Some(s) = &save {
        notes.push(format!("saving to {}", s.path().display()));
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join(", "))
    };
    eprintln!(
        "callhook listen: receiving on http://{address}{}{notes}",
        args.path
    );

    let stop = CancellationToken::new();
    tokio::spawn(signals.cancel_on_signal(stop.clone()));
    let colour = args.format == Format::Text
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let settings = Settings {
        path: args.path,
        signing_key: args.signing_key,
        format: args.format,
        colour,
        // The range is checked by clap, so this cannot fail.
        status: StatusCode::from_u16(args.status).unwrap_or(StatusCode::OK),
        forward,
        save,
        goal: Goal {
            count: args.count,
            expect,
        },
        timeout: args.timeout,
    };
    let output = Output {
        out: Box::new(std::io::stdout()),
        err: Box::new(std::io::stderr()),
    };
    match receiver::run(listener, settings, output, stop)
        .await
        .context("receiving")?
    {
        Outcome::Succeeded => Ok(()),
        Outcome::Failed(why) => bail!("{why}"),
    }
}

/// `--expect` states: known call states, any case, at least one.
fn parse_states(names: &[String]) -> anyhow::Result<Vec<String>> {
    let states: Vec<String> = names
        .iter()
        .map(|n| n.trim().to_ascii_uppercase())
        .filter(|n| !n.is_empty())
        .collect();
    if states.is_empty() {
        bail!("--expect needs at least one state, e.g. RINGING,ACTIVE,ANSWERED");
    }
    for state in &states {
        if CallState::parse(state).is_none() {
            bail!(
                "--expect: {state:?} is not a call state (one of {})",
                CallState::NAMES
            );
        }
    }
    Ok(states)
}
