//! The command line: `--help` of every command explains every flag, settings have environment
//! twins, and `token create|list|revoke` manage tokens (printed once, stored hashed).

mod support;

use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, TimeDelta};
use serde_json::{Value, json};
use support::*;

fn help(args: &[&str]) -> String {
    let out = cli(args);
    assert_success(&out, &args.join(" "));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `callhook token list --db DB --json`, run to completion.
fn token_list_json(db: &str) -> std::process::Output {
    cli(&["token", "list", "--db", db, "--json"])
}

fn assert_mentions(text: &str, words: &[&str], what: &str) {
    let missing: Vec<&&str> = words.iter().filter(|w| !text.contains(**w)).collect();
    assert!(
        missing.is_empty(),
        "`{what}` does not mention {missing:?}:\n{text}"
    );
}

#[test]
fn top_level_help_lists_the_subcommands() {
    let text = help(&["--help"]);
    assert_mentions(&text, &["serve", "token"], "callhook --help");
}

#[test]
fn serve_help_explains_every_flag() {
    let text = help(&["serve", "--help"]);
    assert_mentions(
        &text,
        &["--listen", "--db", "--webhook-ttl", "--purge-grace"],
        "callhook serve --help",
    );
}

#[test]
fn serve_help_names_the_environment_twin_of_every_setting() {
    let text = help(&["serve", "--help"]);
    assert_mentions(
        &text,
        &[
            "CALLHOOK_LISTEN",
            "CALLHOOK_DB",
            "CALLHOOK_WEBHOOK_TTL",
            "CALLHOOK_PURGE_GRACE",
        ],
        "callhook serve --help",
    );
}

#[test]
fn token_help_lists_create_list_and_revoke() {
    let text = help(&["token", "--help"]);
    assert_mentions(
        &text,
        &["create", "list", "revoke"],
        "callhook token --help",
    );
}

#[test]
fn token_create_help_explains_every_flag() {
    let text = help(&["token", "create", "--help"]);
    assert_mentions(
        &text,
        &[
            "--db",
            "--account",
            "--user",
            "--role",
            "--name",
            "--first-name",
            "--last-name",
            "--email",
            "--account-name",
            "--expires-in",
            "user",
            "ingest",
        ],
        "callhook token create --help",
    );
}

#[test]
fn token_list_help_explains_every_flag() {
    let text = help(&["token", "list", "--help"]);
    assert_mentions(&text, &["--db", "--json"], "callhook token list --help");
}

#[test]
fn token_revoke_help_explains_every_flag() {
    let text = help(&["token", "revoke", "--help"]);
    assert_mentions(&text, &["--db"], "callhook token revoke --help");
}

#[test]
fn an_unknown_subcommand_fails_with_a_message() {
    // Act
    let out = cli(&["frobnicate"]);

    // Assert
    assert!(!out.status.success());
    assert!(!out.stderr.is_empty(), "a message on stderr");
}

#[test]
fn token_create_prints_a_fresh_token_alone_on_stdout() {
    // Arrange
    let (_dir, db) = fresh_db();

    // Act
    let first = token_create(&db, &["--account", "a1", "--user", "u1"]);
    let second = token_create(&db, &["--account", "a1", "--user", "u1"]);
    let ingest = token_create(&db, &["--role", "ingest"]);

    // Assert (token_create checks one line starting with chk_)
    assert_ne!(first, second, "every token is new");
    assert_ne!(first, ingest);
    assert!(first.len() >= 24, "a token carries enough secret: {first}");
}

#[test]
fn token_list_json_describes_every_token_without_its_secret() {
    // Arrange
    let (_dir, db) = fresh_db();
    let user = token_create(
        &db,
        &["--account", "a1", "--user", "u1", "--name", "laptop"],
    );
    let ingest = token_create(
        &db,
        &["--role", "ingest", "--name", "pbx", "--expires-in", "10d"],
    );

    // Act
    let out = token_list_json(&db);

    // Assert
    assert_success(&out, "token list --json");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains(&user) && !text.contains(&ingest),
        "secrets must never be listed: {text}"
    );
    let list: Value = serde_json::from_str(&text).expect("JSON");
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), 2, "{text}");
    let laptop = list
        .iter()
        .find(|t| t["name"] == "laptop")
        .expect("laptop listed");
    let pbx = list
        .iter()
        .find(|t| t["name"] == "pbx")
        .expect("pbx listed");
    assert!(
        laptop["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("tok_")),
        "{laptop}"
    );
    assert!(
        pbx["id"].as_str().is_some_and(|id| id.starts_with("tok_")),
        "{pbx}"
    );
    assert_eq!(laptop["role"], "user");
    assert_eq!(laptop["accountId"], "a1");
    assert_eq!(laptop["userId"], "u1");
    assert!(laptop["createdAt"].is_string(), "{laptop}");
    assert!(
        laptop.get("expiresAt").is_none() && laptop.get("revokedAt").is_none(),
        "absent values omitted: {laptop}"
    );
    assert_eq!(pbx["role"], "ingest");
    assert!(
        pbx.get("accountId").is_none() && pbx.get("userId").is_none(),
        "{pbx}"
    );
    assert!(pbx["expiresAt"].is_string(), "{pbx}");
    for t in list {
        assert_no_nulls(t, "token list entry");
    }
}

#[test]
fn token_expiry_follows_expires_in() {
    // Arrange
    let (_dir, db) = fresh_db();
    token_create(&db, &["--role", "ingest", "--expires-in", "10d"]);

    // Act
    let out = token_list_json(&db);

    // Assert
    assert_success(&out, "token list --json");
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &list[0];
    let created =
        DateTime::parse_from_rfc3339(t["createdAt"].as_str().unwrap()).expect("RFC 3339 createdAt");
    let expires =
        DateTime::parse_from_rfc3339(t["expiresAt"].as_str().unwrap()).expect("RFC 3339 expiresAt");
    let delta = expires - created;
    assert!(
        (delta - TimeDelta::days(10)).num_seconds().abs() <= 1,
        "expiresAt - createdAt = {delta}"
    );
}

#[test]
fn token_list_table_shows_each_token_without_its_secret() {
    // Arrange
    let (_dir, db) = fresh_db();
    let secret = token_create(
        &db,
        &["--account", "a1", "--user", "u1", "--name", "laptop"],
    );
    let ids: Vec<String> = {
        let out = token_list_json(&db);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    };

    // Act
    let out = cli(&["token", "list", "--db", &db]);

    // Assert
    assert_success(&out, "token list");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(ids.iter().all(|id| table.contains(id)), "{table}");
    assert!(table.contains("laptop"), "{table}");
    assert!(!table.contains(&secret), "{table}");
}

#[test]
fn token_revoke_marks_the_token_revoked() {
    // Arrange
    let server = Server::start();
    server.token_create(&["--account", "a1", "--user", "u1", "--name", "old"]);
    server.token_create(&["--account", "a1", "--user", "u1", "--name", "new"]);
    let old_id = server
        .token_list()
        .into_iter()
        .find(|t| t["name"] == "old")
        .unwrap()["id"]
        .clone();

    // Act
    let out = server.cli(&[
        "token",
        "revoke",
        "--db",
        &server.db(),
        old_id.as_str().unwrap(),
    ]);

    // Assert
    assert_success(&out, "token revoke");
    let list = server.token_list();
    let old = list.iter().find(|t| t["id"] == old_id).unwrap();
    let new = list.iter().find(|t| t["name"] == "new").unwrap();
    assert!(old["revokedAt"].is_string(), "{old}");
    assert!(new.get("revokedAt").is_none(), "{new}");
}

#[test]
fn revoking_an_unknown_token_fails_with_a_message_and_changes_nothing() {
    // Arrange
    let (_dir, db) = fresh_db();
    token_create(&db, &["--account", "a1", "--user", "u1"]);
    let before = token_list_json(&db).stdout;

    // Act
    let out = cli(&["token", "revoke", "--db", &db, "tok_doesnotexist"]);

    // Assert
    assert!(!out.status.success(), "revoking an unknown id must fail");
    assert!(
        !String::from_utf8_lossy(&out.stderr).trim().is_empty(),
        "a message on stderr"
    );
    assert_eq!(token_list_json(&db).stdout, before);
}

#[test]
fn token_create_refuses_bad_arguments_and_creates_nothing() {
    // Arrange
    let (_dir, db) = fresh_db();
    let cases: [&[&str]; 5] = [
        &["--account", "a1", "--user", "u1", "--role", "admin"],
        &["--account", "a1"],
        &["--user", "u1"],
        &["--role", "user"],
        &["--account", "a1", "--user", "u1", "--expires-in", "soon"],
    ];

    for args in cases {
        // Act
        let mut all = vec!["token", "create", "--db", &db];
        all.extend_from_slice(args);
        let out = cli(&all);

        // Assert
        assert!(!out.status.success(), "`{}` must fail", all.join(" "));
        assert!(
            out.stdout.is_empty(),
            "no token printed for `{}`",
            all.join(" ")
        );
        assert!(
            !out.stderr.is_empty(),
            "a message on stderr for `{}`",
            all.join(" ")
        );
    }
    // The database may or may not exist now; if it does, it holds no token.
    let out = token_list_json(&db);
    if out.status.success() {
        assert_eq!(
            serde_json::from_slice::<Value>(&out.stdout).unwrap(),
            json!([])
        );
    }
}

#[tokio::test]
async fn a_token_created_before_the_first_serve_is_accepted() {
    // Arrange
    let (dir, db) = fresh_db();
    let token = token_create(&db, &["--account", "a1", "--user", "u1"]);

    // Act
    let server = Server::start_on(dir, &[]);

    // Assert
    server.get(&vis("/self"), &token).await.expect(200);
}

#[tokio::test]
async fn serve_takes_its_address_and_database_from_the_environment() {
    // Arrange + Act
    let server = Server::start_from_env();
    let token = server.user_token("a1", "u1");

    // Assert
    server.get(&vis("/self"), &token).await.expect(200);
    assert!(
        std::path::Path::new(&server.db()).exists(),
        "the database named by CALLHOOK_DB was created"
    );
}

#[tokio::test]
async fn serve_takes_lifecycle_periods_from_the_environment() {
    // Arrange: flags win over the environment, so only the environment sets the periods here.
    let (_dir, db) = fresh_db();
    let mut child = clean_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--db", &db])
        .env("CALLHOOK_WEBHOOK_TTL", "1d")
        .env("CALLHOOK_PURGE_GRACE", "2d")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    let line = rx.recv_timeout(START_TIMEOUT);
    let guard = KillOnDrop(child);
    let base = line
        .expect("listening line")
        .replace("callhook listening on ", "");
    let token = token_create(&db, &["--account", "a1", "--user", "u1"]);

    // Act
    // reqwest is built without a default TLS crypto provider (callhook installs ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{base}{VIS}/self/webhooks"))
        .bearer_auth(&token)
        .json(&json!({"url": "https://example.com/h"}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(resp.status().as_u16(), 201);
    let w: Value = resp.json().await.unwrap();
    let created = parse_webhook_time(w["createdAt"].as_str().unwrap());
    let expire = parse_webhook_time(w["expireAt"].as_str().unwrap());
    let purge = parse_webhook_time(w["purgeAt"].as_str().unwrap());
    assert_eq!(expire - created, TimeDelta::days(1));
    assert_eq!(purge - expire, TimeDelta::days(2));
    drop(guard);
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_refuses_an_invalid_duration_and_exits() {
    // Arrange
    let (_dir, db) = fresh_db();

    for args in [["--webhook-ttl", "soon"], ["--purge-grace", "-5d"]] {
        let mut child = KillOnDrop(
            clean_command()
                .args(["serve", "--listen", "127.0.0.1:0", "--db", &db])
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );

        // Act
        let status = wait_until(Duration::from_secs(10), || child.0.try_wait().unwrap());

        // Assert
        let status = status.unwrap_or_else(|| {
            panic!("serve {args:?} kept running instead of refusing the duration")
        });
        assert!(!status.success(), "serve {args:?} must fail");
    }
}
