//! The call state machine through HTTP: every allowed transition with the timing fields the
//! platform keeps, every illegal one refused with 409 and nothing changed, idempotent repeats, one
//! call per (account, externalId) with fixed user, direction and descriptive fields.

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
    let mut answer = steps
        .iter()
        .find(|(s, _)| *s == "ACTIVE")
        .map(|(_, at)| *at);
    if last == "ANSWERED" && answer.is_none() {
        answer = end;
    }
    if FINAL.contains(&last) && last != "ANSWERED" {
        answer = None;
    }
    let duration = if last == "ANSWERED" {
        end.unwrap() - answer.unwrap()
    } else {
        0
    };
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

/// Scripted reports for one call: each step is `STEP_MS` after the previous one.
const STEP_MS: i64 = 10_000;

struct Script<'a> {
    server: &'a Server,
    ingest: String,
    account: &'static str,
    user: &'static str,
}

impl<'a> Script<'a> {
    /// A script for account a1, user u1, with a fresh ingest token.
    fn new(server: &'a Server) -> Self {
        Script {
            server,
            ingest: server.ingest_token(),
            account: "a1",
            user: "u1",
        }
    }

    fn body(&self, ext: &str, direction: &str, state: &str, at: i64) -> Value {
        report_at(self.account, self.user, ext, direction, state, at)
    }

    /// Drives a new call through `states` (one step apart from T0); returns the last event.
    async fn drive(&self, ext: &str, direction: &str, states: &[&str]) -> Value {
        let mut last = Value::Null;
        for (i, state) in states.iter().enumerate() {
            let resp = self
                .server
                .ingest(
                    &self.ingest,
                    &self.body(ext, direction, state, T0 + i as i64 * STEP_MS),
                )
                .await;
            assert_eq!(
                resp.status, 202,
                "driving {ext} {direction} through {states:?}: {resp:?}"
            );
            last = resp.json()["event"].clone();
        }
        last
    }
}

async fn stored_event(server: &Server, user_token: &str, id: &str) -> Value {
    let v = server
        .get_json(&vis(&format!("/self/events/{id}")), user_token)
        .await;
    let items = v
        .as_array()
        .unwrap_or_else(|| panic!("GET /self/events/{{id}} must be an array: {v}"));
    assert_eq!(items.len(), 1, "{v}");
    items[0].clone()
}

#[tokio::test]
async fn every_allowed_transition_is_accepted_with_the_contract_timing_fields() {
    // Arrange
    let server = Server::start();
    let script = Script::new(&server);
    let mut failures = Vec::new();
    let mut rows = 0;

    for direction in DIRECTIONS {
        let froms: Vec<Option<&str>> = std::iter::once(None)
            .chain(
                STATES
                    .iter()
                    .copied()
                    .filter(|s| !FINAL.contains(s))
                    .map(Some),
            )
            .collect();
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
                let resp = server
                    .ingest(&script.ingest, &script.body(&ext, direction, to, at))
                    .await;

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
                    failures.push(format!(
                        "{row}: call id changed from {} to {}",
                        before["id"], event["id"]
                    ));
                }
            }
        }
    }

    assert_eq!(
        rows,
        17 + 16,
        "the table has 17 inbound and 16 outbound rows"
    );
    assert!(
        failures.is_empty(),
        "{} of {rows} allowed transitions failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn every_state_refuses_each_illegal_next_state_with_409_and_keeps_the_call_unchanged() {
    // Arrange
    let server = Server::start();
    let script = Script::new(&server);
    let reader = server.user_token("a1", "u1");
    let mut failures = Vec::new();
    let mut tried = 0;

    for direction in DIRECTIONS {
        for from in STATES {
            let Some(path) = path_to(from, direction) else {
                continue;
            };
            let ext = format!("{direction}-{from}");
            let before = script.drive(&ext, direction, &path).await;
            let id = before["id"].as_str().unwrap().to_string();
            let later = T0 + 100 * STEP_MS;
            for to in STATES
                .iter()
                .copied()
                .filter(|s| *s != from && !allowed(Some(from), direction).contains(s))
            {
                tried += 1;

                // Act
                let resp = server
                    .ingest(&script.ingest, &script.body(&ext, direction, to, later))
                    .await;

                // Assert
                let row = format!("{direction} {from} -> {to}");
                let ok = resp.status == 409
                    && resp.is_json()
                    && resp.json()["errorCode"] == "ILLEGAL_TRANSITION";
                if !ok {
                    failures.push(format!(
                        "{row}: expected 409 ILLEGAL_TRANSITION, got {resp:?}"
                    ));
                }
                let after = stored_event(&server, &reader, &id).await;
                if after != before {
                    failures.push(format!("{row}: call changed from {before} to {after}"));
                }
            }
        }
    }

    assert!(tried > 100, "only {tried} illegal transitions tried");
    assert!(
        failures.is_empty(),
        "{} of {tried} illegal transitions misbehaved:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_new_call_can_only_start_initializing_or_ringing() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let reader = server.user_token("a1", "u1");

    for state in STATES
        .iter()
        .filter(|s| !matches!(**s, "INITIALIZING" | "RINGING"))
    {
        // Act
        let resp = server
            .ingest(
                &ingest,
                &report("a1", "u1", &format!("new-{state}"), "INBOUND", state),
            )
            .await;

        // Assert
        resp.expect_error(409, "ILLEGAL_TRANSITION");
    }
    assert_eq!(
        server.events_count(&reader).await,
        json!({"count": 0}),
        "no call was created"
    );
}

#[tokio::test]
async fn answered_then_ringing_is_refused_and_the_call_stays_answered() {
    // Arrange
    let server = Server::start();
    let script = Script::new(&server);
    let ingest = &script.ingest;
    let reader = server.user_token("a1", "u1");
    let answered = script
        .drive("c1", "INBOUND", &["RINGING", "ACTIVE", "ANSWERED"])
        .await;

    // Act
    let resp = server
        .ingest(ingest, &report("a1", "u1", "c1", "INBOUND", "RINGING"))
        .await;

    // Assert
    resp.expect_error(409, "ILLEGAL_TRANSITION");
    let id = answered["id"].as_str().unwrap();
    assert_eq!(stored_event(&server, &reader, id).await, answered);
    assert_eq!(
        server
            .get_json(&vis(&format!("/self/calls/{id}")), &reader)
            .await,
        json!([answered])
    );
}

#[tokio::test]
async fn a_repeated_report_of_the_current_state_answers_200_with_the_identical_event() {
    // Arrange
    let server = Server::start();
    let script = Script::new(&server);
    let reader = server.user_token("a1", "u1");
    let mut failures = Vec::new();

    for direction in DIRECTIONS {
        for state in STATES {
            let Some(path) = path_to(state, direction) else {
                continue;
            };
            let ext = format!("repeat-{direction}-{state}");
            let current = script.drive(&ext, direction, &path).await;
            let same_body = script.body(
                &ext,
                direction,
                state,
                T0 + (path.len() as i64 - 1) * STEP_MS,
            );
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
                failures.push(format!(
                    "{direction} {state}: stored call changed to {stored}"
                ));
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
    for (state, ms) in [("RINGING", 0), ("ACTIVE", 5_000)] {
        let body = report_at("a1", "u1", "c1", "OUTBOUND", state, T0 + ms);
        server.ingest_ok(&ingest, &body).await;
    }

    // Act
    let answered_body = report_at("a1", "u1", "c1", "OUTBOUND", "ANSWERED", T0 + 65_000);
    let event = server.ingest_ok(&ingest, &answered_body).await;

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
        let body = report_at("a1", "u1", "c1", "INBOUND", state, T0 + ms);
        events.push(server.ingest_ok(&ingest, &body).await);
    }
    let body = report_at("a1", "u1", "c1", "INBOUND", "ANSWERED", T0 + 65_000);
    let end = server.ingest_ok(&ingest, &body).await;

    // Assert
    for event in &events[1..] {
        assert_eq!(event["answerTime"], event_time(T0 + 5_000), "{event}");
        assert!(
            event.get("endTime").is_none(),
            "no endTime before the end: {event}"
        );
        assert_eq!(event["duration"], 0, "{event}");
    }
    assert!(
        events[0].get("answerTime").is_none(),
        "RINGING has no answerTime: {}",
        events[0]
    );
    assert_eq!(end["answerTime"], event_time(T0 + 5_000));
    assert_eq!(end["duration"], 60_000);
}

#[tokio::test]
async fn answered_without_ever_being_active_has_answer_time_equal_to_end_time_and_zero_duration() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let initializing_body = report_at("a1", "u1", "c1", "INBOUND", "INITIALIZING", T0);
    server.ingest_ok(&ingest, &initializing_body).await;

    // Act
    let answered_body = report_at("a1", "u1", "c1", "INBOUND", "ANSWERED", T0 + 3_000);
    let event = server.ingest_ok(&ingest, &answered_body).await;

    // Assert
    assert_eq!(event["answerTime"], event_time(T0 + 3_000));
    assert_eq!(event["endTime"], event_time(T0 + 3_000));
    assert_eq!(event["duration"], 0);
}

#[tokio::test]
async fn the_call_id_is_stable_per_account_and_external_id() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();

    // Act
    let ringing = report("a1", "u1", "same-ext", "INBOUND", "RINGING");
    let a = server.ingest_ok(&ingest, &ringing).await;
    let active = report("a1", "u1", "same-ext", "INBOUND", "ACTIVE");
    let a2 = server.ingest_ok(&ingest, &active).await;
    let other_account = report("a2", "u1", "same-ext", "INBOUND", "RINGING");
    let b = server.ingest_ok(&ingest, &other_account).await;
    let other_ext = report("a1", "u1", "other-ext", "INBOUND", "RINGING");
    let c = server.ingest_ok(&ingest, &other_ext).await;

    // Assert
    assert_eq!(a["id"], a2["id"], "one call, one id");
    assert_ne!(
        a["id"], b["id"],
        "another account's call with the same externalId is another call"
    );
    assert_ne!(a["id"], c["id"]);
    assert_eq!(b["state"], "RINGING");
}

#[tokio::test]
async fn descriptive_fields_are_fixed_by_the_first_report() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let first = with(
        with(
            report("a1", "u1", "c1", "INBOUND", "RINGING"),
            "callerId",
            json!("Alice"),
        ),
        "ucpType",
        json!("VBS"),
    );
    let original = server.ingest_ok(&ingest, &first).await;

    // Act
    let later = json!({"externalId": "c1", "accountId": "a1", "userId": "u1", "direction": "INBOUND",
                       "phoneNumber": "+19999999999", "callerId": "Mallory", "state": "ACTIVE",
                       "internal": true, "ucpType": "OTHER"});
    let event = server.ingest_ok(&ingest, &later).await;

    // Assert
    for field in ["phoneNumber", "callerId", "internal", "ucpType"] {
        assert_eq!(
            event[field], original[field],
            "{field} must keep its first value"
        );
    }
    assert_eq!(event["state"], "ACTIVE");
}

#[tokio::test]
async fn a_report_with_another_user_or_direction_for_an_existing_call_is_a_409_conflict() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let reader = server.user_token("a1", "u1");
    let original = server
        .ingest_ok(&ingest, &report("a1", "u1", "c1", "INBOUND", "RINGING"))
        .await;

    // Act
    let other_user = server
        .ingest(&ingest, &report("a1", "u2", "c1", "INBOUND", "ACTIVE"))
        .await;
    let other_direction = server
        .ingest(&ingest, &report("a1", "u1", "c1", "OUTBOUND", "ACTIVE"))
        .await;

    // Assert
    other_user.expect_error(409, "CONFLICT");
    other_direction.expect_error(409, "CONFLICT");
    assert_eq!(
        stored_event(&server, &reader, original["id"].as_str().unwrap()).await,
        original
    );
    let u2 = server.user_token("a1", "u2");
    assert_eq!(server.events_count(&u2).await, json!({"count": 0}));
}

#[tokio::test]
async fn an_at_earlier_than_the_last_change_is_refused_with_422_at() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let reader = server.user_token("a1", "u1");
    let ringing_body = report_at("a1", "u1", "c1", "INBOUND", "RINGING", T0 + 10_000);
    let ringing = server.ingest_ok(&ingest, &ringing_body).await;

    // Act
    let active_body = report_at("a1", "u1", "c1", "INBOUND", "ACTIVE", T0);
    let resp = server.ingest(&ingest, &active_body).await;

    // Assert
    assert_eq!(resp.expect_validation(), ["at"]);
    assert_eq!(
        stored_event(&server, &reader, ringing["id"].as_str().unwrap()).await,
        ringing
    );
}

#[tokio::test]
async fn an_at_equal_to_the_last_change_is_accepted() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let ringing_body = report_at("a1", "u1", "c1", "INBOUND", "RINGING", T0);
    server.ingest_ok(&ingest, &ringing_body).await;

    // Act
    let active_body = report_at("a1", "u1", "c1", "INBOUND", "ACTIVE", T0);
    let event = server.ingest_ok(&ingest, &active_body).await;

    // Assert
    assert_eq!(event["answerTime"], event_time(T0));
}

#[tokio::test]
async fn concurrent_first_reports_of_one_call_create_exactly_one_call() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let reader = server.user_token("a1", "u1");
    let body = report_at("a1", "u1", "race", "INBOUND", "RINGING", T0);

    // Act
    let resps = join_all((0..16).map(|_| server.ingest(&ingest, &body))).await;

    // Assert
    let created = resps.iter().filter(|r| r.status == 202).count();
    let repeated = resps.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        (created, repeated),
        (1, 15),
        "one 202 then idempotent 200s: {resps:?}"
    );
    let first = resps[0].json()["event"].clone();
    assert!(
        resps.iter().all(|r| r.json()["event"] == first),
        "every answer carries the same event: {resps:?}"
    );
    assert_eq!(server.events_count(&reader).await, json!({"count": 1}));
}
