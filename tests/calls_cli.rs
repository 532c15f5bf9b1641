//! `callhook calls` as a real process against a real serve: place, hold, unhold, end and ring,
//! answer, end produce the documented event sequences at a webhook receiver; errors are one clear
//! line.

mod support;

use serde_json::Value;
use support::*;

/// `callhook calls --base-url <server> --token TOKEN --json ARGS`, expected to succeed.
fn calls_json(server: &Server, token: &str, args: &[&str]) -> Value {
    let base = vis_base(server);
    let url = server.base().to_string();
    let mut all = vec!["calls", "--base-url", &base, "--token", token, "--json"];
    all.extend_from_slice(args);
    if args.first() == Some(&"ring") {
        all.extend_from_slice(&["--url", &url]);
    }
    run_cli(&all, &[], None, &[token]).ok().json()
}

fn states_of(reqs: &[Request], call_id: &str) -> Vec<String> {
    reqs.iter()
        .filter(|r| r.event()["id"] == call_id)
        .map(|r| r.state())
        .collect()
}

#[tokio::test]
async fn place_hold_unhold_end_reach_the_receiver_in_order() {
    // Arrange
    let server = delivery_server(&[("--sim-answer-after", "100ms")]);
    let user = server.user_token("a1", "u1");
    let receiver = Receiver::start();
    create_hook(&server, &user, &hook(&receiver.url("/hook"), "NONE", None)).await;

    // Act
    let placed = calls_json(&server, &user, &["place", "+15551230000"]);
    let id = placed[0]["id"]
        .as_str()
        .expect("place prints the call array")
        .to_string();
    receiver
        .wait_until("the far end answering", ARRIVAL, |reqs| {
            states_of(reqs, &id)
                .contains(&"ACTIVE".to_string())
                .then_some(())
        })
        .await;
    let held = calls_json(&server, &user, &["hold", &id]);
    let resumed = calls_json(&server, &user, &["unhold", &id]);
    let ended = calls_json(&server, &user, &["end", &id]);
    let reqs = receiver
        .wait_until("six events", ARRIVAL, |reqs| {
            (states_of(reqs, &id).len() >= 6).then(|| reqs.to_vec())
        })
        .await;

    // Assert
    assert_eq!(
        (held["state"].as_str(), resumed["state"].as_str()),
        (Some("HELD"), Some("ACTIVE"))
    );
    assert_eq!(ended[0]["state"], "ANSWERED");
    assert_eq!(
        states_of(&reqs, &id),
        [
            "INITIALIZING",
            "RINGING",
            "ACTIVE",
            "HELD",
            "ACTIVE",
            "ANSWERED"
        ]
    );
    let list = calls_json(&server, &user, &["list"]);
    assert_eq!(list, serde_json::json!([]), "no active call is left");
}

#[tokio::test]
async fn a_rung_user_answers_and_hangs_up_from_the_command_line() {
    // Arrange
    let server = delivery_server(&[]);
    let user = server.user_token("a1", "u1");
    let ingest = server.ingest_token();
    let receiver = Receiver::start();
    create_hook(&server, &user, &hook(&receiver.url("/hook"), "NONE", None)).await;

    // Act
    let rung = calls_json(
        &server,
        &ingest,
        &[
            "ring",
            "--account",
            "a1",
            "--user",
            "u1",
            "--from",
            "+15559870000",
            "--caller-id",
            "Bob",
        ],
    );
    let id = rung["event"]["id"]
        .as_str()
        .expect("ring prints the event")
        .to_string();
    let listed = calls_json(&server, &user, &["list"]);
    let answered = calls_json(&server, &user, &["answer", &id]);
    calls_json(&server, &user, &["end", &id]);
    let reqs = receiver
        .wait_until("three events", ARRIVAL, |reqs| {
            (states_of(reqs, &id).len() >= 3).then(|| reqs.to_vec())
        })
        .await;

    // Assert
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["callerId"], "Bob");
    assert_eq!(answered["state"], "ACTIVE");
    assert_eq!(states_of(&reqs, &id), ["RINGING", "ACTIVE", "ANSWERED"]);
}

#[tokio::test]
async fn refused_actions_and_missing_tokens_are_one_clear_line() {
    // Arrange
    let server = delivery_server(&[]);
    let user = server.user_token("a1", "u1");
    let base = vis_base(&server);

    // Act
    let unknown = run_cli(
        &[
            "calls",
            "--base-url",
            &base,
            "--token",
            &user,
            "answer",
            "nope",
        ],
        &[],
        None,
        &[&user],
    );
    let no_token = run_cli(&["calls", "--base-url", &base, "list"], &[], None, &[]);

    // Assert
    assert!(unknown.one_error_line().contains("404"), "{unknown}");
    assert!(no_token.one_error_line().contains("token"), "{no_token}");
}

#[test]
fn readable_output_names_the_state_and_the_remote_party() {
    // Arrange
    let server = Server::start_with(&["--sim-answer-after", "10s"]);
    let user = server.user_token("a1", "u1");
    let base = vis_base(&server);

    // Act
    let placed = run_cli(
        &[
            "calls",
            "--base-url",
            &base,
            "--token",
            &user,
            "place",
            "+15551112222",
        ],
        &[],
        None,
        &[&user],
    )
    .ok();

    // Assert
    assert!(
        placed.stdout.contains("RINGING") && placed.stdout.contains("+15551112222"),
        "{placed}"
    );
}
