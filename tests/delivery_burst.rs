//! One webhook taking all the traffic, on both backends: a burst of whole calls far above a
//! steady rate, and a receiver that is down while a backlog builds up and then comes back. Either
//! way every acknowledged event arrives, each call's in order, each delivery once (but for the
//! probe's retries while the receiver was down), and nothing is left queued afterwards.
//!
//! The PostgreSQL halves need a server (`CALLHOOK_TEST_PG`); without one they say they were
//! skipped, except under `CI=true`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use support::*;

const ME: (&str, &str) = ("a1", "u1");
const STATES: [&str; 3] = ["RINGING", "ACTIVE", "ANSWERED"];
/// Calls in flight at once, each report sent after the previous one's 202.
const SOURCES: usize = 32;
/// Generous for debug builds on a shared 2-core machine.
const SETTLE: Duration = Duration::from_secs(120);

/// Places `calls` whole calls from `SOURCES` sources at once; returns each call's acknowledged
/// events, in order.
async fn burst(
    server: &Server,
    token: &str,
    calls: usize,
    tag: &str,
) -> BTreeMap<String, Vec<Value>> {
    let next = Arc::new(AtomicUsize::new(0));
    let sources: Vec<_> = (0..SOURCES)
        .map(|_| {
            let (next, base, token, tag) = (
                next.clone(),
                server.base().to_string(),
                token.to_string(),
                tag.to_string(),
            );
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut acked = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= calls {
                        return acked;
                    }
                    for state in STATES {
                        let body = report(ME.0, ME.1, &format!("{tag}-{n}"), "INBOUND", state);
                        let resp = http
                            .post(format!("{base}{INGEST}"))
                            .bearer_auth(&token)
                            .json(&body)
                            .send()
                            .await
                            .expect("ingest");
                        assert_eq!(resp.status(), 202, "{body}");
                        let envelope: Value = resp.json().await.expect("JSON");
                        acked.push(envelope["event"].clone());
                    }
                }
            })
        })
        .collect();
    let mut sent: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for source in sources {
        for event in source.await.expect("a source panicked") {
            sent.entry(id_of(&event)).or_default().push(event);
        }
    }
    sent
}

/// Waits until every one of `events` deliveries arrived, checks order and once-ness, and that
/// the webhook counted each once with nothing left queued.
async fn assert_drained(
    server: &Server,
    receiver: &Receiver,
    (user, id): (&str, &str),
    sent: &BTreeMap<String, Vec<Value>>,
) -> Vec<Request> {
    let events: usize = sent.values().map(Vec::len).sum();
    let reqs = receiver
        .wait_until("every acknowledged event", SETTLE, |reqs| {
            let distinct: BTreeSet<String> = reqs.iter().map(|r| r.delivery_id()).collect();
            (distinct.len() >= events).then(|| reqs.to_vec())
        })
        .await;
    assert_all_arrived_in_order(&reqs, sent);
    wait_for_successes(server, user, id, events as u64).await;
    wait_for_metric(server, "callhook_delivery_queue_depth", &[], 0.0).await;
    reqs
}

async fn a_burst_to_one_webhook_drains_completely(server: Server) {
    // Arrange
    let receiver = Receiver::start();
    let (user, token, id) = subscribe_to(&server, ME, &receiver.url("/hook")).await;

    // Act
    let sent = burst(&server, &token, 300, "burst").await;

    // Assert
    let reqs = assert_drained(&server, &receiver, (&user, &id), &sent).await;
    assert_eq!(reqs.len(), 900, "each delivery once:\n{}", summary(&reqs));
}

async fn a_backlog_built_while_the_receiver_is_down_drains_in_order_once_it_is_back(
    server: Server,
) {
    // Arrange: the receiver answers 503 while 200 calls happen.
    let receiver = Receiver::start();
    receiver.on("/hook", Reply::status(503, "down"));
    let (user, token, id) = subscribe_to(&server, ME, &receiver.url("/hook")).await;
    let sent = burst(&server, &token, 200, "outage").await;
    wait_for_metric_at_least(
        &server,
        "callhook_deliveries_total",
        &[("outcome", "retried")],
        2.0,
    )
    .await;

    // Act: it comes back.
    receiver.on("/hook", Reply::ok());

    // Assert: only the probe was tried while it was down; everything arrives, in order.
    let reqs = assert_drained(&server, &receiver, (&user, &id), &sent).await;
    let mut tries: BTreeMap<String, usize> = BTreeMap::new();
    for r in &reqs {
        *tries.entry(r.delivery_id()).or_default() += 1;
    }
    let repeated: Vec<&String> = tries
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(d, _)| d)
        .collect();
    assert_eq!(repeated.len(), 1, "only the probe is tried more than once");
}

/// Retries far enough apart that the probe is tried only a few times, and never given up.
const OUTAGE: [(&str, &str); 2] = [("--retries", "1000"), ("--retry-interval", "200ms")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_burst_to_one_webhook_drains_completely() {
    a_burst_to_one_webhook_drains_completely(delivery_server(&[])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_burst_to_one_webhook_drains_completely() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let args = delivery_args(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    a_burst_to_one_webhook_drains_completely(Server::start_on_db(&db.url, &args)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_backlog_built_while_the_receiver_is_down_drains_in_order() {
    let server = delivery_server(&OUTAGE);
    a_backlog_built_while_the_receiver_is_down_drains_in_order_once_it_is_back(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_backlog_built_while_the_receiver_is_down_drains_in_order() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let args = delivery_args(&OUTAGE);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_on_db(&db.url, &args);
    a_backlog_built_while_the_receiver_is_down_drains_in_order_once_it_is_back(server).await;
}
