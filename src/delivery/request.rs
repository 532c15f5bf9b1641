//! What a delivery sends and how a failed answer is described: pure functions over a
//! [`DeliveryJob`], no I/O.

use crate::domain::webhook::MetadataPolicy;
use crate::signing;
use crate::store::{DeliveryJob, Failure};
use serde::Serialize;

/// The body and the extra headers of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata<'a> {
    attempt: u32,
    delivery_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<&'a str>,
    webhook_id: &'a str,
}

/// Builds the request of `job` under its webhook's metadata policy.
pub fn build(job: &DeliveryJob) -> Outgoing {
    let signature = job
        .signing_key
        .as_deref()
        .map(|key| signing::sign_canonical(key, &job.event));
    match job.metadata_policy {
        MetadataPolicy::None => Outgoing {
            body: format!("{{\"event\":{}}}", job.event),
            headers: Vec::new(),
        },
        MetadataPolicy::Header => {
            let mut headers = Vec::with_capacity(4);
            if let Some(signature) = signature {
                headers.push(("X-VON-Signature", signature));
            }
            headers.push(("X-VON-Webhook-Id", job.webhook_id.clone()));
            headers.push(("X-VON-Delivery-Id", job.id.clone()));
            headers.push(("X-VON-Attempt", job.attempt.to_string()));
            Outgoing {
                body: format!("{{\"event\":{}}}", job.event),
                headers,
            }
        }
        MetadataPolicy::Body => {
            let metadata = Metadata {
                attempt: job.attempt,
                delivery_id: &job.id,
                signature: signature.as_deref(),
                webhook_id: &job.webhook_id,
            };
            // Serialising a struct of strings and a number cannot fail.
            let metadata = serde_json::to_string(&metadata).unwrap_or_default();
            Outgoing {
                body: format!("{{\"event\":{},\"metadata\":{metadata}}}", job.event),
                headers: Vec::new(),
            }
        }
    }
}

/// How much of an error body goes into `lastErrorMessage`.
pub const BODY_EXCERPT: usize = 200;

/// Most bytes of a failure message kept (`lastErrorMessage`): a transport error naming a long URL
/// is cut to this.
pub const MAX_FAILURE_MESSAGE: usize = 1024;

/// `failure` with its message cut to [`MAX_FAILURE_MESSAGE`] bytes on a character boundary, ending
/// in `...` when it was cut.
pub fn capped(mut failure: Failure) -> Failure {
    const MARK: &str = "...";
    if failure.message.len() > MAX_FAILURE_MESSAGE {
        let end = failure
            .message
            .floor_char_boundary(MAX_FAILURE_MESSAGE - MARK.len());
        failure.message.truncate(end);
        failure.message.push_str(MARK);
    }
    failure
}

/// How big an error body was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodySize {
    Exact(usize),
    /// Only this much was read, and there was more.
    AtLeast(usize),
}

/// Describes a non-2xx answer as VIS does: `lastHttpErrorCode` `500 INTERNAL_SERVER_ERROR`, and
/// `lastErrorMessage` `500 INTERNAL SERVER ERROR: [<start of body>... (19777 bytes)]`.
pub fn http_failure(status: u16, reason: Option<&str>, excerpt: &[u8], total: BodySize) -> Failure {
    let reason = reason.unwrap_or("UNKNOWN").to_uppercase();
    let shown = &excerpt[..excerpt.len().min(BODY_EXCERPT)];
    let mut text = String::from_utf8_lossy(shown).into_owned();
    // A cut through a multi-byte character leaves a replacement character at the end: drop it.
    if shown.len() < excerpt.len() && text.ends_with('\u{FFFD}') {
        text.pop();
    }
    let cut = match total {
        BodySize::Exact(n) if n > shown.len() => format!("... ({n} bytes)"),
        BodySize::Exact(_) => String::new(),
        BodySize::AtLeast(n) => format!("... (more than {n} bytes)"),
    };
    Failure {
        code: format!("{status} {}", reason.replace(' ', "_")),
        message: format!("{status} {reason}: [{text}{cut}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(policy: MetadataPolicy, key: Option<&str>) -> DeliveryJob {
        DeliveryJob {
            seq: 1,
            id: "d-1".into(),
            webhook_id: "w-1".into(),
            url: "http://localhost/webhook".into(),
            signing_key: key.map(str::to_string),
            metadata_policy: policy,
            attempt: 2,
            replayed_after: 0,
            event: r#"{"id":"c1","state":"RINGING"}"#.into(),
        }
    }

    #[test]
    fn none_sends_the_bare_event() {
        let out = build(&job(MetadataPolicy::None, Some("k")));
        assert_eq!(out.body, r#"{"event":{"id":"c1","state":"RINGING"}}"#);
        assert!(out.headers.is_empty());
    }

    #[test]
    fn header_policy_adds_the_four_headers() {
        let out = build(&job(MetadataPolicy::Header, Some("k")));
        let names: Vec<_> = out.headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "X-VON-Signature",
                "X-VON-Webhook-Id",
                "X-VON-Delivery-Id",
                "X-VON-Attempt"
            ]
        );
        assert_eq!(
            out.headers[0].1,
            signing::sign_canonical("k", r#"{"id":"c1","state":"RINGING"}"#)
        );
        assert_eq!(out.headers[3].1, "2");
        let unsigned = build(&job(MetadataPolicy::Header, None));
        assert_eq!(unsigned.headers.len(), 3);
    }

    #[test]
    fn body_policy_carries_metadata_with_sorted_keys() {
        let out = build(&job(MetadataPolicy::Body, None));
        assert_eq!(
            out.body,
            r#"{"event":{"id":"c1","state":"RINGING"},"metadata":{"attempt":2,"deliveryId":"d-1","webhookId":"w-1"}}"#
        );
    }

    #[test]
    fn http_failures_read_like_the_seed() {
        let body = vec![b'x'; 19_777];
        let f = http_failure(
            500,
            Some("Internal Server Error"),
            &body[..1024],
            BodySize::Exact(19_777),
        );
        assert_eq!(f.code, "500 INTERNAL_SERVER_ERROR");
        assert_eq!(
            f.message,
            format!(
                "500 INTERNAL SERVER ERROR: [{}... (19777 bytes)]",
                "x".repeat(200)
            )
        );
        let short = http_failure(404, Some("Not Found"), b"nope", BodySize::Exact(4));
        assert_eq!(
            (short.code.as_str(), short.message.as_str()),
            ("404 NOT_FOUND", "404 NOT FOUND: [nope]")
        );
    }

    #[test]
    fn long_failure_messages_are_capped_on_a_character_boundary() {
        let failure = |message: String| Failure {
            code: "CONNECTION_REFUSED".into(),
            message,
        };
        let long = "é".repeat(1000); // 2000 bytes; byte 1021 is inside an é
        let cut = capped(failure(long)).message;
        assert!(cut.len() <= MAX_FAILURE_MESSAGE, "{}", cut.len());
        assert_eq!(cut, format!("{}...", "é".repeat(510)));
        let short = "connection refused".to_string();
        assert_eq!(capped(failure(short.clone())).message, short);
    }

    #[test]
    fn excerpts_never_split_a_character() {
        let body = format!("a{}", "é".repeat(150)); // 301 bytes; byte 200 is inside an é
        let f = http_failure(
            500,
            Some("Internal Server Error"),
            body.as_bytes(),
            BodySize::Exact(301),
        );
        assert!(!f.message.contains('\u{FFFD}'), "{}", f.message);
        assert!(
            f.message
                .ends_with(&format!("{}... (301 bytes)]", "é".repeat(99))),
            "{}",
            f.message
        );
    }
}
