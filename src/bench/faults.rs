//! The faults scenario: does a crowd of dead endpoints slow a healthy one? One `serve` with default
//! settings; each user has one healthy webhook on the counting receiver. The latency load runs at
//! [`FAULTS_RATE`] events/s with the healthy webhooks alone, then again after [`DEAD`] more
//! webhooks, spread over the same users, point at endpoints that hang, refuse connections, reset
//! them or answer 500 (a quarter each), so every event also goes to them. The figure is the
//! healthy webhooks' p99 next to the dead ones over their p99 alone (issue 6: at most 2).

use super::BenchError;
use super::figures::Latency;
use super::report::Faults;
use super::session::{Group, Rig, Session, calls_at};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use std::net::{Ipv4Addr, SocketAddr};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Events per second offered in both phases. Every event also goes to its user's ten dead
/// webhooks, so the second phase queues eleven deliveries per event: at 1,000 events/s that is a
/// x10 fan-out load, which alone saturates the 2-core machine (0.95 s of `serve` CPU per 1,000
/// events measured), and the figure would show capacity rather than isolation. At 100/s both
/// phases fit.
pub const FAULTS_RATE: f64 = 100.0;
/// Dead endpoints registered for the second phase.
pub const DEAD: u32 = 100;

pub async fn run(rig: &Rig<'_>) -> Result<Faults, BenchError> {
    let settings = rig.settings;
    let mut session = Session::start(rig, &[]).await?;
    let healthy = Group::new(rig, "flt-u", settings.users, 1);
    session.create(&healthy).await?;
    let calls = calls_at(FAULTS_RATE, settings.step);

    tracing::info!(
        rate = FAULTS_RATE,
        events = calls * 3,
        "faults: healthy webhooks alone"
    );
    let m = session
        .open("faults: alone", &healthy, calls, FAULTS_RATE)
        .await?;
    let alone = Latency::measure(FAULTS_RATE, &m.driven, &m.check, m.cpu);

    let dead = DeadEndpoints::start().await?;
    for (i, name) in healthy.names.iter().enumerate() {
        let token = session.user_token(name).await?;
        let users = healthy.names.len() as u32;
        let share = DEAD / users + u32::from((i as u32) < DEAD % users);
        let urls: Vec<String> = (0..share).map(|n| dead.url(i as u32 + n * users)).collect();
        session
            .platform
            .create_webhooks(&rig.client, &token, urls)
            .await?;
    }
    tracing::info!(
        rate = FAULTS_RATE,
        dead = DEAD,
        events = calls * 3,
        "faults: healthy webhooks next to dead ones"
    );
    let m = session
        .open(
            "faults: next to dead endpoints",
            &healthy,
            calls,
            FAULTS_RATE,
        )
        .await?;
    let next_to_dead = Latency::measure(FAULTS_RATE, &m.driven, &m.check, m.cpu);
    let p99_ratio =
        (alone.delivery_ms.p99 > 0.0).then(|| next_to_dead.delivery_ms.p99 / alone.delivery_ms.p99);
    drop(dead);
    let (resources, verification) = session.finish().await;
    Ok(Faults {
        dead_endpoints: DEAD,
        alone,
        next_to_dead,
        p99_ratio,
        resources,
        verification,
    })
}

/// Endpoints that never deliver: `/hang` keeps the request unanswered, `/error` answers 500,
/// a second port reads the request and resets the connection, a third refuses connections.
struct DeadEndpoints {
    http: SocketAddr,
    reset: SocketAddr,
    refused: SocketAddr,
    stop: CancellationToken,
}

impl DeadEndpoints {
    async fn start() -> Result<DeadEndpoints, BenchError> {
        let stop = CancellationToken::new();
        let bind = || async {
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .map_err(|e| BenchError::io("binding a dead endpoint", e))
        };
        let http = bind().await?;
        let reset = bind().await?;
        // Bound, then closed: connections to it are refused.
        let refused = bind().await?;
        let addrs = (local(&http)?, local(&reset)?, local(&refused)?);
        drop(refused);

        let app = Router::new()
            .route("/hang", post(std::future::pending::<StatusCode>))
            .route(
                "/error",
                post(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
            );
        let until = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(http, app)
                .with_graceful_shutdown(async move { until.cancelled().await })
                .await;
        });
        let until = stop.clone();
        tokio::spawn(async move {
            loop {
                let (mut conn, _) = tokio::select! {
                    () = until.cancelled() => return,
                    accepted = reset.accept() => match accepted {
                        Ok(c) => c,
                        Err(_) => continue,
                    },
                };
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = conn.read(&mut buf).await;
                    // Closing with a zero linger sends a reset instead of a clean close.
                    let _ = conn.set_zero_linger();
                });
            }
        });
        Ok(DeadEndpoints {
            http: addrs.0,
            reset: addrs.1,
            refused: addrs.2,
            stop,
        })
    }

    /// The URL of dead endpoint `n`: hang, refuse, reset, error in turn.
    fn url(&self, n: u32) -> String {
        match n % 4 {
            0 => format!("http://{}/hang", self.http),
            1 => format!("http://{}/refused", self.refused),
            2 => format!("http://{}/reset", self.reset),
            _ => format!("http://{}/error", self.http),
        }
    }
}

fn local(listener: &TcpListener) -> Result<SocketAddr, BenchError> {
    listener
        .local_addr()
        .map_err(|e| BenchError::io("reading a dead endpoint's address", e))
}

/// Stops accepting; the hanging requests end when `serve` closes their connections.
impl Drop for DeadEndpoints {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
