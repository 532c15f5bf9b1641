//! Ingestion input (`POST /ingest/v1/call-events`): the event's JSON shape, accepted `at` and id
//! forms, and every way a report body can be refused (422 naming each field, 400, 413, 415, 403).

mod support;

use serde_json::{Value, json};
use support::*;

/// Every key an event may have, in alphabetical order.
const EVENT_KEYS: [&str; 15] = [
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
];

/// The exact key list of an event in `state` (alphabetical), given which optional keys it has.
fn expected_event_keys(event: &Value) -> Vec<&'static str> {
    EVENT_KEYS
        .into_iter()
        .filter(|k| !matches!(*k, "answerTime" | "callerId" | "endTime") || event.get(*k).is_some())
        .collect()
}

#[tokio::test]
async fn an_event_has_alphabetical_keys_defaults_and_no_nulls() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();

    // Act
    let resp = server
        .ingest(
            &ingest,
            &report_at("376", "24785", "callhalf-1:0", "OUTBOUND", "RINGING", T0),
        )
        .await;

    // Assert
    resp.expect(202);
    assert!(resp.is_json());
    assert_eq!(keys(&resp.text, ""), ["event"], "{resp:?}");
    let event = resp.json()["event"].clone();
    assert_eq!(
        keys(&resp.text, "/event"),
        expected_event_keys(&event),
        "{resp:?}"
    );
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
    assert!(
        event["id"].as_str().is_some_and(|s| !s.is_empty()),
        "id is a non-empty string: {event}"
    );
    assert!(
        event.get("callerId").is_none()
            && event.get("answerTime").is_none()
            && event.get("endTime").is_none()
    );
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
    let first_as = |state: &str, ms: i64| {
        with(
            with(first.clone(), "state", json!(state)),
            "at",
            json!(rfc3339(T0 + ms)),
        )
    };
    server.ingest_ok(&ingest, &first_as("ACTIVE", 1_000)).await;

    // Act
    let resp = server.ingest(&ingest, &first_as("ANSWERED", 2_500)).await;

    // Assert
    resp.expect(202);
    assert_eq!(keys(&resp.text, "/event"), EVENT_KEYS);
    let event = resp.json()["event"].clone();
    assert_eq!(event["callerId"], "Alice");
    assert_eq!(event["internal"], true);
    assert_eq!(event["ucpType"], "VBE");
    assert_eq!(event["duration"], 1_500);
}

#[tokio::test]
async fn at_accepts_rfc3339_offsets_the_vis_form_and_epoch_milliseconds() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let cases = [
        (
            json!("2024-05-01T10:00:00Z"),
            "2024-05-01T10:00:00.000+0000",
        ),
        (
            json!("2024-05-01T12:00:00+02:00"),
            "2024-05-01T10:00:00.000+0000",
        ),
        (
            json!("2024-05-01T10:00:00.123456Z"),
            "2024-05-01T10:00:00.123+0000",
        ),
        (
            json!("2018-02-15T18:59:03.496+0000"),
            "2018-02-15T18:59:03.496+0000",
        ),
        (json!(1_518_721_143_496_i64), "2018-02-15T18:59:03.496+0000"),
    ];

    for (i, (at, want)) in cases.into_iter().enumerate() {
        // Act
        let event = server
            .ingest_ok(
                &ingest,
                &with(
                    report("a1", "u1", &format!("c{i}"), "INBOUND", "RINGING"),
                    "at",
                    at.clone(),
                ),
            )
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
    let event = server
        .ingest_ok(&ingest, &report("a1", "u1", "c1", "INBOUND", "RINGING"))
        .await;

    // Assert
    let start = parse_event_time(event["startTime"].as_str().unwrap());
    let slack = chrono::TimeDelta::seconds(2);
    assert!(
        start >= before - slack && start <= chrono::Utc::now() + slack,
        "startTime {start} is not now"
    );
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
    assert_eq!(server.events_count(&reader).await, json!({"count": 1}));
}

#[tokio::test]
async fn an_integer_external_id_is_returned_as_a_string() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();

    // Act
    let event = server
        .ingest_ok(
            &ingest,
            &with(
                report("a1", "u1", "x", "INBOUND", "RINGING"),
                "externalId",
                json!(60227142553_i64),
            ),
        )
        .await;

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
        (
            vec![
                "accountId",
                "direction",
                "externalId",
                "phoneNumber",
                "state",
                "userId",
            ],
            json!({}),
        ),
        (vec!["externalId"], without(ok.clone(), "externalId")),
        (vec!["accountId"], without(ok.clone(), "accountId")),
        (vec!["userId"], without(ok.clone(), "userId")),
        (vec!["direction"], without(ok.clone(), "direction")),
        (vec!["phoneNumber"], without(ok.clone(), "phoneNumber")),
        (vec!["state"], without(ok.clone(), "state")),
        (
            vec!["externalId"],
            with(ok.clone(), "externalId", json!(true)),
        ),
        (vec!["accountId"], with(ok.clone(), "accountId", json!([1]))),
        (vec!["userId"], with(ok.clone(), "userId", json!({"id": 1}))),
        (
            vec!["direction"],
            with(ok.clone(), "direction", json!("SIDEWAYS")),
        ),
        (vec!["direction"], with(ok.clone(), "direction", json!(1))),
        (vec!["state"], with(ok.clone(), "state", json!("DANCING"))),
        (vec!["state"], with(ok.clone(), "state", json!("ringing"))),
        (
            vec!["phoneNumber"],
            with(ok.clone(), "phoneNumber", json!(false)),
        ),
        (
            vec!["callerId"],
            with(ok.clone(), "callerId", json!({"name": "x"})),
        ),
        (vec!["internal"], with(ok.clone(), "internal", json!("yes"))),
        (vec!["ucpType"], with(ok.clone(), "ucpType", json!(["VBS"]))),
        (vec!["at"], with(ok.clone(), "at", json!("yesterday"))),
        (vec!["at"], with(ok.clone(), "at", json!(true))),
        (
            vec!["at"],
            with(ok.clone(), "at", json!("2024-13-45T99:00:00Z")),
        ),
        (
            vec!["direction", "state"],
            with(
                with(ok.clone(), "direction", json!("UP")),
                "state",
                json!("NOPE"),
            ),
        ),
    ];

    for (fields, body) in cases {
        // Act
        let resp = server.ingest(&ingest, &body).await;

        // Assert
        assert_eq!(resp.expect_validation(), fields, "body {body}: {resp:?}");
    }
    assert_eq!(
        server.events_count(&reader).await,
        json!({"count": 0}),
        "nothing stored"
    );
}

#[tokio::test]
async fn unknown_report_fields_are_refused_with_422_naming_them() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let reader = server.user_token("a1", "u1");
    let body = with(
        with(
            report("a1", "u1", "c1", "INBOUND", "RINGING"),
            "colour",
            json!("red"),
        ),
        "duration",
        json!(5),
    );

    // Act
    let resp = server.ingest(&ingest, &body).await;

    // Assert
    assert_eq!(resp.expect_validation(), ["colour", "duration"]);
    assert_eq!(server.events_count(&reader).await, json!({"count": 0}));
}

#[tokio::test]
async fn a_report_body_that_is_not_an_object_is_refused_with_422_body() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();

    for body in ["[]", "\"RINGING\"", "1", "null"] {
        // Act
        let resp = server.post_json_text(INGEST, &ingest, body).await;

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
        let resp = server.post_json_text(INGEST, &ingest, body).await;

        // Assert
        resp.expect_error(400, "BAD_REQUEST");
    }
    assert_eq!(server.events_count(&reader).await, json!({"count": 0}));
}

#[tokio::test]
async fn a_report_not_declared_json_is_refused_with_415() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let reader = server.user_token("a1", "u1");
    let body = report("a1", "u1", "c1", "INBOUND", "RINGING").to_string();

    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        // Act
        let resp = server
            .post_raw(INGEST, &ingest, content_type, body.clone())
            .await;

        // Assert
        resp.expect_error(415, "UNSUPPORTED_MEDIA_TYPE");
    }
    assert_eq!(server.events_count(&reader).await, json!({"count": 0}));
}

#[tokio::test]
async fn a_report_over_64_kib_is_refused_with_413() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let reader = server.user_token("a1", "u1");
    let body = with(
        report("a1", "u1", "c1", "INBOUND", "RINGING"),
        "callerId",
        json!("x".repeat(65 * 1024)),
    )
    .to_string();

    // Act
    let resp = server.post_json_text(INGEST, &ingest, body).await;

    // Assert
    resp.expect_error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(server.events_count(&reader).await, json!({"count": 0}));
}

#[tokio::test]
async fn an_ingest_token_bound_to_an_account_may_only_report_for_that_account() {
    // Arrange
    let server = Server::start();
    let bound = server.token_create(&["--role", "ingest", "--account", "a1"]);
    let other_reader = server.user_token("a2", "u1");

    // Act
    let own = server
        .ingest(&bound, &report("a1", "u1", "c1", "INBOUND", "RINGING"))
        .await;
    let foreign = server
        .ingest(&bound, &report("a2", "u1", "c1", "INBOUND", "RINGING"))
        .await;

    // Assert
    own.expect(202);
    foreign.expect_error(403, "FORBIDDEN");
    assert_eq!(
        server.events_count(&other_reader).await,
        json!({"count": 0})
    );
}

#[tokio::test]
async fn the_ingest_route_accepts_a_trailing_slash() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();

    // Act
    let resp = server
        .post(
            &format!("{INGEST}/"),
            &ingest,
            &report("a1", "u1", "c1", "INBOUND", "RINGING"),
        )
        .await;

    // Assert
    resp.expect(202);
}

#[tokio::test]
async fn concurrent_reports_of_different_calls_are_all_stored() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let reader = server.user_token("a1", "u1");
    let bodies: Vec<Value> = (0..40)
        .map(|i| report("a1", "u1", &format!("call-{i}"), "OUTBOUND", "RINGING"))
        .collect();

    // Act
    let resps = join_all(bodies.iter().map(|b| server.ingest(&ingest, b))).await;

    // Assert
    assert!(
        resps.iter().all(|r| r.status == 202),
        "{:?}",
        resps.iter().filter(|r| r.status != 202).collect::<Vec<_>>()
    );
    let mut ids: Vec<String> = resps
        .iter()
        .map(|r| r.json()["event"]["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40, "every call has its own id");
    assert_eq!(server.events_count(&reader).await, json!({"count": 40}));
}

#[tokio::test]
async fn text_fields_keep_unicode_and_json_special_characters() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let name = "Zoë \"Z\" O'Brien \\ 🚀 <script>";

    // Act
    let event = server
        .ingest_ok(
            &ingest,
            &with(
                report("a1", "u1", "ext/with?odd#chars", "INBOUND", "RINGING"),
                "callerId",
                json!(name),
            ),
        )
        .await;

    // Assert
    assert_eq!(event["callerId"], name);
    assert_eq!(event["externalId"], "ext/with?odd#chars");
    let reader = server.user_token("a1", "u1");
    let stored = server
        .get_json(
            &vis(&format!("/self/events/{}", event["id"].as_str().unwrap())),
            &reader,
        )
        .await;
    assert_eq!(stored, json!([event]));
}
