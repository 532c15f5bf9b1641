//! Call reports for the ingestion route, and the clock tests script them on.

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

/// A well-formed ingestion body; change fields with `with`.
pub fn report(account: &str, user: &str, external_id: &str, direction: &str, state: &str) -> Value {
    json!({
        "externalId": external_id,
        "accountId": account,
        "userId": user,
        "direction": direction,
        "phoneNumber": "+14155550100",
        "state": state,
    })
}

/// `report(...)` with `at` set to the RFC 3339 text of the epoch-millisecond instant `at_ms`.
pub fn report_at(
    account: &str,
    user: &str,
    external_id: &str,
    direction: &str,
    state: &str,
    at_ms: i64,
) -> Value {
    with(
        report(account, user, external_id, direction, state),
        "at",
        json!(rfc3339(at_ms)),
    )
}

/// `body` with `key` set to `value`.
pub fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

/// `body` with `key` removed.
pub fn without(mut body: Value, key: &str) -> Value {
    body.as_object_mut().expect("object").remove(key);
    body
}

/// 2024-05-01T10:00:00Z in epoch milliseconds: the base time of scripted calls.
pub const T0: i64 = 1_714_557_600_000;

/// RFC 3339 text for an epoch-millisecond instant (as a telephony source would send it).
pub fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The event time format: `2018-02-15T18:59:03.496+0000`.
pub fn event_time(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string()
}
