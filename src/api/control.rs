//! Call control (`POST /self/calls`, answer, hold, unhold, voicemail, transfer, end): VIS routes
//! that act on the telephony side, here the built-in simulated telephony; and callhook's own
//! `POST /callhook/v1/calls/ring`, which makes an inbound simulated call ring a user.

use super::AppState;
use super::error::{ApiError, Failures};
use super::extract::{Id, Ingest, JsonBody, User};
use crate::domain::event::CallEvent;
use crate::domain::identity::Owner;
use crate::domain::validation::Fields;
use crate::telephony::sim::SimError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

impl From<SimError> for ApiError {
    fn from(e: SimError) -> Self {
        match e {
            SimError::NotFound(id) => ApiError::NotFound(format!("no call {id}")),
            SimError::Refused(why) => ApiError::Conflict(why),
            SimError::Apply(e) => e.into(),
            SimError::Store(e) => e.into(),
        }
    }
}

/// `{"phoneNumber": "..."}` (documentation only).
#[derive(utoipa::ToSchema)]
#[schema(as = CallCreate)]
#[allow(dead_code)]
pub struct PhoneNumberDoc {
    #[schema(example = "+15551234567")]
    phone_number: String,
}

fn phone_number(body: &Value) -> Result<String, ApiError> {
    let mut f = Fields::of(body).map_err(ApiError::Validation)?;
    let number = f.string("phoneNumber", 64);
    f.finish().map_err(ApiError::Validation)?;
    Ok(number.unwrap_or_default())
}

#[utoipa::path(post, path = "/self/calls", tag = "Calls", operation_id = "createCall",
    summary = "Place a call",
    description = "Places an outbound call on the simulated telephony: INITIALIZING, RINGING, then ACTIVE \
        when the far end answers (unless the number never answers).",
    request_body(content = PhoneNumberDoc, content_type = "application/json"),
    responses((status = 201, description = "An array holding the new call", body = [CallEvent]), Failures),
    security(("bearer" = [])))]
pub async fn place(
    State(app): State<AppState>,
    User(owner): User,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Vec<CallEvent>>), ApiError> {
    let number = phone_number(&body)?;
    let call = app.sim.place(&owner, &number).await?;
    Ok((StatusCode::CREATED, Json(vec![CallEvent::from(&call)])))
}

#[utoipa::path(delete, path = "/self/calls/{id}", tag = "Calls", operation_id = "destroyCall",
    summary = "End a call",
    description = "ANSWERED if the call was answered, CANCELLED for an outbound call still ringing, \
        REJECTED for an inbound one.",
    params(("id" = String, Path, description = "Unique identifier of the call")),
    responses((status = 200, description = "An array holding the ended call", body = [CallEvent]), Failures),
    security(("bearer" = [])))]
pub async fn end(
    State(app): State<AppState>,
    User(owner): User,
    Id(id): Id,
) -> Result<Json<Vec<CallEvent>>, ApiError> {
    let call = app.sim.end(&owner, &id).await?;
    Ok(Json(vec![CallEvent::from(&call)]))
}

#[utoipa::path(put, path = "/self/calls/{id}/answer", tag = "Calls", operation_id = "callAnswer",
    summary = "Answer a ringing inbound call",
    params(("id" = String, Path, description = "Unique identifier of the call")),
    responses((status = 200, description = "The call", body = CallEvent), Failures),
    security(("bearer" = [])))]
pub async fn answer(
    State(app): State<AppState>,
    User(owner): User,
    Id(id): Id,
) -> Result<Json<CallEvent>, ApiError> {
    Ok(Json(CallEvent::from(&app.sim.answer(&owner, &id).await?)))
}

#[utoipa::path(put, path = "/self/calls/{id}/hold", tag = "Calls", operation_id = "callHold",
    summary = "Put call on hold",
    params(("id" = String, Path, description = "Unique identifier of the call")),
    responses((status = 200, description = "The call", body = CallEvent), Failures),
    security(("bearer" = [])))]
pub async fn hold(
    State(app): State<AppState>,
    User(owner): User,
    Id(id): Id,
) -> Result<Json<CallEvent>, ApiError> {
    Ok(Json(CallEvent::from(&app.sim.hold(&owner, &id).await?)))
}

#[utoipa::path(delete, path = "/self/calls/{id}/hold", tag = "Calls", operation_id = "callUnhold",
    summary = "Unhold",
    params(("id" = String, Path, description = "Unique identifier of the call")),
    responses((status = 200, description = "The call", body = CallEvent), Failures),
    security(("bearer" = [])))]
pub async fn unhold(
    State(app): State<AppState>,
    User(owner): User,
    Id(id): Id,
) -> Result<Json<CallEvent>, ApiError> {
    Ok(Json(CallEvent::from(&app.sim.unhold(&owner, &id).await?)))
}

#[utoipa::path(put, path = "/self/calls/{id}/vmtransfer", tag = "Calls", operation_id = "callVMTransfer",
    summary = "Send a ringing call to voicemail (REJECTED for this user)",
    params(("id" = String, Path, description = "Unique identifier of the call")),
    responses((status = 200, description = "The call", body = CallEvent), Failures),
    security(("bearer" = [])))]
pub async fn vm_transfer(
    State(app): State<AppState>,
    User(owner): User,
    Id(id): Id,
) -> Result<Json<CallEvent>, ApiError> {
    Ok(Json(CallEvent::from(
        &app.sim.voicemail(&owner, &id).await?,
    )))
}

#[utoipa::path(post, path = "/self/calls/{id}/transfer", tag = "Calls", operation_id = "callTransfer",
    summary = "Transfer call",
    description = "The call becomes DETACHED for this user; when the number is the contact number of a \
        user of the same account, a new inbound call rings that user.",
    params(("id" = String, Path, description = "Unique identifier of the call")),
    request_body(content = PhoneNumberDoc, content_type = "application/json"),
    responses((status = 200, description = "The detached call", body = CallEvent), Failures),
    security(("bearer" = [])))]
pub async fn transfer(
    State(app): State<AppState>,
    User(owner): User,
    Id(id): Id,
    JsonBody(body): JsonBody,
) -> Result<Json<CallEvent>, ApiError> {
    let number = phone_number(&body)?;
    Ok(Json(CallEvent::from(
        &app.sim.transfer(&owner, &id, &number).await?,
    )))
}

/// `{"accountId", "userId", "from", "callerId"?}` (documentation only).
#[derive(utoipa::ToSchema)]
#[schema(as = RingRequest)]
#[allow(dead_code)]
pub struct RingDoc {
    account_id: String,
    user_id: String,
    /// The calling number.
    #[schema(example = "+15551234567")]
    from: String,
    /// The caller's name.
    caller_id: Option<String>,
}

#[utoipa::path(post, path = "/callhook/v1/calls/ring", tag = "Simulated telephony", operation_id = "ringUser",
    summary = "Make an inbound simulated call ring a user",
    description = "callhook's own, with an ingest token. The call is MISSED if not answered in time.",
    request_body(content = RingDoc, content_type = "application/json"),
    responses((status = 201, description = "The ringing call", body = super::ingest::EventEnvelope), Failures),
    security(("bearer" = [])))]
pub async fn ring(
    State(app): State<AppState>,
    Ingest(principal): Ingest,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<super::ingest::EventEnvelope>), ApiError> {
    let mut f = Fields::of(&body).map_err(ApiError::Validation)?;
    f.reject_unknown(&["accountId", "userId", "from", "callerId"]);
    let account_id = f.id("accountId");
    let user_id = f.id("userId");
    let from = f.string("from", 64);
    let caller_id = f.opt_string("callerId", 256);
    f.finish().map_err(ApiError::Validation)?;
    let (Some(account_id), Some(user_id), Some(from)) = (account_id, user_id, from) else {
        return Err(ApiError::BadRequest("invalid ring request".into()));
    };
    if !principal.may_ingest_for(&account_id) {
        return Err(ApiError::Forbidden(
            "this ingest token may not ring users of that account",
        ));
    }
    let owner = Owner {
        account_id,
        user_id,
    };
    let call = app.sim.ring(&owner, &from, caller_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(super::ingest::EventEnvelope::from(&call)),
    ))
}
