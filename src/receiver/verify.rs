//! Signature checks of received deliveries: where the signature travels (the `X-VON-Signature`
//! header under the HEADER policy, `metadata.signature` in the body under BODY) and what the
//! shared [`crate::signing`] module says about it.
//!
//! Pure: no I/O. Part of the receiver, so it never touches the store.

use crate::signing;
use axum::http::HeaderMap;
use serde_json::Value;

/// The header a signature travels in under the HEADER metadata policy.
pub const SIGNATURE_HEADER: &str = "x-von-signature";

/// Where a signature was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `X-VON-Signature` (HEADER policy).
    Header,
    /// `metadata.signature` in the body (BODY policy).
    Metadata,
}

impl Source {
    pub fn describe(self) -> &'static str {
        match self {
            Source::Header => "X-VON-Signature",
            Source::Metadata => "metadata.signature",
        }
    }
}

/// The result of checking one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// No signing key was given: nothing is checked (as the seed's receivers do).
    NotChecked,
    /// The signature from `Source` is the signature of `event` under the key.
    Valid(Source),
    /// Neither the header nor the body carries a signature.
    Missing,
    /// The signature from `Source` does not match.
    Mismatch(Source),
}

impl Verification {
    /// `true`/`false` when a key was given, `None` when nothing was checked (the `verified` of a
    /// saved delivery).
    pub fn verified(self) -> Option<bool> {
        match self {
            Verification::NotChecked => None,
            Verification::Valid(_) => Some(true),
            Verification::Missing | Verification::Mismatch(_) => Some(false),
        }
    }

    /// Why the delivery was refused, or `None` when it passes.
    pub fn problem(self) -> Option<String> {
        match self {
            Verification::NotChecked | Verification::Valid(_) => None,
            Verification::Missing => Some(
                "no signature (neither an X-VON-Signature header nor metadata.signature in the body)"
                    .to_string(),
            ),
            Verification::Mismatch(source) => Some(format!(
                "the signature in {} does not match the event under the signing key",
                source.describe()
            )),
        }
    }
}

/// Checks the delivery `body` (with its `event` object) and its `headers` against `key`. The
/// header wins when both carry a signature, as in the README's verification examples.
pub fn check(key: Option<&str>, headers: &HeaderMap, body: &Value) -> Verification {
    let Some(key) = key else {
        return Verification::NotChecked;
    };
    let from_header = headers
        .get(SIGNATURE_HEADER)
        .map(|v| {
            (
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
                Source::Header,
            )
        })
        .filter(|(s, _)| !s.trim().is_empty());
    let from_body = || {
        body.get("metadata")
            .and_then(|m| m.get("signature"))
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(|s| (s.to_string(), Source::Metadata))
    };
    let Some((signature, source)) = from_header.or_else(from_body) else {
        return Verification::Missing;
    };
    let event = body.get("event").unwrap_or(&Value::Null);
    if signing::verify(key, event, &signature) {
        Verification::Valid(source)
    } else {
        Verification::Mismatch(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    fn event() -> Value {
        json!({"id": "c1", "state": "RINGING", "type": "CALL"})
    }

    fn headers(signature: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(signature).unwrap());
        h
    }

    #[test]
    fn without_a_key_nothing_is_checked() {
        let body = json!({"event": event()});
        assert_eq!(
            check(None, &HeaderMap::new(), &body),
            Verification::NotChecked
        );
        assert_eq!(Verification::NotChecked.verified(), None);
    }

    #[test]
    fn a_header_signature_verifies_under_the_right_key_only() {
        let body = json!({"event": event()});
        let good = signing::sign("k", &event());
        assert_eq!(
            check(Some("k"), &headers(&good), &body),
            Verification::Valid(Source::Header)
        );
        assert_eq!(
            check(Some("other"), &headers(&good), &body),
            Verification::Mismatch(Source::Header)
        );
    }

    #[test]
    fn a_body_signature_verifies_and_metadata_is_not_covered() {
        let good = signing::sign("k", &event());
        let body = json!({"event": event(), "metadata": {"attempt": 3, "signature": good}});
        assert_eq!(
            check(Some("k"), &HeaderMap::new(), &body),
            Verification::Valid(Source::Metadata)
        );
        let mut tampered = body.clone();
        tampered["event"]["state"] = json!("ACTIVE");
        assert_eq!(
            check(Some("k"), &HeaderMap::new(), &tampered),
            Verification::Mismatch(Source::Metadata)
        );
    }

    #[test]
    fn no_signature_anywhere_is_missing_and_refused() {
        let body = json!({"event": event(), "metadata": {"attempt": 1}});
        let v = check(Some("k"), &HeaderMap::new(), &body);
        assert_eq!(v, Verification::Missing);
        assert_eq!(v.verified(), Some(false));
        assert!(v.problem().is_some());
    }
}
