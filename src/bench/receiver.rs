//! The counting receiver: an in-process HTTP server on `127.0.0.1:0` that answers every
//! `POST /webhook/{n}` with 200 at once and records, per delivery, which webhook it was for
//! (`n`), the event's `id` and `state`, and when it arrived. While it is [down](Receiver::set_down)
//! it answers 503 instead and records nothing but a count (a receiver that is away: the backlog
//! and restart scenarios).
//!
//! It does as little as it can per request (one small borrowed parse, one push under a lock)
//! because it shares the machine with the platform under test. Arrivals are numbered from 0 in
//! arrival order for the whole run; the verification reads them by number after a phase, and a
//! finished scenario lets go of its own with [`Receiver::forget_before`].

use super::BenchError;
use super::load::Step;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde::Deserialize;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// One delivery as the receiver got it.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The `n` of `/webhook/{n}`.
    pub webhook: u32,
    /// `event.id`.
    pub id: Box<str>,
    /// `event.state`, when it is one the bench sends.
    pub step: Option<Step>,
    /// When the whole request had been read.
    pub at: Instant,
}

/// What the handler shares.
struct Log {
    arrivals: Mutex<Kept>,
    /// Answer 503 and record nothing.
    down: AtomicBool,
    /// Requests answered 503 while down.
    refused: AtomicU64,
    /// Requests whose body had no readable `event.id` and `event.state`.
    malformed: Mutex<u64>,
    /// How many requests arrived so far (watchers wait on it).
    count: watch::Sender<usize>,
}

/// A running receiver. `stop` ends it; dropping it stops it too.
pub struct Receiver {
    address: SocketAddr,
    log: Arc<Log>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The arrivals still kept: number `forgotten + i` is `list[i]`.
#[derive(Default)]
struct Kept {
    forgotten: usize,
    list: Vec<Arrival>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    event: EventKey<'a>,
}

#[derive(Deserialize)]
struct EventKey<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    state: Cow<'a, str>,
}

impl Receiver {
    /// Binds `127.0.0.1:0` and starts answering.
    pub async fn start() -> Result<Receiver, BenchError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| BenchError::io("binding the receiver on 127.0.0.1:0", e))?;
        let address = listener
            .local_addr()
            .map_err(|e| BenchError::io("reading the receiver's address", e))?;
        let log = Arc::new(Log {
            arrivals: Mutex::new(Kept {
                forgotten: 0,
                list: Vec::with_capacity(1 << 16),
            }),
            down: AtomicBool::new(false),
            refused: AtomicU64::new(0),
            malformed: Mutex::new(0),
            count: watch::Sender::new(0),
        });
        let app = Router::new()
            .route("/webhook/{n}", post(deliver))
            .with_state(log.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "bench receiver stopped with an error");
            }
        });
        Ok(Receiver {
            address,
            log,
            stop,
            task: Some(task),
        })
    }

    /// The URL webhook `n` posts to.
    pub fn webhook_url(&self, n: u32) -> String {
        format!("http://{}/webhook/{n}", self.address)
    }

    /// While `down`, every request is answered 503 and only counted.
    pub fn set_down(&self, down: bool) {
        self.log.down.store(down, Ordering::SeqCst);
    }

    /// Requests answered 503 so far.
    pub fn refused(&self) -> u64 {
        self.log.refused.load(Ordering::Relaxed)
    }

    /// Deliveries received so far (the number the next one will get).
    pub fn count(&self) -> usize {
        *self.log.count.borrow()
    }

    /// Requests whose body the receiver could not read an event key from.
    pub fn malformed(&self) -> u64 {
        *lock(&self.log.malformed)
    }

    /// Waits until at least `target` requests have arrived, or until none has arrived for
    /// `stall`. Returns whether the target was reached.
    pub async fn wait_for(&self, target: usize, stall: Duration) -> bool {
        let mut seen = self.log.count.subscribe();
        loop {
            if *seen.borrow_and_update() >= target {
                return true;
            }
            match tokio::time::timeout(stall, seen.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return *seen.borrow() >= target,
            }
        }
    }

    /// The arrivals numbered `from` on, in arrival order (those not forgotten).
    pub fn arrivals_since(&self, from: usize) -> Vec<Arrival> {
        let kept = lock(&self.log.arrivals);
        let start = from.saturating_sub(kept.forgotten).min(kept.list.len());
        kept.list[start..].to_vec()
    }

    /// Drops the arrivals numbered below `before`: they have been checked.
    pub fn forget_before(&self, before: usize) {
        let mut kept = lock(&self.log.arrivals);
        let n = before.saturating_sub(kept.forgotten).min(kept.list.len());
        kept.list.drain(..n);
        kept.forgotten += n;
    }

    /// Stops listening and closes the connections.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            // Idle keep-alive connections of a client that is still alive would hold graceful
            // shutdown open; the bench does not need to wait for them.
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn deliver(State(log): State<Arc<Log>>, Path(webhook): Path<u32>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    if log.down.load(Ordering::SeqCst) {
        log.refused.fetch_add(1, Ordering::Relaxed);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    match serde_json::from_slice::<Envelope>(&body) {
        Ok(Envelope { event }) => {
            let arrival = Arrival {
                webhook,
                id: event.id.into(),
                step: Step::parse(&event.state),
                at,
            };
            let mut kept = lock(&log.arrivals);
            kept.list.push(arrival);
            let n = kept.forgotten + kept.list.len();
            drop(kept);
            log.count.send_modify(|c| *c = (*c).max(n));
        }
        Err(_) => {
            *lock(&log.malformed) += 1;
        }
    }
    StatusCode::OK
}

/// Locks, carrying on after a panic elsewhere (the data is plain counts and records).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
