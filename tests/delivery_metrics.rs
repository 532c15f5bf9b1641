//! Visible work: `GET /metrics` serves Prometheus text whose delivery counters match what the
//! receiver saw.

mod support;

use serde_json::Value;
use support::*;

async fn ingest(server: &Server, token: &str, who: (&str, &str), ext: &str, state: &str) -> Value {
    server
        .ingest_ok(token, &report(who.0, who.1, ext, "INBOUND", state))
        .await
}

#[tokio::test]
async fn metrics_count_deliveries_by_outcome_without_a_token() {
    // Arrange: user A's webhook answers 200; user B's always 500 (one retry).
    let receiver = Receiver::start();
    receiver.on("/bad", Reply::status(500, "down"));
    let server = delivery_server(&[("--retries", "1")]);
    let (a, b) = (("acc", "ua"), ("acc", "ub"));
    let token = server.ingest_token();
    let a_user = server.user_token(a.0, a.1);
    let b_user = server.user_token(b.0, b.1);
    let good = create_hook(
        &server,
        &a_user,
        &hook(&receiver.url("/good"), "NONE", None),
    )
    .await;
    let bad = create_hook(&server, &b_user, &hook(&receiver.url("/bad"), "NONE", None)).await;

    // Act: three deliveries succeed; one fails after its retry; one is skipped (B has failed).
    for state in ["RINGING", "ACTIVE", "ANSWERED"] {
        ingest(&server, &token, a, "a1", state).await;
    }
    wait_for_successes(&server, &a_user, &good, 3).await;
    ingest(&server, &token, b, "b1", "RINGING").await;
    wait_until_failed(&server, &b_user, &bad).await;
    ingest(&server, &token, b, "b1", "MISSED").await;

    // Assert
    let total = "callhook_deliveries_total";
    wait_for_metric(&server, total, &[("outcome", "skipped")], 1.0).await;
    let text = wait_for_metric(&server, total, &[("outcome", "delivered")], 3.0).await;
    assert_eq!(receiver.requests_on("/good").len(), 3);
    assert_eq!(
        metric(&text, total, &[("outcome", "failed")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, total, &[("outcome", "retried")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(receiver.requests_on("/bad").len(), 2);
    assert_eq!(
        metric(
            &text,
            "callhook_delivery_attempt_duration_seconds_count",
            &[]
        ),
        Some(5.0),
        "five attempts were made (3 + 2): {text}"
    );
    for family in [
        "callhook_delivery_attempt_duration_seconds_bucket",
        "callhook_delivery_queue_depth",
        "callhook_delivery_oldest_pending_age_seconds",
    ] {
        assert!(has_metric(&text, family), "{family} missing: {text}");
    }
    wait_for_metric(&server, "callhook_delivery_queue_depth", &[], 0.0).await;
}
