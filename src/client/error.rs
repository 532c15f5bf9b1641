//! The client's one error type, and how transport failures and error answers become it.

use super::{Raw, Sent};
use reqwest::Url;
use serde::Deserialize;
use std::error::Error as _;
use std::fmt;

/// One `errors[]` entry of a VIS error answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FieldError {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub message: String,
}

/// An error answer of the API: the HTTP status and what the VIS `ErrorResponse` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisError {
    pub status: u16,
    /// `errorCode` (e.g. `NOT_FOUND`), when the answer had one.
    pub code: Option<String>,
    /// `errorMessage`, or the best text the answer had (a gateway's own error shape, a plain
    /// text body, the reason phrase).
    pub message: String,
    /// `errors[]`: one entry per bad field.
    pub errors: Vec<FieldError>,
}

impl fmt::Display for VisError {
    /// One line: `422 VALIDATION_ERROR: invalid values: url (url: must be ...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        write!(f, ": {}", one_line(&self.message))?;
        if !self.errors.is_empty() {
            let fields: Vec<String> = self
                .errors
                .iter()
                .map(|e| match e.field.is_empty() {
                    true => one_line(&e.message),
                    false => format!("{}: {}", e.field, one_line(&e.message)),
                })
                .collect();
            write!(f, " ({})", fields.join("; "))?;
        }
        Ok(())
    }
}

/// Everything a client call can fail with. Each message is one line naming the cause.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API answered with an error status.
    #[error("{0}")]
    Api(VisError),
    #[error("bad base URL {url:?}: {reason}")]
    BadBaseUrl { url: String, reason: String },
    #[error("the token cannot be used: {0}")]
    InvalidToken(&'static str),
    #[error(
        "connection refused by {target}: nothing is listening there (is the server running? is the base URL right?)"
    )]
    ConnectionRefused { target: String },
    #[error("cannot resolve host {host}: {detail} (is the base URL right?)")]
    UnknownHost { host: String, detail: String },
    #[error("{request} timed out (no complete answer within {seconds}s)")]
    Timeout { request: String, seconds: u64 },
    #[error("cannot reach {target}: {detail}")]
    Transport { target: String, detail: String },
    #[error(
        "{request} answered {status}, a redirect to {location}: the base URL is probably wrong (use the address it points to)"
    )]
    Redirect {
        request: String,
        status: u16,
        location: String,
    },
    #[error(
        "{request} answered {status} with {what}, not JSON: is the base URL a VIS API? ({body})"
    )]
    NotJson {
        request: String,
        status: u16,
        what: String,
        body: String,
    },
    #[error("{request} answered JSON of an unexpected shape: {detail}")]
    UnexpectedJson { request: String, detail: String },
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
}

impl ClientError {
    /// The HTTP status of an API error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api(e) => Some(e.status),
            ClientError::Redirect { status, .. } | ClientError::NotJson { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// The VIS error, when the API answered one.
    pub fn vis(&self) -> Option<&VisError> {
        match self {
            ClientError::Api(e) => Some(e),
            _ => None,
        }
    }
}

/// A URL as shown in messages: without any user name or password it may carry.
pub(crate) fn shown_url(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// `scheme://host:port` of a URL.
fn origin(url: &Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
        _ => shown_url(url),
    }
}

/// The deepest cause in an error's source chain, as text (the part that names what happened).
pub(crate) fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last: &dyn std::error::Error = e;
    while let Some(next) = last.source() {
        last = next;
    }
    one_line(&last.to_string())
}

/// A transport failure of `sent`, classified.
pub(crate) fn transport(sent: &Sent, e: &reqwest::Error) -> ClientError {
    if e.is_timeout() {
        return ClientError::Timeout {
            request: sent.to_string(),
            seconds: super::REQUEST_TIMEOUT.as_secs(),
        };
    }
    let mut cause = e.source();
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return ClientError::ConnectionRefused {
                target: origin(&sent.url),
            };
        }
        cause = c.source();
    }
    if e.is_dns() {
        return ClientError::UnknownHost {
            host: sent.url.host_str().unwrap_or_default().to_string(),
            detail: innermost(e),
        };
    }
    ClientError::Transport {
        target: origin(&sent.url),
        detail: innermost(e),
    }
}

/// The error answer `raw` (a 4xx or 5xx) as a [`ClientError`].
pub(crate) fn from_answer(raw: Raw) -> ClientError {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        error_code: Option<String>,
        error_message: Option<String>,
        #[serde(default)]
        errors: Vec<FieldError>,
        // Shapes gateways in front of an API use.
        message: Option<String>,
        error: Option<serde_json::Value>,
        #[serde(rename = "error_description")]
        error_description: Option<String>,
    }
    let reason = reqwest::StatusCode::from_u16(raw.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error");
    match serde_json::from_str::<Body>(&raw.body) {
        Ok(b) => {
            let error_text = b.error.as_ref().and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Object(o) => o
                    .get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string),
                _ => None,
            });
            let message = b
                .error_message
                .or(b.message)
                .or(b.error_description)
                .or(error_text)
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| reason.to_string());
            ClientError::Api(VisError {
                status: raw.status,
                code: b.error_code,
                message,
                errors: b.errors,
            })
        }
        // An error answer that is not JSON still has a status worth reporting.
        Err(_) => {
            let snippet = snippet(&raw.body);
            let message = match snippet.is_empty() {
                true => reason.to_string(),
                false => format!("{reason} ({} body: {snippet})", what(&raw)),
            };
            ClientError::Api(VisError {
                status: raw.status,
                code: None,
                message,
                errors: Vec::new(),
            })
        }
    }
}

/// A 2xx answer whose body is not JSON.
pub(crate) fn not_json(raw: &Raw) -> ClientError {
    let body = snippet(&raw.body);
    ClientError::NotJson {
        request: raw.sent.to_string(),
        status: raw.status,
        what: what(raw),
        body: match body.is_empty() {
            true => "empty body".into(),
            false => format!("body starts: {body}"),
        },
    }
}

/// "an HTML page", "text/plain", "an empty body".
fn what(raw: &Raw) -> String {
    let ct = raw.content_type.as_deref().unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if raw.body.trim().is_empty() {
        "an empty body".into()
    } else if essence.eq_ignore_ascii_case("text/html") {
        "an HTML page".into()
    } else if essence.is_empty() {
        "a body without Content-Type".into()
    } else {
        essence.to_string()
    }
}

/// The start of a body on one line, at most 80 characters.
fn snippet(body: &str) -> String {
    let line = one_line(body.trim());
    match line.char_indices().nth(80) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

/// `text` with every run of whitespace (newlines included) turned into one space.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::Method;

    fn raw(status: u16, content_type: &str, body: &str) -> Raw {
        Raw {
            sent: Sent {
                method: Method::GET,
                url: Url::parse("https://user:pw@api.example.com/vis/v1/self/webhooks/").unwrap(),
            },
            status,
            content_type: Some(content_type.into()),
            body: body.into(),
        }
    }

    #[test]
    fn a_vis_error_answer_keeps_status_code_message_and_field_errors() {
        let e = from_answer(raw(
            422,
            "application/json",
            r#"{"errorCode":"VALIDATION_ERROR","errorMessage":"invalid values: url","errors":[{"field":"url","message":"must be absolute"}]}"#,
        ));
        assert_eq!(
            e.to_string(),
            "422 VALIDATION_ERROR: invalid values: url (url: must be absolute)"
        );
        assert_eq!(e.status(), Some(422));
        assert_eq!(e.vis().unwrap().errors.len(), 1);
    }

    #[test]
    fn other_error_shapes_and_plain_text_still_give_a_message() {
        let gateway = from_answer(raw(
            401,
            "application/json",
            r#"{"error":"invalid_token","error_description":"The access token expired"}"#,
        ));
        assert_eq!(gateway.to_string(), "401: The access token expired");
        let html = from_answer(raw(502, "text/html", "<html>\n<b>Bad gateway</b></html>"));
        assert_eq!(
            html.to_string(),
            "502: Bad Gateway (an HTML page body: <html> <b>Bad gateway</b></html>)"
        );
        let empty = from_answer(raw(404, "text/plain", ""));
        assert_eq!(empty.to_string(), "404: Not Found");
    }

    #[test]
    fn a_success_that_is_not_json_says_so_without_the_password() {
        let e = raw(200, "text/html; charset=utf-8", "<!doctype html><p>hi</p>")
            .decode::<serde_json::Value>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("an HTML page, not JSON"), "{e}");
        assert!(e.contains("<!doctype html>"), "{e}");
        assert!(!e.contains("pw"), "{e}");
    }

    #[test]
    fn long_bodies_are_cut_on_one_line() {
        let s = snippet(&"ab\n".repeat(100));
        assert!(s.ends_with("...") && !s.contains('\n'), "{s}");
        assert!(s.chars().count() <= 83);
    }
}
