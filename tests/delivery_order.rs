//! Order and isolation: one call's events reach a webhook in the order they happened, also while
//! an earlier one is being retried; different calls and different webhooks proceed in parallel,
//! so an endpoint that hangs never delays another; connections are reused.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

/// How fast a healthy endpoint must get its event while another one hangs: far under the
/// response timeout the hanging one is held for (`HANG_TIMEOUT`).
const PROMPT: Duration = Duration::from_secs(2);
const HANG_TIMEOUT: &str = "10s";

async fn ingest(server: &Server, token: &str, who: (&str, &str), ext: &str, state: &str) -> Value {
    server
        .ingest_ok(token, &report(who.0, who.1, ext, "INBOUND", state))
        .await
}

/// Reports `state` for `who`'s call `ext` and asserts the event reaches `path` within `PROMPT`.
async fn assert_prompt(
    server: &Server,
    receiver: &Receiver,
    token: &str,
    who: (&str, &str),
    (ext, state): (&str, &str),
    path: &str,
) {
    let before = receiver.requests_on(path).len();
    let started = Instant::now();
    let event = ingest(server, token, who, ext, state).await;
    let reqs = receiver.wait_for_on(path, before + 1, ARRIVAL).await;
    let took = reqs[before].at - started;
    assert_eq!(reqs[before].event(), event);
    assert!(
        took < PROMPT,
        "{ext} {state} reached {path} after {took:?}, not promptly (under {PROMPT:?})"
    );
}

#[tokio::test]
async fn later_events_of_a_call_wait_while_the_first_is_retried_and_follow_in_order() {
    // Arrange: RINGING is answered 500 until the test opens the gate, so it is certainly being
    // retried while the call's later events happen.
    let receiver = Receiver::start();
    let gate = Arc::new(AtomicBool::new(false));
    let open = gate.clone();
    receiver.respond_with("/hook", move |r| {
        if r.state() == "RINGING" && !open.load(Ordering::SeqCst) {
            Reply::status(500, "not yet")
        } else {
            Reply::ok()
        }
    });
    let server = delivery_server(&[("--retries", "5"), ("--retry-interval", "300ms")]);
    let user = server.user_token("a1", "u1");
    let token = server.ingest_token();
    let id = create_hook(
        &server,
        &user,
        &hook(&receiver.url("/hook"), "HEADER", None),
    )
    .await;
    let ringing = ingest(&server, &token, ("a1", "u1"), "c1", "RINGING").await;
    receiver.wait_for_on("/hook", 1, ARRIVAL).await;

    // Act: the call is answered and ends while RINGING is failing; then RINGING may succeed.
    let active = ingest(&server, &token, ("a1", "u1"), "c1", "ACTIVE").await;
    let answered = ingest(&server, &token, ("a1", "u1"), "c1", "ANSWERED").await;
    gate.store(true, Ordering::SeqCst);

    // Assert: RINGING's attempts 1..k (k >= 2), then ACTIVE, then ANSWERED.
    let reqs = receiver
        .wait_until("ANSWERED delivered", ARRIVAL, |reqs| {
            reqs.iter()
                .any(|r| r.state() == "ANSWERED")
                .then(|| reqs.to_vec())
        })
        .await;
    let k = reqs.len() - 2;
    let mut expected: Vec<(Value, u32)> = (1..=k as u32).map(|n| (ringing.clone(), n)).collect();
    expected.push((active, 1));
    expected.push((answered, 1));
    let seen: Vec<(Value, u32)> = reqs.iter().map(|r| (r.event(), r.attempt())).collect();
    assert!(k >= 2, "RINGING was retried:\n{}", summary(&reqs));
    assert_eq!(
        seen,
        expected,
        "every RINGING attempt, then ACTIVE, then ANSWERED:\n{}",
        summary(&reqs)
    );
    for pair in reqs[..k].windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(300),
            "retried {gap:?} later, not after --retry-interval 300ms"
        );
    }
    let webhook = wait_for_successes(&server, &user, &id, 3).await;
    assert_eq!(webhook["statistics"]["totalAttempts"], json!(3));
}

#[tokio::test]
async fn many_calls_at_once_each_arrive_in_order() {
    // Arrange
    let receiver = Receiver::start();
    let server = delivery_server(&[]);
    let user = server.user_token("a1", "u1");
    let token = server.ingest_token();
    let id = create_hook(
        &server,
        &user,
        &hook(&receiver.url("/hook"), "HEADER", None),
    )
    .await;

    // Act: 20 calls, their reports interleaved.
    let mut sent: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for state in ["RINGING", "ACTIVE", "HELD", "ACTIVE", "ANSWERED"] {
        for n in 0..20 {
            let e = ingest(&server, &token, ("a1", "u1"), &format!("c{n}"), state).await;
            sent.entry(id_of(&e)).or_default().push(e);
        }
    }

    // Assert
    wait_for_successes(&server, &user, &id, 100).await;
    let reqs = receiver.requests();
    assert_eq!(reqs.len(), 100);
    let mut got: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in &reqs {
        let e = r.event();
        got.entry(id_of(&e)).or_default().push(e);
    }
    assert_eq!(got, sent, "every call's events in the order they happened");
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_delay_another_users_webhook() {
    // Arrange: user A's endpoint hangs on its first request.
    let receiver = Receiver::start();
    receiver.on("/a", Reply::Hang);
    let server = delivery_server(&[("--response-timeout", HANG_TIMEOUT)]);
    let (a, b) = (("acc", "ua"), ("acc", "ub"));
    let token = server.ingest_token();
    let a_user = server.user_token(a.0, a.1);
    let b_user = server.user_token(b.0, b.1);
    create_hook(&server, &a_user, &seed_hook(&receiver.url("/a"))).await;
    create_hook(&server, &b_user, &seed_hook(&receiver.url("/b"))).await;
    ingest(&server, &token, a, "a1", "RINGING").await;
    receiver
        .wait_until("A's request hanging", ARRIVAL, |_| {
            (receiver.open_now("/a") == 1).then_some(())
        })
        .await;

    // Act + Assert: B's call goes through promptly, event after event.
    for state in ["RINGING", "ACTIVE", "ANSWERED"] {
        assert_prompt(&server, &receiver, &token, b, ("b1", state), "/b").await;
    }
    assert_eq!(receiver.open_now("/a"), 1, "A was hanging all along");
}

#[tokio::test]
async fn a_hanging_webhook_holds_one_slot_however_many_calls_wait_for_it() {
    // Arrange: 4 attempts in flight overall, up to 2 per webhook; user A's endpoint hangs and A
    // has six calls ringing.
    let receiver = Receiver::start();
    receiver.on("/a", Reply::Hang);
    let server = delivery_server(&[
        ("--response-timeout", HANG_TIMEOUT),
        ("--concurrency", "4"),
        ("--webhook-concurrency", "2"),
    ]);
    let (a, b) = (("acc", "ua"), ("acc", "ub"));
    let token = server.ingest_token();
    let a_user = server.user_token(a.0, a.1);
    let b_user = server.user_token(b.0, b.1);
    create_hook(&server, &a_user, &seed_hook(&receiver.url("/a"))).await;
    create_hook(&server, &b_user, &seed_hook(&receiver.url("/b"))).await;
    for n in 0..6 {
        ingest(&server, &token, a, &format!("a{n}"), "RINGING").await;
    }
    receiver
        .wait_until("one of A's calls hanging", ARRIVAL, |_| {
            (receiver.open_now("/a") == 1).then_some(())
        })
        .await;

    // Act + Assert
    for n in 0..3 {
        assert_prompt(
            &server,
            &receiver,
            &token,
            b,
            (&format!("b{n}"), "RINGING"),
            "/b",
        )
        .await;
    }
    // A webhook starts with one attempt in flight and widens only with successes.
    assert_eq!(
        receiver.max_open("/a"),
        1,
        "a webhook that has not answered holds one slot:\n{}",
        summary(&receiver.requests())
    );
}

#[tokio::test]
async fn one_users_hanging_webhook_does_not_delay_the_same_users_other_webhook() {
    // Arrange
    let receiver = Receiver::start();
    receiver.on("/hangs", Reply::Hang);
    let server = delivery_server(&[("--response-timeout", HANG_TIMEOUT)]);
    let me = ("acc", "u1");
    let token = server.ingest_token();
    let user = server.user_token(me.0, me.1);
    create_hook(&server, &user, &seed_hook(&receiver.url("/hangs"))).await;
    create_hook(&server, &user, &seed_hook(&receiver.url("/healthy"))).await;

    // Act + Assert: each event reaches the healthy webhook promptly while the other hangs on
    // the call's first event (and holds the later ones back, in order).
    assert_prompt(
        &server,
        &receiver,
        &token,
        me,
        ("c1", "RINGING"),
        "/healthy",
    )
    .await;
    assert_prompt(&server, &receiver, &token, me, ("c1", "ACTIVE"), "/healthy").await;
    assert_prompt(
        &server,
        &receiver,
        &token,
        me,
        ("c2", "RINGING"),
        "/healthy",
    )
    .await;
    assert_eq!(
        receiver
            .requests_on("/hangs")
            .iter()
            .filter(|r| r.state() == "ACTIVE")
            .count(),
        0
    );
}

#[tokio::test]
async fn deliveries_to_one_endpoint_reuse_a_kept_alive_connection() {
    // Arrange
    let receiver = Receiver::start();
    let server = delivery_server(&[]);
    let user = server.user_token("a1", "u1");
    let token = server.ingest_token();
    let id = create_hook(&server, &user, &hook(&receiver.url("/hook"), "NONE", None)).await;

    // Act: three events, one after the other has been delivered.
    for (n, state) in ["RINGING", "ACTIVE", "ANSWERED"].into_iter().enumerate() {
        ingest(&server, &token, ("a1", "u1"), "c1", state).await;
        wait_for_successes(&server, &user, &id, n as u64 + 1).await;
    }

    // Assert
    let reqs = receiver.requests();
    assert_eq!(reqs.len(), 3);
    assert!(
        reqs.iter().all(|r| r.conn == reqs[0].conn),
        "one connection for all three:\n{}",
        summary(&reqs)
    );
}
