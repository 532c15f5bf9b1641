//! A webhook's life as deliveries see it: a failed webhook gets nothing until renewed or
//! re-created (the seed's recipe), an expired one gets nothing, and the events either missed are
//! kept as skipped and delivered again by callhook's replay extension.
//!
//! "Gets nothing" is proved against a second, healthy webhook of the same user: once that one
//! has the later event, the first would have had it too.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

const ME: (&str, &str) = ("a1", "u1");

async fn ingest_state(server: &Server, ingest: &str, ext: &str, state: &str, at_ms: i64) -> Value {
    let body = report_at(ME.0, ME.1, ext, "INBOUND", state, T0 + at_ms);
    server.ingest_ok(ingest, &body).await
}

/// Waits until the wall clock is past the webhook's `expireAt`. The condition is the clock
/// itself: nothing observable changes when a webhook expires.
async fn wait_past_expiry(webhook: &Value) {
    let expire_at = parse_webhook_time(webhook["expireAt"].as_str().expect("expireAt"));
    let left = (expire_at - chrono::Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    tokio::time::sleep(left + Duration::from_millis(50)).await;
}

#[tokio::test]
async fn a_failed_webhook_gets_no_events_until_renewed_and_renewal_keeps_its_statistics() {
    // Arrange: /bad always fails, /good is a healthy second webhook of the same user.
    let receiver = Receiver::start();
    receiver.on("/bad", Reply::status(500, "down"));
    let server = delivery_server(&[("--retries", "1")]);
    let user = server.user_token(ME.0, ME.1);
    let ingest = server.ingest_token();
    let bad = create_hook(&server, &user, &hook(&receiver.url("/bad"), "HEADER", None)).await;
    create_hook(
        &server,
        &user,
        &hook(&receiver.url("/good"), "HEADER", None),
    )
    .await;
    ingest_state(&server, &ingest, "c1", "RINGING", 0).await;
    let failed = wait_until_failed(&server, &user, &bad).await;
    receiver.on("/bad", Reply::ok());

    // Act 1: an event while failed.
    ingest_state(&server, &ingest, "c1", "ACTIVE", 1_000).await;

    // Assert 1: the healthy webhook has it, the failed one does not.
    receiver.wait_for_on("/good", 2, ARRIVAL).await;
    assert_eq!(
        receiver.requests_on("/bad").len(),
        2,
        "only the two failed attempts of RINGING:\n{}",
        summary(&receiver.requests())
    );

    // Act 2: renew, then a later event.
    let renewed = server
        .put(&format!("{}/renew", webhook_path(&bad)), &user)
        .await;
    renewed.expect(200);
    let renewed = renewed.json();
    let answered = ingest_state(&server, &ingest, "c1", "ANSWERED", 2_000).await;

    // Assert 2: renewal cleared only `failed`; the later event arrives.
    let mut expected = failed["statistics"].clone();
    expected["failed"] = json!(false);
    assert_eq!(
        renewed["statistics"], expected,
        "renew keeps every other statistic"
    );
    let bad_reqs = receiver.wait_for_on("/bad", 3, ARRIVAL).await;
    assert_eq!(
        bad_reqs[2].event(),
        answered,
        "the next event after renewal, not the skipped one"
    );
    let after = wait_for_successes(&server, &user, &bad, 1).await;
    let s = &after["statistics"];
    assert_eq!(
        (
            &s["totalAttempts"],
            &s["totalSuccesses"],
            &s["totalFailures"],
            &s["failed"]
        ),
        (&json!(2), &json!(1), &json!(1), &json!(false)),
        "{after}"
    );
    assert_eq!(s["lastFailure"], failed["statistics"]["lastFailure"]);
    assert!(s["lastSuccess"].is_string());
    assert_eq!(receiver.requests_on("/bad").len(), 3);
}

#[tokio::test]
async fn recreating_a_failed_webhook_and_deleting_the_old_one_brings_events_back() {
    // Arrange: the seed's webhook fails.
    let receiver = Receiver::start();
    receiver.on("/webhook", Reply::status(500, "NameError"));
    let server = delivery_server(&[("--retries", "1")]);
    let user = server.user_token(ME.0, ME.1);
    let ingest = server.ingest_token();
    let body = seed_hook(&receiver.url("/webhook"));
    let old = create_hook(&server, &user, &body).await;
    ingest_state(&server, &ingest, "c1", "RINGING", 0).await;
    wait_until_failed(&server, &user, &old).await;
    receiver.on("/webhook", Reply::ok());

    // Act: the seed's recipe: POST the same body again, then DELETE the failed one.
    let new = create_hook(&server, &user, &body).await;
    server.delete(&webhook_path(&old), &user).await.expect(204);
    let active = ingest_state(&server, &ingest, "c1", "ACTIVE", 1_000).await;

    // Assert: the new webhook gets the event, once.
    let reqs = receiver.wait_for_on("/webhook", 3, ARRIVAL).await;
    assert_eq!(reqs[2].event(), active);
    let webhook = wait_for_successes(&server, &user, &new, 1).await;
    assert_eq!(webhook["statistics"]["totalAttempts"], json!(1));
    assert_eq!(ids_of(&json!(server.webhooks(&user).await)), [new]);
    assert_eq!(
        receiver.requests_on("/webhook").len(),
        3,
        "{}",
        summary(&receiver.requests())
    );
}

#[tokio::test]
async fn an_expired_webhook_gets_no_events() {
    // Arrange: webhooks live 3 s; the first one gets an event while alive, then expires.
    let receiver = Receiver::start();
    let server = delivery_server(&[("--webhook-ttl", "3s")]);
    let user = server.user_token(ME.0, ME.1);
    let ingest = server.ingest_token();
    let first = server
        .create_webhook(&user, &hook(&receiver.url("/first"), "HEADER", None))
        .await;
    ingest_state(&server, &ingest, "c1", "RINGING", 0).await;
    receiver.wait_for_on("/first", 1, ARRIVAL).await;
    wait_past_expiry(&first).await;

    // Act: a live webhook is created and a later event happens.
    create_hook(
        &server,
        &user,
        &hook(&receiver.url("/second"), "HEADER", None),
    )
    .await;
    let active = ingest_state(&server, &ingest, "c1", "ACTIVE", 1_000).await;

    // Assert
    let second = receiver.wait_for_on("/second", 1, ARRIVAL).await;
    assert_eq!(second[0].event(), active);
    assert_eq!(
        receiver.requests_on("/first").len(),
        1,
        "the expired webhook got nothing more:\n{}",
        summary(&receiver.requests())
    );
    let stats = get_hook(&server, &user, &wid(&first)).await["statistics"].clone();
    assert_eq!(stats["totalAttempts"], json!(1), "{stats}");
}

#[tokio::test]
async fn an_expired_webhooks_skipped_events_are_replayed_after_renewal_and_not_before() {
    // Arrange: the webhook expires, then an event happens.
    let receiver = Receiver::start();
    let server = delivery_server(&[("--webhook-ttl", "3s")]);
    let user = server.user_token(ME.0, ME.1);
    let ingest = server.ingest_token();
    let webhook = server
        .create_webhook(&user, &hook(&receiver.url("/hook"), "HEADER", None))
        .await;
    let id = wid(&webhook);
    wait_past_expiry(&webhook).await;
    let ringing = ingest_state(&server, &ingest, "c1", "RINGING", 0).await;

    // Act 1: replay while expired.
    let refused = replay(&server, &user, &id, None).await;

    // Assert 1
    assert_eq!(
        refused.status, 409,
        "an expired webhook must be renewed first: {refused:?}"
    );

    // Act 2: renew, then replay.
    server
        .put(&format!("{}/renew", webhook_path(&id)), &user)
        .await
        .expect(200);
    let replayed = replay(&server, &user, &id, None).await;

    // Assert 2
    replayed.expect(200);
    assert_eq!(replayed.json(), json!({"replayed": 1}));
    let reqs = receiver.wait_for_on("/hook", 1, ARRIVAL).await;
    assert_eq!(reqs[0].event(), ringing);
}

/// Arranges a failed webhook (/hook) with skipped events: c1 RINGING fails; c1 ACTIVE is queued behind it
/// when it fails; c1 ANSWERED, c2 RINGING and c2 MISSED happen while it is failed. /live is a
/// healthy webhook of the same user. Returns (server, user, id, skipped events in order).
async fn failed_webhook_with_skipped_events(
    receiver: &Receiver,
) -> (Server, String, String, Vec<Value>) {
    receiver.on("/hook", Reply::status(500, "down"));
    let server = delivery_server(&[("--retry-interval", "300ms")]);
    let user = server.user_token(ME.0, ME.1);
    let ingest = server.ingest_token();
    let id = create_hook(
        &server,
        &user,
        &hook(&receiver.url("/hook"), "HEADER", None),
    )
    .await;
    create_hook(
        &server,
        &user,
        &hook(&receiver.url("/live"), "HEADER", None),
    )
    .await;
    ingest_state(&server, &ingest, "c1", "RINGING", 0).await;
    receiver.wait_for_on("/hook", 1, ARRIVAL).await;
    let mut skipped = vec![ingest_state(&server, &ingest, "c1", "ACTIVE", 1_000).await];
    wait_until_failed(&server, &user, &id).await;
    skipped.push(ingest_state(&server, &ingest, "c1", "ANSWERED", 2_000).await);
    skipped.push(ingest_state(&server, &ingest, "c2", "RINGING", 3_000).await);
    skipped.push(ingest_state(&server, &ingest, "c2", "MISSED", 4_000).await);
    receiver.wait_for_on("/live", 5, ARRIVAL).await;
    assert_eq!(
        receiver.requests_on("/hook").len(),
        3,
        "a failed webhook gets only the attempts of its failing delivery:\n{}",
        summary(&receiver.requests())
    );
    receiver.on("/hook", Reply::ok());
    (server, user, id, skipped)
}

/// The requests' events grouped per call (sorted by call id), each call's in arrival order.
fn per_call(reqs: &[Request]) -> Vec<(String, Vec<Value>)> {
    let mut out: Vec<(String, Vec<Value>)> = Vec::new();
    for r in reqs {
        let e = r.event();
        let call = id_of(&e);
        match out.iter_mut().find(|(c, _)| *c == call) {
            Some((_, events)) => events.push(e),
            None => out.push((call, vec![e])),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test]
async fn skipped_events_are_replayed_in_order_after_renewal() {
    // Arrange
    let receiver = Receiver::start();
    let (server, user, id, skipped) = failed_webhook_with_skipped_events(&receiver).await;

    // Act 1: replay while still failed.
    let refused = replay(&server, &user, &id, None).await;

    // Assert 1
    assert_eq!(
        refused.status, 409,
        "a failed webhook must be renewed first: {refused:?}"
    );
    assert_eq!(receiver.requests_on("/hook").len(), 3);

    // Act 2
    server
        .put(&format!("{}/renew", webhook_path(&id)), &user)
        .await
        .expect(200);
    let replayed = replay(&server, &user, &id, None).await;

    // Assert 2: the four skipped events, each call's in order.
    replayed.expect(200);
    assert_eq!(replayed.json(), json!({"replayed": 4}));
    let reqs = receiver.wait_for_on("/hook", 3 + 4, ARRIVAL).await;
    assert_eq!(per_call(&reqs[3..]), per_call_of(&skipped));
    wait_for_successes(&server, &user, &id, 4).await;
    assert_eq!(
        receiver.requests_on("/hook").len(),
        7,
        "{}",
        summary(&receiver.requests())
    );
}

#[tokio::test]
async fn replay_since_delivers_only_the_skipped_events_that_happened_at_or_after_it() {
    // Arrange
    let receiver = Receiver::start();
    let (server, user, id, skipped) = failed_webhook_with_skipped_events(&receiver).await;
    server
        .put(&format!("{}/renew", webhook_path(&id)), &user)
        .await
        .expect(200);

    // Act: since the time of c1 ANSWERED (inclusive).
    let replayed = replay(&server, &user, &id, Some(&rfc3339(T0 + 2_000))).await;

    // Assert: c1 ANSWERED, c2 RINGING, c2 MISSED; not c1 ACTIVE (it would come first on its call).
    replayed.expect(200);
    assert_eq!(replayed.json(), json!({"replayed": 3}));
    let reqs = receiver.wait_for_on("/hook", 3 + 3, ARRIVAL).await;
    assert_eq!(per_call(&reqs[3..]), per_call_of(&skipped[1..]));
    wait_for_successes(&server, &user, &id, 3).await;
    assert_eq!(
        receiver.requests_on("/hook").len(),
        6,
        "{}",
        summary(&receiver.requests())
    );
}

fn per_call_of(events: &[Value]) -> Vec<(String, Vec<Value>)> {
    let mut out: Vec<(String, Vec<Value>)> = Vec::new();
    for e in events {
        let call = id_of(e);
        match out.iter_mut().find(|(c, _)| *c == call) {
            Some((_, list)) => list.push(e.clone()),
            None => out.push((call, vec![e.clone()])),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test]
async fn replay_is_404_for_another_users_webhook_and_401_without_a_token() {
    // Arrange
    let server = delivery_server(&[]);
    let owner = server.user_token(ME.0, ME.1);
    let stranger = server.user_token(ME.0, "u2");
    let id = create_hook(&server, &owner, &hook("http://127.0.0.1:9/x", "NONE", None)).await;

    // Act
    let theirs = replay(&server, &stranger, &id, None).await;
    let unknown = replay(
        &server,
        &owner,
        "9d603613-f908-4da7-b145-4a6ee1ce53e3",
        None,
    )
    .await;
    let anonymous = server
        .req("POST", &format!("/callhook/v1/webhooks/{id}/replay"))
        .send()
        .await;

    // Assert
    theirs.expect_error(404, "NOT_FOUND");
    unknown.expect_error(404, "NOT_FOUND");
    anonymous.expect_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn replay_with_a_since_that_is_not_a_time_is_422_naming_since() {
    // Arrange
    let server = delivery_server(&[]);
    let owner = server.user_token(ME.0, ME.1);
    let id = create_hook(&server, &owner, &hook("http://127.0.0.1:9/x", "NONE", None)).await;

    // Act
    let resp = replay(&server, &owner, &id, Some("yesterday")).await;

    // Assert
    assert_eq!(resp.expect_validation(), ["since"]);
}

#[tokio::test]
async fn a_replayed_delivery_that_was_attempted_before_counts_its_attempts_on() {
    // Arrange: c1's delivery fails fast and fails the webhook while c2's first attempt is still
    // hanging; when that attempt times out, c2's delivery is skipped (the webhook has failed).
    let receiver = Receiver::start();
    receiver.respond_with("/hook", |r| {
        if r.event()["externalId"] == json!("c2") {
            Reply::Hang
        } else {
            Reply::status(500, "down")
        }
    });
    let server = delivery_server(&[("--retries", "1"), ("--response-timeout", "1s")]);
    let user = server.user_token(ME.0, ME.1);
    let ingest = server.ingest_token();
    let id = create_hook(
        &server,
        &user,
        &hook(&receiver.url("/hook"), "HEADER", None),
    )
    .await;
    ingest_state(&server, &ingest, "c2", "RINGING", 0).await;
    ingest_state(&server, &ingest, "c1", "RINGING", 0).await;
    wait_until_failed(&server, &user, &id).await;
    wait_for_metric(
        &server,
        "callhook_deliveries_total",
        &[("outcome", "skipped")],
        1.0,
    )
    .await;
    let hung = receiver
        .requests_on("/hook")
        .into_iter()
        .find(|r| r.event()["externalId"] == json!("c2"))
        .expect("c2 was attempted");
    receiver.on("/hook", Reply::ok());
    server
        .put(&format!("{}/renew", webhook_path(&id)), &user)
        .await
        .expect(200);

    // Act
    let replayed = replay(&server, &user, &id, None).await;

    // Assert: the same delivery again, with a higher attempt than the one the receiver saw.
    replayed.expect(200);
    assert_eq!(replayed.json(), json!({"replayed": 1}));
    let again = receiver
        .wait_until("c2 replayed", ARRIVAL, |reqs| {
            reqs.iter()
                .filter(|r| r.event()["externalId"] == json!("c2"))
                .nth(1)
                .cloned()
        })
        .await;
    assert_eq!(again.delivery_id(), hung.delivery_id());
    assert!(
        again.attempt() > hung.attempt(),
        "a repeat carries the same deliveryId and a higher attempt:\n{}",
        summary(&receiver.requests())
    );
}
