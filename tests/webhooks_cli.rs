//! `callhook webhooks` as a user runs it: a real process against a real `serve` on port 0.
//! Every answer is compared with what the API itself says; `cleanup` and `recreate` act on
//! exactly the failed webhooks (made to fail by a receiver answering 500 with `--retries 0`) and
//! nothing else; each mistake (unknown id, bad token, no server, no token, bad base URL) is one
//! clear line and a non-zero exit. No test's output may contain its token.

mod support;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use support::*;

fn ids(list: &[Value]) -> BTreeSet<String> {
    list.iter().map(wid).collect()
}

// ---- the round trip ----

#[tokio::test]
async fn create_list_get_renew_delete_round_trip_matches_the_api() {
    // Arrange
    let server = Server::start();
    let token = server.user_token(ME.0, ME.1);

    // Act: create one signed webhook (JSON) and one plain one (readable summary).
    let signed = webhooks_cli(
        &server,
        &token,
        &[
            "create",
            "--url",
            "http://127.0.0.1:9/signed",
            "--signing-key",
            "s3cret",
            "--metadata-policy",
            "header",
            "--json",
        ],
    )
    .ok()
    .json();
    let plain_run = webhooks_cli(
        &server,
        &token,
        &["create", "--url", "http://127.0.0.1:9/plain"],
    )
    .ok();

    // Assert: created as asked, and the CLI printed what the API stores.
    let signed_id = wid(&signed);
    assert_eq!(signed["url"], json!("http://127.0.0.1:9/signed"));
    assert_eq!(signed["events"], json!(["CALL"]));
    assert_eq!(signed["signingAlgo"], json!("HMAC_SHA256"));
    assert_eq!(signed["signingKey"], json!("s3cret"));
    assert_eq!(signed["metadataPolicy"], json!("HEADER"));
    assert_eq!(get_hook(&server, &token, &signed_id).await, signed);
    let listed = server.webhooks(&token).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let plain = listed
        .iter()
        .find(|w| w["url"] == json!("http://127.0.0.1:9/plain"))
        .expect("the plain webhook is listed");
    let plain_id = wid(plain);
    assert_eq!(plain["signingAlgo"], json!("NONE"), "no key, no signing");
    assert!(plain.get("signingKey").is_none(), "{plain}");
    assert!(
        plain_run
            .stdout
            .starts_with(&format!("created webhook {plain_id}\n")),
        "{plain_run}"
    );
    assert!(
        plain_run.stdout.contains("http://127.0.0.1:9/plain"),
        "{plain_run}"
    );

    // Act + Assert: `list --json` is GET /self/webhooks, byte for byte.
    let api = server.get(&vis("/self/webhooks"), &token).await;
    api.expect(200);
    let list_json = webhooks_cli(&server, &token, &["list", "--json"]).ok();
    assert_eq!(list_json.stdout.trim_end(), api.text, "{list_json}");
    assert_eq!(list_json.json(), api.json());

    // `list`: a header with every column, then one row per webhook.
    let table = webhooks_cli(&server, &token, &["list"]).ok().stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "header and two rows:\n{table}");
    for column in [
        "ID",
        "URL",
        "STATUS",
        "FAILED",
        "ATTEMPTS",
        "SUCCESSES",
        "FAILURES",
        "LAST ERROR",
        "EXPIRES",
    ] {
        assert!(lines[0].contains(column), "no {column} column:\n{table}");
    }
    for w in &listed {
        let row = lines
            .iter()
            .find(|l| l.starts_with(&wid(w)))
            .unwrap_or_else(|| panic!("no row for {}:\n{table}", wid(w)));
        assert!(row.contains(w["url"].as_str().unwrap()), "{row}");
        assert!(row.contains(w["expireAt"].as_str().unwrap()), "{row}");
    }

    // `get`: the API's webhook as JSON, or a readable summary.
    let got = webhooks_cli(&server, &token, &["get", &signed_id, "--json"])
        .ok()
        .json();
    assert_eq!(got, get_hook(&server, &token, &signed_id).await);
    let readable = webhooks_cli(&server, &token, &["get", &signed_id]).ok();
    assert!(readable.stdout.contains(&signed_id), "{readable}");
    assert!(readable.stdout.contains("HMAC_SHA256"), "{readable}");

    // `renew`: the renewed webhook, as the API then has it.
    let renewed = webhooks_cli(&server, &token, &["renew", &signed_id, "--json"])
        .ok()
        .json();
    assert!(renewed["renewedAt"].is_string(), "{renewed}");
    assert_eq!(renewed, get_hook(&server, &token, &signed_id).await);

    // `delete`: gone from the API, the other one stays.
    let deleted = webhooks_cli(&server, &token, &["delete", &signed_id]).ok();
    assert_eq!(deleted.stdout, format!("deleted webhook {signed_id}\n"));
    server
        .get(&webhook_path(&signed_id), &token)
        .await
        .expect(404);
    assert_eq!(
        ids(&server.webhooks(&token).await),
        BTreeSet::from([plain_id])
    );
}

#[tokio::test]
async fn base_url_and_token_come_from_the_environment_and_a_trailing_slash_or_the_short_path_work()
{
    // Arrange
    let server = Server::start();
    let token = server.user_token(ME.0, ME.1);
    create_hook(&server, &token, &minimal_webhook("http://127.0.0.1:9/a")).await;
    let expected = server.webhooks(&token).await;

    for base in [
        vis_base(&server),
        format!("{}/", vis_base(&server)),
        format!("{}{VIS_SHORT}/", server.base()),
    ] {
        // Act
        let run = run_cli(
            &["webhooks", "list", "--json"],
            &[("VIS_BASE_URL", &base), ("VIS_TOKEN", &token)],
            None,
            &[&token],
        )
        .ok();

        // Assert
        assert_eq!(run.json(), json!(expected), "base {base}");
    }
}

// ---- failed webhooks: cleanup and recreate ----

/// Two webhooks of the user made to fail (one signed under HEADER, one signed under BODY), and a
/// healthy one that got the same event.
struct Failing {
    receiver: Receiver,
    server: Server,
    user: String,
    ingest: String,
    bad: Vec<Value>,
    good: Value,
}

async fn two_failed_and_one_healthy() -> Failing {
    let receiver = Receiver::start();
    receiver.on("/bad-header", Reply::status(500, "down"));
    receiver.on("/bad-body", Reply::status(500, "down"));
    let server = delivery_server(&[("--retries", "0")]);
    let user = server.user_token(ME.0, ME.1);
    let ingest = server.ingest_token();
    let bad_header = create_hook(
        &server,
        &user,
        &hook(&receiver.url("/bad-header"), "HEADER", Some("k1")),
    )
    .await;
    let bad_body = create_hook(
        &server,
        &user,
        &hook(&receiver.url("/bad-body"), "BODY", Some("k2")),
    )
    .await;
    let good = create_hook(
        &server,
        &user,
        &hook(&receiver.url("/good"), "HEADER", None),
    )
    .await;
    server
        .ingest_ok(&ingest, &report(ME.0, ME.1, "c1", "INBOUND", "RINGING"))
        .await;
    let bad = vec![
        wait_until_failed(&server, &user, &bad_header).await,
        wait_until_failed(&server, &user, &bad_body).await,
    ];
    let good = wait_for_successes(&server, &user, &good, 1).await;
    Failing {
        receiver,
        server,
        user,
        ingest,
        bad,
        good,
    }
}

#[tokio::test]
async fn cleanup_asks_and_deletes_exactly_the_failed_webhooks() {
    // Arrange
    let f = two_failed_and_one_healthy().await;
    let before = f.server.webhooks(&f.user).await;

    // Act 1: answer no, then give no answer at all.
    let no = webhooks_cli_with_stdin(&f.server, &f.user, &["cleanup"], Some("n\n"));
    let silent = webhooks_cli(&f.server, &f.user, &["cleanup"]);

    // Assert 1: it showed the failed ones, asked, cancelled, and nothing changed.
    for run in [&no, &silent] {
        assert!(
            run.stderr.contains("Delete 2 failed webhooks? [y/N]"),
            "{run}"
        );
        for w in &f.bad {
            assert!(
                run.stderr.contains(&wid(w)),
                "preview names {}: {run}",
                wid(w)
            );
        }
        assert!(!run.stderr.contains(&wid(&f.good)), "{run}");
        assert!(run.last_error_line().contains("cancelled"), "{run}");
        assert_eq!(run.stdout, "", "{run}");
    }
    assert_eq!(ids(&f.server.webhooks(&f.user).await), ids(&before));

    // Act 2: answer yes.
    let yes = webhooks_cli_with_stdin(&f.server, &f.user, &["cleanup"], Some("y\n")).ok();

    // Assert 2: each failed one reported and gone; the healthy one untouched.
    for w in &f.bad {
        assert!(yes.stdout.contains(&format!("deleted {}", wid(w))), "{yes}");
        f.server
            .get(&webhook_path(&wid(w)), &f.user)
            .await
            .expect(404);
    }
    assert!(!yes.stdout.contains(&wid(&f.good)), "{yes}");
    assert_eq!(f.server.webhooks(&f.user).await, vec![f.good.clone()]);

    // Act 3: again, for a script.
    let again = webhooks_cli(&f.server, &f.user, &["cleanup", "--yes", "--json"]).ok();

    // Assert 3: nothing left to do.
    assert_eq!(
        again.json(),
        json!({"failed": 0, "deleted": [], "errors": []})
    );
}

#[tokio::test]
async fn recreate_replaces_exactly_the_failed_webhooks_and_new_events_reach_the_copies() {
    // Arrange
    let f = two_failed_and_one_healthy().await;
    let before = f.server.webhooks(&f.user).await;

    // Act 1: answer something other than yes.
    let no = webhooks_cli_with_stdin(&f.server, &f.user, &["recreate"], Some("no\n"));

    // Assert 1: nothing created or deleted.
    assert!(no.last_error_line().contains("cancelled"), "{no}");
    assert_eq!(f.server.webhooks(&f.user).await, before);

    // Act 2: the endpoints are fixed; recreate without asking.
    f.receiver.on("/bad-header", Reply::ok());
    f.receiver.on("/bad-body", Reply::ok());
    let run = webhooks_cli(&f.server, &f.user, &["recreate", "--yes", "--json"]).ok();

    // Assert 2: one fresh copy per failed webhook, same settings, failed ones gone.
    let summary = run.json();
    assert_eq!(summary["failed"], json!(2), "{run}");
    assert_eq!(summary["errors"], json!([]), "{run}");
    let pairs = summary["recreated"].as_array().expect("recreated array");
    assert_eq!(pairs.len(), 2, "{run}");
    let after = f.server.webhooks(&f.user).await;
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(after.contains(&f.good), "the healthy webhook is untouched");
    let mut copies = std::collections::HashMap::new();
    for old in &f.bad {
        let pair = pairs
            .iter()
            .find(|p| p["oldId"] == old["id"])
            .unwrap_or_else(|| panic!("no copy of {}: {run}", wid(old)));
        let new_id = pair["newId"].as_str().expect("newId").to_string();
        assert_ne!(new_id, wid(old));
        f.server
            .get(&webhook_path(&wid(old)), &f.user)
            .await
            .expect(404);
        let new = get_hook(&f.server, &f.user, &new_id).await;
        for key in [
            "url",
            "events",
            "signingAlgo",
            "signingKey",
            "metadataPolicy",
        ] {
            assert_eq!(new[key], old[key], "{key} of the copy of {}", wid(old));
        }
        assert_eq!(new["statistics"]["failed"], json!(false), "{new}");
        assert_eq!(new["statistics"]["totalAttempts"], json!(0), "{new}");
        copies.insert(old["url"].as_str().unwrap().to_string(), new_id);
    }

    // Act 3: the call goes on.
    f.server
        .ingest_ok(&f.ingest, &report(ME.0, ME.1, "c1", "INBOUND", "ACTIVE"))
        .await;

    // Assert 3: the copies get it, under their own id, signed with the old key, in the old
    // metadata policy; the healthy webhook gets it too.
    let header = f.receiver.wait_for_on("/bad-header", 2, ARRIVAL).await;
    let delivered = &header[1];
    assert_eq!(delivered.state(), "ACTIVE");
    assert_eq!(
        delivered.webhook_id(),
        copies[&f.receiver.url("/bad-header")]
    );
    assert_eq!(
        delivered.header("x-von-signature"),
        Some(expected_signature("k1", &delivered.event()).as_str())
    );
    let body = f.receiver.wait_for_on("/bad-body", 2, ARRIVAL).await;
    let delivered = body[1].json();
    assert_eq!(delivered["event"]["state"], json!("ACTIVE"));
    assert_eq!(
        delivered["metadata"]["webhookId"],
        json!(copies[&f.receiver.url("/bad-body")])
    );
    assert_eq!(
        delivered["metadata"]["signature"],
        json!(expected_signature("k2", &delivered["event"]))
    );
    let good = f.receiver.wait_for_on("/good", 2, ARRIVAL).await;
    assert_eq!(good[1].state(), "ACTIVE");
}

#[tokio::test]
async fn with_nothing_failed_cleanup_and_recreate_ask_nothing_and_change_nothing() {
    // Arrange
    let server = Server::start();
    let token = server.user_token(ME.0, ME.1);
    create_hook(&server, &token, &minimal_webhook("http://127.0.0.1:9/ok")).await;
    let before = server.webhooks(&token).await;

    // Act
    let cleanup = webhooks_cli(&server, &token, &["cleanup"]).ok();
    let recreate = webhooks_cli(&server, &token, &["recreate", "--json"]).ok();

    // Assert
    assert_eq!(cleanup.stdout, "no failed webhooks: nothing to do\n");
    assert!(!cleanup.stderr.contains("[y/N]"), "{cleanup}");
    assert_eq!(
        recreate.json(),
        json!({"failed": 0, "recreated": [], "errors": []})
    );
    assert_eq!(server.webhooks(&token).await, before);
}

// ---- mistakes: one clear line, non-zero exit ----

#[tokio::test]
async fn an_unknown_id_prints_the_apis_404_message() {
    let server = Server::start();
    let token = server.user_token(ME.0, ME.1);
    for command in ["get", "delete", "renew"] {
        let line = webhooks_cli(&server, &token, &[command, "no-such-id"]).one_error_line();
        assert!(
            line.contains("404") && line.contains("no webhook no-such-id"),
            "{command}: {line}"
        );
    }
}

#[tokio::test]
async fn a_bad_token_prints_the_apis_401_message() {
    let server = Server::start();
    let bad = format!("chk_{}", "0".repeat(64));
    let line = webhooks_cli(&server, &bad, &["list"]).one_error_line();
    assert!(
        line.contains("401") && line.contains("invalid, expired or revoked token"),
        "{line}"
    );
    assert!(line.contains("VIS_TOKEN"), "points at the token: {line}");
}

#[tokio::test]
async fn invalid_values_print_the_field_errors() {
    let server = Server::start();
    let token = server.user_token(ME.0, ME.1);
    let line = webhooks_cli(&server, &token, &["create", "--url", "not-a-url"]).one_error_line();
    assert!(
        line.contains("422") && line.contains("url:"),
        "names the field: {line}"
    );
    assert!(server.webhooks(&token).await.is_empty());
}

#[test]
fn a_refused_connection_names_the_address() {
    let port = refused_port();
    let base = format!("http://127.0.0.1:{port}{VIS}");
    let run = run_cli(
        &["webhooks", "--base-url", &base, "--token", "t0ken", "list"],
        &[],
        None,
        &["t0ken"],
    );
    let line = run.one_error_line();
    assert!(
        line.contains("connection refused") && line.contains(&format!("127.0.0.1:{port}")),
        "{line}"
    );
}

#[test]
fn a_missing_token_is_reported_before_any_request() {
    let base = format!("http://127.0.0.1:{}{VIS}", refused_port());
    for token in [None, Some("")] {
        let mut env = vec![("VIS_BASE_URL", base.as_str())];
        if let Some(t) = token {
            env.push(("VIS_TOKEN", t));
        }
        let line = run_cli(&["webhooks", "list"], &env, None, &[]).one_error_line();
        assert!(
            line.contains("no token") && line.contains("VIS_TOKEN"),
            "{line}"
        );
    }
}

#[tokio::test]
async fn a_wrong_base_url_is_named_as_the_cause() {
    let server = Server::start();
    let token = server.user_token(ME.0, ME.1);
    for (base, expected) in [
        ("not a url".to_string(), "bad base URL"),
        ("ftp://127.0.0.1/vis".to_string(), "bad base URL"),
        // The server without the VIS path: its 404, and what the base URL should look like.
        (server.base().to_string(), "base URL"),
    ] {
        let run = run_cli(
            &["webhooks", "--base-url", &base, "--token", &token, "list"],
            &[],
            None,
            &[&token],
        );
        let line = run.one_error_line();
        assert!(line.contains(expected), "{base}: {line}");
    }
}

#[test]
fn help_names_every_subcommand_and_setting_but_never_the_tokens_value() {
    let run = run_cli(
        &["webhooks", "--help"],
        &[("VIS_TOKEN", "chk_secret_from_env")],
        None,
        &["chk_secret_from_env"],
    )
    .ok();
    for word in [
        "create",
        "list",
        "get",
        "delete",
        "renew",
        "cleanup",
        "recreate",
        "--base-url",
        "VIS_BASE_URL",
        "--token",
        "VIS_TOKEN",
        "--json",
    ] {
        assert!(run.stdout.contains(word), "help lacks {word}: {run}");
    }
}
