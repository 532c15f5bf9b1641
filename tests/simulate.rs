//! `callhook simulate` as a real process against a real `serve` (port 0, fresh database): the
//! summary it prints matches what the server stored and delivered, the same seed gives the same
//! plan, and a wrong token, URL or port is one clear line on stderr and a non-zero exit.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};
use support::*;

/// Users and accounts of the simulated runs; user-k is in acct-((k-1) mod ACCOUNTS + 1).
const USERS: u32 = 4;
const ACCOUNTS: u32 = 2;
/// Long enough for a loaded CI machine to deliver a few hundred events.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// The account of simulated user `k`, by the documented naming rule.
fn account_of(k: u32) -> String {
    format!("acct-{}", (k - 1) % ACCOUNTS + 1)
}

/// `callhook simulate ARGS`, run to completion (no `CALLHOOK_*` variables inherited).
fn simulate(args: &[&str]) -> Output {
    let mut all = vec!["simulate"];
    all.extend_from_slice(args);
    cli(&all)
}

/// Settings shared by a run and its dry run: 120 calls at 150/s, 2000 times faster than real
/// time (a 30-minute call lasts 0.9 s), so the run takes a few seconds.
fn plan_args(seed: &str) -> Vec<&str> {
    vec![
        "--calls",
        "120",
        "--rate",
        "150",
        "--users",
        "4",
        "--accounts",
        "2",
        "--seed",
        seed,
        "--speedup",
        "2000",
    ]
}

fn stdout_json(out: &Output, what: &str) -> Value {
    assert_success(out, what);
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("`{what}` is not JSON ({e}): {text}"))
}

/// Asserts a failed run that said why in exactly one stderr line containing every `words`.
fn assert_one_line_failure(out: &Output, words: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "must fail: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    for word in words {
        assert!(stderr.contains(word), "stderr names {word:?}: {stderr}");
    }
    assert!(out.stdout.is_empty(), "nothing on stdout");
    stderr
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[tokio::test]
async fn summary_matches_what_the_server_stored_and_delivered() {
    // Arrange: a webhook per simulated user (ids known from the naming rule), and the plan.
    let server = Server::start();
    let ingest = server.ingest_token();
    let receiver = Receiver::start();
    let mut tokens = BTreeMap::new();
    for k in 1..=USERS {
        let user = format!("user-{k}");
        let token = server.user_token(&account_of(k), &user);
        let url = receiver.url(&format!("/{user}"));
        create_hook(&server, &token, &hook(&url, "NONE", None)).await;
        tokens.insert(user, token);
    }
    let mut dry = plan_args("2024");
    dry.extend(["--dry-run", "--json"]);
    let plan = stdout_json(&simulate(&dry), "simulate --dry-run --json");

    // Act
    let mut args = plan_args("2024");
    args.extend(["--base-url", server.base(), "--token", &ingest, "--json"]);
    let summary = stdout_json(&simulate(&args), "simulate --json");

    // Assert: the run did what the plan said.
    assert_eq!(summary["errors"], 0, "{summary:#}");
    assert_eq!(summary["planHash"], plan["planHash"]);
    assert_eq!(
        (summary["calls"].clone(), summary["completed"].clone()),
        (json!(120), json!(120))
    );
    assert_eq!(summary["events"], plan["reports"]);
    let planned = plan["calls"].as_array().expect("planned calls");
    let mut planned_states: BTreeMap<String, u64> = BTreeMap::new();
    for call in planned {
        let state = call["finalState"].as_str().unwrap().to_string();
        *planned_states.entry(state).or_default() += 1;
    }
    for (state, n) in summary["byState"].as_object().expect("byState") {
        assert_eq!(
            count(n),
            planned_states.get(state).copied().unwrap_or(0),
            "{state}"
        );
    }

    // Assert: per user, the server holds exactly what the summary says, all calls ended.
    let users = summary["users"].as_array().expect("users");
    assert_eq!(users.len(), USERS as usize);
    let run = summary["run"].as_str().expect("run tag");
    for user in users {
        let id = user["userId"].as_str().unwrap();
        let token = &tokens[id];
        let k: u32 = id.trim_start_matches("user-").parse().unwrap();
        assert_eq!(user["accountId"], json!(account_of(k)));
        let stored = server.get_json(&vis("/self/events/count"), token).await;
        assert_eq!(stored["count"], user["calls"], "{id}: calls stored");
        for (state, n) in user["byState"].as_object().unwrap() {
            let path = vis(&format!("/self/events/count?states={state}"));
            let stored = server.get_json(&path, token).await;
            assert_eq!(&stored["count"], n, "{id}: {state} calls stored");
        }
        let active = server.get_json(&vis("/self/calls"), token).await;
        assert_eq!(active, json!([]), "{id}: no call left active");
        let answered = server
            .get_json(&vis("/self/events?states=ANSWERED&size=1000"), token)
            .await;
        for call in answered.as_array().unwrap() {
            assert!(
                count(&call["duration"]) > 0,
                "{id}: answered with a duration: {call}"
            );
        }

        // Every accepted report became one event at the user's webhook, each call's in order.
        let events = count(&user["events"]) as usize;
        let got = receiver
            .wait_for_on(&format!("/{id}"), events, DELIVERY_TIMEOUT)
            .await;
        assert_eq!(got.len(), events, "{id}: deliveries");
        let mut sequences: HashMap<String, Vec<String>> = HashMap::new();
        for delivery in &got {
            let event = delivery.event();
            let ext = event["externalId"].as_str().unwrap().to_string();
            sequences.entry(ext).or_default().push(delivery.state());
        }
        for call in planned.iter().filter(|c| c["userId"] == json!(id)) {
            let ext = format!("sim-{run}-{}", call["number"]);
            let want: Vec<&str> = call["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["state"].as_str().unwrap())
                .collect();
            assert_eq!(
                sequences.get(&ext).cloned().unwrap_or_default(),
                want,
                "{ext}"
            );
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_plan_and_another_seed_another() {
    // Arrange
    let plan = |seed: &str| {
        let mut args = plan_args(seed);
        args.extend(["--dry-run", "--json"]);
        simulate(&args)
    };

    // Act
    let (first, again, other) = (plan("77"), plan("77"), plan("78"));

    // Assert
    assert_success(&first, "simulate --dry-run --json --seed 77");
    assert_eq!(first.stdout, again.stdout, "byte for byte the same plan");
    let (a, b) = (
        stdout_json(&first, "seed 77"),
        stdout_json(&other, "seed 78"),
    );
    assert_ne!(a["planHash"], b["planHash"]);
    assert_ne!(a["calls"], b["calls"]);
}

#[tokio::test]
async fn a_bad_token_is_one_clear_line_and_sends_no_call() {
    // Arrange
    let server = Server::start();
    let user = server.user_token("acct-1", "user-1");

    // Act
    let out = simulate(&[
        "--base-url",
        server.base(),
        "--token",
        "chk_not-a-token",
        "--calls",
        "5",
        "--users",
        "1",
        "--accounts",
        "1",
        "--speedup",
        "1000",
    ]);

    // Assert
    assert_one_line_failure(&out, &["401", "token"]);
    let stored = server.get_json(&vis("/self/events/count"), &user).await;
    assert_eq!(
        stored["count"], 0,
        "the check refused the token before any call"
    );
}

#[test]
fn a_user_token_is_refused_with_one_clear_line() {
    let server = Server::start();
    let user = server.user_token("acct-1", "user-1");

    let out = simulate(&[
        "--base-url",
        server.base(),
        "--token",
        &user,
        "--calls",
        "3",
    ]);

    assert_one_line_failure(&out, &["403", "ingest token"]);
}

#[test]
fn a_refused_connection_is_one_clear_line() {
    let base = format!("http://127.0.0.1:{}", refused_port());

    let out = simulate(&["--base-url", &base, "--token", "chk_x", "--calls", "3"]);

    assert_one_line_failure(&out, &["cannot reach callhook", &base, "refused"]);
}

#[test]
fn a_wrong_base_url_names_the_flag_to_fix() {
    let server = Server::start();
    let ingest = server.ingest_token();
    let vis_base = format!("{}{VIS}", server.base());

    let out = simulate(&["--base-url", &vis_base, "--token", &ingest, "--calls", "3"]);

    assert_one_line_failure(&out, &["404", "--base-url"]);
}

#[test]
fn simulate_help_explains_every_flag_and_its_environment_twin() {
    let out = cli(&["simulate", "--help"]);
    assert_success(&out, "simulate --help");
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--base-url",
        "CALLHOOK_URL",
        "--token",
        "CALLHOOK_INGEST_TOKEN",
        "--calls",
        "--rate",
        "--users",
        "--accounts",
        "--seed",
        "--speedup",
        "--json",
        "--dry-run",
        "acct-",
    ] {
        assert!(
            text.contains(word),
            "`simulate --help` mentions {word}:\n{text}"
        );
    }
}
