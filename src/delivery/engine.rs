//! The engine loop: claim what is due, send each delivery in its own task (bounded overall and per
//! webhook), record how it ended, and sleep until woken (new deliveries, a finished attempt, a
//! renewal) or until the next retry is due. Never a sleep-poll.

use super::client::Sender;
use super::retry::{AfterFailure, after_failure};
use super::window::{self, Windows};
use crate::domain::Timestamp;
use crate::metrics::{Metrics, Outcome};
use crate::store::{AttemptEnd, Claim, DeliveryJob, Finished, Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Engine settings.
#[derive(Debug, Clone, Copy)]
pub struct EngineSettings {
    /// Retries after a failed attempt.
    pub retries: u32,
    pub retry_interval: Duration,
    /// Attempts in flight at once, overall.
    pub concurrency: usize,
    /// Attempts in flight at once for one webhook, at most (see [`window`]: a webhook starts with
    /// one and widens with successes).
    pub webhook_concurrency: usize,
    /// How long a claimed delivery stays claimed if its outcome is never recorded.
    pub lease: Duration,
}

/// Most deliveries claimed in one go.
const CLAIM_BATCH: usize = 256;
/// The longest the loop sleeps without being woken, as a backstop.
const BACKSTOP: Duration = Duration::from_secs(5);
/// Wait after a storage failure.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// Most outcomes recorded in one write.
const RECORD_BATCH: usize = 512;

/// An ended attempt on its way to the store, still holding its slot.
struct Ended {
    finished: Finished,
    /// Held until the outcome is recorded; dropping it frees the slot.
    _slot: OwnedSemaphorePermit,
}

/// The delivery engine. Share it with `Arc`.
pub struct Engine {
    store: Arc<dyn Store>,
    sender: Sender,
    settings: EngineSettings,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    slots: Arc<Semaphore>,
    windows: Mutex<Windows>,
    /// The deliveries (by `seq`) this engine holds a lease on and has not recorded yet.
    leased: Mutex<HashSet<i64>>,
    tasks: TaskTracker,
    /// Where attempts send their outcome; taken (closed) once the attempts have ended.
    ended: Mutex<Option<mpsc::UnboundedSender<Ended>>>,
    recorder: Mutex<Option<mpsc::UnboundedReceiver<Ended>>>,
}

impl Engine {
    /// `wake` is notified by whoever queues deliveries or makes webhooks live again.
    pub fn new(
        store: Arc<dyn Store>,
        sender: Sender,
        settings: EngineSettings,
        wake: Arc<Notify>,
        metrics: Arc<Metrics>,
    ) -> Arc<Engine> {
        let (ended, recorder) = mpsc::unbounded_channel();
        Arc::new(Engine {
            store,
            sender,
            slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            settings,
            wake,
            metrics,
            windows: Mutex::new(Windows::new(settings.webhook_concurrency)),
            leased: Mutex::new(HashSet::new()),
            tasks: TaskTracker::new(),
            ended: Mutex::new(Some(ended)),
            recorder: Mutex::new(Some(recorder)),
        })
    }

    /// Runs until `shutdown`, then waits for the attempts in flight to end.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        match self.store.release_leases().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                released = n,
                "resuming deliveries left in flight by the previous run"
            ),
            Err(e) => tracing::warn!(error = %e, "could not release old leases"),
        }
        let outcomes = self.recorder.lock().ok().and_then(|mut r| r.take());
        let recording = outcomes.map(|outcomes| tokio::spawn(self.clone().record(outcomes)));
        loop {
            let wait = match self.step().await {
                Ok(next) => next.map_or(BACKSTOP, |t| {
                    Duration::from_millis(t.since(Timestamp::now()) as u64)
                }),
                Err(e) => {
                    tracing::warn!(error = %e, "claiming deliveries failed; will retry");
                    STORE_RETRY
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait.min(BACKSTOP)) => {}
            }
        }
        self.tasks.close();
        self.tasks.wait().await;
        // Every attempt has sent its outcome: close the channel and let the recorder finish.
        drop(self.ended.lock().ok().and_then(|mut e| e.take()));
        if let Some(recording) = recording {
            let _ = recording.await;
        }
    }

    /// Records outcomes as they come, as many as are waiting in one write, then frees their slots
    /// and wakes the loop (the next event of a call may be due now).
    async fn record(self: Arc<Self>, mut outcomes: mpsc::UnboundedReceiver<Ended>) {
        while let Some(first) = outcomes.recv().await {
            let mut batch = vec![first];
            while batch.len() < RECORD_BATCH {
                match outcomes.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            let finished: Vec<Finished> = batch.iter().map(|e| e.finished.clone()).collect();
            match self.store.finish_attempts(finished).await {
                Ok(skipped) => self.metrics.skipped(skipped),
                // The leases run out (or the next start releases them) and the deliveries are
                // sent again.
                Err(e) => {
                    tracing::error!(error = %e, count = batch.len(), "recording delivery outcomes failed")
                }
            }
            if let Ok(mut leased) = self.leased.lock() {
                for ended in &batch {
                    leased.remove(&ended.finished.job.seq);
                }
            }
            if let Ok(mut windows) = self.windows.lock() {
                for ended in &batch {
                    let how = match ended.finished.end {
                        AttemptEnd::Delivered => window::Ended::Delivered,
                        AttemptEnd::Retry { .. } => window::Ended::Retrying,
                        AttemptEnd::Failed(_) => window::Ended::GaveUp,
                    };
                    windows.ended(&ended.finished.job.webhook_id, how);
                }
            }
            drop(batch);
            self.wake.notify_one();
        }
    }

    /// One step: claims every due delivery there is room for and starts sending it. Returns when
    /// the next retry falls due (if any). Attempts run on after it returns.
    pub async fn step(self: &Arc<Self>) -> Result<Option<Timestamp>, StoreError> {
        let mut next_retry = None;
        loop {
            let free = self.slots.available_permits();
            if free == 0 {
                break;
            }
            let limit = free.min(CLAIM_BATCH);
            let now = Timestamp::now();
            let (room, fresh_room) = match self.windows.lock() {
                Ok(w) => (w.room(), w.fresh_room()),
                Err(_) => (HashMap::new(), window::INITIAL_WINDOW),
            };
            let claimed = self
                .store
                .claim_deliveries(Claim {
                    now,
                    lease_until: now.plus(self.settings.lease),
                    limit,
                    room,
                    fresh_room,
                })
                .await?;
            next_retry = claimed.next_retry;
            let count = claimed.jobs.len();
            for job in claimed.jobs {
                self.start(job);
            }
            if count < limit {
                break;
            }
        }
        Ok(next_retry)
    }

    fn start(self: &Arc<Self>, job: DeliveryJob) {
        let Some(ended) = self.ended.lock().ok().and_then(|e| e.clone()) else {
            return; // Shutting down: the lease runs out and the delivery is claimed again.
        };
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            // Cannot happen: claims never exceed the free slots. The lease runs out and the
            // delivery is claimed again.
            tracing::error!(delivery = %job.id, "no free slot for a claimed delivery");
            return;
        };
        if let Ok(mut windows) = self.windows.lock() {
            windows.started(&job.webhook_id);
        }
        if let Ok(mut leased) = self.leased.lock() {
            leased.insert(job.seq);
        }
        let engine = self.clone();
        self.tasks.spawn(async move {
            let (end, at) = engine.attempt(&job).await;
            let finished = Finished { job, end, at };
            let _ = ended.send(Ended {
                finished,
                _slot: slot,
            });
        });
    }

    /// Gives up the leases of the attempts still in flight (their outcome not recorded), so that
    /// they are sent again at once by whoever claims next rather than when the lease runs out. For
    /// a shutdown whose deadline passed; returns how many were released.
    pub async fn release_in_flight(&self) -> Result<u64, StoreError> {
        let seqs: Vec<i64> = match self.leased.lock() {
            Ok(mut leased) => leased.drain().collect(),
            Err(_) => return Ok(0),
        };
        if seqs.is_empty() {
            return Ok(0);
        }
        self.store.release_deliveries(seqs).await
    }

    /// Sends one attempt and decides what follows; the outcome is recorded by [`Engine::record`].
    async fn attempt(&self, job: &DeliveryJob) -> (AttemptEnd, Timestamp) {
        let started = Instant::now();
        let result = self.sender.send(job).await;
        let took = started.elapsed();
        let now = Timestamp::now();
        let (end, outcome) = match result {
            Ok(status) => {
                tracing::debug!(webhook = %job.webhook_id, delivery = %job.id, attempt = job.attempt, status,
                    latency_ms = took.as_millis() as u64, "delivered");
                (AttemptEnd::Delivered, Outcome::Delivered)
            }
            Err(failure) => {
                let s = &self.settings;
                let attempt = job.attempt - job.replayed_after.min(job.attempt);
                let next = after_failure(attempt, s.retries, s.retry_interval, now);
                tracing::warn!(webhook = %job.webhook_id, delivery = %job.id, attempt = job.attempt,
                    latency_ms = took.as_millis() as u64, code = %failure.code, error = %failure.message,
                    final_attempt = next == AfterFailure::GiveUp, "delivery attempt failed");
                match next {
                    AfterFailure::RetryAt(at) => (AttemptEnd::Retry { at }, Outcome::Retried),
                    AfterFailure::GiveUp => (AttemptEnd::Failed(failure), Outcome::Failed),
                }
            }
        };
        self.metrics.attempt(outcome, took);
        (end, now)
    }
}
