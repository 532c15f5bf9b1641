//! Hostile and odd input: overflowing numbers, invalid UTF-8, deep nesting, broken percent
//! encoding, huge ids. Whatever comes in, the answer is never a 5xx, never HTML, always a VIS error
//! body for a 4xx, and nothing is stored.

mod support;

use serde_json::{Value, json};
use support::*;

/// Asserts the answer is a client error in VIS shape (or a success where one is allowed).
fn assert_handled(resp: &Resp, allow_success: bool) {
    assert!(resp.status < 500, "never a 5xx: {resp:?}");
    if resp.status >= 400 {
        let v = resp.json();
        let code = v["errorCode"]
            .as_str()
            .unwrap_or_else(|| panic!("VIS error body: {resp:?}"));
        resp.expect_error(resp.status, code);
    } else {
        assert!(allow_success, "expected a refusal: {resp:?}");
    }
}

async fn stored(server: &Server, user: &str) -> (Value, Value) {
    (
        server.get_json(&vis("/self/webhooks"), user).await,
        server.get_json(&vis("/self/events"), user).await,
    )
}

#[tokio::test]
async fn overflowing_and_extreme_query_numbers_never_cause_a_server_error() {
    // Arrange
    let server = Server::start();
    let user = server.user_token("a1", "u1");
    let ingest = server.ingest_token();
    server
        .ingest_ok(&ingest, &report("a1", "u1", "c1", "INBOUND", "RINGING"))
        .await;
    let queries = [
        "size=99999999999999999999",
        "offset=99999999999999999999",
        "offset=9223372036854775807",
        "offset=9223372036854775807&size=1000",
        "offset=4611686018427387904&size=2",
        "fromDate=-9223372036854775808",
        "fromDate=9223372036854775807",
        "toDate=-9223372036854775808",
        "fromDate=99999999999999999999",
        "fromDate=1e12",
        "size=%zz",
        "direction=%ff%fe",
        "states=",
        "size=",
        "order=",
        "direction=,,,",
    ];

    for query in queries {
        for path in [
            "/self/calls",
            "/self/calls/count",
            "/self/events",
            "/self/events/count",
        ] {
            // Act
            let resp = server.get(&vis(&format!("{path}?{query}")), &user).await;

            // Assert
            assert_handled(&resp, true);
        }
    }
}

#[tokio::test]
async fn extreme_report_values_never_cause_a_server_error_or_a_half_stored_call() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let user = server.user_token("a1", "u1");
    let ok = report("a1", "u1", "c1", "INBOUND", "RINGING");
    let bodies = [
        with(ok.clone(), "at", json!(i64::MAX)),
        with(ok.clone(), "at", json!(i64::MIN)),
        with(ok.clone(), "at", json!(u64::MAX)),
        with(ok.clone(), "at", json!(1.5e300)),
        with(ok.clone(), "at", json!("9999-12-31T23:59:59Z")),
        with(ok.clone(), "at", json!("0000-01-01T00:00:00Z")),
        with(ok.clone(), "at", json!("2024-05-01T10:00:00+99:00")),
        with(ok.clone(), "accountId", json!(1.5)),
        with(ok.clone(), "accountId", json!(u64::MAX)),
        with(ok.clone(), "userId", json!(-1)),
        with(ok.clone(), "externalId", json!(1e40)),
    ];

    for body in &bodies {
        // Act
        let resp = server.ingest(&ingest, body).await;

        // Assert
        assert!(resp.status < 500, "never a 5xx for {body}: {resp:?}");
        if resp.status >= 400 {
            assert_handled(&resp, false);
        }
    }
    // Whatever was accepted must read back without an error.
    server.get_json(&vis("/self/events"), &user).await;
    server.get_json(&vis("/self/calls"), &user).await;
}

#[tokio::test]
async fn broken_bodies_are_refused_in_vis_shape_and_store_nothing() {
    // Arrange
    let server = Server::start();
    let user = server.user_token("a1", "u1");
    let ingest = server.ingest_token();
    let before = stored(&server, &user).await;
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let deep_object = format!(
        "{{\"url\": {}1{}}}",
        "{\"a\":".repeat(5_000),
        "}".repeat(5_000)
    );
    let bodies: Vec<Vec<u8>> = vec![
        vec![0xff, 0xfe, 0xfd],
        b"{\"url\": \"https://example.com/\xff\"}".to_vec(),
        deep.into_bytes(),
        deep_object.into_bytes(),
        b"{\"url\": \"https://example.com\"} trailing".to_vec(),
        vec![b' '; 1000],
    ];

    for body in bodies {
        for (path, token) in [
            (vis("/self/webhooks"), &user),
            (INGEST.to_string(), &ingest),
        ] {
            // Act
            let resp = server.post_json_text(&path, token, body.clone()).await;

            // Assert
            assert_handled(&resp, false);
            assert!(
                matches!(resp.status, 400 | 422),
                "a broken body is a 400 or 422: {resp:?}"
            );
        }
    }
    assert_eq!(stored(&server, &user).await, before);
}

#[tokio::test]
async fn odd_paths_and_ids_are_404_not_errors() {
    // Arrange
    let server = Server::start();
    let user = server.user_token("a1", "u1");
    let long = "x".repeat(4_000);
    let paths = [
        vis(&format!("/self/webhooks/{long}")),
        vis(&format!("/self/calls/{long}")),
        vis(&format!("/self/events/{long}")),
        vis("/self/webhooks/%zz"),
        vis("/self/calls/%00"),
        vis("/self/events/%F0%9F%9A%80"),
        vis("/self/webhooks/..%2F..%2Fself"),
        "/t/vbc.prod/vis/v1//self".to_string(),
    ];

    for path in paths {
        // Act
        let resp = server.get(&path, &user).await;

        // Assert
        assert_handled(&resp, true);
    }
}

#[tokio::test]
async fn odd_authorization_headers_are_401() {
    // Arrange
    let server = Server::start();
    let long = format!("Bearer chk_{}", "a".repeat(6_000));

    for value in ["Bearer  chk_x", "bearer", long.as_str(), "Bearer chk_%00"] {
        // Act
        let resp = server
            .req("GET", &vis("/self"))
            .header("authorization", value)
            .send()
            .await;

        // Assert
        resp.expect_error(401, "UNAUTHORIZED");
    }
}
