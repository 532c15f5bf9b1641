//! Ingestion (`POST /ingest/v1/call-events`): every row of the call state machine through HTTP,
//! the timing fields the platform keeps, idempotent repeats, refusals that change nothing, the
//! event's JSON shape, and validation of the report body.

mod support;

use serde_json::{Value, json};
use support::*;

const STATES: [&str; 10] = [
    "INITIALIZING",
    "RINGING",
    "ACTIVE",
    "HELD",
    "REMOTE_HELD",
    "DETACHED",
    "REJECTED",
    "CANCELLED",
    "ANSWERED",
    "MISSED",
];
const FINAL: [&str; 4] = ["ANSWERED", "CANCELLED", "REJECTED", "MISSED"];
const DIRECTIONS: [&str; 2] = ["INBOUND", "OUTBOUND"];

/// The contract's transition table: what may follow `from` (None = a new call) for a direction.
fn allowed(from: Option<&str>, direction: &str) -> Vec<&'static str> {
    let inbound = direction == "INBOUND";
    match from {
        None => vec!["INITIALIZING", "RINGING"],
        Some("INITIALIZING") => vec!["RINGING", "ANSWERED"],
        Some("RINGING") if inbound => vec!["ACTIVE", "ANSWERED", "REJECTED", "MISSED"],
        Some("RINGING") => vec!["ACTIVE", "ANSWERED", "CANCELLED"],
        Some("ACTIVE") => vec!["ANSWERED", "HELD", "REMOTE_HELD", "DETACHED"],
        Some("HELD") | Some("REMOTE_HELD") => vec!["ACTIVE", "ANSWERED"],
        Some("DETACHED") => vec!["ANSWERED"],
        Some(_) => vec![],
    }
}

/// A legal way to bring a new call into `state`, or None if `direction` can never reach it.
fn path_to(state: &str, direction: &str) -> Option<Vec<&'static str>> {
    let inbound = direction == "INBOUND";
    Some(match state {
        "INITIALIZING" => vec!["INITIALIZING"],
        "RINGING" => vec!["RINGING"],
        "ACTIVE" => vec!["RINGING", "ACTIVE"],
        "HELD" => vec!["RINGING", "ACTIVE", "HELD"],
        "REMOTE_HELD" => vec!["RINGING", "ACTIVE", "REMOTE_HELD"],
        "DETACHED" => vec!["RINGING", "ACTIVE", "DETACHED"],
        "ANSWERED" => vec!["RINGING", "ACTIVE", "ANSWERED"],
        "CANCELLED" if !inbound => vec!["RINGING", "CANCELLED"],
        "REJECTED" if inbound => vec!["RINGING", "REJECTED"],
        "MISSED" if inbound => vec!["RINGING", "MISSED"],
        _ => return None,
    })
}

/// The timing fields the contract prescribes after a sequence of (state, at-ms) reports.
#[derive(Debug, PartialEq)]
struct Timing {
    start: String,
    answer: Option<String>,
    end: Option<String>,
    duration: i64,
}

fn expected_timing(steps: &[(&str, i64)]) -> Timing {
    let (last, last_at) = *steps.last().unwrap();
    let is_final = FINAL.contains(&last);
    let end = is_final.then_some(last_at);
    let mut answer = steps.iter().find(|(s, _)| *s == "ACTIVE").map(|(_, at)| *at);
    if last == "ANSWERED" && answer.is_none() {
        answer = end;
    }
    if FINAL.contains(&last) && last != "ANSWERED" {
        answer = None;
    }
    let duration = if last == "ANSWERED" { end.unwrap() - answer.unwrap() } else { 0 };
    Timing {
        start: event_time(steps[0].1),
        answer: answer.map(event_time),
        end: end.map(event_time),
        duration,
    }
}

fn actual_timing(event: &Value) -> Timing {
    let opt = |k: &str| event.get(k).and_then(Value::as_str).map(str::to_string);
    Timing {
        start: opt("startTime").unwrap_or_default(),
        answer: opt("answerTime"),
        end: opt("endTime"),
        duration: event["duration"].as_i64().unwrap_or(-1),
    }
}

/// The exact key list of an event in `state` (alphabetical), given which optional keys it has.
fn expected_event_keys(event: &Value) -> Vec<&'static str> {
    [
        "accountId",
        "answerTime",
        "callerId",
        "direction",
        "duration",
        "endTime",
        "externalId",
        "id",
        "internal",
        "phoneNumber",
        "startTime",
        "state",
        "type",
        "ucpType",
        "userId",
    ]
    .into_iter()
    .filter(|k| !matches!(*k, "answerTime" | "callerId" | "endTime") || event.get(*k).is_some())
    .collect()
}

/// Scripted reports for one call: each step is `STEP_MS` after the previous one.
const STEP_MS: i64 = 10_000;

struct Script<'a> {
    server: &'a Server,
    ingest: String,
    account: &'static str,
    user: &'static str,
}

impl Script<'_> {
    fn body(&self, ext: &str, direction: &str, state: &str, at: i64) -> Value {
        with(report(self.account, self.user, ext, direction, state), "at", json!(rfc3339(at)))
    }

    /// Drives a new call through `states` (one step apart from T0); returns the last event.
    async fn drive(&self, ext: &str, direction: &str, states: &[&str]) -> Value {
        let mut last = Value::Null;
        for (i, state) in states.iter().enumerate() {
            let resp = self.server.ingest(&self.ingest, &self.body(ext, direction, state, T0 + i as i64 * STEP_MS)).await;
            assert_eq!(resp.status, 202, "driving {ext} {direction} through {states:?}: {resp:?}");
            last = resp.json()["event"].clone();
        }
        last
    }
}

async fn stored_event(server: &Server, user_token: &str, id: &str) -> Value {
    let v = server.get_json(&vis(&format!("/self/events/{id}")), user_token).await;
    let items = v.as_array().unwrap_or_else(|| panic!("GET /self/events/{{id}} must be an array: {v}"));
    assert_eq!(items.len(), 1, "{v}");
    items[0].clone()
}

#[tokio::test]
async fn every_allowed_transition_is_accepted_with_the_contract_timing_fields() {
    // Arrange
    let server = Server::start();
    let script = Script { server: &server, ingest: server.ingest_token(), account: "a1", user: "u1" };
    let mut failures = Vec::new();
    let mut rows = 0;

    for direction in DIRECTIONS {
        let froms: Vec<Option<&str>> =
            std::iter::once(None).chain(STATES.iter().copied().filter(|s| !FINAL.contains(s)).map(Some)).collect();
        for from in froms {
            for to in allowed(from, direction) {
                rows += 1;
                let ext = format!("{direction}-{}-{to}", from.unwrap_or("start"));
                let prefix: Vec<&str> = match from {
                    None => vec![],
                    Some(f) => path_to(f, direction).unwrap(),
                };
                let before = script.drive(&ext, direction, &prefix).await;
                let at = T0 + prefix.len() as i64 * STEP_MS;

                // Act
                let resp = server.ingest(&script.ingest, &script.body(&ext, direction, to, at)).await;

                // Assert
                let row = format!("{direction} {} -> {to}", from.unwrap_or("(start)"));
                if resp.status != 202 {
                    failures.push(format!("{row}: expected 202, got {resp:?}"));
                    continue;
                }
                let event = resp.json()["event"].clone();
                let steps: Vec<(&str, i64)> = prefix
                    .iter()
                    .copied()
                    .chain(std::iter::once(to))
                    .enumerate()
                    .map(|(i, s)| (s, T0 + i as i64 * STEP_MS))
                    .collect();
                let (want, got) = (expected_timing(&steps), actual_timing(&event));
                if want != got {
                    failures.push(format!("{row}: timing expected {want:?}, got {got:?}"));
                }
                if event["state"] != to {
                    failures.push(format!("{row}: state is {}", event["state"]));
                }
                if from.is_some() && event["id"] != before["id"] {
                    failures.push(format!("{row}: call id changed from {} to {}", before["id"], event["id"]));
                }
            }
        }
    }

    assert_eq!(rows, 17 + 16, "the table has 17 inbound and 16 outbound rows");
    assert!(failures.is_empty(), "{} of {rows} allowed transitions failed:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn every_state_refuses_each_illegal_next_state_with_409_and_keeps_the_call_unchanged() {
    // Arrange
    let server = Server::start();
    let script = Script { server: &server, ingest: server.ingest_token(), account: "a1", user: "u1" };
    let reader = server.user_token("a1", "u1");
    let mut failures = Vec::new();
    let mut tried = 0;

    for direction in DIRECTIONS {
        for from in STATES {
            let Some(path) = path_to(from, direction) else { continue };
            let ext = format!("{direction}-{from}");
            let before = script.drive(&ext, direction, &path).await;
            let id = before["id"].as_str().unwrap().to_string();
            let later = T0 + 100 * STEP_MS;
            for to in STATES.iter().copied().filter(|s| *s != from && !allowed(Some(from), direction).contains(s)) {
                tried += 1;

                // Act
                let resp = server.ingest(&script.ingest, &script.body(&ext, direction, to, later)).await;

                // Assert
                let row = format!("{direction} {from} -> {to}");
                let ok = resp.status == 409 && resp.is_json() && resp.json()["errorCode"] == "ILLEGAL_TRANSITION";
                if !ok {
                    failures.push(format!("{row}: expected 409 ILLEGAL_TRANSITION, got {resp:?}"));
                }
                let after = stored_event(&server, &reader, &id).await;
                if after != before {
                    failures.push(format!("{row}: call changed from {before} to {after}"));
                }
            }
        }
    }

    assert!(tried > 100, "only {tried} illegal transitions tried");
    assert!(failures.is_empty(), "{} of {tried} illegal transitions misbehaved:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn a_new_call_can_only_start_initializing_or_ringing() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let reader = server.user_token("a1", "u1");

    for state in STATES.iter().filter(|s| !matches!(**s, "INITIALIZING" | "RINGING")) {
        // Act
        let resp = server.ingest(&ingest, &report("a1", "u1", &format!("new-{state}"), "INBOUND", state)).await;

        // Assert
        resp.expect_error(409, "ILLEGAL_TRANSITION");
    }
    assert_eq!(server.get_json(&vis("/self/events/count"), &reader).await, json!({"count": 0}), "no call was created");
}

#[tokio::test]
async fn answered_then_ringing_is_refused_and_the_call_stays_answered() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let reader = server.user_token("a1", "u1");
    let script = Script { server: &server, ingest: ingest.clone(), account: "a1", user: "u1" };
    let answered = script.drive("c1", "INBOUND", &["RINGING", "ACTIVE", "ANSWERED"]).await;

    // Act
    let resp = server.ingest(&ingest, &report("a1", "u1", "c1", "INBOUND", "RINGING")).await;

    // Assert
    resp.expect_error(409, "ILLEGAL_TRANSITION");
    let id = answered["id"].as_str().unwrap();
    assert_eq!(stored_event(&server, &reader, id).await, answered);
    assert_eq!(server.get_json(&vis(&format!("/self/calls/{id}")), &reader).await, json!([answered]));
}

#[tokio::test]
async fn a_repeated_report_of_the_current_state_answers_200_with_the_identical_event() {
    // Arrange
    let server = Server::start();
    let script = Script { server: &server, ingest: server.ingest_token(), account: "a1", user: "u1" };
    let reader = server.user_token("a1", "u1");
    let mut failures = Vec::new();

    for direction in DIRECTIONS {
        for state in STATES {
            let Some(path) = path_to(state, direction) else { continue };
            let ext = format!("repeat-{direction}-{state}");
            let current = script.drive(&ext, direction, &path).await;
            let same_body = script.body(&ext, direction, state, T0 + (path.len() as i64 - 1) * STEP_MS);
            let later_body = script.body(&ext, direction, state, T0 + 50 * STEP_MS);

            for (what, body) in [("same report", same_body), ("later report", later_body)] {
                // Act
                let resp = server.ingest(&script.ingest, &body).await;

                // Assert
                if resp.status != 200 || resp.json() != json!({"event": current}) {
                    failures.push(format!("{direction} {state} {what}: expected 200 {{event: {current}}}, got {resp:?}"));
                }
            }
            let stored = stored_event(&server, &reader, current["id"].as_str().unwrap()).await;
            if stored != current {
                failures.push(format!("{direction} {state}: stored call changed to {stored}"));
            }
        }
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn talk_time_is_the_duration_from_active_to_answered() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let at = |ms: i64| json!(rfc3339(T0 + ms));
    server.ingest_ok(&ingest, &with(report("a1", "u1", "c1", "OUTBOUND", "RINGING"), "at", at(0))).await;
    server.ingest_ok(&ingest, &with(report("a1", "u1", "c1", "OUTBOUND", "ACTIVE"), "at", at(5_000))).await;

    // Act
    let event = server.ingest_ok(&ingest, &with(report("a1", "u1", "c1", "OUTBOUND", "ANSWERED"), "at", at(65_000))).await;

    // Assert
    assert_eq!(event["startTime"], event_time(T0));
    assert_eq!(event["answerTime"], event_time(T0 + 5_000));
    assert_eq!(event["endTime"], event_time(T0 + 65_000));
    assert_eq!(event["duration"], 60_000);
}

#[tokio::test]
async fn hold_resume_and_detach_keep_the_first_answer_time() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let steps = [
        ("RINGING", 0),
        ("ACTIVE", 5_000),
        ("HELD", 10_000),
        ("ACTIVE", 20_000),
        ("REMOTE_HELD", 30_000),
        ("ACTIVE", 40_000),
        ("DETACHED", 50_000),
    ];
    let mut events = Vec::new();

    // Act
    for (state, ms) in steps {
        let body = with(report("a1", "u1", "c1", "INBOUND", state), "at", json!(rfc3339(T0 + ms)));
        events.push(server.ingest_ok(&ingest, &body).await);
    }
    let body = with(report("a1", "u1", "c1", "INBOUND", "ANSWERED"), "at", json!(rfc3339(T0 + 65_000)));
    let end = server.ingest_ok(&ingest, &body).await;

    // Assert
    for event in &events[1..] {
        assert_eq!(event["answerTime"], event_time(T0 + 5_000), "{event}");
        assert!(event.get("endTime").is_none(), "no endTime before the end: {event}");
        assert_eq!(event["duration"], 0, "{event}");
    }
    assert!(events[0].get("answerTime").is_none(), "RINGING has no answerTime: {}", events[0]);
    assert_eq!(end["answerTime"], event_time(T0 + 5_000));
    assert_eq!(end["duration"], 60_000);
}

#[tokio::test]
async fn answered_without_ever_being_active_has_answer_time_equal_to_end_time_and_zero_duration() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    server
        .ingest_ok(&ingest, &with(report("a1", "u1", "c1", "INBOUND", "INITIALIZING"), "at", json!(rfc3339(T0))))
        .await;

    // Act
    let event = server
        .ingest_ok(&ingest, &with(report("a1", "u1", "c1", "INBOUND", "ANSWERED"), "at", json!(rfc3339(T0 + 3_000))))
        .await;

    // Assert
    assert_eq!(event["answerTime"], event_time(T0 + 3_000));
    assert_eq!(event["endTime"], event_time(T0 + 3_000));
    assert_eq!(event["duration"], 0);
}

#[tokio::test]
async fn an_event_has_alphabetical_keys_defaults_and_no_nulls() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();

    // Act
    let resp = server.ingest(&ingest, &with(report("376", "24785", "callhalf-1:0", "OUTBOUND", "RINGING"), "at", json!(rfc3339(T0)))).await;

    // Assert
    resp.expect(202);
    assert!(resp.is_json());
    assert_eq!(keys(&resp.text, ""), ["event"], "{resp:?}");
    let event = resp.json()["event"].clone();
    assert_eq!(keys(&resp.text, "/event"), expected_event_keys(&event), "{resp:?}");
    assert_no_nulls(&event, "event");
    assert_eq!(event["type"], "CALL");
    assert_eq!(event["accountId"], "376");
    assert_eq!(event["userId"], "24785");
    assert_eq!(event["externalId"], "callhalf-1:0");
    assert_eq!(event["direction"], "OUTBOUND");
    assert_eq!(event["phoneNumber"], "+14155550100");
    assert_eq!(event["state"], "RINGING");
    assert_eq!(event["duration"], 0);
    assert_eq!(event["internal"], false);
    assert_eq!(event["ucpType"], "VBS");
    assert_eq!(event["startTime"], event_time(T0));
    assert!(event["id"].as_str().is_some_and(|s| !s.is_empty()), "id is a non-empty string: {event}");
    assert!(event.get("callerId").is_none() && event.get("answerTime").is_none() && event.get("endTime").is_none());
}

#[tokio::test]
async fn an_answered_event_has_every_field_in_alphabetical_order() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let first = json!({"externalId": "x1", "accountId": "a1", "userId": "u1", "direction": "INBOUND",
                       "phoneNumber": "+441234", "callerId": "Alice", "state": "RINGING", "internal": true,
                       "ucpType": "VBE", "at": rfc3339(T0)});
    server.ingest_ok(&ingest, &first).await;
    server.ingest_ok(&ingest, &with(with(first.clone(), "state", json!("ACTIVE")), "at", json!(rfc3339(T0 + 1_000)))).await;

    // Act
    let resp = server
        .ingest(&ingest, &with(with(first.clone(), "state", json!("ANSWERED")), "at", json!(rfc3339(T0 + 2_500))))
        .await;

    // Assert
    resp.expect(202);
    assert_eq!(
        keys(&resp.text, "/event"),
        ["accountId", "answerTime", "callerId", "direction", "duration", "endTime", "externalId", "id",
         "internal", "phoneNumber", "startTime", "state", "type", "ucpType", "userId"]
    );
    let event = resp.json()["event"].clone();
    assert_eq!(event["callerId"], "Alice");
    assert_eq!(event["internal"], true);
    assert_eq!(event["ucpType"], "VBE");
    assert_eq!(event["duration"], 1_500);
}

#[tokio::test]
async fn the_call_id_is_stable_per_account_and_external_id() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();

    // Act
    let a = server.ingest_ok(&ingest, &report("a1", "u1", "same-ext", "INBOUND", "RINGING")).await;
    let a2 = server.ingest_ok(&ingest, &report("a1", "u1", "same-ext", "INBOUND", "ACTIVE")).await;
    let b = server.ingest_ok(&ingest, &report("a2", "u1", "same-ext", "INBOUND", "RINGING")).await;
    let c = server.ingest_ok(&ingest, &report("a1", "u1", "other-ext", "INBOUND", "RINGING")).await;

    // Assert
    assert_eq!(a["id"], a2["id"], "one call, one id");
    assert_ne!(a["id"], b["id"], "another account's call with the same externalId is another call");
    assert_ne!(a["id"], c["id"]);
    assert_eq!(b["state"], "RINGING");
}

#[tokio::test]
async fn descriptive_fields_are_fixed_by_the_first_report() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let first = with(with(report("a1", "u1", "c1", "INBOUND", "RINGING"), "callerId", json!("Alice")), "ucpType", json!("VBS"));
    let original = server.ingest_ok(&ingest, &first).await;

    // Act
    let later = json!({"externalId": "c1", "accountId": "a1", "userId": "u1", "direction": "INBOUND",
                       "phoneNumber": "+19999999999", "callerId": "Mallory", "state": "ACTIVE",
                       "internal": true, "ucpType": "OTHER"});
    let event = server.ingest_ok(&ingest, &later).await;

    // Assert
    for field in ["phoneNumber", "callerId", "internal", "ucpType"] {
        assert_eq!(event[field], original[field], "{field} must keep its first value");
    }
    assert_eq!(event["state"], "ACTIVE");
}

#[tokio::test]
async fn a_report_with_another_user_or_direction_for_an_existing_call_is_a_409_conflict() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let reader = server.user_token("a1", "u1");
    let original = server.ingest_ok(&ingest, &report("a1", "u1", "c1", "INBOUND", "RINGING")).await;

    // Act
    let other_user = server.ingest(&ingest, &report("a1", "u2", "c1", "INBOUND", "ACTIVE")).await;
    let other_direction = server.ingest(&ingest, &report("a1", "u1", "c1", "OUTBOUND", "ACTIVE")).await;

    // Assert
    other_user.expect_error(409, "CONFLICT");
    other_direction.expect_error(409, "CONFLICT");
    assert_eq!(stored_event(&server, &reader, original["id"].as_str().unwrap()).await, original);
    let u2 = server.user_token("a1", "u2");
    assert_eq!(server.get_json(&vis("/self/events/count"), &u2).await, json!({"count": 0}));
}

#[tokio::test]
async fn an_at_earlier_than_the_last_change_is_refused_with_422_at() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let reader = server.user_token("a1", "u1");
    let ringing = server
        .ingest_ok(&ingest, &with(report("a1", "u1", "c1", "INBOUND", "RINGING"), "at", json!(rfc3339(T0 + 10_000))))
        .await;

    // Act
    let resp = server
        .ingest(&ingest, &with(report("a1", "u1", "c1", "INBOUND", "ACTIVE"), "at", json!(rfc3339(T0))))
        .await;

    // Assert
    assert_eq!(resp.expect_validation(), ["at"]);
    assert_eq!(stored_event(&server, &reader, ringing["id"].as_str().unwrap()).await, ringing);
}

#[tokio::test]
async fn an_at_equal_to_the_last_change_is_accepted() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    server
        .ingest_ok(&ingest, &with(report("a1", "u1", "c1", "INBOUND", "RINGING"), "at", json!(rfc3339(T0))))
        .await;

    // Act
    let event = server
        .ingest_ok(&ingest, &with(report("a1", "u1", "c1", "INBOUND", "ACTIVE"), "at", json!(rfc3339(T0))))
        .await;

    // Assert
    assert_eq!(event["answerTime"], event_time(T0));
}

#[tokio::test]
async fn at_accepts_rfc3339_offsets_the_vis_form_and_epoch_milliseconds() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let cases = [
        (json!("2024-05-01T10:00:00Z"), "2024-05-01T10:00:00.000+0000"),
        (json!("2024-05-01T12:00:00+02:00"), "2024-05-01T10:00:00.000+0000"),
        (json!("2024-05-01T10:00:00.123456Z"), "2024-05-01T10:00:00.123+0000"),
        (json!("2018-02-15T18:59:03.496+0000"), "2018-02-15T18:59:03.496+0000"),
        (json!(1_518_721_143_496_i64), "2018-02-15T18:59:03.496+0000"),
    ];

    for (i, (at, want)) in cases.into_iter().enumerate() {
        // Act
        let event = server
            .ingest_ok(&ingest, &with(report("a1", "u1", &format!("c{i}"), "INBOUND", "RINGING"), "at", at.clone()))
            .await;

        // Assert
        assert_eq!(event["startTime"], want, "at = {at}");
    }
}

#[tokio::test]
async fn at_defaults_to_now() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let before = chrono::Utc::now();

    // Act
    let event = server.ingest_ok(&ingest, &report("a1", "u1", "c1", "INBOUND", "RINGING")).await;

    // Assert
    let start = parse_event_time(event["startTime"].as_str().unwrap());
    let slack = chrono::TimeDelta::seconds(2);
    assert!(start >= before - slack && start <= chrono::Utc::now() + slack, "startTime {start} is not now");
}

#[tokio::test]
async fn integer_ids_are_accepted_and_returned_as_strings() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let body = json!({"externalId": "callhalf-60227142553:0", "accountId": 376, "userId": 24785,
                      "direction": "OUTBOUND", "phoneNumber": "+14155550100", "state": "RINGING"});

    // Act
    let event = server.ingest_ok(&ingest, &body).await;

    // Assert
    assert_eq!(event["accountId"], "376");
    assert_eq!(event["userId"], "24785");
    let reader = server.user_token("376", "24785");
    assert_eq!(server.get_json(&vis("/self/events/count"), &reader).await, json!({"count": 1}));
}

#[tokio::test]
async fn an_integer_external_id_is_returned_as_a_string() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();

    // Act
    let event = server.ingest_ok(&ingest, &with(report("a1", "u1", "x", "INBOUND", "RINGING"), "externalId", json!(60227142553_i64))).await;

    // Assert
    assert_eq!(event["externalId"], "60227142553");
}

#[tokio::test]
async fn invalid_report_values_are_refused_with_422_naming_each_field_and_store_nothing() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let reader = server.user_token("a1", "u1");
    let ok = report("a1", "u1", "c1", "INBOUND", "RINGING");
    let cases: Vec<(Vec<&str>, Value)> = vec![
        (vec!["accountId", "direction", "externalId", "phoneNumber", "state", "userId"], json!({})),
        (vec!["externalId"], without(ok.clone(), "externalId")),
        (vec!["accountId"], without(ok.clone(), "accountId")),
        (vec!["userId"], without(ok.clone(), "userId")),
        (vec!["direction"], without(ok.clone(), "direction")),
        (vec!["phoneNumber"], without(ok.clone(), "phoneNumber")),
        (vec!["state"], without(ok.clone(), "state")),
        (vec!["externalId"], with(ok.clone(), "externalId", json!(true))),
        (vec!["accountId"], with(ok.clone(), "accountId", json!([1]))),
        (vec!["userId"], with(ok.clone(), "userId", json!({"id": 1}))),
        (vec!["direction"], with(ok.clone(), "direction", json!("SIDEWAYS"))),
        (vec!["direction"], with(ok.clone(), "direction", json!(1))),
        (vec!["state"], with(ok.clone(), "state", json!("DANCING"))),
        (vec!["state"], with(ok.clone(), "state", json!("ringing"))),
        (vec!["phoneNumber"], with(ok.clone(), "phoneNumber", json!(false))),
        (vec!["callerId"], with(ok.clone(), "callerId", json!({"name": "x"}))),
        (vec!["internal"], with(ok.clone(), "internal", json!("yes"))),
        (vec!["ucpType"], with(ok.clone(), "ucpType", json!(["VBS"]))),
        (vec!["at"], with(ok.clone(), "at", json!("yesterday"))),
        (vec!["at"], with(ok.clone(), "at", json!(true))),
        (vec!["at"], with(ok.clone(), "at", json!("2024-13-45T99:00:00Z"))),
        (vec!["direction", "state"], with(with(ok.clone(), "direction", json!("UP")), "state", json!("NOPE"))),
    ];

    for (fields, body) in cases {
        // Act
        let resp = server.ingest(&ingest, &body).await;

        // Assert
        assert_eq!(resp.expect_validation(), fields, "body {body}: {resp:?}");
    }
    assert_eq!(server.get_json(&vis("/self/events/count"), &reader).await, json!({"count": 0}), "nothing stored");
}

#[tokio::test]
async fn unknown_report_fields_are_refused_with_422_naming_them() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let reader = server.user_token("a1", "u1");
    let body = with(with(report("a1", "u1", "c1", "INBOUND", "RINGING"), "colour", json!("red")), "duration", json!(5));

    // Act
    let resp = server.ingest(&ingest, &body).await;

    // Assert
    assert_eq!(resp.expect_validation(), ["colour", "duration"]);
    assert_eq!(server.get_json(&vis("/self/events/count"), &reader).await, json!({"count": 0}));
}

#[tokio::test]
async fn a_report_body_that_is_not_an_object_is_refused_with_422_body() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();

    for body in ["[]", "\"RINGING\"", "1", "null"] {
        // Act
        let resp = server.req("POST", INGEST).bearer(&ingest).raw(Some("application/json"), body).send().await;

        // Assert
        assert_eq!(resp.expect_validation(), ["body"], "body {body}");
    }
}

#[tokio::test]
async fn malformed_report_json_is_refused_with_400() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let reader = server.user_token("a1", "u1");

    for body in ["{", "{\"state\": RINGING}", "", "\u{0}"] {
        // Act
        let resp = server.req("POST", INGEST).bearer(&ingest).raw(Some("application/json"), body).send().await;

        // Assert
        resp.expect_error(400, "BAD_REQUEST");
    }
    assert_eq!(server.get_json(&vis("/self/events/count"), &reader).await, json!({"count": 0}));
}

#[tokio::test]
async fn a_report_not_declared_json_is_refused_with_415() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let reader = server.user_token("a1", "u1");
    let body = report("a1", "u1", "c1", "INBOUND", "RINGING").to_string();

    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        // Act
        let resp = server.req("POST", INGEST).bearer(&ingest).raw(content_type, body.clone()).send().await;

        // Assert
        resp.expect_error(415, "UNSUPPORTED_MEDIA_TYPE");
    }
    assert_eq!(server.get_json(&vis("/self/events/count"), &reader).await, json!({"count": 0}));
}

#[tokio::test]
async fn a_report_over_64_kib_is_refused_with_413() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let reader = server.user_token("a1", "u1");
    let body = with(report("a1", "u1", "c1", "INBOUND", "RINGING"), "callerId", json!("x".repeat(65 * 1024))).to_string();

    // Act
    let resp = server.req("POST", INGEST).bearer(&ingest).raw(Some("application/json"), body).send().await;

    // Assert
    resp.expect_error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(server.get_json(&vis("/self/events/count"), &reader).await, json!({"count": 0}));
}

#[tokio::test]
async fn an_ingest_token_bound_to_an_account_may_only_report_for_that_account() {
    // Arrange
    let server = Server::start();
    let bound = server.token_create(&["--role", "ingest", "--account", "a1"]);
    let other_reader = server.user_token("a2", "u1");

    // Act
    let own = server.ingest(&bound, &report("a1", "u1", "c1", "INBOUND", "RINGING")).await;
    let foreign = server.ingest(&bound, &report("a2", "u1", "c1", "INBOUND", "RINGING")).await;

    // Assert
    own.expect(202);
    foreign.expect_error(403, "FORBIDDEN");
    assert_eq!(server.get_json(&vis("/self/events/count"), &other_reader).await, json!({"count": 0}));
}

#[tokio::test]
async fn the_ingest_route_accepts_a_trailing_slash() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();

    // Act
    let resp = server.post(&format!("{INGEST}/"), &ingest, &report("a1", "u1", "c1", "INBOUND", "RINGING")).await;

    // Assert
    resp.expect(202);
}
