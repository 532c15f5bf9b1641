//! A user with calls in known states (for the read side), and helpers to script calls and read
//! ids and counts out of answers.

use serde_json::{Value, json};

use super::{Server, T0, report, rfc3339, with};

/// Reports `steps` (state, ms after T0) for one call of (account, user); returns the last event.
pub async fn script_call(
    server: &Server,
    ingest: &str,
    (account, user): (&str, &str),
    ext: &str,
    direction: &str,
    steps: &[(&str, i64)],
) -> Value {
    let mut last = Value::Null;
    for (state, ms) in steps {
        let body = with(
            report(account, user, ext, direction, state),
            "at",
            json!(rfc3339(T0 + ms)),
        );
        last = server.ingest_ok(ingest, &body).await;
    }
    last
}

pub fn ids_of(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array: {v}"))
        .iter()
        .map(|e| e["id"].as_str().expect("string id").to_string())
        .collect()
}

pub fn id_of(e: &Value) -> String {
    e["id"].as_str().expect("string id").to_string()
}

pub fn count_of(v: &Value) -> i64 {
    assert_eq!(
        v.as_object().map(|o| o.len()),
        Some(1),
        "count body is exactly {{\"count\": n}}: {v}"
    );
    v["count"]
        .as_i64()
        .unwrap_or_else(|| panic!("count must be an integer: {v}"))
}

pub const ME: (&str, &str) = ("a1", "u1");

/// (state, ms after T0) reports of one call.
pub type Steps = &'static [(&'static str, i64)];

/// A user with three live calls, one answered, one missed, plus a colleague's and a stranger's calls.
pub struct CallsFixture {
    pub server: Server,
    pub me: String,
    pub ringing_in: Value,   // INBOUND RINGING, started T0+1s
    pub active_out: Value,   // OUTBOUND ACTIVE, started T0+2s
    pub held_in: Value,      // INBOUND HELD, started T0+3s
    pub answered_out: Value, // OUTBOUND ANSWERED, started T0
    pub missed_in: Value,    // INBOUND MISSED, started T0+4s
}

pub async fn calls_fixture() -> CallsFixture {
    let server = Server::start();
    let ingest = server.ingest_token();
    let me = server.user_token(ME.0, ME.1);
    let answered_out = script_call(
        &server,
        &ingest,
        ME,
        "ans",
        "OUTBOUND",
        &[("RINGING", 0), ("ACTIVE", 10_000), ("ANSWERED", 70_000)],
    )
    .await;
    let ringing_in = script_call(
        &server,
        &ingest,
        ME,
        "ring",
        "INBOUND",
        &[("RINGING", 1_000)],
    )
    .await;
    let active_out = script_call(
        &server,
        &ingest,
        ME,
        "act",
        "OUTBOUND",
        &[("RINGING", 2_000), ("ACTIVE", 20_000)],
    )
    .await;
    let held_in = script_call(
        &server,
        &ingest,
        ME,
        "held",
        "INBOUND",
        &[("RINGING", 3_000), ("ACTIVE", 30_000), ("HELD", 40_000)],
    )
    .await;
    let missed_in = script_call(
        &server,
        &ingest,
        ME,
        "miss",
        "INBOUND",
        &[("RINGING", 4_000), ("MISSED", 50_000)],
    )
    .await;
    script_call(
        &server,
        &ingest,
        ("a1", "u2"),
        "colleague",
        "INBOUND",
        &[("RINGING", 500), ("ACTIVE", 600)],
    )
    .await;
    script_call(
        &server,
        &ingest,
        ("a2", "u1"),
        "stranger",
        "INBOUND",
        &[("RINGING", 500), ("ACTIVE", 600)],
    )
    .await;
    CallsFixture {
        server,
        me,
        ringing_in,
        active_out,
        held_in,
        answered_out,
        missed_in,
    }
}

// ---- /self and /self/account ----
