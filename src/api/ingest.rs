//! `POST /ingest/v1/call-events`: how a telephony source reports call state changes.

use super::AppState;
use super::error::{ApiError, Failures};
use super::extract::{Ingest, JsonBody};
use crate::domain::call::{Applied, Call, CallState, Direction};
use crate::domain::event::CallEvent;
use crate::domain::report::CallReport;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

/// A state-change report (documentation only: the handler validates field by field and refuses
/// unknown fields).
#[derive(utoipa::ToSchema)]
#[schema(as = CallReport)]
#[allow(dead_code)]
pub struct CallReportDoc {
    /// The telephony provider's id for the call; one call per (accountId, externalId).
    external_id: String,
    /// String or non-negative integer.
    account_id: String,
    /// String or non-negative integer.
    user_id: String,
    direction: Direction,
    /// The remote party's number.
    phone_number: String,
    /// The remote party's name.
    caller_id: Option<String>,
    state: CallState,
    /// Both parties are inside the account (default false).
    internal: Option<bool>,
    /// Provider type (default `VBS`).
    ucp_type: Option<String>,
    /// When the change happened: RFC 3339, `2018-02-15T18:59:03.496+0000`, or epoch milliseconds.
    /// Default: now.
    at: Option<String>,
}

/// `{"event": {...}}`: the event exactly as webhooks receive it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EventEnvelope {
    event: CallEvent,
}

impl From<&Call> for EventEnvelope {
    fn from(call: &Call) -> Self {
        EventEnvelope {
            event: CallEvent::from(call),
        }
    }
}

#[utoipa::path(post, path = "/ingest/v1/call-events", tag = "Ingestion", operation_id = "reportCallEvent",
    summary = "Report a call state change",
    description = "Applies the call state machine. 202 when the state changed (the event is queued for \
        every live webhook of the user), 200 when the report repeats the current state (nothing new), \
        409 for an illegal transition (nothing changes).",
    request_body(content = CallReportDoc, content_type = "application/json"),
    responses((status = 202, description = "A new state: the event as webhooks receive it", body = EventEnvelope),
        (status = 200, description = "The current state repeated: the same event, nothing emitted", body = EventEnvelope), Failures),
    security(("bearer" = [])))]
pub async fn report(
    State(app): State<AppState>,
    Ingest(principal): Ingest,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<EventEnvelope>), ApiError> {
    let report = CallReport::try_from(&body).map_err(ApiError::Validation)?;
    if !principal.may_ingest_for(&report.account_id) {
        return Err(ApiError::Forbidden(
            "this ingest token may not report calls of that account",
        ));
    }
    let outcome = app.sink.report(&report).await?;
    let (status, call) = match &outcome.applied {
        Applied::Changed(call) => (StatusCode::ACCEPTED, call),
        Applied::Repeated(call) => (StatusCode::OK, call),
    };
    tracing::debug!(call = %call.id, state = call.state.as_str(), deliveries = outcome.deliveries, "call event");
    Ok((status, Json(EventEnvelope::from(call))))
}
