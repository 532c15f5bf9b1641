//! One request to the receiver, start to answer: the path (404) and the method (405), the body
//! (400 when it is not JSON or has no `event` object, 413 when too large), the signature (401),
//! then the answer (`--status`, or the forwarded app's), and the record of it: the line on
//! stdout, the tally and the goal, the `--save` line, and a notice on stderr for everything that
//! was refused.
//!
//! Part of the receiver, so it never touches the store.

use super::goal::Progress;
use super::print::{self, EventLine, Format};
use super::save::Record;
use super::track::Recorded;
use super::verify::{self, Verification};
use super::{Shared, State};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State as Extract};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Local, Utc};
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;

/// The largest body taken (call events are well under 1 KiB).
const MAX_BODY: usize = 1 << 20;

/// One delivery as it arrived.
struct Arrival {
    at: DateTime<Utc>,
    parts: Parts,
    body: Bytes,
}

impl Arrival {
    fn target(&self) -> &str {
        self.parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    }
}

/// The fallback handler: every request of every method and path comes here.
pub(super) async fn handle(Extract(shared): Extract<Arc<Shared>>, req: Request) -> Response {
    let at = Utc::now();
    let (parts, body) = req.into_parts();
    if !same_path(parts.uri.path(), &shared.path) {
        let text = format!(
            "nothing here: deliveries go to POST {} (got {} {})",
            shared.path,
            parts.method,
            parts.uri.path()
        );
        shared.lock().notice(&format!("answered 404: {text}"));
        return plain(StatusCode::NOT_FOUND, &text);
    }
    if parts.method != Method::POST {
        let text = format!("{} takes POST only (got {})", shared.path, parts.method);
        shared.lock().notice(&format!("answered 405: {text}"));
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, &text);
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    if shared.closed.is_cancelled() {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping: not taking deliveries",
        );
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let arrival = Arrival {
                at,
                parts,
                body: Bytes::new(),
            };
            let reason = format!(
                "the body is larger than {} KiB (or was cut short)",
                MAX_BODY / 1024
            );
            return refuse(
                &shared,
                &arrival,
                None,
                StatusCode::PAYLOAD_TOO_LARGE,
                &reason,
                None,
            );
        }
    };
    let arrival = Arrival { at, parts, body };
    let json = match serde_json::from_slice::<Value>(&arrival.body) {
        Ok(v) if v.get("event").is_some_and(Value::is_object) => v,
        Ok(v) => {
            let reason = "the body is JSON but has no \"event\" object: not a call-event delivery";
            return refuse(
                &shared,
                &arrival,
                Some(&v),
                StatusCode::BAD_REQUEST,
                reason,
                None,
            );
        }
        Err(e) => {
            let reason = format!("the body is not JSON ({e})");
            return refuse(
                &shared,
                &arrival,
                None,
                StatusCode::BAD_REQUEST,
                &reason,
                None,
            );
        }
    };
    let verification = verify::check(shared.signing_key.as_deref(), &arrival.parts.headers, &json);
    if let Some(problem) = verification.problem() {
        return refuse(
            &shared,
            &arrival,
            Some(&json),
            StatusCode::UNAUTHORIZED,
            &problem,
            verification.verified(),
        );
    }
    let (status, response) = answer(&shared, &arrival, &json).await;
    record(&shared, &arrival, &json, verification, status);
    response
}

/// The answer to a verified delivery: the app's when forwarding, else `--status`.
async fn answer(shared: &Shared, arrival: &Arrival, json: &Value) -> (StatusCode, Response) {
    let Some(forward) = &shared.forward else {
        let status = shared.status;
        let response = if status.is_success() {
            status.into_response()
        } else {
            plain(
                status,
                &format!("answering {} as asked with --status", status.as_u16()),
            )
        };
        return (status, response);
    };
    match forward
        .relay(
            arrival.parts.method.clone(),
            &arrival.parts.headers,
            arrival.body.clone(),
        )
        .await
    {
        Ok(relayed) => {
            let mut response = Response::new(Body::from(relayed.body));
            *response.status_mut() = relayed.status;
            *response.headers_mut() = relayed.headers;
            (relayed.status, response)
        }
        Err(e) => {
            let status = e.status();
            shared.lock().notice(&format!(
                "answered {} to {}: {e}",
                status.as_u16(),
                what(json)
            ));
            (status, plain(status, &e.to_string()))
        }
    }
}

/// Shows, counts and saves a verified delivery answered with `status`.
fn record(
    shared: &Shared,
    arrival: &Arrival,
    json: &Value,
    verification: Verification,
    status: StatusCode,
) {
    tracing::debug!(
        status = status.as_u16(),
        verified = ?verification.verified(),
        "delivery answered"
    );
    let mut state = shared.lock();
    if shared.closed.is_cancelled() {
        // The run ended while this one was being answered: saved, not shown or counted.
        save(
            &mut state,
            arrival,
            Some(json),
            verification.verified(),
            status,
        );
        return;
    }
    let event = &json["event"];
    let recorded = if status.is_success() {
        state.tracker.record(event)
    } else {
        Recorded {
            repeat: false,
            tally: state.tracker.tally(),
        }
    };
    let line = match shared.format {
        Format::Json => print::json_line(&String::from_utf8_lossy(&arrival.body)),
        Format::Text => print::text_line(
            &EventLine {
                at: arrival.at.with_timezone(&Local),
                event,
                status: status.as_u16(),
                repeat: recorded.repeat,
                tally: recorded.tally,
            },
            shared.colour,
        ),
    };
    let written = writeln!(state.output.out, "{line}").and_then(|()| state.output.out.flush());
    save(
        &mut state,
        arrival,
        Some(json),
        verification.verified(),
        status,
    );
    if let Err(e) = written {
        // `listen | head -n 3`: the reader is gone, so the run is over.
        let why = if e.kind() == std::io::ErrorKind::BrokenPipe {
            "stopped: stdout was closed".to_string()
        } else {
            format!("stopped: cannot write to stdout: {e}")
        };
        state.stopped = Some(why);
        shared.closed.cancel();
        return;
    }
    if status.is_success() {
        let progress = state.goal.progress(&state.tracker);
        if progress != Progress::Open {
            state.decision = Some(progress);
            shared.closed.cancel();
        }
    }
}

/// Answers a delivery that is not taken, says why on stderr and saves it.
fn refuse(
    shared: &Shared,
    arrival: &Arrival,
    json: Option<&Value>,
    status: StatusCode,
    reason: &str,
    verified: Option<bool>,
) -> Response {
    tracing::debug!(status = status.as_u16(), reason, "delivery refused");
    let mut state = shared.lock();
    let about = json.map(what).unwrap_or_else(|| "a delivery".to_string());
    state.notice(&format!(
        "answered {} to {about}: {reason}",
        status.as_u16()
    ));
    save(&mut state, arrival, json, verified, status);
    plain(status, reason)
}

fn save(
    state: &mut State,
    arrival: &Arrival,
    json: Option<&Value>,
    verified: Option<bool>,
    status: StatusCode,
) {
    let Some(file) = state.save.as_mut() else {
        return;
    };
    let record = Record {
        received_at: arrival.at,
        method: arrival.parts.method.as_str(),
        target: arrival.target(),
        headers: &arrival.parts.headers,
        raw_body: &arrival.body,
        json_body: json.is_some(),
        verified,
        status: status.as_u16(),
    };
    if let Err(e) = file.append(&record) {
        let text = format!("cannot append to {}: {e}", file.path().display());
        state.save_failures += 1;
        state.notice(&text);
    }
}

/// `RINGING of call 5a85d86f...`, or `a delivery` when the body says too little.
fn what(json: &Value) -> String {
    let event = &json["event"];
    match (
        event.get("state").and_then(Value::as_str),
        event.get("id").and_then(Value::as_str),
    ) {
        (Some(state), Some(id)) => format!("{state} of call {id}"),
        (None, Some(id)) => format!("an event of call {id}"),
        _ => "a delivery".to_string(),
    }
}

/// `/webhook` and `/webhook/` are the same path.
fn same_path(requested: &str, configured: &str) -> bool {
    requested.trim_end_matches('/') == configured.trim_end_matches('/')
}

/// A plain-text answer: `callhook listen: TEXT`, so a sender's error log says who answered.
fn plain(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        print::notice(text),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailing_slash_names_the_same_path() {
        assert!(same_path("/webhook/", "/webhook"));
        assert!(same_path("/", "/"));
        assert!(!same_path("/webhooks", "/webhook"));
    }
}
