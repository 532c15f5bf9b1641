//! `--forward-to URL`: relays a delivery to another (local) app, as `stripe listen --forward-to`
//! does: the same method, the same headers (hop-by-hop ones aside, `Host` naming the new target)
//! and the raw body bytes unchanged, so signatures still verify downstream. The app's status,
//! headers and body become the answer to the sender. Redirects are relayed, not followed.
//!
//! Part of the receiver, so it never touches the store.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use std::time::Duration;
use url::Url;

/// How long the app may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the whole relayed exchange may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The most of the app's answer body that is relayed back.
const MAX_ANSWER: usize = 1 << 20;

/// Headers that belong to one connection, not to the message (RFC 9110 section 7.6.1), plus
/// those the HTTP stack sets itself for the new connection.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::CONTENT_LENGTH,
];

/// The forward target could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("--forward-to must be an http:// or https:// URL with a host, got {0}")]
    Url(String),
    #[error("cannot build the HTTP client for --forward-to: {0}")]
    Client(#[from] reqwest::Error),
}

/// Why a relay got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("cannot reach {url}: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("{url} did not answer within {}s", TIMEOUT.as_secs())]
    TimedOut { url: String },
}

impl RelayError {
    /// The status the sender is answered with: 504 for a timeout, else 502.
    pub fn status(&self) -> StatusCode {
        match self {
            RelayError::Unreachable { .. } => StatusCode::BAD_GATEWAY,
            RelayError::TimedOut { .. } => StatusCode::GATEWAY_TIMEOUT,
        }
    }
}

/// The app's answer.
#[derive(Debug)]
pub struct Relayed {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Relays deliveries to one URL.
#[derive(Debug, Clone)]
pub struct Forwarder {
    target: Url,
    client: reqwest::Client,
}

impl Forwarder {
    pub fn new(target: &str) -> Result<Forwarder, SetupError> {
        let url = Url::parse(target).map_err(|e| SetupError::Url(format!("{target:?} ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(SetupError::Url(format!("{target:?}")));
        }
        // reqwest is built without a default crypto provider; ring is ours. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        Ok(Forwarder {
            target: url,
            client,
        })
    }

    pub fn target(&self) -> &Url {
        &self.target
    }

    /// Sends `method` with `headers` and `body` to the target and reads its answer.
    pub async fn relay(
        &self,
        method: Method,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Relayed, RelayError> {
        let mut outgoing = headers.clone();
        strip(&mut outgoing);
        outgoing.remove(header::HOST);
        let url = self.target.to_string();
        let mut response = self
            .client
            .request(method, self.target.clone())
            .headers(outgoing)
            .body(body)
            .send()
            .await
            .map_err(|e| self.failure(&e))?;
        let status = response.status();
        let mut answer_headers = response.headers().clone();
        strip(&mut answer_headers);
        let mut answer = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_ANSWER - answer.len();
                    answer.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if answer.len() >= MAX_ANSWER {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(RelayError::TimedOut { url }),
                // The status is in; a body cut short is relayed as far as it came.
                Err(_) => break,
            }
        }
        Ok(Relayed {
            status,
            headers: answer_headers,
            body: Bytes::from(answer),
        })
    }

    fn failure(&self, e: &reqwest::Error) -> RelayError {
        let url = self.target.to_string();
        if e.is_timeout() {
            return RelayError::TimedOut { url };
        }
        RelayError::Unreachable {
            url,
            cause: root_cause(e),
        }
    }
}

fn strip(headers: &mut HeaderMap) {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The innermost cause, which names what happened (`Connection refused (os error 111)`).
fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let text = cause.to_string();
    if text.to_lowercase().contains("refused") {
        "connection refused".to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host_are_forward_targets() {
        assert!(Forwarder::new("http://127.0.0.1:4000/hooks").is_ok());
        assert!(Forwarder::new("https://example.com/").is_ok());
        assert!(Forwarder::new("ftp://example.com/").is_err());
        assert!(Forwarder::new("localhost:4000").is_err());
        assert!(Forwarder::new("not a url").is_err());
    }

    #[test]
    fn hop_by_hop_headers_are_not_relayed() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "keep-alive".parse().unwrap());
        h.insert(header::CONTENT_LENGTH, "10".parse().unwrap());
        h.insert("x-von-signature", "abc".parse().unwrap());
        strip(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-von-signature"));
    }
}
