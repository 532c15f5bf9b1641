//! `callhook serve`: the composition root. Opens the store, binds the listener, starts the API and
//! the background jobs, and stops them all on SIGINT/SIGTERM.

use super::signals::{StopSignals, survive_file_size_limit};
use crate::api::{self, ApiSettings, AppState, RateLimit};
use crate::delivery::{ClientSettings, Engine, EngineSettings, Sender};
use crate::domain::target::TargetPolicy;
use crate::housekeeping;
use crate::metrics::Metrics;
use crate::sip::observe::Timers;
use crate::sip::users::Users;
use crate::store::{Database, Opened};
use crate::telephony::CallSink;
use crate::telephony::sim::{SimSettings, SimTelephony};
use anyhow::Context;
use std::io::Write;
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

    /// The database: a SQLite file, created with its schema on first start (one `serve` per
    /// file), or a postgres:// URL (migrated on start; several `serve` nodes may share it).
    #[arg(long, env = "CALLHOOK_DB", default_value = "callhook.db")]
    db: String,

    /// How long a webhook lives after creation or renewal (expireAt).
    #[arg(long, env = "CALLHOOK_WEBHOOK_TTL", default_value = "10d", value_parser = super::parse_duration)]
    webhook_ttl: Duration,

    /// How long an expired webhook is kept before it is deleted (purgeAt = expireAt + this).
    #[arg(long, env = "CALLHOOK_PURGE_GRACE", default_value = "30d", value_parser = super::parse_duration)]
    purge_grace: Duration,

    /// On SIGINT/SIGTERM, how long in-flight requests and deliveries may take before the server
    /// stops anyway (unfinished deliveries are sent again after the next start).
    #[arg(long, env = "CALLHOOK_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = super::parse_duration)]
    shutdown_timeout: Duration,

    #[command(flatten)]
    limits: LimitArgs,

    #[command(flatten)]
    delivery: DeliveryArgs,

    #[command(flatten)]
    sim: SimArgs,

    #[command(flatten)]
    sip: SipArgs,
}

/// The SIP call observer (off unless `--sip` is given).
#[derive(Debug, clap::Args)]
struct SipArgs {
    /// Relay SIP (UDP and TCP, one port) on this address and turn the calls it relays into call
    /// events, e.g. 127.0.0.1:5060; port 0 picks a free port. The real address is printed on start.
    #[arg(long, env = "CALLHOOK_SIP")]
    sip: Option<String>,

    /// The address the proxy writes in Via and Record-Route, when --sip binds 0.0.0.0.
    #[arg(long, env = "CALLHOOK_SIP_ADVERTISE", requires = "sip")]
    sip_advertise: Option<std::net::SocketAddr>,

    /// Which SIP parties are callhook users (TOML, or JSON when the name ends in .json); calls
    /// between parties it does not name are relayed but make no events.
    #[arg(long, env = "CALLHOOK_SIP_USERS", requires = "sip")]
    sip_users: Option<std::path::PathBuf>,

    /// An answered SIP call with no signalling for this long has died and ends (ANSWERED); a
    /// Session-Expires header replaces it for its call.
    #[arg(long, env = "CALLHOOK_SIP_SESSION_TIMEOUT", default_value = "1h", value_parser = super::parse_duration)]
    sip_session_timeout: Duration,

    /// The most SIP calls followed at once; a new call beyond it is refused with 503.
    #[arg(long, env = "CALLHOOK_SIP_MAX_CALLS", default_value_t = 100_000)]
    sip_max_calls: usize,
}

/// What one client may ask of the server.
#[derive(Debug, clap::Args)]
struct LimitArgs {
    /// Requests per second allowed to one token (in bursts of as many); more get 429 with
    /// Retry-After. 0 turns the limit off.
    #[arg(long, env = "CALLHOOK_RATE_LIMIT", default_value_t = 1000)]
    rate_limit: u32,

    /// Most webhooks one user may have; creating one more is refused with 422. 0: no cap.
    #[arg(long, env = "CALLHOOK_MAX_WEBHOOKS_PER_USER", default_value_t = 100)]
    max_webhooks_per_user: u32,
}

/// How the simulated telephony behind the call-control routes behaves.
#[derive(Debug, clap::Args)]
struct SimArgs {
    /// The far end of a simulated outbound call answers after this long.
    #[arg(long, env = "CALLHOOK_SIM_ANSWER_AFTER", default_value = "3s", value_parser = super::parse_duration)]
    sim_answer_after: Duration,

    /// A simulated call still ringing after this long ends (MISSED inbound, CANCELLED outbound).
    #[arg(long, env = "CALLHOOK_SIM_RING_TIMEOUT", default_value = "30s", value_parser = super::parse_duration)]
    sim_ring_timeout: Duration,

    /// Numbers that never answer a simulated outbound call (comma-separated).
    #[arg(
        long,
        env = "CALLHOOK_SIM_NEVER_ANSWER",
        value_delimiter = ',',
        default_value = "+15550000000"
    )]
    sim_never_answer: Vec<String>,
}

/// How deliveries are sent.
#[derive(Debug, clap::Args)]
struct DeliveryArgs {
    /// Time allowed to connect to a webhook URL.
    #[arg(long, env = "CALLHOOK_CONNECT_TIMEOUT", default_value = "3s", value_parser = super::parse_duration)]
    connect_timeout: Duration,

    /// Time allowed for the answer once the request is sent (and between reads of it).
    #[arg(long, env = "CALLHOOK_RESPONSE_TIMEOUT", default_value = "2s", value_parser = super::parse_duration)]
    response_timeout: Duration,

    /// How many times a failed attempt is retried before the delivery fails.
    #[arg(long, env = "CALLHOOK_RETRIES", default_value_t = 5)]
    retries: u32,

    /// How long a claimed delivery stays claimed beyond the longest attempt (connect plus
    /// response timeout): after a crash, another node (or this one, restarted on PostgreSQL)
    /// takes it over once the lease runs out.
    #[arg(long, env = "CALLHOOK_LEASE_MARGIN", default_value = "30s", value_parser = super::parse_duration)]
    lease_margin: Duration,

    /// Time between a failed attempt and its retry.
    #[arg(long, env = "CALLHOOK_RETRY_INTERVAL", default_value = "10s", value_parser = super::parse_duration)]
    retry_interval: Duration,

    /// Delivery attempts in flight at once, overall.
    #[arg(long, env = "CALLHOOK_CONCURRENCY", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: u32,

    /// Delivery attempts in flight at once for one webhook.
    #[arg(long, env = "CALLHOOK_WEBHOOK_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    webhook_concurrency: u32,

    /// Which addresses deliveries may reach: public (global addresses only), private (also private
    /// and loopback, never link-local) or any. Default: private when listening on loopback, else public.
    #[arg(long, env = "CALLHOOK_TARGETS", value_parser = ["public", "private", "any"])]
    targets: Option<String>,
}

async fn bind_sip(args: &SipArgs, bind: &str) -> anyhow::Result<crate::sip::Bound> {
    let users = match &args.sip_users {
        Some(path) => Users::load(path).map_err(|e| anyhow::anyhow!("--sip-users: {e}"))?,
        None => {
            tracing::warn!("--sip without --sip-users: calls are relayed but none makes an event");
            Users::default()
        }
    };
    let bind = tokio::net::lookup_host(bind)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .with_context(|| format!("--sip {bind} is not an address (IP:PORT)"))?;
    tracing::info!(users = users.len(), "SIP users loaded");
    let settings = crate::sip::Settings {
        bind,
        advertise: args.sip_advertise,
        users,
        timers: Timers {
            session: args.sip_session_timeout,
            ..Timers::default()
        },
        max_calls: args.sip_max_calls,
    };
    crate::sip::Bound::bind(settings)
        .await
        .with_context(|| format!("cannot relay SIP on {bind}"))
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let db = Database::parse(&args.db);
    let opened = Opened::open(&db).await.context("opening the database")?;
    let store = opened.store();
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let d = &args.delivery;
    let targets = match &d.targets {
        Some(name) => {
            TargetPolicy::parse(name).context("--targets must be public, private or any")?
        }
        None => TargetPolicy::default_for(address.ip()),
    };
    let sender = Sender::new(ClientSettings {
        connect_timeout: d.connect_timeout,
        response_timeout: d.response_timeout,
        targets,
    })
    .context("building the HTTP client")?;
    let sip = match &args.sip.sip {
        Some(bind) => Some(bind_sip(&args.sip, bind).await?),
        None => None,
    };
    let signals = StopSignals::install().context("installing signal handlers")?;
    survive_file_size_limit().context("installing signal handlers")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "callhook listening on http://{address}")?;
        if let Some(sip) = &sip {
            writeln!(out, "callhook relaying SIP on udp://{}", sip.local_addr())?;
        }
        out.flush()?;
    }
    tracing::info!(%address, db = %db.shown(), targets = targets.as_str(), "serving");
    if let Opened::Postgres(pg) = &opened {
        tracing::info!(node = pg.node_id(), "driving webhook queues as this node");
    }

    let shutdown = CancellationToken::new();
    tokio::spawn(signals.cancel_on_signal(shutdown.clone()));
    let metrics = Arc::new(Metrics::new());
    let webhooks_changed = Arc::new(Notify::new());
    let attempt_timeout = d.connect_timeout + d.response_timeout;
    let engine = Engine::new(
        store.clone(),
        sender,
        EngineSettings {
            retries: d.retries,
            retry_interval: d.retry_interval,
            concurrency: d.concurrency as usize,
            webhook_concurrency: d.webhook_concurrency as usize,
            attempt_timeout,
            lease: attempt_timeout + d.lease_margin,
        },
        metrics.clone(),
    );
    let mut background = tokio::task::JoinSet::new();
    background.spawn(engine.clone().run(shutdown.clone()));
    background.spawn(housekeeping::run(
        store.clone(),
        webhooks_changed.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    {
        let shutdown = shutdown.clone();
        background.spawn(async move { opened.forward_wakeups(shutdown).await });
    }
    let rate_limit = Arc::new(RateLimit::new(args.limits.rate_limit));
    {
        let (rate_limit, shutdown) = (rate_limit.clone(), shutdown.clone());
        background.spawn(async move { rate_limit.prune_until(shutdown).await });
    }
    let sink = CallSink::new(store.clone(), metrics.clone());
    if let Some(sip) = sip {
        background.spawn(sip.run(sink.clone(), metrics.clone(), shutdown.clone()));
    }
    let sim = SimTelephony::new(
        sink.clone(),
        store.clone(),
        SimSettings {
            answer_after: args.sim.sim_answer_after,
            ring_timeout: args.sim.sim_ring_timeout,
            never_answer: args.sim.sim_never_answer.clone(),
        },
    );
    let state = AppState {
        store,
        settings: Arc::new(ApiSettings {
            webhook_ttl: args.webhook_ttl,
            purge_grace: args.purge_grace,
            targets,
            max_webhooks_per_user: args.limits.max_webhooks_per_user,
        }),
        webhooks_changed,
        metrics,
        rate_limit,
        sink,
        sim,
    };
    let work = async {
        let served = api::serve(listener, state, shutdown.clone()).await;
        shutdown.cancel();
        while background.join_next().await.is_some() {}
        served
    };
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(args.shutdown_timeout).await;
    };
    tokio::select! {
        result = work => result.context("serving HTTP")?,
        () = deadline => {
            tracing::warn!("shutdown deadline passed; stopping with work in flight");
            match engine.release_in_flight().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(released = n, "released deliveries still in flight; they are sent again on the next start"),
                Err(e) => tracing::warn!(error = %e, "could not release deliveries in flight; their leases run out"),
            }
        }
    }
    tracing::info!("stopped");
    Ok(())
}
