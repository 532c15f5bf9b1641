//! HTTP requests and responses as tests see them: a small builder over reqwest, and a response
//! whose assertions know the VIS error shape.

use std::fmt;

use serde_json::{Value, json};

use super::wire::keys;

/// An HTTP request being built.
pub struct Req {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) builder: reqwest::RequestBuilder,
}

impl Req {
    pub fn bearer(self, token: &str) -> Req {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.builder = self.builder.header(name, value);
        self
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json(mut self, body: &Value) -> Req {
        self.builder = self.builder.json(body);
        self
    }

    /// A raw body with the given Content-Type (`None`: no Content-Type header at all).
    pub fn raw(mut self, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Req {
        if let Some(ct) = content_type {
            self.builder = self.builder.header("content-type", ct);
        }
        self.builder = self.builder.body(body.into());
        self
    }

    pub async fn send(self) -> Resp {
        let resp = self.builder.send().await.unwrap_or_else(|e| {
            panic!(
                "{} {} failed at the transport level: {e:?}",
                self.method, self.path
            )
        });
        Resp::read(&self.method, &self.path, resp).await
    }
}

/// A received HTTP response.
#[derive(Clone)]
pub struct Resp {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub content_type: Option<String>,
    /// Every header, names in lower case.
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl fmt::Debug for Resp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} -> {} [{}] {}",
            self.method,
            self.path,
            self.status,
            self.content_type.as_deref().unwrap_or("no content-type"),
            self.text
        )
    }
}

impl Resp {
    /// Reads `resp` whole; `method` and `path` name the request in failure messages.
    pub async fn read(method: &str, path: &str, resp: reqwest::Response) -> Resp {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.bytes().await.expect("read response body");
        Resp {
            method: method.to_string(),
            path: path.to_string(),
            status,
            content_type,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// The value of header `name`, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status code.
    pub fn expect(&self, status: u16) -> &Resp {
        assert_eq!(self.status, status, "unexpected status: {self:?}");
        self
    }

    /// The body as JSON (panics with the response if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {self:?}"))
    }

    /// True when the Content-Type is `application/json` (parameters allowed).
    pub fn is_json(&self) -> bool {
        self.content_type
            .as_deref()
            .map(|ct| {
                ct.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("application/json")
            })
            .unwrap_or(false)
    }

    /// Asserts a VIS error: this status, this `errorCode`, `Content-Type: application/json`, keys
    /// `errorCode`, `errorMessage`, `errors` in that order, each error a `{field, message}` of
    /// strings. Returns the error fields in order.
    pub fn expect_error(&self, status: u16, code: &str) -> Vec<String> {
        assert_eq!(self.status, status, "unexpected status: {self:?}");
        assert!(self.is_json(), "error must be application/json: {self:?}");
        let v = self.json();
        assert_eq!(v["errorCode"], json!(code), "errorCode: {self:?}");
        assert!(
            v["errorMessage"].as_str().is_some_and(|m| !m.is_empty()),
            "errorMessage must be a non-empty string: {self:?}"
        );
        assert_eq!(
            keys(&self.text, ""),
            ["errorCode", "errorMessage", "errors"],
            "error body keys: {self:?}"
        );
        let errors = v["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("errors must be an array: {self:?}"));
        errors
            .iter()
            .map(|e| {
                assert!(
                    e["message"].is_string(),
                    "error entry needs a message: {self:?}"
                );
                e["field"]
                    .as_str()
                    .unwrap_or_else(|| panic!("error entry needs a string field: {self:?}"))
                    .to_string()
            })
            .collect()
    }

    /// Asserts a 422 VALIDATION_ERROR and returns the sorted error fields.
    pub fn expect_validation(&self) -> Vec<String> {
        let mut fields = self.expect_error(422, "VALIDATION_ERROR");
        fields.sort();
        fields
    }

    pub fn error_message(&self) -> String {
        self.json()["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}
