//! Storage faults on a running `serve`: writes that fail (the file size limit lowered to 0 with
//! `prlimit`, so every write to the database, its WAL and the server's log file fails with
//! `EFBIG`, as on a full disk)
//! answer 503 in the VIS error shape, leave nothing half-written, and service resumes by itself
//! when the limit is raised, with no restart. And schema versions across builds: a database from
//! an older callhook is migrated on start, one from a newer callhook is refused.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::*;

const ME: (&str, &str) = ("a1", "u1");

/// Sets the soft file size limit of `pid` (bytes, or "unlimited"); the hard limit stays.
fn set_file_size_limit(pid: u32, soft: &str) {
    let out = Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--fsize={soft}:unlimited"),
        ])
        .output()
        .expect("run prlimit (util-linux)");
    assert!(
        out.status.success(),
        "prlimit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn calls(server: &Server, user: &str) -> Value {
    server.get_json(&vis("/self/calls"), user).await
}

#[tokio::test]
async fn writes_that_fail_answer_503_change_nothing_and_service_resumes_when_the_fault_clears() {
    // Arrange: one call ringing and delivered.
    let receiver = Receiver::start();
    let server = delivery_server(&[("--retries", "10")]);
    let (user, token, id) = subscribe_to(&server, ME, &receiver.url("/hook")).await;
    let ringing = report(ME.0, ME.1, "c1", "INBOUND", "RINGING");
    server.ingest_ok(&token, &ringing).await;
    wait_for_successes(&server, &user, &id, 1).await;
    let calls_before = calls(&server, &user).await;
    let count_before = server.events_count(&user).await;

    // Act: every write fails.
    set_file_size_limit(server.pid(), "0");
    let active = report(ME.0, ME.1, "c1", "INBOUND", "ACTIVE");
    let new_call = report(ME.0, ME.1, "c2", "INBOUND", "RINGING");
    let refused = [
        server.ingest(&token, &active).await,
        server.ingest(&token, &new_call).await,
        server
            .post(
                &vis("/self/webhooks"),
                &user,
                &hook(&receiver.url("/other"), "NONE", None),
            )
            .await,
    ];

    // Assert: 503 in the VIS shape; reads still work and show nothing new.
    for resp in &refused {
        resp.expect_error(503, "SERVICE_UNAVAILABLE");
    }
    assert_eq!(calls(&server, &user).await, calls_before);
    assert_eq!(server.events_count(&user).await, count_before);
    assert_eq!(server.webhooks(&user).await.len(), 1);

    // Act: the fault clears; the same reports are sent again.
    set_file_size_limit(server.pid(), "unlimited");
    let resumed = eventually("ingestion to resume", Duration::from_secs(20), || async {
        let resp = server.ingest(&token, &active).await;
        (resp.status == 202).then(|| resp.json())
    })
    .await;
    server.ingest_ok(&token, &new_call).await;

    // Assert: the events arrive once each, in order; nothing from the failed attempts.
    let reqs = receiver.wait_for_on("/hook", 3, ARRIVAL).await;
    let states: Vec<(String, String)> = reqs.iter().map(|r| r.call_state()).collect();
    assert_eq!(states[1].1, "ACTIVE", "{}", summary(&reqs));
    assert_eq!(reqs[1].event(), resumed["event"]);
    assert_eq!(states[2].1, "RINGING", "{}", summary(&reqs));
    wait_for_successes(&server, &user, &id, 3).await;
    assert_eq!(receiver.requests_on("/hook").len(), 3, "{}", summary(&reqs));
    assert!(receiver.requests_on("/other").is_empty());
}

/// Turns the database back into what the first released callhook (schema version 1) wrote.
fn downgrade_to_version_1(db: &str) {
    let conn = rusqlite::Connection::open(db).expect("open the database");
    conn.execute_batch(
        "DROP INDEX deliveries_pending_by_call; DROP INDEX deliveries_skipped; \
         CREATE INDEX deliveries_webhook ON deliveries (webhook_id, call_seq, seq); \
         DROP INDEX deliveries_queue; DROP INDEX calls_ended; DROP INDEX deliveries_event; \
         CREATE INDEX deliveries_due ON deliveries (status, next_at); \
         ALTER TABLE webhooks DROP COLUMN paused_until; \
         ALTER TABLE webhooks DROP COLUMN held_after; \
         ALTER TABLE deliveries DROP COLUMN replayed_after; PRAGMA user_version = 1;",
    )
    .expect("downgrade the schema");
}

fn schema_version(db: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open the database");
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("read user_version")
}

#[tokio::test]
async fn a_database_from_an_older_version_is_migrated_on_start_and_keeps_its_data() {
    // Arrange: a database with a call and a webhook, as version 1 left it.
    let receiver = Receiver::start();
    let mut server = delivery_server(&[]);
    let (user, token, id) = subscribe_to(&server, ME, &receiver.url("/hook")).await;
    server
        .ingest_ok(&token, &report(ME.0, ME.1, "c1", "INBOUND", "RINGING"))
        .await;
    wait_for_successes(&server, &user, &id, 1).await;
    let current = schema_version(&server.db());

    // Act
    server.restart_after(downgrade_to_version_1);

    // Assert: migrated, the data is there, and the call goes on to be delivered.
    assert_eq!(schema_version(&server.db()), current);
    assert_eq!(current, 6, "this test knows the migrations up to version 6");
    server
        .ingest_ok(&token, &report(ME.0, ME.1, "c1", "INBOUND", "ACTIVE"))
        .await;
    let reqs = receiver.wait_for_on("/hook", 2, ARRIVAL).await;
    assert_eq!(reqs[1].state(), "ACTIVE");
    assert_eq!(get_hook(&server, &user, &id).await["id"], json!(id));
}

#[test]
fn a_database_from_a_newer_version_is_refused_with_a_clear_message() {
    let (_dir, db) = fresh_db();
    token_create(&db, &["--role", "ingest"]);
    let conn = rusqlite::Connection::open(&db).expect("open the database");
    conn.pragma_update(None, "user_version", 99)
        .expect("set user_version");
    drop(conn);

    let out = cli(&["serve", "--listen", "127.0.0.1:0", "--db", &db]);

    assert!(!out.status.success(), "serve must refuse a newer database");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("schema version 99, newer than this callhook understands"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no listening line: {:?}", out.stdout);
    assert_eq!(schema_version(&db), 99, "the database is left as it was");
}
