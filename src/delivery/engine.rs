//! The engine loop: drives the queues of the webhooks this process drives (one [`Lane`] each),
//! sends each delivery in its own task (bounded overall and per webhook), and records how
//! attempts ended together with the attempts it starts next, in one store write per turn. It
//! sleeps until something happens (news of a queue, an attempt ending) or a retry falls due;
//! never a sleep-poll.
//!
//! Each turn ([`Turn`]):
//! 1. takes the news: deliveries this process just queued are offered to their lane; webhooks
//!    whose queue changed are read again; webhooks without a lane are driven if nobody else does;
//! 2. reads the next page of every lane that runs low (or changed underneath);
//! 3. applies the attempts that ended to their lanes (a call's next delivery becomes sendable);
//! 4. takes from the lanes what may go now, within the free slots;
//! 5. writes, in one store call, the outcomes and the new attempts ([`Store::advance`]), and
//!    sends those the store started.
//!
//! So a webhook that keeps up costs one write per turn for all of its deliveries, and its queue is
//! never read back from the store; a long queue is read a page at a time, in order, however long
//! it is.

use super::client::Sender;
use super::lane::{Lane, Offer};
use super::retry::{AfterFailure, after_failure};
use crate::domain::Timestamp;
use crate::metrics::{Metrics, Outcome};
use crate::store::{Advanced, AttemptEnd, DeliveryJob, Finished, QueueNews, Store, StoreError};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
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
    /// Attempts in flight at once for one webhook, at most (see [`lane`]: a webhook starts with
    /// one and widens with successes).
    pub webhook_concurrency: usize,
    /// How long an attempt may take at most (connect and response timeouts).
    pub attempt_timeout: Duration,
    /// How long a started delivery stays leased if its outcome is never recorded, and how long
    /// this process's drive of its queues lasts without being renewed. Longer than
    /// `attempt_timeout`: the difference is how long this process may go on starting attempts
    /// after its last successful renewal.
    pub lease: Duration,
}

/// The longest the loop sleeps without being woken; also how often it looks for queues nobody
/// drives (a process of a cluster that died).
const BACKSTOP: Duration = Duration::from_secs(5);
/// Wait after a storage failure.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// Lanes kept for webhooks with nothing to send, at most.
const IDLE_LANES: usize = 4096;
/// Store writes of turns in flight at once: a turn is prepared while the previous one's write
/// is on its way, so that attempts that end meanwhile are recorded, and a call's next delivery
/// started, one write later rather than two. Writes are applied in the order they were made.
const WRITES_AHEAD: usize = 2;

/// A turn's store write on its way: the outcomes it records and the attempts it starts.
struct Write {
    /// The attempts that ended: `(webhook, seq)`.
    ended: Vec<(String, i64)>,
    /// The attempts to make once it is written: `(webhook, seq)`.
    start: Vec<(String, i64)>,
    now: Timestamp,
    written: Pin<Box<dyn Future<Output = Result<Advanced, StoreError>> + Send>>,
}

/// The oldest write in flight, once it is done (the others are written after it).
async fn next_written(writes: &mut VecDeque<Write>) -> (Write, Result<Advanced, StoreError>) {
    let result = std::future::poll_fn(|cx| match writes.front_mut() {
        Some(write) => write.written.as_mut().poll(cx),
        None => std::task::Poll::Pending,
    })
    .await;
    let write = writes.pop_front().expect("a write was in flight");
    (write, result)
}

/// The delivery engine. Share it with `Arc`.
pub struct Engine {
    store: Arc<dyn Store>,
    sender: Sender,
    settings: EngineSettings,
    metrics: Arc<Metrics>,
    /// Deliveries with an attempt in flight, by `seq`, with their webhook.
    flying: Mutex<HashMap<i64, String>>,
    tasks: TaskTracker,
    news: Mutex<Option<mpsc::UnboundedReceiver<QueueNews>>>,
}

impl Engine {
    /// Subscribes to the store's news at once, so that nothing queued from now on is missed.
    pub fn new(
        store: Arc<dyn Store>,
        sender: Sender,
        settings: EngineSettings,
        metrics: Arc<Metrics>,
    ) -> Arc<Engine> {
        let news = store.queue_news();
        Arc::new(Engine {
            store,
            sender,
            settings,
            metrics,
            flying: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            news: Mutex::new(Some(news)),
        })
    }

    /// Runs until `shutdown`, then lets the attempts in flight end, records them, and gives up
    /// its queues.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let Some(mut news) = self.news.lock().ok().and_then(|mut n| n.take()) else {
            tracing::error!("the delivery engine runs only once");
            return;
        };
        let (ended_tx, mut ended) = mpsc::unbounded_channel();
        let mut turn = Turn::new(self.clone(), ended_tx);
        let mut writes: VecDeque<Write> = VecDeque::new();
        loop {
            let stopping = shutdown.is_cancelled();
            if stopping && writes.is_empty() && turn.idle_after_stop() {
                break;
            }
            let wake_at = turn.wake_at(stopping);
            tokio::select! {
                () = shutdown.cancelled(), if !stopping => {}
                Some(n) = news.recv(), if !stopping => turn.news(n),
                Some(f) = ended.recv() => turn.ended(f),
                written = next_written(&mut writes), if !writes.is_empty() => {
                    let (write, result) = written;
                    turn.written(write, result);
                }
                () = tokio::time::sleep_until(wake_at.into()) => {}
            }
            while let Ok(n) = news.try_recv() {
                turn.news(n);
            }
            while let Ok(f) = ended.try_recv() {
                turn.ended(f);
            }
            if writes.len() < WRITES_AHEAD
                && let Some(write) = turn.run(shutdown.is_cancelled()).await
            {
                writes.push_back(write);
            }
        }
        self.tasks.close();
        self.tasks.wait().await;
        if let Err(e) = self.store.stop_driving().await {
            tracing::warn!(error = %e, "could not give up the queues this process drove");
        }
    }

    /// Gives up the leases of the attempts still in flight (their outcome not recorded), and the
    /// queues this process drives, so that they are sent again at once by whoever drives them
    /// next. For a shutdown whose deadline passed; returns how many were released.
    pub async fn release_in_flight(&self) -> Result<u64, StoreError> {
        let seqs: Vec<i64> = match self.flying.lock() {
            Ok(mut flying) => flying.drain().map(|(seq, _)| seq).collect(),
            Err(_) => return Ok(0),
        };
        let released = if seqs.is_empty() {
            0
        } else {
            self.store.release_deliveries(seqs).await?
        };
        self.store.stop_driving().await?;
        Ok(released)
    }

    fn flying(&self) -> HashSet<i64> {
        self.flying
            .lock()
            .map(|f| f.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Sends one attempt and decides what follows.
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

/// The loop's state between turns: the lanes of the webhooks this process drives, and what
/// happened since the last turn.
struct Turn {
    engine: Arc<Engine>,
    ended_tx: mpsc::UnboundedSender<Finished>,
    lanes: HashMap<String, Lane>,
    /// Deliveries offered before their lane existed, or webhooks whose queue changed: to drive.
    to_drive: BTreeSet<String>,
    /// Webhooks another live process drives, as last found (asked again after a lease).
    others: HashMap<String, Instant>,
    /// Attempts that ended, not recorded yet.
    outcomes: Vec<Finished>,
    /// Per webhook, how many ended attempts are in writes on their way: its lane reads no page
    /// meanwhile (the store does not show them yet).
    recording: HashMap<String, usize>,
    /// Look for every queue to drive (at start, after news that any may have changed).
    discover: bool,
    next_discovery: Instant,
    /// When this process's drive must be renewed next, and until when it may start attempts.
    next_renewal: Instant,
    may_start_until: Option<Instant>,
    /// No store call before this (after a failure).
    resume_at: Option<Instant>,
    /// Where the fair scan of the lanes starts, moved on every turn.
    rotation: usize,
}

impl Turn {
    fn new(engine: Arc<Engine>, ended_tx: mpsc::UnboundedSender<Finished>) -> Turn {
        let now = Instant::now();
        Turn {
            engine,
            ended_tx,
            lanes: HashMap::new(),
            to_drive: BTreeSet::new(),
            others: HashMap::new(),
            outcomes: Vec::new(),
            recording: HashMap::new(),
            discover: true,
            next_discovery: now + BACKSTOP,
            next_renewal: now,
            may_start_until: None,
            resume_at: None,
            rotation: 0,
        }
    }

    fn settings(&self) -> &EngineSettings {
        &self.engine.settings
    }

    /// How often the drive is renewed: a few times within the margin it leaves.
    fn renew_every(&self) -> Duration {
        let margin = self
            .settings()
            .lease
            .saturating_sub(self.settings().attempt_timeout);
        (margin / 4).clamp(Duration::from_millis(50), BACKSTOP)
    }

    fn news(&mut self, news: QueueNews) {
        let now = Timestamp::now();
        match news {
            QueueNews::Fresh(fresh) => {
                for f in fresh {
                    match self.lanes.get_mut(&f.webhook_id) {
                        // Ignored when known already, or when the lane reads it with its next page.
                        Some(lane) => drop(lane.offer(f, now) == Offer::Taken),
                        None => {
                            if !self.driven_elsewhere(&f.webhook_id) {
                                self.to_drive.insert(f.webhook_id);
                            }
                        }
                    }
                }
            }
            QueueNews::Changed(webhooks) => {
                for webhook in webhooks {
                    match self.lanes.get_mut(&webhook) {
                        Some(lane) => lane.read_again(),
                        None => {
                            if !self.driven_elsewhere(&webhook) {
                                self.to_drive.insert(webhook);
                            }
                        }
                    }
                }
            }
            QueueNews::Everything => self.discover = true,
        }
    }

    fn driven_elsewhere(&self, webhook: &str) -> bool {
        self.others
            .get(webhook)
            .is_some_and(|seen| seen.elapsed() < self.settings().lease)
    }

    fn ended(&mut self, finished: Finished) {
        self.outcomes.push(finished);
    }

    /// Shutting down, and nothing left to record.
    fn idle_after_stop(&self) -> bool {
        self.outcomes.is_empty()
            && self
                .engine
                .flying
                .lock()
                .map_or(true, |flying| flying.is_empty())
    }

    /// When the next turn is due without news: a retry, the drive's renewal, the backstop.
    /// While stopping, only attempts ending matter.
    fn wake_at(&self, stopping: bool) -> Instant {
        let now = Instant::now();
        if let Some(at) = self.resume_at {
            return at.max(now);
        }
        if stopping {
            return now + BACKSTOP;
        }
        let mut at = self.next_discovery.min(self.next_renewal);
        let ts_now = Timestamp::now();
        for lane in self.lanes.values() {
            // A time already past was seen by the last turn: the lane waits for something else
            // (room in its window), which wakes the loop by itself.
            if let Some(due) = lane.next_due().filter(|due| *due > ts_now) {
                at = at.min(now + Duration::from_millis(due.since(ts_now) as u64));
            }
        }
        at.max(now)
    }

    /// One turn, and its store write if it has anything to write; a storage failure is logged
    /// and the next turn waits a little.
    async fn run(&mut self, stopping: bool) -> Option<Write> {
        if self.resume_at.is_some_and(|at| Instant::now() < at) {
            return None;
        }
        self.resume_at = None;
        match self.turn(stopping).await {
            Ok(write) => write,
            Err(e) => {
                self.failed(e);
                None
            }
        }
    }

    fn failed(&mut self, e: StoreError) {
        tracing::warn!(error = %e, "the delivery engine could not reach the store; will retry");
        self.resume_at = Some(Instant::now() + STORE_RETRY);
    }

    async fn turn(&mut self, stopping: bool) -> Result<Option<Write>, StoreError> {
        let store = self.engine.store.clone();
        if !stopping {
            self.renew(&store).await;
            self.drive(&store).await?;
            self.read_pages(&store).await?;
        }
        let now = Timestamp::now();
        let finished = std::mem::take(&mut self.outcomes);
        for f in &finished {
            if let Some(lane) = self.lanes.get_mut(&f.job.webhook_id) {
                lane.ended(f.job.seq, &f.end, now);
            }
            *self.recording.entry(f.job.webhook_id.clone()).or_default() += 1;
        }
        let may_start = !stopping && self.may_start_until.is_some_and(|t| Instant::now() < t);
        let start = if may_start {
            self.take(now)
        } else {
            Vec::new()
        };
        self.prune(now);
        if finished.is_empty() && start.is_empty() {
            return Ok(None);
        }
        let ended = finished
            .iter()
            .map(|f| (f.job.webhook_id.clone(), f.job.seq))
            .collect();
        let lease_until = now.plus(self.settings().lease);
        let seqs: Vec<i64> = start.iter().map(|(_, seq)| *seq).collect();
        let mut written: Pin<Box<dyn Future<Output = _> + Send>> =
            Box::pin(async move { store.advance(finished, seqs, lease_until).await });
        // Polled once now, so that it is on its way (in order) before any later turn's write.
        let waker = std::task::Waker::noop();
        if let std::task::Poll::Ready(result) = written
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
        {
            written = Box::pin(std::future::ready(result));
        }
        Ok(Some(Write {
            ended,
            start,
            now,
            written,
        }))
    }

    /// A turn's write is done: the attempts it started are made; what it recorded no longer
    /// waits.
    fn written(&mut self, write: Write, result: Result<Advanced, StoreError>) {
        if let Ok(mut flying) = self.engine.flying.lock() {
            for (_, seq) in &write.ended {
                flying.remove(seq);
            }
        }
        for (webhook, _) in &write.ended {
            if let Some(n) = self.recording.get_mut(webhook) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.recording.remove(webhook);
                }
            }
        }
        let advanced = match result {
            Ok(advanced) => advanced,
            Err(e) => {
                // Neither the outcomes nor the new attempts were written: what these lanes hold
                // in memory is ahead of the store. Read them again once it answers.
                let touched = write.ended.into_iter().chain(write.start);
                for (webhook, _) in touched {
                    self.lanes.remove(&webhook);
                    self.to_drive.insert(webhook);
                }
                self.failed(e);
                return;
            }
        };
        self.engine.metrics.skipped(advanced.skipped);
        for webhook in &advanced.refilled {
            if let Some(lane) = self.lanes.get_mut(webhook) {
                lane.read_again();
            }
        }
        let started: HashMap<i64, _> = advanced.started.iter().map(|s| (s.seq, *s)).collect();
        for (webhook, seq) in write.start {
            let Some(lane) = self.lanes.get_mut(&webhook) else {
                continue;
            };
            match started.get(&seq).and_then(|s| lane.job(*s)) {
                Some(job) => self.send(job),
                None => lane.not_started(seq, write.now),
            }
        }
    }

    /// Renews this process's drive when due; a failure leaves the time it may start attempts
    /// where it was, so that it stops starting them before another process may take over.
    async fn renew(&mut self, store: &Arc<dyn Store>) {
        if Instant::now() < self.next_renewal {
            return;
        }
        let sent = Instant::now();
        match store.keep_driving(self.settings().lease).await {
            Ok(()) => {
                let margin = self
                    .settings()
                    .lease
                    .saturating_sub(self.settings().attempt_timeout);
                if self.may_start_until.is_none_or(|t| Instant::now() >= t)
                    && !self.lanes.is_empty()
                {
                    // The drive had lapsed: another process may have taken queues over.
                    self.lanes.clear();
                    self.discover = true;
                }
                self.may_start_until = Some(sent + margin);
                self.next_renewal = sent + self.renew_every();
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not renew this process's drive of its queues");
                self.next_renewal = Instant::now() + self.renew_every().min(STORE_RETRY);
            }
        }
    }

    /// Finds queues to drive (at start, after news, and every [`BACKSTOP`]) and drives those
    /// nobody else does.
    async fn drive(&mut self, store: &Arc<dyn Store>) -> Result<(), StoreError> {
        let now = Timestamp::now();
        if self.discover || Instant::now() >= self.next_discovery {
            let found = store.find_queues(now).await?;
            self.discover = false;
            self.next_discovery = Instant::now() + BACKSTOP;
            self.others.clear();
            self.to_drive
                .extend(found.into_iter().filter(|w| !self.lanes.contains_key(w)));
        }
        if self.to_drive.is_empty() {
            return Ok(());
        }
        let asked: Vec<String> = std::mem::take(&mut self.to_drive).into_iter().collect();
        let driven: HashSet<String> = store.drive(asked.clone(), now).await?.into_iter().collect();
        for webhook in asked {
            if driven.contains(&webhook) {
                let cap = self.settings().webhook_concurrency;
                self.lanes.entry(webhook).or_insert_with(|| Lane::new(cap));
            } else {
                self.others.insert(webhook, Instant::now());
            }
        }
        Ok(())
    }

    /// Reads the next page of every lane that wants one; drops lanes whose webhook is gone.
    async fn read_pages(&mut self, store: &Arc<dyn Store>) -> Result<(), StoreError> {
        // Not while outcomes of a lane are on their way: the store would show as pending what
        // the lane knows has ended.
        let wanting: Vec<String> = self
            .lanes
            .iter()
            .filter(|(webhook, lane)| lane.wants_page() && !self.recording.contains_key(*webhook))
            .map(|(webhook, _)| webhook.clone())
            .collect();
        if wanting.is_empty() {
            return Ok(());
        }
        let flying = self.engine.flying();
        for webhook in wanting {
            let Some((limit, skip)) = self.lanes.get(&webhook).map(Lane::page_request) else {
                continue;
            };
            let now = Timestamp::now();
            match store.load_queue(&webhook, limit, skip, now).await? {
                Some(page) => {
                    if let Some(lane) = self.lanes.get_mut(&webhook) {
                        lane.loaded(page, &flying, now);
                    }
                }
                None => {
                    self.lanes.remove(&webhook);
                }
            }
        }
        Ok(())
    }

    /// What may go now, lane after lane from a point that moves every turn, within the free
    /// slots: `(webhook, seq)`.
    fn take(&mut self, now: Timestamp) -> Vec<(String, i64)> {
        let flying = self.engine.flying.lock().map_or(0, |f| f.len());
        let mut free = self.settings().concurrency.saturating_sub(flying);
        let mut webhooks: Vec<&String> = self.lanes.keys().collect();
        if webhooks.is_empty() || free == 0 {
            return Vec::new();
        }
        webhooks.sort_unstable();
        self.rotation = self.rotation.wrapping_add(1);
        let first = self.rotation % webhooks.len();
        webhooks.rotate_left(first);
        let webhooks: Vec<String> = webhooks.into_iter().cloned().collect();
        let mut start = Vec::new();
        for webhook in webhooks {
            if free == 0 {
                break;
            }
            let Some(lane) = self.lanes.get_mut(&webhook) else {
                continue;
            };
            let seqs = lane.take(now, free);
            free -= seqs.len();
            start.extend(seqs.into_iter().map(|seq| (webhook.clone(), seq)));
        }
        start
    }

    fn send(&self, job: DeliveryJob) {
        if let Ok(mut flying) = self.engine.flying.lock() {
            flying.insert(job.seq, job.webhook_id.clone());
        }
        let (engine, ended) = (self.engine.clone(), self.ended_tx.clone());
        self.engine.tasks.spawn(async move {
            let (end, at) = engine.attempt(&job).await;
            let _ = ended.send(Finished { job, end, at });
        });
    }

    /// Drops the lanes of failed or expired webhooks, and idle ones past [`IDLE_LANES`].
    fn prune(&mut self, now: Timestamp) {
        self.lanes.retain(|_, lane| !lane.is_finished(now));
        if self.lanes.len() > IDLE_LANES {
            self.lanes.retain(|_, lane| !lane.is_idle());
        }
        if self.others.len() > IDLE_LANES {
            let lease = self.settings().lease;
            self.others.retain(|_, seen| seen.elapsed() < lease);
        }
    }
}
