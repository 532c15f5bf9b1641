//! `callhook listen` as a real process on port 0: against real deliveries from a real
//! `callhook serve` (events printed exactly and in order, signatures under HEADER and BODY, the
//! platform's view of refusals), against requests the test sends itself (bad input, forwarding
//! with raw bytes), and its exit codes (`--count`, `--timeout`, `--expect`, start failures,
//! signals). No sleeps: every wait is on output lines, a process exit or a receiver, with a
//! deadline.

mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::*;

const ACCOUNT: &str = "376";
const USER: &str = "24785";
/// The webhooks' signing key: non-ASCII, so the UTF-8 keying is exercised.
const KEY: &str = "s3cr€t";
const WRONG_KEY: &str = "s3cret";

/// Reports (external id, state) pairs for `user` in order; returns the events, grouped by call
/// id, as the ingestion API answered them.
async fn report_calls(
    server: &Server,
    ingest: &str,
    user: &str,
    steps: &[(&str, &str)],
) -> BTreeMap<String, Vec<Value>> {
    let mut sent: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (ext, state) in steps {
        let body = with(
            report(ACCOUNT, user, ext, "INBOUND", state),
            "callerId",
            json!("Zoë \"Q\" 東京"),
        );
        let event = server.ingest_ok(ingest, &body).await;
        sent.entry(id_of(&event)).or_default().push(event);
    }
    sent
}

/// The JSON lines of `listen --format json`, parsed.
fn parsed(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// The lines of a `--save` file, parsed.
fn saved(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read save file {}: {e}", path.display()));
    parsed(&text.lines().map(str::to_string).collect::<Vec<_>>())
}

fn assert_exit(listen: &Listen, status: std::process::ExitStatus, success: bool) {
    assert_eq!(
        status.success(),
        success,
        "exit status {status}\n{}",
        listen.transcript()
    );
}

// ---- what it prints ----

#[tokio::test]
async fn prints_exactly_the_events_sent_as_json_lines_in_order_per_call() {
    // Arrange: an unsigned webhook (as the seed's receivers expect) pointing at listen.
    let server = delivery_server(&[]);
    let user = server.user_token(ACCOUNT, USER);
    let ingest = server.ingest_token();
    let mut listen = Listen::start(&["--format", "json", "--count", "5"]);
    create_hook(&server, &user, &hook(listen.url(), "NONE", None)).await;

    // Act: one call rings, is answered and ends; another rings and is missed.
    let sent = report_calls(
        &server,
        &ingest,
        USER,
        &[
            ("call-1", "RINGING"),
            ("call-2", "RINGING"),
            ("call-1", "ACTIVE"),
            ("call-2", "MISSED"),
            ("call-1", "ANSWERED"),
        ],
    )
    .await;
    let status = listen.wait_exit(ARRIVAL);

    // Assert: exit 0 after exactly five lines, each the delivery body byte for byte, in order
    // per call; the receiving line and the verdict went to stderr.
    assert_exit(&listen, status, true);
    let lines = listen.stdout_lines();
    assert_eq!(lines.len(), 5, "{}", listen.transcript());
    let mut printed: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (line, body) in lines.iter().zip(parsed(&lines)) {
        let event = body["event"].clone();
        assert_eq!(
            *line,
            format!("{{\"event\":{}}}", canonical_json(&event)),
            "the line is the delivery body"
        );
        printed.entry(id_of(&event)).or_default().push(event);
    }
    assert_eq!(printed, sent, "each call's events, in order, as ingested");
    assert!(
        listen.stderr_text().contains("got 5 events"),
        "{}",
        listen.transcript()
    );
}

#[tokio::test]
async fn text_format_shows_each_event_and_the_tally_without_colour_when_piped() {
    // Arrange
    let mut listen = Listen::start(&["--count", "3"]);
    let event = |id: &str, state: &str| {
        json!({"event": {"id": id, "state": state, "direction": "INBOUND",
                         "phoneNumber": "+14155550100", "callerId": "Bob"}})
        .to_string()
    };

    // Act
    for (id, state) in [("c-1", "RINGING"), ("c-2", "RINGING"), ("c-1", "ACTIVE")] {
        post_to(listen.url(), &[], event(id, state))
            .await
            .expect(200);
    }
    let status = listen.wait_exit(LISTEN_EXIT);

    // Assert
    assert_exit(&listen, status, true);
    let lines = listen.stdout_lines();
    assert_eq!(lines.len(), 3, "{}", listen.transcript());
    for (line, (id, state)) in
        lines
            .iter()
            .zip([("c-1", "RINGING"), ("c-2", "RINGING"), ("c-1", "ACTIVE")])
    {
        for part in [id, state, "INBOUND", "+14155550100", "Bob"] {
            assert!(line.contains(part), "{part:?} missing from {line:?}");
        }
        assert!(!line.contains('\x1b'), "no colour when piped: {line:?}");
    }
    assert!(
        lines[0].ends_with("| 1 call, 1 ringing, 0 active"),
        "{lines:?}"
    );
    assert!(
        lines[2].ends_with("| 2 calls, 1 ringing, 1 active"),
        "{lines:?}"
    );
}

// ---- signatures ----

#[tokio::test]
async fn good_signatures_verify_under_header_and_body_and_are_saved_as_verified() {
    for policy in ["HEADER", "BODY"] {
        // Arrange
        let server = delivery_server(&[]);
        let user = server.user_token(ACCOUNT, USER);
        let ingest = server.ingest_token();
        let dir = tempfile::tempdir().unwrap();
        let save = dir.path().join("deliveries.jsonl");
        let mut listen = Listen::start(&[
            "--signing-key",
            KEY,
            "--format",
            "json",
            "--count",
            "2",
            "--save",
            save.to_str().unwrap(),
        ]);
        let id = create_hook(&server, &user, &hook(listen.url(), policy, Some(KEY))).await;

        // Act
        let sent = report_calls(&server, &ingest, USER, &[("c", "RINGING"), ("c", "ACTIVE")]).await;
        let status = listen.wait_exit(ARRIVAL);

        // Assert: both accepted, printed, saved as verified; the platform counts two successes.
        assert_exit(&listen, status, true);
        let events: Vec<Value> = sent.into_values().flatten().collect();
        let printed: Vec<Value> = parsed(&listen.stdout_lines())
            .into_iter()
            .map(|b| b["event"].clone())
            .collect();
        assert_eq!(printed, events, "{policy}");
        let records = saved(&save);
        assert_eq!(records.len(), 2, "{policy}: {records:?}");
        for (record, event) in records.iter().zip(&events) {
            assert_eq!(record["verified"], json!(true), "{policy}: {record}");
            assert_eq!(record["status"], json!(200), "{policy}: {record}");
            assert_eq!(record["method"], json!("POST"), "{policy}: {record}");
            assert_eq!(record["path"], json!("/webhook"), "{policy}: {record}");
            assert_eq!(record["body"]["event"], *event, "{policy}: {record}");
            assert!(record["receivedAt"].is_string(), "{policy}: {record}");
            let signature = match policy {
                "HEADER" => record["headers"]["x-von-signature"].clone(),
                _ => record["body"]["metadata"]["signature"].clone(),
            };
            assert_eq!(
                signature,
                json!(expected_signature(KEY, event)),
                "{policy}: {record}"
            );
        }
        wait_for_successes(&server, &user, &id, 2).await;
    }
}

#[tokio::test]
async fn a_wrong_key_is_answered_401_and_the_webhook_ends_failed_under_header_and_body() {
    // Arrange: no retries, so one refused delivery fails the webhook.
    let server = delivery_server(&[("--retries", "0")]);
    let ingest = server.ingest_token();
    for policy in ["HEADER", "BODY"] {
        let user_id = format!("u-{policy}");
        let user = server.user_token(ACCOUNT, &user_id);
        let dir = tempfile::tempdir().unwrap();
        let save = dir.path().join("deliveries.jsonl");
        let mut listen = Listen::start(&[
            "--signing-key",
            WRONG_KEY,
            "--format",
            "json",
            "--save",
            save.to_str().unwrap(),
        ]);
        let id = create_hook(&server, &user, &hook(listen.url(), policy, Some(KEY))).await;

        // Act
        let ext = format!("call-{policy}");
        report_calls(&server, &ingest, &user_id, &[(&ext, "RINGING")]).await;
        let webhook = wait_until_failed(&server, &user, &id).await;

        // Assert: 401 at the platform, said on stderr, nothing on stdout, saved as unverified.
        assert_failed_once(&webhook, "401 UNAUTHORIZED");
        let message = webhook["statistics"]["lastErrorMessage"].as_str().unwrap();
        assert!(message.contains("does not match"), "{policy}: {message}");
        listen.wait_stderr("the refusal", LISTEN_EXIT, |l| {
            l.contains("answered 401 to RINGING of call") && l.contains("does not match")
        });
        let status = listen.stop_with("TERM");
        assert_exit(&listen, status, true);
        assert!(listen.stdout_lines().is_empty(), "{}", listen.transcript());
        let records = saved(&save);
        assert_eq!(records.len(), 1, "{policy}: {records:?}");
        assert_eq!(records[0]["verified"], json!(false), "{policy}");
        assert_eq!(records[0]["status"], json!(401), "{policy}");
    }
}

#[tokio::test]
async fn an_unsigned_delivery_is_refused_when_a_key_is_set() {
    // Arrange
    let mut listen = Listen::start(&["--signing-key", KEY]);

    // Act
    let resp = post_to(
        listen.url(),
        &[],
        r#"{"event":{"id":"c","state":"RINGING"}}"#,
    )
    .await;

    // Assert
    resp.expect(401);
    assert!(resp.text.contains("no signature"), "{resp:?}");
    listen.wait_stderr("the refusal", LISTEN_EXIT, |l| l.contains("answered 401"));
    assert!(listen.stdout_lines().is_empty(), "{}", listen.transcript());
}

// ---- forwarding ----

#[tokio::test]
async fn forwards_method_headers_and_raw_bytes_and_answers_with_the_apps_status_and_body() {
    // Arrange: the app answers 202 with a body of its own.
    let app = Receiver::start();
    app.on("/app", Reply::status(202, "queued by the app"));
    let mut listen = Listen::start(&[
        "--signing-key",
        KEY,
        "--format",
        "json",
        "--forward-to",
        &app.url("/app"),
    ]);
    let event = json!({"id": "c-1", "state": "RINGING", "callerId": "Zoë"});
    // Not compact, not in key order: the app must get these exact bytes.
    let raw = "{ \"event\" : {\"state\": \"RINGING\", \"id\": \"c-1\", \"callerId\": \"Zo\\u00eb\"},\n \"metadata\": {\"attempt\": 1} }".to_string();
    let signature = expected_signature(KEY, &event);

    // Act
    let resp = post_to(
        listen.url(),
        &[
            ("content-type", "application/json"),
            ("x-von-signature", &signature),
            ("x-von-delivery-id", "d-1"),
            ("x-custom", "kept"),
        ],
        raw.clone(),
    )
    .await;

    // Assert
    assert_eq!(resp.status, 202, "{resp:?}");
    assert_eq!(resp.text, "queued by the app");
    let got = app.requests_on("/app");
    assert_eq!(got.len(), 1, "{}", summary(&got));
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.body, raw.as_bytes(), "raw bytes unchanged");
    assert_eq!(r.header("x-von-signature"), Some(signature.as_str()));
    assert_eq!(r.header("x-von-delivery-id"), Some("d-1"));
    assert_eq!(r.header("x-custom"), Some("kept"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let lines = listen.wait_stdout(1, LISTEN_EXIT);
    assert_eq!(parsed(&lines)[0]["event"], event);
}

#[tokio::test]
async fn forwarded_deliveries_verify_downstream_and_the_apps_failure_reaches_the_platform() {
    // Arrange: the app takes RINGING and fails on ACTIVE; the platform does not retry.
    let app = Receiver::start();
    app.respond_with("/app", |r| match r.state().as_str() {
        "ACTIVE" => Reply::status(500, "the app broke"),
        _ => Reply::ok(),
    });
    let server = delivery_server(&[("--retries", "0")]);
    let user = server.user_token(ACCOUNT, USER);
    let ingest = server.ingest_token();
    let listen = Listen::start(&["--signing-key", KEY, "--forward-to", &app.url("/app")]);
    let id = create_hook(&server, &user, &hook(listen.url(), "HEADER", Some(KEY))).await;

    // Act
    let sent = report_calls(&server, &ingest, USER, &[("c", "RINGING"), ("c", "ACTIVE")]).await;
    let webhook = wait_until_failed(&server, &user, &id).await;

    // Assert: the app got both with signatures that verify independently; the platform saw one
    // success and the app's 500.
    let events: Vec<Value> = sent.into_values().flatten().collect();
    let got = app.wait_for_on("/app", 2, ARRIVAL).await;
    for (r, event) in got.iter().zip(&events) {
        assert_eq!(r.event(), *event);
        assert_eq!(
            r.header("x-von-signature"),
            Some(expected_signature(KEY, event).as_str()),
            "{r:?}"
        );
        assert_eq!(
            r.body,
            format!("{{\"event\":{}}}", canonical_json(event)).into_bytes()
        );
    }
    let s = &webhook["statistics"];
    assert_eq!(s["totalSuccesses"], json!(1), "{webhook}");
    assert_eq!(s["lastHttpErrorCode"], json!("500 INTERNAL_SERVER_ERROR"));
    assert!(
        s["lastErrorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("the app broke")),
        "{webhook}"
    );
}

#[tokio::test]
async fn a_delivery_that_fails_verification_is_answered_401_and_not_forwarded() {
    // Arrange
    let app = Receiver::start();
    let listen = Listen::start(&["--signing-key", KEY, "--forward-to", &app.url("/app")]);

    // Act
    let resp = post_to(
        listen.url(),
        &[("x-von-signature", &"0".repeat(64))],
        r#"{"event":{"id":"c","state":"RINGING"}}"#,
    )
    .await;

    // Assert: the answer comes after any forward would have been sent, so none was.
    resp.expect(401);
    assert!(app.requests().is_empty(), "{}", summary(&app.requests()));
}

#[tokio::test]
async fn a_forward_target_that_is_down_answers_502_and_says_so() {
    // Arrange
    let down = format!("http://127.0.0.1:{}/app", refused_port());
    let mut listen = Listen::start(&["--forward-to", &down]);

    // Act
    let resp = post_to(
        listen.url(),
        &[],
        r#"{"event":{"id":"c","state":"RINGING"}}"#,
    )
    .await;

    // Assert
    resp.expect(502);
    assert!(resp.text.contains("cannot reach"), "{resp:?}");
    listen.wait_stderr("the 502", LISTEN_EXIT, |l| {
        l.contains("answered 502") && l.contains("cannot reach") && l.contains(&down)
    });
}

// ---- bad input ----

#[tokio::test]
async fn a_body_that_is_not_json_answers_400_says_so_and_is_saved_as_text() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("deliveries.jsonl");
    let mut listen = Listen::start(&["--save", save.to_str().unwrap()]);

    // Act
    let not_json = post_to(listen.url(), &[], "hello").await;
    let no_event = post_to(listen.url(), &[], r#"{"hello": 1}"#).await;

    // Assert
    not_json.expect(400);
    assert!(not_json.text.contains("not JSON"), "{not_json:?}");
    no_event.expect(400);
    assert!(no_event.text.contains("no \"event\""), "{no_event:?}");
    listen.wait_stderr("the 400", LISTEN_EXIT, |l| {
        l.contains("answered 400") && l.contains("not JSON")
    });
    let status = listen.stop_with("INT");
    assert_exit(&listen, status, true);
    assert!(listen.stdout_lines().is_empty(), "{}", listen.transcript());
    let records = saved(&save);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["body"], json!("hello"));
    assert_eq!(records[0]["verified"], Value::Null);
    assert_eq!(records[0]["status"], json!(400));
    assert_eq!(records[1]["body"], json!({"hello": 1}));
}

#[tokio::test]
async fn other_paths_answer_404_and_other_methods_405() {
    // Arrange
    let listen = Listen::start(&[]);
    let body = r#"{"event":{"id":"c","state":"RINGING"}}"#;

    // Act
    let elsewhere = post_to(&listen.at("/other"), &[], body).await;
    let get = request_to("GET", listen.url(), &[], Vec::new()).await;
    let put = request_to("PUT", listen.url(), &[], body.as_bytes().to_vec()).await;

    // Assert
    elsewhere.expect(404);
    assert!(elsewhere.text.contains("POST /webhook"), "{elsewhere:?}");
    get.expect(405);
    put.expect(405);
    assert!(listen.stdout_lines().is_empty(), "{}", listen.transcript());
}

#[tokio::test]
async fn status_flag_answers_the_chosen_status_and_the_platform_records_it() {
    // Arrange
    let server = delivery_server(&[("--retries", "0")]);
    let user = server.user_token(ACCOUNT, USER);
    let ingest = server.ingest_token();
    let mut listen = Listen::start(&["--status", "503", "--format", "json"]);
    let id = create_hook(&server, &user, &hook(listen.url(), "NONE", None)).await;

    // Act
    let sent = report_calls(&server, &ingest, USER, &[("c", "RINGING")]).await;
    let webhook = wait_until_failed(&server, &user, &id).await;

    // Assert: the event was shown though it was refused.
    assert_failed_once(&webhook, "503 SERVICE_UNAVAILABLE");
    let lines = listen.wait_stdout(1, LISTEN_EXIT);
    let event = sent.into_values().flatten().next().unwrap();
    assert_eq!(parsed(&lines)[0]["event"], event);
}

// ---- exit codes ----

#[tokio::test]
async fn timeout_exits_non_zero_when_the_events_have_not_come() {
    // Act
    let (status, out, err) = listen_to_exit(&[
        "--listen",
        "127.0.0.1:0",
        "--count",
        "1",
        "--timeout",
        "300ms",
    ]);

    // Assert
    assert!(!status.success(), "{status} {err:?}");
    assert!(out.is_empty(), "{out:?}");
    assert!(
        err.iter()
            .any(|l| l.contains("timed out after 300ms with 0 of 1 events")),
        "{err:?}"
    );
}

#[tokio::test]
async fn expect_exits_zero_when_every_call_went_through_the_sequence() {
    // Arrange
    let server = delivery_server(&[]);
    let user = server.user_token(ACCOUNT, USER);
    let ingest = server.ingest_token();
    let mut listen = Listen::start(&[
        "--expect",
        "RINGING,ACTIVE,ANSWERED",
        "--count",
        "6",
        "--format",
        "json",
    ]);
    create_hook(&server, &user, &hook(listen.url(), "NONE", None)).await;

    // Act
    report_calls(
        &server,
        &ingest,
        USER,
        &[
            ("a", "RINGING"),
            ("b", "RINGING"),
            ("a", "ACTIVE"),
            ("b", "ACTIVE"),
            ("b", "ANSWERED"),
            ("a", "ANSWERED"),
        ],
    )
    .await;
    let status = listen.wait_exit(ARRIVAL);

    // Assert
    assert_exit(&listen, status, true);
    assert_eq!(listen.stdout_lines().len(), 6);
    assert!(
        listen
            .stderr_text()
            .contains("2 calls went through RINGING,ACTIVE,ANSWERED"),
        "{}",
        listen.transcript()
    );
}

#[tokio::test]
async fn expect_exits_non_zero_naming_the_call_that_went_another_way() {
    // Arrange
    let server = delivery_server(&[]);
    let user = server.user_token(ACCOUNT, USER);
    let ingest = server.ingest_token();
    let mut listen = Listen::start(&["--expect", "RINGING,ACTIVE,ANSWERED", "--timeout", "20s"]);
    create_hook(&server, &user, &hook(listen.url(), "NONE", None)).await;

    // Act
    let sent = report_calls(&server, &ingest, USER, &[("m", "RINGING"), ("m", "MISSED")]).await;
    let status = listen.wait_exit(ARRIVAL);

    // Assert: it stopped at the MISSED, not at the timeout.
    assert_exit(&listen, status, false);
    let call = sent.keys().next().unwrap().clone();
    let err = listen.stderr_text();
    assert!(
        err.contains(&format!(
            "call {call} went RINGING,MISSED; expected RINGING,ACTIVE,ANSWERED"
        )),
        "{}",
        listen.transcript()
    );
    assert!(!err.contains("timed out"), "{}", listen.transcript());
}

#[tokio::test]
async fn sigterm_ends_listening_cleanly_and_a_set_goal_then_counts_as_missed() {
    // Arrange
    let mut free = Listen::start(&[]);
    let mut counting = Listen::start(&["--count", "1"]);

    // Act
    let free_status = free.stop_with("TERM");
    let counting_status = counting.stop_with("TERM");

    // Assert
    assert_exit(&free, free_status, true);
    assert_exit(&counting, counting_status, false);
    assert!(
        counting
            .stderr_text()
            .contains("stopped by a signal with 0 of 1 events"),
        "{}",
        counting.transcript()
    );
}

#[tokio::test]
async fn an_unwritable_save_file_is_one_clear_line_and_a_non_zero_exit() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir/deliveries.jsonl");

    // Act
    let (status, out, err) = listen_to_exit(&[
        "--listen",
        "127.0.0.1:0",
        "--save",
        missing.to_str().unwrap(),
    ]);

    // Assert
    assert!(!status.success(), "{status}");
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(err.len(), 1, "one line: {err:?}");
    assert!(err[0].contains(missing.to_str().unwrap()), "{err:?}");
    assert!(err[0].contains("No such file or directory"), "{err:?}");
}

#[tokio::test]
async fn a_port_in_use_is_one_clear_line_and_a_non_zero_exit() {
    // Arrange
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();

    // Act
    let (status, out, err) = listen_to_exit(&["--listen", &address]);

    // Assert
    assert!(!status.success(), "{status}");
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(err.len(), 1, "one line: {err:?}");
    assert!(
        err[0].contains(&format!("cannot listen on {address}")) && err[0].contains("in use"),
        "{err:?}"
    );
}

#[tokio::test]
async fn settings_come_from_the_environment() {
    // Arrange
    let mut listen = Listen::start_raw(
        &[],
        &[
            ("CALLHOOK_LISTEN_ADDR", "127.0.0.1:0"),
            ("CALLHOOK_LISTEN_PATH", "/hooks"),
            ("CALLHOOK_LISTEN_FORMAT", "json"),
            ("CALLHOOK_LISTEN_COUNT", "1"),
        ],
    );
    assert!(listen.url().ends_with("/hooks"), "{}", listen.url());

    // Act
    let body = r#"{"event":{"id":"c","state":"RINGING"}}"#;
    post_to(listen.url(), &[], body).await.expect(200);
    let status = listen.wait_exit(LISTEN_EXIT);

    // Assert
    assert_exit(&listen, status, true);
    assert_eq!(listen.stdout_lines(), [body]);
}
