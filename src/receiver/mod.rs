//! The receiving side, behind `callhook listen`: an HTTP server that takes call-event deliveries
//! on one path, checks their signatures, shows them, keeps them and can relay them to another
//! app, and ends the run when a goal (`--count`, `--expect`) is decided, a deadline passes or the
//! stop token is cancelled.
//!
//! - `handle`: one request, from path and method checks to the answer;
//! - `verify`: where a signature travels and what [`crate::signing`] says about it (pure);
//! - `print`: the text and JSON lines (pure);
//! - `track`: the calls seen and the tally (pure);
//! - `goal`: the verdict of `--count` and `--expect` (pure);
//! - `save`: the `--save` JSON-lines file;
//! - `forward`: the `--forward-to` relay.
//!
//! May depend on `signing` and `domain` (state names). It never touches the store: everything it
//! knows arrived over HTTP. It writes to the sinks it is given, never to the terminal directly.

mod forward;
mod goal;
mod handle;
mod print;
mod save;
mod track;
mod verify;

pub use forward::{Forwarder, SetupError as ForwardSetupError};
pub use goal::Goal;
pub use print::Format;
pub use save::{SaveError, SaveFile};

use axum::Router;
use axum::http::StatusCode;
use goal::Progress;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use track::Tracker;

/// How long answers in flight may take once the run is over.
const DRAIN: Duration = Duration::from_secs(5);

/// What the receiver does. No `Debug`: it holds the signing key.
pub struct Settings {
    /// The path deliveries are taken on (`/webhook`).
    pub path: String,
    /// Verify signatures with this key; `None`: check nothing.
    pub signing_key: Option<String>,
    pub format: Format,
    /// ANSI colours in the text format.
    pub colour: bool,
    /// The status accepted deliveries are answered with (unless forwarded).
    pub status: StatusCode,
    pub forward: Option<Forwarder>,
    pub save: Option<SaveFile>,
    pub goal: Goal,
    /// End the run after this long (a miss when a goal is set and not reached).
    pub timeout: Option<Duration>,
}

/// Where lines go: events on `out`, notices on `err`.
pub struct Output {
    pub out: Box<dyn Write + Send>,
    pub err: Box<dyn Write + Send>,
}

/// How the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The goal was reached, or there was none.
    Succeeded,
    /// The goal was missed, or something could not be done; the text says what.
    Failed(String),
}

/// State shared by every request.
struct Shared {
    path: String,
    signing_key: Option<String>,
    format: Format,
    colour: bool,
    status: StatusCode,
    forward: Option<Forwarder>,
    /// Cancelled once the run is over: later deliveries are answered 503 and not recorded.
    closed: CancellationToken,
    state: Mutex<State>,
}

/// What requests change, under one lock so that lines and the tally stay in arrival order.
struct State {
    tracker: Tracker,
    goal: Goal,
    output: Output,
    save: Option<SaveFile>,
    /// The goal decided itself (reached or missed).
    decision: Option<Progress>,
    /// The run stopped for another reason (stdout was closed).
    stopped: Option<String>,
    save_failures: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written in a way that
        // matters here (lines and counters), so a poisoned lock is used as it is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// Writes a notice line on the error sink (a failing stderr is ignored).
    fn notice(&mut self, text: &str) {
        let _ = writeln!(self.output.err, "{}", print::notice(text));
        let _ = self.output.err.flush();
    }
}

/// Serves `listener` until the goal is decided, `settings.timeout` passes or `stop` is
/// cancelled; answers still in flight then get a few seconds to go out. Returns the verdict.
pub async fn run(
    listener: TcpListener,
    settings: Settings,
    output: Output,
    stop: CancellationToken,
) -> std::io::Result<Outcome> {
    let save_path = settings
        .save
        .as_ref()
        .map(|s| s.path().display().to_string());
    let closed = CancellationToken::new();
    let shared = Arc::new(Shared {
        path: settings.path,
        signing_key: settings.signing_key,
        format: settings.format,
        colour: settings.colour,
        status: settings.status,
        forward: settings.forward,
        closed: closed.clone(),
        state: Mutex::new(State {
            tracker: Tracker::default(),
            goal: settings.goal,
            output,
            save: settings.save,
            decision: None,
            stopped: None,
            save_failures: 0,
        }),
    });
    let app = Router::new()
        .fallback(handle::handle)
        .with_state(shared.clone());
    let drain = CancellationToken::new();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(drain.clone().cancelled_owned())
            .into_future(),
    );
    let deadline = async {
        match settings.timeout {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let why = tokio::select! {
        () = closed.cancelled() => None,
        () = stop.cancelled() => Some("stopped by a signal".to_string()),
        () = deadline => settings
            .timeout
            .map(|d| format!("timed out after {}", humantime::format_duration(d))),
    };
    closed.cancel();
    drain.cancel();
    let served = match tokio::time::timeout(DRAIN, server).await {
        Ok(Ok(served)) => served,
        Ok(Err(join)) => Err(std::io::Error::other(join)),
        // Answers still in flight after the drain period are dropped.
        Err(_) => Ok(()),
    };
    let mut state = shared.lock();
    let progress = match (state.decision.take(), why.or(state.stopped.take())) {
        (Some(decided), _) => decided,
        (None, why) => state
            .goal
            .at_stop(&state.tracker, why.as_deref().unwrap_or("stopped")),
    };
    let mut outcome = match progress {
        Progress::Open => Outcome::Succeeded,
        Progress::Reached(text) => {
            if !text.is_empty() {
                state.notice(&text);
            }
            Outcome::Succeeded
        }
        Progress::Missed { details, summary } => {
            for line in &details {
                state.notice(line);
            }
            Outcome::Failed(summary)
        }
    };
    if state.save_failures > 0 && outcome == Outcome::Succeeded {
        outcome = Outcome::Failed(format!(
            "{} deliveries could not be written to {}",
            state.save_failures,
            save_path.unwrap_or_default()
        ));
    }
    served?;
    Ok(outcome)
}
