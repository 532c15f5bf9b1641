//! Request extractors that fail in the VIS error shape: bearer-token authentication by role, the
//! JSON body (content type, size limit, syntax) and path ids.

use super::error::ApiError;
use super::AppState;
use crate::domain::identity::{hash_token, Owner, Principal, Role};
use crate::domain::Timestamp;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde_json::Value;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;

async fn principal(parts: &Parts, app: &AppState) -> Result<Principal, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or(ApiError::Unauthorized("missing bearer token (Authorization: Bearer <token>)"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(ApiError::Unauthorized("the Authorization header must be: Bearer <token>"))?;
    app.store
        .authenticate(hash_token(token), Timestamp::now())
        .await?
        .ok_or(ApiError::Unauthorized("invalid, expired or revoked token"))
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
            .ok_or(ApiError::Forbidden("an ingest token cannot use the /self routes"))
    }
}

/// A token that may report call state changes.
pub struct Ingest(pub Principal);

impl FromRequestParts<AppState> for Ingest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let p = principal(parts, app).await?;
        if p.role != Role::Ingest {
            return Err(ApiError::Forbidden("only an ingest token can report call events"));
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
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let too_large = ApiError::PayloadTooLarge { limit: BODY_LIMIT };
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
            return Err(too_large);
        }
        let bytes = axum::body::to_bytes(req.into_body(), BODY_LIMIT)
            .await
            .map_err(|_| too_large)?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))
    }
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
