//! Durability: the server is killed (a real process, SIGKILL) with deliveries pending, and after
//! a restart on the same database every accepted event arrives, at least once, each call's in
//! order; a repeat carries the same deliveryId and a higher attempt.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

const ME: (&str, &str) = ("a1", "u1");

/// How long deliveries pending at a kill may take after the restart (they wait for their next
/// retry, or for the lease of the killed process to run out).
const AFTER_RESTART: Duration = Duration::from_secs(45);

async fn ingest(server: &Server, token: &str, ext: &str, state: &str) -> Value {
    server
        .ingest_ok(token, &report(ME.0, ME.1, ext, "INBOUND", state))
        .await
}

#[tokio::test]
async fn events_pending_while_the_receiver_refuses_all_arrive_after_a_sigkill_and_restart() {
    // Arrange: the receiver's port refuses connections; retries are far apart.
    let receiver = Receiver::start();
    receiver.close();
    let mut server = delivery_server(&[("--retries", "5"), ("--retry-interval", "3s")]);
    let (user, token, id) = subscribe_to(&server, ME, &receiver.url("/hook")).await;
    let mut sent: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (ext, state) in [
        ("c1", "RINGING"),
        ("c2", "RINGING"),
        ("c1", "ACTIVE"),
        ("c2", "MISSED"),
        ("c1", "ANSWERED"),
    ] {
        let e = ingest(&server, &token, ext, state).await;
        sent.entry(id_of(&e)).or_default().push(e);
    }
    // The first call's first event has been refused twice; the webhook is paused after each
    // failure, so the second call's events wait without being tried (a circuit breaker).
    wait_for_metric_at_least(
        &server,
        "callhook_deliveries_total",
        &[("outcome", "retried")],
        2.0,
    )
    .await;

    // Act
    server.crash_and_restart();
    receiver.open();

    // Assert
    let reqs = receiver
        .wait_until("all five events after the restart", AFTER_RESTART, |reqs| {
            let distinct: std::collections::BTreeSet<String> =
                reqs.iter().map(Request::delivery_id).collect();
            (distinct.len() >= 5).then(|| reqs.to_vec())
        })
        .await;
    assert_all_arrived_in_order(&reqs, &sent);
    let attempts: Vec<(String, u32)> = reqs
        .iter()
        .filter(|r| r.state() == "RINGING")
        .map(|r| (r.call_state().0, r.attempt()))
        .collect();
    // Call ids are time-ordered, so the first key is c1's call.
    let first_call = sent.keys().next().cloned().unwrap_or_default();
    for (call, attempt) in &attempts {
        if *call == first_call {
            assert!(
                *attempt >= 3,
                "the refused attempts count:\n{}",
                summary(&reqs)
            );
        } else {
            assert_eq!(*attempt, 1, "never tried while paused:\n{}", summary(&reqs));
        }
    }
    let webhook = wait_for_successes(&server, &user, &id, 5).await;
    assert_eq!(webhook["statistics"]["failed"], json!(false));
}

#[tokio::test]
async fn a_delivery_attempted_before_a_sigkill_is_repeated_with_the_same_delivery_id_and_a_higher_attempt()
 {
    // Arrange: the first attempt gets a 500 (recorded); the retry is due 3 s later.
    let receiver = Receiver::start();
    receiver.on("/hook", Reply::status(500, "down"));
    let mut server = delivery_server(&[("--retries", "5"), ("--retry-interval", "3s")]);
    let (user, token, id) = subscribe_to(&server, ME, &receiver.url("/hook")).await;
    let ringing = ingest(&server, &token, "c1", "RINGING").await;
    let first = receiver.wait_for_on("/hook", 1, ARRIVAL).await.remove(0);
    wait_for_metric_at_least(
        &server,
        "callhook_deliveries_total",
        &[("outcome", "retried")],
        1.0,
    )
    .await;

    // Act
    server.crash_and_restart();
    receiver.on("/hook", Reply::ok());

    // Assert
    let again = receiver
        .wait_for_on("/hook", 2, AFTER_RESTART)
        .await
        .remove(1);
    assert_eq!(again.event(), ringing);
    assert_eq!(again.delivery_id(), first.delivery_id());
    assert!(
        again.attempt() > first.attempt(),
        "{}",
        summary(&receiver.requests())
    );
    let webhook = wait_for_successes(&server, &user, &id, 1).await;
    let s = &webhook["statistics"];
    assert_eq!(
        (&s["totalAttempts"], &s["failed"]),
        (&json!(1), &json!(false)),
        "{webhook}"
    );
}

#[tokio::test]
async fn a_delivery_in_flight_at_a_sigkill_and_the_ones_queued_behind_it_arrive_after_restart() {
    // Arrange: the receiver holds the call's first event without answering; the second waits
    // behind it.
    let receiver = Receiver::start();
    receiver.on("/hook", Reply::Hang);
    let mut server = delivery_server(&[("--response-timeout", "20s")]);
    let (user, token, id) = subscribe_to(&server, ME, &receiver.url("/hook")).await;
    let mut sent: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for state in ["RINGING", "ACTIVE"] {
        let e = ingest(&server, &token, "c1", state).await;
        sent.entry(id_of(&e)).or_default().push(e);
    }
    receiver
        .wait_until("RINGING in flight", ARRIVAL, |_| {
            (receiver.open_now("/hook") == 1).then_some(())
        })
        .await;

    // Act
    server.crash_and_restart();
    receiver.on("/hook", Reply::ok());

    // Assert
    let reqs = receiver
        .wait_until("RINGING again and ACTIVE", AFTER_RESTART, |reqs| {
            reqs.iter()
                .any(|r| r.state() == "ACTIVE")
                .then(|| reqs.to_vec())
        })
        .await;
    assert!(
        reqs.len() >= 3,
        "RINGING twice, then ACTIVE:\n{}",
        summary(&reqs)
    );
    assert_all_arrived_in_order(&reqs, &sent);
    wait_for_successes(&server, &user, &id, 2).await;
}

#[tokio::test]
async fn sigterm_gives_up_a_hanging_delivery_after_the_shutdown_timeout_and_it_resumes_after_restart()
 {
    // Arrange: an attempt hangs far longer than the shutdown timeout.
    let receiver = Receiver::start();
    receiver.on("/hook", Reply::Hang);
    let mut server =
        delivery_server(&[("--response-timeout", "60s"), ("--shutdown-timeout", "1s")]);
    let (user, token, id) = subscribe_to(&server, ME, &receiver.url("/hook")).await;
    let ringing = ingest(&server, &token, "c1", "RINGING").await;
    receiver
        .wait_until("RINGING in flight", ARRIVAL, |_| {
            (receiver.open_now("/hook") == 1).then_some(())
        })
        .await;

    // Act: SIGTERM (a clean exit is asserted), then start again.
    let stopping = Instant::now();
    server.restart();
    let took = stopping.elapsed();
    receiver.on("/hook", Reply::ok());

    // Assert
    assert!(
        took < Duration::from_secs(10),
        "stopping and starting took {took:?}"
    );
    let reqs = receiver.wait_for_on("/hook", 2, AFTER_RESTART).await;
    assert_eq!(reqs[1].event(), ringing);
    assert_eq!(reqs[1].delivery_id(), reqs[0].delivery_id());
    assert!(reqs[1].attempt() > reqs[0].attempt(), "{}", summary(&reqs));
    wait_for_successes(&server, &user, &id, 1).await;
    // The first run gave its lease up at the deadline, so the second found none left behind.
    let log = server.log();
    let (first, second) = log.split_once("[serve run 2]").expect("two runs");
    assert!(
        first.contains("released deliveries still in flight") && first.contains("released=1"),
        "{log}"
    );
    assert!(
        !second.contains("resuming deliveries left in flight"),
        "{log}"
    );
}
