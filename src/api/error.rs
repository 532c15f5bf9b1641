//! The one place where errors become HTTP: every failure is answered in the VIS `ErrorResponse`
//! shape `{"errorCode", "errorMessage", "errors": [{"field", "message"}]}`. Server-side failures
//! are logged whole and answered opaquely.

use crate::domain::FieldError;
use crate::domain::call::TransitionError;
use crate::store::{ApplyError, StoreError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The VIS error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorResponse {
    pub error_code: String,
    pub error_message: String,
    pub errors: Vec<FieldError>,
}

/// The error answers every route documents (OpenAPI only).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Failures {
    /// A client mistake: the request changed nothing.
    #[response(status = "4XX")]
    Client(ErrorResponse),
    /// A server-side failure (503 when storage is unavailable).
    #[response(status = "5XX")]
    Server(ErrorResponse),
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Transition(TransitionError),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("invalid values")]
    Validation(Vec<FieldError>),
    #[error("too many requests with this token: retry after {retry_after} s")]
    RateLimited {
        /// Whole seconds until a request is allowed again (the `Retry-After` header).
        retry_after: u64,
    },
    #[error("storage is unavailable, try again later")]
    Unavailable(#[source] StoreError),
    #[error("internal server error")]
    Internal(#[source] StoreError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Transition(_) | ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Transition(TransitionError::Illegal { .. }) => "ILLEGAL_TRANSITION",
            ApiError::Validation(_) => "VALIDATION_ERROR",
            ApiError::Unavailable(_) => "SERVICE_UNAVAILABLE",
            other => code_for(other.status()),
        }
    }
}

/// The `errorCode` for a status: its reason phrase, upper-cased with `_`.
pub fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "BAD_REQUEST",
        StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
        StatusCode::FORBIDDEN => "FORBIDDEN",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
        StatusCode::REQUEST_TIMEOUT => "REQUEST_TIMEOUT",
        StatusCode::CONFLICT => "CONFLICT",
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
        StatusCode::UNPROCESSABLE_ENTITY => "VALIDATION_ERROR",
        StatusCode::TOO_MANY_REQUESTS => "TOO_MANY_REQUESTS",
        StatusCode::NOT_IMPLEMENTED => "NOT_IMPLEMENTED",
        StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
        s if s.is_client_error() => "BAD_REQUEST",
        _ => "INTERNAL_SERVER_ERROR",
    }
}

/// A VIS error response for any status.
pub fn error_response(
    status: StatusCode,
    message: impl Into<String>,
    errors: Vec<FieldError>,
) -> Response {
    let body = ErrorResponse {
        error_code: code_for(status).to_string(),
        error_message: message.into(),
        errors,
    };
    json_error(status, &body)
}

fn json_error(status: StatusCode, body: &ErrorResponse) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
        }
        let retry_after = match self {
            ApiError::RateLimited { retry_after } => Some(retry_after),
            _ => None,
        };
        let (message, errors) = match self {
            ApiError::Validation(errors) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                (format!("invalid values: {}", fields.join(", ")), errors)
            }
            other => (other.to_string(), Vec::new()),
        };
        let mut response = json_error(
            status,
            &ErrorResponse {
                error_code: code.to_string(),
                error_message: message,
                errors,
            },
        );
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::Unavailable(e),
            StoreError::Internal(_) => ApiError::Internal(e),
        }
    }
}

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Refused(TransitionError::TimeTravel { at, last }) => {
                ApiError::Validation(vec![FieldError::new(
                    "at",
                    TransitionError::TimeTravel { at, last }.to_string(),
                )])
            }
            ApplyError::Refused(t) => ApiError::Transition(t),
            ApplyError::Store(s) => s.into(),
        }
    }
}
