//! The HTTP driver: plays a [`Plan`] against `POST /ingest/v1/call-events`. Each call starts at
//! its planned real time; its later reports follow at their simulated times divided by the
//! speedup, each sent only after the previous one was answered. Reports carry `at` on the
//! simulated timeline (see [`PlannedCall::report`]), so how late a report goes out never changes
//! what the platform records.
//!
//! Answers are sorted into three kinds: accepted (202), refused (any other answer about the
//! report itself, such as 409 or 422, or a failed request: the call stops and counts as an error),
//! and fatal (a refused connection, 401, 403, 404: the setup is wrong, so the whole run stops and
//! the error says why). Before the first call, [`check`] sends an empty report, which changes
//! nothing, to find a wrong URL or token without leaving half a run behind.

use super::plan::{Plan, PlannedCall};
use super::summary::CallResult;
use super::{SimulateError, Target};
use crate::domain::{CallState, Timestamp};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The ingestion route, under the base URL.
const INGEST_PATH: &str = "/ingest/v1/call-events";
/// Requests in flight at once, so a slow server cannot make the driver open sockets without end.
const MAX_IN_FLIGHT: usize = 512;
/// A short lead before the first call, so spawning does not make the first calls late.
const LEAD: Duration = Duration::from_millis(10);

/// Counters the driver updates as it goes, for a progress display.
#[derive(Debug, Default)]
pub struct Live {
    pub started: AtomicU32,
    pub finished: AtomicU32,
    pub events: AtomicU64,
    pub errors: AtomicU32,
}

/// How to play the plan.
#[derive(Debug, Clone)]
pub struct Playback {
    /// Simulated seconds per real second for the reports within a call.
    pub speedup: f64,
    /// The run tag in external ids (`sim-{run}-{n}`), so that runs never collide.
    pub run: String,
}

/// The driver's HTTP client: keep-alive pool, no proxy, bounded waits.
pub fn client() -> Result<Client, SimulateError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| SimulateError::Client(innermost(&e)))
}

/// Checks that `target` is a callhook that takes this token for ingestion, by sending an empty
/// report (answered 422, nothing changes).
pub async fn check(client: &Client, target: &Target) -> Result<(), SimulateError> {
    let url = ingest_url(&target.base);
    let sent = client
        .post(url.clone())
        .header(CONTENT_TYPE, "application/json")
        .header(AUTHORIZATION, auth(target)?)
        .body("{}")
        .send()
        .await;
    let response = sent.map_err(|e| unreachable(target, &e))?;
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    match status {
        StatusCode::UNPROCESSABLE_ENTITY => Ok(()),
        _ => Err(
            fatal(target, status, &body).unwrap_or_else(|| SimulateError::NotCallhook {
                url: url.to_string(),
                answer: describe(status, &body),
            }),
        ),
    }
}

/// Plays `plan` until every call has ended, a fatal answer stops the run, or `cancel` is
/// cancelled. Returns one result per call that started, in plan order.
pub async fn drive(
    client: &Client,
    target: &Target,
    plan: &Plan,
    playback: &Playback,
    live: Arc<Live>,
    cancel: CancellationToken,
) -> Result<Vec<CallResult>, SimulateError> {
    let shared = Arc::new(Shared {
        client: client.clone(),
        target: target.clone(),
        url: ingest_url(&target.base),
        auth: auth(target)?,
        run: playback.run.clone(),
        speedup: playback.speedup,
        epoch: Timestamp::now(),
        t0: Instant::now() + LEAD,
        live,
        stop: cancel.child_token(),
        fatal: Mutex::new(None),
        in_flight: Semaphore::new(MAX_IN_FLIGHT),
    });
    let mut tasks = JoinSet::new();
    for call in &plan.calls {
        tokio::select! {
            _ = tokio::time::sleep_until((shared.t0 + call.start).into()) => {}
            _ = shared.stop.cancelled() => break,
        }
        let (shared, call) = (shared.clone(), call.clone());
        tasks.spawn(async move { shared.drive_call(&call).await });
    }
    let mut results = Vec::with_capacity(plan.calls.len());
    while let Some(done) = tasks.join_next().await {
        if let Ok(result) = done {
            results.push(result);
        }
    }
    results.sort_by_key(|r| r.number);
    let fatal = shared
        .fatal
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    match fatal {
        Some(error) => Err(error),
        None => Ok(results),
    }
}

/// What every call task shares.
struct Shared {
    client: Client,
    target: Target,
    url: Url,
    auth: HeaderValue,
    run: String,
    speedup: f64,
    /// `at` of a report = epoch + call start + simulated time of the step.
    epoch: Timestamp,
    /// When the run's real timeline begins.
    t0: Instant,
    live: Arc<Live>,
    stop: CancellationToken,
    fatal: Mutex<Option<SimulateError>>,
    in_flight: Semaphore,
}

/// How the server answered one report.
enum Answer {
    Accepted,
    Refused(String),
    Fatal(SimulateError),
}

impl Shared {
    async fn drive_call(&self, call: &PlannedCall) -> CallResult {
        self.live.started.fetch_add(1, Ordering::Relaxed);
        let mut result = CallResult {
            number: call.number,
            ..CallResult::default()
        };
        let external_id = call.external_id(&self.run);
        for (i, step) in call.steps.iter().enumerate() {
            let due = self.t0 + call.start + step.after.div_f64(self.speedup);
            let answer = tokio::select! {
                answer = async {
                    tokio::time::sleep_until(due.into()).await;
                    let body = call.report(i, &self.run, self.epoch).to_string();
                    let _permit = self.in_flight.acquire().await;
                    let sent = Instant::now();
                    let answer = self.send(body, step.state).await;
                    (answer, sent.elapsed())
                } => answer,
                _ = self.stop.cancelled() => break,
            };
            match answer {
                (Answer::Accepted, latency) => {
                    result.accepted += 1;
                    result.reached = Some(step.state);
                    result.latencies.push(latency);
                    self.live.events.fetch_add(1, Ordering::Relaxed);
                }
                (Answer::Refused(why), _) => {
                    result.error = Some(format!("{external_id} {}: {why}", step.state.as_str()));
                    self.live.errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                (Answer::Fatal(error), _) => {
                    let mut fatal = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
                    fatal.get_or_insert(error);
                    self.stop.cancel();
                    break;
                }
            }
        }
        self.live.finished.fetch_add(1, Ordering::Relaxed);
        result
    }

    async fn send(&self, body: String, state: CallState) -> Answer {
        let sent = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, self.auth.clone())
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) if e.is_connect() => return Answer::Fatal(unreachable(&self.target, &e)),
            Err(e) => return Answer::Refused(innermost(&e)),
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => return Answer::Refused(innermost(&e)),
        };
        if let Some(error) = fatal(&self.target, status, &body) {
            return Answer::Fatal(error);
        }
        match status {
            StatusCode::ACCEPTED => match serde_json::from_slice::<Envelope>(&body) {
                Ok(envelope) if envelope.event.state == state.as_str() => Answer::Accepted,
                Ok(envelope) => Answer::Refused(format!(
                    "202 with state {} instead of {}",
                    envelope.event.state,
                    state.as_str()
                )),
                Err(e) => Answer::Refused(format!("202 without an event ({e})")),
            },
            StatusCode::OK => Answer::Refused(format!(
                "200: the call already was {} (an external id used before?)",
                state.as_str()
            )),
            _ => Answer::Refused(describe(status, &body)),
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    event: EventState,
}

#[derive(Deserialize)]
struct EventState {
    state: String,
}

/// The answers that mean the run cannot go on.
fn fatal(target: &Target, status: StatusCode, body: &[u8]) -> Option<SimulateError> {
    let answer = describe(status, body);
    match status {
        StatusCode::UNAUTHORIZED => Some(SimulateError::Unauthorized { answer }),
        StatusCode::FORBIDDEN => Some(SimulateError::Forbidden { answer }),
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => {
            Some(SimulateError::NotCallhook {
                url: ingest_url(&target.base).to_string(),
                answer,
            })
        }
        _ => None,
    }
}

/// `409 ILLEGAL_TRANSITION: message` from a VIS error body, else the status and the body's start.
fn describe(status: StatusCode, body: &[u8]) -> String {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct VisError {
        error_code: String,
        error_message: String,
    }
    match serde_json::from_slice::<VisError>(body) {
        Ok(e) => format!("{} {}: {}", status.as_u16(), e.error_code, e.error_message),
        Err(_) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(80)]);
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            match text.is_empty() {
                true => status.to_string(),
                false => format!("{status}: {text}"),
            }
        }
    }
}

/// `base` + the ingestion route, keeping any path prefix of `base`.
pub fn ingest_url(base: &Url) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{prefix}{INGEST_PATH}"));
    url.set_query(None);
    url
}

fn auth(target: &Target) -> Result<HeaderValue, SimulateError> {
    HeaderValue::from_str(&format!("Bearer {}", target.token))
        .map_err(|_| SimulateError::MalformedToken)
}

fn unreachable(target: &Target, e: &reqwest::Error) -> SimulateError {
    SimulateError::Unreachable {
        url: target.base.to_string(),
        cause: innermost(e),
    }
}

/// The deepest source of an error: the one that says what really happened ("Connection refused
/// (os error 111)" rather than "error sending request").
fn innermost(e: &dyn std::error::Error) -> String {
    let mut current = e;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ingestion_route_keeps_a_path_prefix_of_the_base_url() {
        let plain = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            ingest_url(&plain).as_str(),
            "http://127.0.0.1:8080/ingest/v1/call-events"
        );
        let prefixed = Url::parse("https://example.com/callhook/?x=1").unwrap();
        assert_eq!(
            ingest_url(&prefixed).as_str(),
            "https://example.com/callhook/ingest/v1/call-events"
        );
    }

    #[test]
    fn vis_errors_are_described_by_code_and_message() {
        let body = br#"{"errorCode":"ILLEGAL_TRANSITION","errorMessage":"no","errors":[]}"#;
        assert_eq!(
            describe(StatusCode::CONFLICT, body),
            "409 ILLEGAL_TRANSITION: no"
        );
        assert_eq!(
            describe(StatusCode::NOT_FOUND, b"<html>\n nope </html>"),
            "404 Not Found: <html> nope </html>"
        );
    }
}
