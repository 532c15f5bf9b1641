//! The per-token rate limit (`--rate-limit N`: N requests per second per token, in bursts of N):
//! past it every token-authenticated route answers 429 in the VIS error shape with `Retry-After`,
//! before the body is read; the allowance comes back after that wait; tokens are limited one by
//! one; requests without a valid token are 401 as ever; 0 turns the limit off; refusals are
//! counted in `/metrics`.

mod support;

use serde_json::json;
use std::time::Duration;
use support::*;

/// Most requests sent to run a token out of its allowance.
const MAX_TRIES: usize = 200;

/// Sends `method path` with `token` (and a JSON `body` for POST) until the answer is 429; returns
/// how many were answered otherwise first, and the 429.
async fn exhaust(server: &Server, method: &str, path: &str, token: &str) -> (usize, Resp) {
    for before in 0..MAX_TRIES {
        let mut req = server.req(method, path).bearer(token);
        if method == "POST" {
            req = req.json(&json!({}));
        }
        let resp = req.send().await;
        if resp.status == 429 {
            return (before, resp);
        }
    }
    panic!("{method} {path}: no 429 after {MAX_TRIES} requests");
}

/// The `Retry-After` of a 429, asserting it is a whole number of seconds, at least 1.
fn retry_after(resp: &Resp) -> u64 {
    let value = resp
        .header("retry-after")
        .unwrap_or_else(|| panic!("a 429 carries Retry-After: {resp:?}"));
    let seconds: u64 = value
        .parse()
        .unwrap_or_else(|e| panic!("Retry-After {value:?} is whole seconds ({e})"));
    assert!(seconds >= 1, "Retry-After is at least 1: {resp:?}");
    seconds
}

#[tokio::test]
async fn a_token_past_its_rate_gets_429_with_retry_after_and_is_served_again_after_that_wait() {
    // Arrange
    let server = Server::start_with(&["--rate-limit", "5"]);
    let token = server.user_token("a1", "u1");

    // Act
    let (served, refused) = exhaust(&server, "GET", &vis("/self/webhooks"), &token).await;

    // Assert
    assert!(
        served >= 5,
        "the whole burst of 5 is served first: {served}"
    );
    assert_eq!(
        refused.expect_error(429, "TOO_MANY_REQUESTS"),
        Vec::<String>::new()
    );
    let wait = retry_after(&refused);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    server.get(&vis("/self/webhooks"), &token).await.expect(200);
}

#[tokio::test]
async fn the_limit_is_per_token_and_another_token_is_unaffected() {
    // Arrange: two tokens of the same user, and an ingest token.
    let server = Server::start_with(&["--rate-limit", "3"]);
    let first = server.user_token("a1", "u1");
    let second = server.user_token("a1", "u1");
    let ingest = server.ingest_token();

    // Act
    exhaust(&server, "GET", &vis("/self/webhooks"), &first).await;

    // Assert
    server
        .get(&vis("/self/webhooks"), &second)
        .await
        .expect(200);
    server
        .ingest(&ingest, &report("a1", "u1", "c1", "INBOUND", "RINGING"))
        .await
        .expect(202);
    server
        .get(&vis("/self/webhooks"), &first)
        .await
        .expect_error(429, "TOO_MANY_REQUESTS");
}

#[tokio::test]
async fn every_token_route_is_limited_vis_ingestion_and_callhook_api() {
    // Arrange
    let server = Server::start_with(&["--rate-limit", "2"]);
    let routes = [
        ("GET", vis("/self")),
        ("POST", vis("/self/webhooks")),
        ("GET", vis_short("/self/events")),
        ("POST", "/callhook/v1/webhooks/nope/replay".to_string()),
    ];

    for (i, (method, path)) in routes.iter().enumerate() {
        // Act: a fresh token per route, so each starts with a full allowance.
        let token = server.user_token("a1", &format!("u{i}"));
        let (_, refused) = exhaust(&server, method, path, &token).await;

        // Assert
        refused.expect_error(429, "TOO_MANY_REQUESTS");
        retry_after(&refused);
    }
    let ingest = server.ingest_token();
    let (_, refused) = exhaust(&server, "POST", INGEST, &ingest).await;
    refused.expect_error(429, "TOO_MANY_REQUESTS");
}

#[tokio::test]
async fn a_limited_token_is_refused_before_its_body_is_read() {
    // Arrange
    let server = Server::start_with(&["--rate-limit", "2"]);
    let ingest = server.ingest_token();
    let reader = server.user_token("a1", "u1");
    exhaust(&server, "POST", INGEST, &ingest).await;

    // Act: a malformed body (400 if it were read) and a valid report, both past the limit.
    let malformed = server.post_json_text(INGEST, &ingest, "{not json").await;
    let valid = server
        .ingest(&ingest, &report("a1", "u1", "c1", "INBOUND", "RINGING"))
        .await;

    // Assert
    for resp in [malformed, valid] {
        resp.expect_error(429, "TOO_MANY_REQUESTS");
    }
    assert_eq!(server.events_count(&reader).await, json!({"count": 0}));
}

#[tokio::test]
async fn requests_without_a_valid_token_get_401_never_429() {
    // Arrange
    let server = Server::start_with(&["--rate-limit", "1"]);
    let revoked = server.user_token("a1", "u1");
    let id = server.token_list()[0]["id"].as_str().unwrap().to_string();
    server.token_revoke(&id);

    for _ in 0..10 {
        // Act
        let anonymous = server.get_anon(&vis("/self/webhooks")).await;
        let unknown = server.get(&vis("/self/webhooks"), "chk_nope").await;
        let revoked = server.get(&vis("/self/webhooks"), &revoked).await;

        // Assert
        for resp in [anonymous, unknown, revoked] {
            resp.expect_error(401, "UNAUTHORIZED");
        }
    }
}

#[tokio::test]
async fn a_rate_limit_of_zero_turns_the_limit_off() {
    // Arrange
    let server = Server::start_with(&["--rate-limit", "0"]);
    let token = server.user_token("a1", "u1");

    // Act: more at once than any non-zero limit below 200 would let through.
    let path = vis("/self");
    let answers = join_all((0..200).map(|_| server.get(&path, &token))).await;

    // Assert
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
}

#[tokio::test]
async fn the_default_limit_serves_a_thousand_requests_in_quick_succession() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");

    // Act: 1,000 requests, 100 at a time (to stay clear of file-descriptor limits).
    let path = vis("/self");
    let mut answers = Vec::new();
    for _ in 0..10 {
        answers.extend(join_all((0..100).map(|_| server.get(&path, &token))).await);
    }

    // Assert: at 1,000/s in bursts of 1,000, none of them is refused.
    let refused = answers.iter().filter(|r| r.status != 200).count();
    assert_eq!(refused, 0, "{:?}", answers.iter().find(|r| r.status != 200));
}

#[tokio::test]
async fn refusals_are_counted_in_metrics() {
    // Arrange
    let server = Server::start_with(&["--rate-limit", "2"]);
    let token = server.user_token("a1", "u1");
    let name = "callhook_rate_limited_requests_total";
    assert_eq!(metric(&metrics(&server).await, name, &[]), Some(0.0));

    // Act
    exhaust(&server, "GET", &vis("/self"), &token).await;
    let again = server.get(&vis("/self"), &token).await;

    // Assert
    let counted = metric(&metrics(&server).await, name, &[]).expect("the counter is served");
    let expected = if again.status == 429 { 2.0 } else { 1.0 };
    assert_eq!(counted, expected);
}
