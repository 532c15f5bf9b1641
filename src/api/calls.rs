//! `/self/calls` (the caller's active calls and call control) and `/self/events` (every call of
//! the caller in its latest state: the way to recover missed events).

use super::AppState;
use super::error::{ApiError, Failures};
use super::extract::{Id, User};
use super::params::Params;
use crate::domain::CallState;
use crate::domain::event::CallEvent;
use axum::Json;
use axum::extract::{RawQuery, State};
use serde::Serialize;

/// `{"count": n}`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = EventsCount)]
pub struct Count {
    count: u64,
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no call {id}"))
}

#[utoipa::path(get, path = "/self/calls", tag = "Calls", operation_id = "listCalls",
    summary = "List active calls", description = "Calls of the caller that are not in a final state.",
    params(
        ("direction" = Option<String>, Query, description = "INBOUND, OUTBOUND or both, comma-separated"),
        ("offset" = Option<i64>, Query, description = "Page number, from 0"),
        ("size" = Option<i64>, Query, description = "Calls per page (default 20, at most 1000)"),
        ("order" = Option<String>, Query, description = "DESC (default) or ASC by start time")),
    responses((status = 200, description = "Active calls", body = [CallEvent]), Failures),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    User(owner): User,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<CallEvent>>, ApiError> {
    let mut params = Params::parse(query.as_deref());
    let mut filter = params.filter(&[]);
    filter.active_only = true;
    let page = params.page(filter, true);
    params.finish()?;
    let calls = app.store.list_calls(&owner, &page).await?;
    Ok(Json(calls.iter().map(CallEvent::from).collect()))
}

#[utoipa::path(get, path = "/self/calls/count", tag = "Calls", operation_id = "getCallsCount",
    summary = "Get calls count",
    params(
        ("fromDate" = Option<i64>, Query, description = "Latest change at or after (epoch ms)"),
        ("toDate" = Option<i64>, Query, description = "Latest change before (epoch ms)"),
        ("direction" = Option<String>, Query, description = "INBOUND, OUTBOUND or both, comma-separated"),
        ("states" = Option<String>, Query, description = "Comma-separated states (default ACTIVE)")),
    responses((status = 200, description = "How many calls match", body = Count), Failures),
    security(("bearer" = [])))]
pub async fn count(
    State(app): State<AppState>,
    User(owner): User,
    RawQuery(query): RawQuery,
) -> Result<Json<Count>, ApiError> {
    let mut params = Params::parse(query.as_deref());
    let filter = params.filter(&[CallState::Active]);
    params.finish()?;
    let count = app.store.count_calls(&owner, &filter).await?;
    Ok(Json(Count { count }))
}

#[utoipa::path(get, path = "/self/calls/{id}", tag = "Calls", operation_id = "getCall",
    summary = "Get a call",
    params(("id" = String, Path, description = "Unique identifier of the call")),
    responses((status = 200, description = "An array holding the call", body = [CallEvent]), Failures),
    security(("bearer" = [])))]
pub async fn get(
    State(app): State<AppState>,
    User(owner): User,
    Id(id): Id,
) -> Result<Json<Vec<CallEvent>>, ApiError> {
    let call = app
        .store
        .get_call(&owner, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(vec![CallEvent::from(&call)]))
}

#[utoipa::path(get, path = "/self/events", tag = "Events", operation_id = "listEvents",
    summary = "List events", description = "Every call of the caller, in its latest state.",
    params(
        ("types" = Option<String>, Query, description = "CALL"),
        ("fromDate" = Option<i64>, Query, description = "Latest change at or after (epoch ms)"),
        ("toDate" = Option<i64>, Query, description = "Latest change before (epoch ms)"),
        ("direction" = Option<String>, Query, description = "INBOUND, OUTBOUND or both, comma-separated"),
        ("states" = Option<String>, Query, description = "Comma-separated states"),
        ("offset" = Option<i64>, Query, description = "Page number, from 0"),
        ("size" = Option<i64>, Query, description = "Events per page (default 20, at most 1000)"),
        ("order" = Option<String>, Query, description = "ASC (default) or DESC"),
        ("sort" = Option<String>, Query, description = "startTime (default), answerTime, endTime, duration, state, direction, phoneNumber, externalId or id")),
    responses((status = 200, description = "Calls in their latest state", body = [CallEvent]), Failures),
    security(("bearer" = [])))]
pub async fn events(
    State(app): State<AppState>,
    User(owner): User,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<CallEvent>>, ApiError> {
    let mut params = Params::parse(query.as_deref());
    let filter = params.filter(&[]);
    let page = params.page(filter, false);
    params.finish()?;
    let calls = app.store.list_calls(&owner, &page).await?;
    Ok(Json(calls.iter().map(CallEvent::from).collect()))
}

#[utoipa::path(get, path = "/self/events/count", tag = "Events", operation_id = "getEventsCount",
    summary = "Get events count",
    params(
        ("types" = Option<String>, Query, description = "CALL"),
        ("fromDate" = Option<i64>, Query, description = "Latest change at or after (epoch ms)"),
        ("toDate" = Option<i64>, Query, description = "Latest change before (epoch ms)"),
        ("direction" = Option<String>, Query, description = "INBOUND, OUTBOUND or both, comma-separated"),
        ("states" = Option<String>, Query, description = "Comma-separated states")),
    responses((status = 200, description = "How many calls match", body = Count), Failures),
    security(("bearer" = [])))]
pub async fn events_count(
    State(app): State<AppState>,
    User(owner): User,
    RawQuery(query): RawQuery,
) -> Result<Json<Count>, ApiError> {
    let mut params = Params::parse(query.as_deref());
    let filter = params.filter(&[]);
    params.finish()?;
    let count = app.store.count_calls(&owner, &filter).await?;
    Ok(Json(Count { count }))
}

#[utoipa::path(get, path = "/self/events/{id}", tag = "Events", operation_id = "getEvent",
    summary = "Get event",
    params(("id" = String, Path, description = "The call's id")),
    responses((status = 200, description = "An array holding the call's latest event", body = [CallEvent]), Failures),
    security(("bearer" = [])))]
pub async fn event(
    State(app): State<AppState>,
    User(owner): User,
    Id(id): Id,
) -> Result<Json<Vec<CallEvent>>, ApiError> {
    get(State(app), User(owner), Id(id)).await
}
