//! A small typed client for the VIS REST API, used by the CLI's client commands
//! (`callhook webhooks`, and `callhook calls`).
//!
//! It speaks only the wire contract, so it works the same against a local callhook and against the
//! public service at [`PUBLIC_BASE_URL`]: a base URL, a bearer token, JSON in and out. Every
//! answer that is not a success becomes one [`ClientError`]: an API error carries the HTTP status
//! and the VIS `errorCode`/`errorMessage`/`errors`; a transport failure says what went wrong
//! (connection refused, unknown host, TLS, timeout, a redirect, an answer that is not JSON) in words
//! a user can act on.
//!
//! Routes are thin methods over four generic verbs ([`VisClient::get`], [`VisClient::post`],
//! [`VisClient::put`], [`VisClient::delete`]) and [`VisClient::url`], which appends path segments
//! (percent-encoded) to the base URL; the webhook routes live in `webhooks.rs`, and adding another
//! resource is a new file with a few one-line methods. Successful answers come back as an
//! [`Answer`]: the decoded value plus the body exactly as received, so a caller can print what the
//! API said without re-serialising it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), callhook::client::ClientError> {
//! use callhook::client::{DEFAULT_BASE_URL, VisClient, WebhookCreate};
//! let client = VisClient::new(DEFAULT_BASE_URL, "chk_...")?;
//! let body = WebhookCreate::new("https://example.com/webhook").signing_key("string");
//! let made = client.create_webhook(&body).await?;
//! println!("{} {}", made.id, made.body); // typed fields, and the JSON as the API sent it
//!
//! // Any other route: a URL from path segments (plus a query), then a generic verb.
//! let mut url = client.url(&["self", "calls", ""]);
//! url.query_pairs_mut().append_pair("size", "5");
//! let calls: serde_json::Value = client.get(url).await?.value;
//! # Ok(()) }
//! ```
//!
//! Depends on nothing internal. The token is never logged, printed or put in an error message.

mod error;
mod webhooks;

pub use error::{ClientError, FieldError, VisError};
pub use webhooks::{Statistics, Webhook, WebhookCreate};

use reqwest::{Method, Url, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::ops::Deref;
use std::time::Duration;

/// The base URL of a callhook running with its defaults on this machine.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080/t/vbc.prod/vis/v1";
/// The base URL of the public VIS service.
pub const PUBLIC_BASE_URL: &str = "https://api.vonage.com/t/vbc.prod/vis/v1";

/// How long establishing a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole request (connect, send, answer) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A successful answer: the decoded value and the body text as the API sent it.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    pub value: T,
    /// The response body, unchanged (key order, unknown fields and all).
    pub body: String,
}

impl<T> Deref for Answer<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// A VIS API client: one base URL and one bearer token.
#[derive(Clone)]
pub struct VisClient {
    http: reqwest::Client,
    base: Url,
    token: String,
}

impl fmt::Debug for VisClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VisClient")
            .field("base", &self.base.as_str())
            .field("token", &"<redacted>")
            .finish()
    }
}

impl VisClient {
    /// A client for `base_url` (e.g. [`DEFAULT_BASE_URL`]; a trailing slash is fine) sending
    /// `Authorization: Bearer <token>`.
    pub fn new(base_url: &str, token: &str) -> Result<VisClient, ClientError> {
        let base = parse_base(base_url)?;
        if token.is_empty() {
            return Err(ClientError::InvalidToken("it is empty"));
        }
        if header::HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
            return Err(ClientError::InvalidToken(
                "it contains characters that cannot be sent in an HTTP header",
            ));
        }
        // reqwest is built without a default crypto provider; ring is ours. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("callhook/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // An API answer that redirects is a wrong base URL: say so instead of silently turning
            // a POST into a GET or carrying the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Setup(error::innermost(&e)))?;
        Ok(VisClient {
            http,
            base,
            token: token.to_string(),
        })
    }

    /// The base URL every route is appended to.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The base URL with `segments` appended, each percent-encoded as one path segment. An empty
    /// last segment gives a trailing slash (`&["self", "webhooks", ""]` is `.../self/webhooks/`).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// `GET url`, decoding a JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<Answer<T>, ClientError> {
        self.call(Method::GET, url, None).await?.decode()
    }

    /// `POST url` with a JSON body, decoding a JSON answer.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        url: Url,
        body: &B,
    ) -> Result<Answer<T>, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Setup(e.to_string()))?;
        self.call(Method::POST, url, Some(body)).await?.decode()
    }

    /// `PUT url` without a body, decoding a JSON answer.
    pub async fn put<T: DeserializeOwned>(&self, url: Url) -> Result<Answer<T>, ClientError> {
        self.call(Method::PUT, url, None).await?.decode()
    }

    /// `DELETE url`; any 2xx is success and its body (204: none) is ignored.
    pub async fn delete(&self, url: Url) -> Result<(), ClientError> {
        self.call(Method::DELETE, url, None).await.map(|_| ())
    }

    /// Sends one request; a 2xx answer comes back undecoded, anything else is an error.
    pub async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<Raw, ClientError> {
        let mut auth = header::HeaderValue::from_str(&format!("Bearer {}", self.token))
            .map_err(|_| ClientError::InvalidToken("it cannot be sent in an HTTP header"))?;
        auth.set_sensitive(true);
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .header(header::AUTHORIZATION, auth)
            .header(header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let sent = Sent { method, url };
        let response = request
            .send()
            .await
            .map_err(|e| error::transport(&sent, &e))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| error::transport(&sent, &e))?;
        let raw = Raw {
            sent,
            status: status.as_u16(),
            content_type,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        if status.is_success() {
            Ok(raw)
        } else if status.is_redirection() {
            Err(ClientError::Redirect {
                request: raw.sent.to_string(),
                status: raw.status,
                location: location.unwrap_or_else(|| "nowhere".into()),
            })
        } else {
            Err(error::from_answer(raw))
        }
    }
}

/// The method and URL of a request, for messages.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    method: Method,
    url: Url,
}

impl fmt::Display for Sent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, error::shown_url(&self.url))
    }
}

/// A 2xx answer, not yet decoded.
#[derive(Debug)]
pub struct Raw {
    sent: Sent,
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

impl Raw {
    /// Decodes the body as JSON of type `T`.
    pub fn decode<T: DeserializeOwned>(self) -> Result<Answer<T>, ClientError> {
        match serde_json::from_str::<T>(&self.body) {
            Ok(value) => Ok(Answer {
                value,
                body: self.body,
            }),
            Err(e) if e.is_data() => Err(ClientError::UnexpectedJson {
                request: self.sent.to_string(),
                detail: e.to_string(),
            }),
            Err(_) => Err(error::not_json(&self)),
        }
    }
}

/// Parses and checks a base URL: absolute `http` or `https` with a host, no query or fragment.
fn parse_base(text: &str) -> Result<Url, ClientError> {
    let bad = |reason: &str| ClientError::BadBaseUrl {
        url: text.to_string(),
        reason: reason.to_string(),
    };
    let url = Url::parse(text.trim()).map_err(|e| {
        bad(&format!(
            "{e} (expected something like {DEFAULT_BASE_URL} or {PUBLIC_BASE_URL})"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) || url.cannot_be_a_base() {
        return Err(bad("it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or a fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> VisClient {
        VisClient::new(base, "chk_test").expect("valid client")
    }

    #[test]
    fn routes_are_appended_to_the_base_with_or_without_a_trailing_slash() {
        for base in [PUBLIC_BASE_URL, &format!("{PUBLIC_BASE_URL}/")] {
            let c = client(base);
            assert_eq!(
                c.url(&["self", "webhooks", ""]).as_str(),
                "https://api.vonage.com/t/vbc.prod/vis/v1/self/webhooks/"
            );
            assert_eq!(
                c.url(&["self", "webhooks", "abc", "renew"]).as_str(),
                "https://api.vonage.com/t/vbc.prod/vis/v1/self/webhooks/abc/renew"
            );
        }
        assert_eq!(
            client("http://127.0.0.1:9").url(&["self"]).as_str(),
            "http://127.0.0.1:9/self"
        );
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        let c = client(DEFAULT_BASE_URL);
        assert_eq!(
            c.url(&["self", "webhooks", "../x?y#z"]).path(),
            "/t/vbc.prod/vis/v1/self/webhooks/..%2Fx%3Fy%23z"
        );
    }

    #[test]
    fn bad_base_urls_are_refused_with_the_reason() {
        for (base, reason) in [
            ("not a url", "relative URL"),
            ("ftp://example.com/vis", "http or https"),
            ("http://example.com/vis?x=1", "query"),
            ("mailto:someone@example.com", "http or https"),
        ] {
            let e = VisClient::new(base, "t").unwrap_err().to_string();
            assert!(e.contains("base URL") && e.contains(reason), "{base}: {e}");
        }
    }

    #[test]
    fn empty_or_unsendable_tokens_are_refused() {
        assert!(matches!(
            VisClient::new(DEFAULT_BASE_URL, ""),
            Err(ClientError::InvalidToken(_))
        ));
        assert!(matches!(
            VisClient::new(DEFAULT_BASE_URL, "a\nb"),
            Err(ClientError::InvalidToken(_))
        ));
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let text = format!("{:?}", client(DEFAULT_BASE_URL));
        assert!(!text.contains("chk_test"), "{text}");
    }
}
