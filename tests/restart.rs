//! Process lifecycle: SIGTERM and SIGINT stop `serve` cleanly, and a restart on the same database
//! keeps tokens, webhooks (with their statistics), calls and events, and the state machine carries
//! on where it stopped.

mod support;

use serde_json::{Value, json};
use support::*;

/// Everything a VIS client and the CLI can see of one user.
async fn everything(server: &Server, user: &str) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    for path in [
        "/self",
        "/self/account",
        "/self/webhooks",
        "/self/calls",
        "/self/calls/count?states=RINGING,ACTIVE,HELD",
        "/self/events",
        "/self/events/count",
    ] {
        seen.push((path.to_string(), server.get_json(&vis(path), user).await));
    }
    let events = server.get_json(&vis("/self/events"), user).await;
    for e in events.as_array().unwrap() {
        let id = e["id"].as_str().unwrap();
        for path in [format!("/self/calls/{id}"), format!("/self/events/{id}")] {
            seen.push((path.clone(), server.get_json(&vis(&path), user).await));
        }
    }
    let hooks = server.get_json(&vis("/self/webhooks"), user).await;
    for w in hooks.as_array().unwrap() {
        let path = format!("/self/webhooks/{}", w["id"].as_str().unwrap());
        seen.push((path.clone(), server.get_json(&vis(&path), user).await));
    }
    seen.push(("token list".to_string(), json!(server.token_list())));
    seen
}

/// `serve` exited with code 0 (the server log is shown if not).
fn assert_exit_code_0(status: std::process::ExitStatus, server: &Server) {
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status}\n{}",
        server.log()
    );
}

#[tokio::test]
async fn restart_on_the_same_database_keeps_tokens_webhooks_calls_and_events() {
    // Arrange
    let mut server = Server::start();
    let user = server.token_create(&[
        "--account",
        "a1",
        "--user",
        "u1",
        "--first-name",
        "Ada",
        "--account-name",
        "Acme",
    ]);
    let ingest = server.ingest_token();
    let kept = server
        .create_webhook(
            &user,
            &json!({"url": "https://example.com/a", "signingKey": "k", "metadataPolicy": "BODY"}),
        )
        .await;
    server
        .create_webhook(&user, &json!({"url": "https://example.com/b"}))
        .await;
    server
        .put(
            &vis(&format!(
                "/self/webhooks/{}/renew",
                kept["id"].as_str().unwrap()
            )),
            &user,
        )
        .await
        .expect(200);
    for (ext, direction, states) in [
        ("c1", "INBOUND", vec!["RINGING", "ACTIVE", "ANSWERED"]),
        ("c2", "OUTBOUND", vec!["RINGING", "ACTIVE", "HELD"]),
        ("c3", "INBOUND", vec!["RINGING", "MISSED"]),
        ("c4", "OUTBOUND", vec!["INITIALIZING"]),
    ] {
        for (i, state) in states.iter().enumerate() {
            let body = report_at("a1", "u1", ext, direction, state, T0 + i as i64 * 1_000);
            server.ingest_ok(&ingest, &body).await;
        }
    }
    let before = everything(&server, &user).await;

    // Act
    server.restart();

    // Assert
    let after = everything(&server, &user).await;
    assert_eq!(after.len(), before.len());
    for ((path, old), (_, new)) in before.iter().zip(&after) {
        assert_eq!(new, old, "{path} changed across the restart");
    }
    server
        .ingest_ok(&ingest, &report("a1", "u1", "c5", "INBOUND", "RINGING"))
        .await;
}

#[tokio::test]
async fn a_call_continues_its_state_machine_after_a_restart() {
    // Arrange
    let mut server = Server::start();
    let ingest = server.ingest_token();
    let c1 = |state: &str, ms: i64| report_at("a1", "u1", "c1", "OUTBOUND", state, T0 + ms);
    server.ingest_ok(&ingest, &c1("RINGING", 0)).await;
    let active = server.ingest_ok(&ingest, &c1("ACTIVE", 5_000)).await;

    // Act
    server.restart();
    let repeat = server.ingest(&ingest, &c1("ACTIVE", 5_000)).await;
    let illegal = server.ingest(&ingest, &c1("RINGING", 6_000)).await;
    let ended = server.ingest_ok(&ingest, &c1("ANSWERED", 65_000)).await;

    // Assert
    repeat.expect(200);
    assert_eq!(repeat.json(), json!({"event": active}));
    illegal.expect_error(409, "ILLEGAL_TRANSITION");
    assert_eq!(ended["id"], active["id"], "same call after the restart");
    assert_eq!(ended["answerTime"], event_time(T0 + 5_000));
    assert_eq!(ended["duration"], 60_000);
}

#[tokio::test]
async fn a_revoked_token_stays_revoked_after_a_restart() {
    // Arrange
    let mut server = Server::start();
    let revoked = server.token_create(&["--account", "a1", "--user", "u1", "--name", "gone"]);
    let live = server.user_token("a1", "u1");
    let id = server
        .token_list()
        .into_iter()
        .find(|t| t["name"] == "gone")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    server.token_revoke(&id);

    // Act
    server.restart();

    // Assert
    server
        .get(&vis("/self"), &revoked)
        .await
        .expect_error(401, "UNAUTHORIZED");
    server.get(&vis("/self"), &live).await.expect(200);
}

#[tokio::test]
async fn sigterm_stops_serve_cleanly_with_exit_code_0_and_nothing_else_on_stdout() {
    // Arrange
    let mut server = Server::start();
    let token = server.user_token("a1", "u1");
    server.get(&vis("/self"), &token).await.expect(200);

    // Act
    let (status, extra_stdout) = server.stop_with_signal("TERM");

    // Assert
    assert_exit_code_0(status, &server);
    assert!(
        extra_stdout.is_empty(),
        "stdout holds only the listening line, also got {extra_stdout:?}"
    );
}

#[tokio::test]
async fn sigint_right_after_the_listening_line_stops_serve_cleanly_with_exit_code_0() {
    // Arrange: the listening line means ready, signal handling included.
    let mut server = Server::start();

    // Act
    let (status, _) = server.stop_with_signal("INT");

    // Assert
    assert_exit_code_0(status, &server);
}

#[tokio::test]
async fn sigterm_right_after_the_listening_line_stops_serve_cleanly_with_exit_code_0() {
    // Arrange: the listening line means ready, signal handling included.
    let mut server = Server::start();

    // Act
    let (status, _) = server.stop_with_signal("TERM");

    // Assert
    assert_exit_code_0(status, &server);
}

#[tokio::test]
async fn serve_can_restart_repeatedly_on_the_same_database() {
    // Arrange
    let mut server = Server::start();
    let token = server.user_token("a1", "u1");
    let w = server
        .create_webhook(&token, &json!({"url": "https://example.com/h"}))
        .await;

    for _ in 0..3 {
        // Act
        server.restart();

        // Assert
        assert_eq!(server.webhooks(&token).await, vec![w.clone()]);
    }
}

#[tokio::test]
async fn everything_acknowledged_before_a_crash_survives_it() {
    // Arrange
    let mut server = Server::start();
    let user = server.user_token("a1", "u1");
    let ingest = server.ingest_token();
    let webhook = server
        .create_webhook(&user, &json!({"url": "https://example.com/h"}))
        .await;
    let mut last = Vec::new();
    for i in 0..30 {
        let ext = format!("c{i}");
        server
            .ingest_ok(&ingest, &report("a1", "u1", &ext, "INBOUND", "RINGING"))
            .await;
        last.push(
            server
                .ingest_ok(&ingest, &report("a1", "u1", &ext, "INBOUND", "ACTIVE"))
                .await,
        );
    }

    // Act: SIGKILL right after the last acknowledgement, then start again.
    server.crash_and_restart();

    // Assert
    assert_eq!(server.webhooks(&user).await, vec![webhook]);
    let events = server.get_json(&vis("/self/events?size=100"), &user).await;
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 30, "every acknowledged call survived");
    for event in &last {
        assert!(
            events.contains(event),
            "acknowledged state lost in the crash: {event}"
        );
    }
}
