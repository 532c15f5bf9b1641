//! The load generator: drives whole calls (RINGING, ACTIVE, ANSWERED, each report sent only after
//! the previous one was accepted) against a [`Sink`], either closed-loop (a fixed number of calls
//! in flight, as fast as they are answered) or open-loop (each call started on its scheduled time,
//! whatever the previous ones are doing).
//!
//! One shared keep-alive `reqwest` client, one body string per request, no locks on the hot path:
//! each call task keeps its own timings and hands them back when it ends.

use super::BenchError;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// The states of a whole call, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    Ringing,
    Active,
    Answered,
}

impl Step {
    pub const ALL: [Step; 3] = [Step::Ringing, Step::Active, Step::Answered];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Ringing => "RINGING",
            Step::Active => "ACTIVE",
            Step::Answered => "ANSWERED",
        }
    }

    pub fn parse(text: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Where the generator sends a call's reports. Calls are spread over the sink's users: call `i`
/// belongs to user `i % users`.
pub enum Sink {
    /// `POST /ingest/v1/call-events` on the running `serve` nodes, each report to the next node
    /// in turn, with an ingest token: 202 expected. `users[u]` is the `userId` of user `u` (all
    /// in account `bench`).
    Ingest {
        urls: RoundRobin<Url>,
        auth: HeaderValue,
        users: Vec<String>,
    },
    /// The event body `{"event": {...}}` straight to the receiver (the baseline): 200 expected.
    /// `webhooks[u]` is the URL of user `u`'s webhook.
    Direct { webhooks: Vec<Url> },
}

/// A non-empty list handed out one item after another, starting over at the end; shared by
/// every call task (one atomic counter).
pub struct RoundRobin<T> {
    items: Vec<T>,
    next: AtomicUsize,
}

impl<T> RoundRobin<T> {
    /// `None` when `items` is empty.
    pub fn new(items: Vec<T>) -> Option<RoundRobin<T>> {
        (!items.is_empty()).then(|| RoundRobin {
            items,
            next: AtomicUsize::new(0),
        })
    }

    /// The next item in turn.
    pub fn next(&self) -> &T {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.items[i % self.items.len()]
    }
}

/// How one call went.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    pub user: u32,
    /// The event `id` the call got (the platform's, or the baseline's own).
    pub id: Option<Box<str>>,
    /// When each report was sent.
    pub sent: [Option<Instant>; 3],
    /// When each report's answer (202, or 200 for the baseline) had been read.
    pub accepted: [Option<Instant>; 3],
    /// Open loop only: how late the latest report of this call was sent after its scheduled time.
    pub start_lag: Duration,
    /// Why the call stopped early (transport error or unexpected answer).
    pub error: Option<String>,
}

/// What a driver run produced.
pub struct Driven {
    pub outcomes: Vec<CallOutcome>,
    /// When the first report was sent.
    pub started: Instant,
    /// When the last answer was read.
    pub finished: Instant,
}

impl Driven {
    /// Reports accepted.
    pub fn accepted(&self) -> u64 {
        self.outcomes
            .iter()
            .map(|o| o.accepted.iter().flatten().count() as u64)
            .sum()
    }
}

/// The generator's HTTP client: keep-alive pool, no proxy, generous timeout.
pub fn client() -> Result<Client, BenchError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| BenchError::http("building the load generator's HTTP client", e))
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    event: AnswerEvent<'a>,
}

#[derive(Deserialize)]
struct AnswerEvent<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

impl Sink {
    /// How many users the calls are spread over.
    pub fn users(&self) -> u32 {
        let n = match self {
            Sink::Ingest { users, .. } => users.len(),
            Sink::Direct { webhooks } => webhooks.len(),
        };
        n.max(1) as u32
    }

    /// Sends one report of call `external_id` (of `user`) and returns the event id it was given.
    async fn send(
        &self,
        client: &Client,
        external_id: &str,
        user: u32,
        step: Step,
    ) -> Result<Box<str>, String> {
        let json = HeaderValue::from_static("application/json");
        let (request, expected) = match self {
            Sink::Ingest { urls, auth, users } => (
                client
                    .post(urls.next().clone())
                    .header(CONTENT_TYPE, json)
                    .header(AUTHORIZATION, auth.clone())
                    .body(ingest_body(
                        external_id,
                        &users[user as usize % users.len()],
                        step,
                    )),
                StatusCode::ACCEPTED,
            ),
            Sink::Direct { webhooks } => {
                let url = &webhooks[user as usize % webhooks.len()];
                (
                    client
                        .post(url.clone())
                        .header(CONTENT_TYPE, json)
                        .body(event_body(external_id, &format!("u{user}"), step)),
                    StatusCode::OK,
                )
            }
        };
        let response = request.send().await.map_err(|e| error_chain(&e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| error_chain(&e))?;
        if status != expected {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(format!("{} answered {status}: {text}", step.as_str()));
        }
        match self {
            Sink::Direct { .. } => Ok(external_id.into()),
            Sink::Ingest { .. } => serde_json::from_slice::<Answer>(&body)
                .map(|a| a.event.id.into())
                .map_err(|e| format!("{} answer has no event id: {e}", step.as_str())),
        }
    }

    /// Reports the whole call, each step not before `due(step)` and only after the previous one
    /// was accepted.
    async fn drive_call(
        &self,
        client: &Client,
        external_id: String,
        user: u32,
        due: impl Fn(Step) -> Option<Instant>,
    ) -> CallOutcome {
        let mut outcome = CallOutcome {
            user,
            id: None,
            sent: [None; 3],
            accepted: [None; 3],
            start_lag: Duration::ZERO,
            error: None,
        };
        for step in Step::ALL {
            if let Some(due) = due(step) {
                tokio::time::sleep_until(due.into()).await;
            }
            let sent = Instant::now();
            if let Some(due) = due(step) {
                outcome.start_lag = outcome.start_lag.max(sent.saturating_duration_since(due));
            }
            outcome.sent[step.index()] = Some(sent);
            match self.send(client, &external_id, user, step).await {
                Ok(id) => {
                    outcome.accepted[step.index()] = Some(Instant::now());
                    match &outcome.id {
                        None => outcome.id = Some(id),
                        Some(known) if *known == id => {}
                        Some(known) => {
                            outcome.error = Some(format!(
                                "{} answered event id {id}, the call had {known}",
                                step.as_str()
                            ));
                            break;
                        }
                    }
                }
                Err(e) => {
                    outcome.error = Some(e);
                    break;
                }
            }
        }
        outcome
    }
}

/// Closed loop: `concurrency` workers each drive one call after another until `calls` calls
/// (named `{tag}-{i}` with the tag made plain, of user `i % users`) have been driven.
pub async fn closed_loop(
    client: &Client,
    sink: Arc<Sink>,
    tag: &str,
    calls: u32,
    concurrency: usize,
) -> Driven {
    let users = sink.users();
    let tag = external_prefix(tag);
    let next = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, sink, next, tag) = (client.clone(), sink.clone(), next.clone(), tag.clone());
        workers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls {
                    break mine;
                }
                let outcome = sink
                    .drive_call(&client, format!("{tag}-{i}"), i % users, |_| None)
                    .await;
                mine.push(outcome);
            }
        });
    }
    let mut outcomes = Vec::with_capacity(calls as usize);
    while let Some(done) = workers.join_next().await {
        outcomes.extend(done.unwrap_or_default());
    }
    Driven {
        outcomes,
        started,
        finished: Instant::now(),
    }
}

/// Open loop: call `i` (named `{tag}-{i}`, of user `i % users`) starts at `i * 3 / rate` seconds
/// after the start, its later steps `spacing` and `2 * spacing` after that, so that reports are
/// offered at `rate` per second whether or not earlier ones have been answered.
pub async fn open_loop(
    client: &Client,
    sink: Arc<Sink>,
    tag: &str,
    calls: u32,
    rate: f64,
    spacing: Duration,
) -> Driven {
    let users = sink.users();
    let tag = external_prefix(tag);
    let interval = Duration::from_secs_f64(3.0 / rate.max(0.001));
    // A short lead so the first calls are not late because of the spawning itself.
    let t0 = Instant::now() + Duration::from_millis(20);
    let mut tasks = JoinSet::new();
    for i in 0..calls {
        let start = t0 + interval * i;
        tokio::time::sleep_until(start.into()).await;
        let (client, sink, tag) = (client.clone(), sink.clone(), tag.clone());
        tasks.spawn(async move {
            let due = |step: Step| Some(start + spacing * step.index() as u32);
            sink.drive_call(&client, format!("{tag}-{i}"), i % users, due)
                .await
        });
    }
    let mut outcomes = Vec::with_capacity(calls as usize);
    while let Some(done) = tasks.join_next().await {
        if let Ok(outcome) = done {
            outcomes.push(outcome);
        }
    }
    Driven {
        outcomes,
        started: t0,
        finished: Instant::now(),
    }
}

/// A phase label as the start of external ids: letters and digits, the rest `-`
/// (`latency 1,000/s` becomes `latency-1-000-s`).
fn external_prefix(label: &str) -> Arc<str> {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .into()
}

/// The ingestion report for one step of a call.
fn ingest_body(external_id: &str, user: &str, step: Step) -> String {
    format!(
        r#"{{"externalId":"{external_id}","accountId":"bench","userId":"{user}","direction":"INBOUND","phoneNumber":"+15550100000","callerId":"Bench","state":"{}"}}"#,
        step.as_str()
    )
}

/// The body a webhook receives for that step, shaped (keys, sizes) like a real delivery.
fn event_body(external_id: &str, user: &str, step: Step) -> String {
    const START: &str = "2026-01-01T00:00:00.000+0000";
    let times = match step {
        Step::Ringing => String::new(),
        Step::Active => format!(r#""answerTime":"{START}","#),
        Step::Answered => {
            format!(r#""answerTime":"{START}","endTime":"2026-01-01T00:01:00.000+0000","#)
        }
    };
    let duration = if step == Step::Answered { 60_000 } else { 0 };
    format!(
        r#"{{"event":{{"accountId":"bench",{times}"callerId":"Bench","direction":"INBOUND","duration":{duration},"externalId":"{external_id}","id":"{external_id}","internal":false,"phoneNumber":"+15550100000","startTime":"{START}","state":"{}","type":"CALL","ucpType":"VBS","userId":"{user}"}}}}"#,
        step.as_str()
    )
}

/// An error with its sources, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_bodies_are_event_envelopes_with_the_call_as_id() {
        for step in Step::ALL {
            let v: serde_json::Value =
                serde_json::from_str(&event_body("base-7", "u3", step)).expect("valid JSON");
            assert_eq!(v["event"]["id"], "base-7");
            assert_eq!(v["event"]["state"], step.as_str());
            assert_eq!(v["event"]["userId"], "u3");
        }
    }

    #[test]
    fn ingest_bodies_are_valid_reports() {
        let v: serde_json::Value =
            serde_json::from_str(&ingest_body("tp-1", "u0", Step::Active)).expect("valid JSON");
        assert_eq!(v["externalId"], "tp-1");
        assert_eq!(v["state"], "ACTIVE");
    }

    #[test]
    fn round_robin_spreads_evenly_over_the_nodes() {
        let nodes = RoundRobin::new(vec!["a", "b", "c"]).expect("not empty");
        let mut seen = std::collections::HashMap::new();
        let order: Vec<&str> = (0..6).map(|_| *nodes.next()).collect();
        assert_eq!(order, ["a", "b", "c", "a", "b", "c"]);
        for _ in 0..300 {
            *seen.entry(*nodes.next()).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 3);
        assert!(seen.values().all(|&n| n == 100), "{seen:?}");
        assert!(RoundRobin::<&str>::new(Vec::new()).is_none());
    }

    #[test]
    fn phase_labels_become_plain_external_ids() {
        assert_eq!(&*external_prefix("latency 1,000/s"), "latency-1-000-s");
    }

    #[test]
    fn steps_parse_back_and_keep_call_order() {
        for step in Step::ALL {
            assert_eq!(Step::parse(step.as_str()), Some(step));
        }
        assert_eq!(Step::parse("MISSED"), None);
        assert!(Step::Ringing < Step::Active && Step::Active < Step::Answered);
    }
}
