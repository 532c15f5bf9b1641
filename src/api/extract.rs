//! Request extractors that fail in the VIS error shape: bearer-token authentication by role (with
//! the per-token rate limit, checked before any body is read), the JSON body (content type, size
//! limit, syntax) and path ids.

use super::AppState;
use super::error::ApiError;
use super::rate_limit::retry_after_secs;
use crate::domain::Timestamp;
use crate::domain::identity::{Owner, Principal, Role, hash_token};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use serde_json::Value;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;
/// How much of an oversized body is still read (and discarded) before answering 413, so that a
/// client still sending gets the answer instead of a reset connection.
const DRAIN_LIMIT: usize = 1024 * 1024;

async fn principal(parts: &Parts, app: &AppState) -> Result<Principal, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or(ApiError::Unauthorized(
            "missing bearer token (Authorization: Bearer <token>)",
        ))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(ApiError::Unauthorized(
            "the Authorization header must be: Bearer <token>",
        ))?;
    let hash = hash_token(token);
    let principal = app
        .store
        .authenticate(hash, Timestamp::now())
        .await?
        .ok_or(ApiError::Unauthorized("invalid, expired or revoked token"))?;
    app.rate_limit.check(&hash).map_err(|wait| {
        app.metrics.rate_limited();
        tracing::debug!(token = %principal.token_id, ?wait, "rate limited");
        ApiError::RateLimited {
            retry_after: retry_after_secs(wait),
        }
    })?;
    Ok(principal)
}

/// The user behind a `user` token: the owner of every `/self` resource.
pub struct User(pub Owner);

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        principal(parts, app)
            .await?
            .owner()
            .map(User)
            .ok_or(ApiError::Forbidden(
                "an ingest token cannot use the /self routes",
            ))
    }
}

/// A token that may report call state changes.
pub struct Ingest(pub Principal);

impl FromRequestParts<AppState> for Ingest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let p = principal(parts, app).await?;
        if p.role != Role::Ingest {
            return Err(ApiError::Forbidden(
                "only an ingest token can report call events",
            ));
        }
        Ok(Ingest(p))
    }
}

/// A request body that must be JSON: 415 for another content type, 413 past [`BODY_LIMIT`],
/// 400 for malformed JSON.
pub struct JsonBody(pub Value);

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
            return Err(ApiError::PayloadTooLarge { limit: BODY_LIMIT });
        }
        let bytes = read_limited(req.into_body()).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))
    }
}

/// Reads at most [`BODY_LIMIT`] bytes; past that, discards up to [`DRAIN_LIMIT`] and answers 413.
async fn read_limited(mut body: axum::body::Body) -> Result<Vec<u8>, ApiError> {
    use http_body_util::BodyExt;
    let mut bytes = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::BadRequest(format!("reading the body failed: {e}")))?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total <= BODY_LIMIT {
                bytes.extend_from_slice(&data);
            } else if total > DRAIN_LIMIT {
                break;
            }
        }
    }
    if total > BODY_LIMIT {
        return Err(ApiError::PayloadTooLarge { limit: BODY_LIMIT });
    }
    Ok(bytes)
}

/// The `{id}` of a resource path.
pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Id(id))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}
