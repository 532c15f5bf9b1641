//! `callhook serve`: the composition root. Opens the store, binds the listener, starts the API and
//! the background jobs, and stops them all on SIGINT/SIGTERM.

use crate::api::{self, ApiSettings, AppState};
use crate::housekeeping;
use crate::store::{SqliteStore, Store};
use anyhow::Context;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port. The real address is printed on start.
    #[arg(long, env = "CALLHOOK_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,

    /// SQLite database file, created with its schema on first start.
    #[arg(long, env = "CALLHOOK_DB", default_value = "callhook.db")]
    db: PathBuf,

    /// How long a webhook lives after creation or renewal (expireAt).
    #[arg(long, env = "CALLHOOK_WEBHOOK_TTL", default_value = "10d", value_parser = super::parse_duration)]
    webhook_ttl: Duration,

    /// How long an expired webhook is kept before it is deleted (purgeAt = expireAt + this).
    #[arg(long, env = "CALLHOOK_PURGE_GRACE", default_value = "30d", value_parser = super::parse_duration)]
    purge_grace: Duration,

    /// On SIGINT/SIGTERM, how long in-flight requests may take before the server stops anyway.
    #[arg(long, env = "CALLHOOK_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = super::parse_duration)]
    shutdown_timeout: Duration,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let path = args.db.clone();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
        .await
        .context("opening the database")??;
    let store: Arc<dyn Store> = Arc::new(store);
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let signals = StopSignals::install().context("installing signal handlers")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "callhook listening on http://{address}")?;
        out.flush()?;
    }
    tracing::info!(%address, db = %args.db.display(), "serving");

    let shutdown = CancellationToken::new();
    tokio::spawn(signals.cancel_on_signal(shutdown.clone()));
    let webhooks_changed = Arc::new(Notify::new());
    let purge = tokio::spawn(housekeeping::purge_loop(
        store.clone(),
        webhooks_changed.clone(),
        shutdown.clone(),
    ));
    let state = AppState {
        store,
        settings: Arc::new(ApiSettings {
            webhook_ttl: args.webhook_ttl,
            purge_grace: args.purge_grace,
        }),
        webhooks_changed,
    };
    let server = api::serve(listener, state, shutdown.clone());
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(args.shutdown_timeout).await;
    };
    tokio::select! {
        result = server => result.context("serving HTTP")?,
        () = deadline => tracing::warn!("shutdown deadline passed; dropping requests still in flight"),
    }
    shutdown.cancel();
    let _ = purge.await;
    tracing::info!("stopped");
    Ok(())
}

/// Signal handlers, installed before the listening line is printed so that a signal arriving
/// right after it is never met by the default action (which would kill the process uncleanly).
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Cancels `shutdown` on SIGINT or SIGTERM.
    async fn cancel_on_signal(mut self, shutdown: CancellationToken) {
        #[cfg(unix)]
        let signalled = async {
            tokio::select! {
                _ = self.interrupt.recv() => {},
                _ = self.terminate.recv() => {},
            }
        };
        #[cfg(not(unix))]
        let signalled = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        tokio::select! {
            () = signalled => {
                tracing::info!("shutting down");
                shutdown.cancel();
            }
            () = shutdown.cancelled() => {}
        }
    }
}
