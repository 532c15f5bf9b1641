//! Creating a webhook (`POST /self/webhooks`): defaults, every accepted value, and every way a
//! create body is refused (422 naming each field, 400, 413, 415), storing nothing.

mod support;

use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn omitted_create_fields_get_their_defaults_and_no_signing_key() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");

    // Act
    let resp = server
        .post(
            &vis("/self/webhooks"),
            &token,
            &minimal_webhook("http://localhost:3000/webhook"),
        )
        .await;

    // Assert
    resp.expect(201);
    assert_eq!(keys(&resp.text, ""), webhook_keys(false, false), "{resp:?}");
    let w = resp.json();
    assert_eq!(w["events"], json!(["CALL"]));
    assert_eq!(w["signingAlgo"], "NONE");
    assert_eq!(w["metadataPolicy"], "NONE");
    assert_eq!(w["url"], "http://localhost:3000/webhook");
}

#[tokio::test]
async fn a_signing_key_without_an_algorithm_means_hmac_sha256() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");

    // Act
    let w = server
        .create_webhook(
            &token,
            &json!({"url": "https://example.com/h", "signingKey": "k"}),
        )
        .await;

    // Assert
    assert_eq!(w["signingAlgo"], "HMAC_SHA256");
    assert_eq!(w["signingKey"], "k");
}

#[tokio::test]
async fn every_metadata_policy_and_signing_algorithm_is_accepted() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");

    for (algo, policy) in [
        ("NONE", "NONE"),
        ("HMAC_SHA256", "HEADER"),
        ("HMAC_SHA256", "BODY"),
    ] {
        // Act
        let w = server
            .create_webhook(
                &token,
                &json!({"url": "https://example.com/h", "signingAlgo": algo, "signingKey": "k", "metadataPolicy": policy}),
            )
            .await;

        // Assert
        assert_eq!(
            (w["signingAlgo"].as_str(), w["metadataPolicy"].as_str()),
            (Some(algo), Some(policy))
        );
    }
    assert_eq!(server.webhooks(&token).await.len(), 3);
}

#[tokio::test]
async fn each_invalid_create_field_is_refused_with_422_naming_it_and_nothing_is_stored() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let ok = "https://example.com/hook";
    let cases: Vec<(&str, Value)> = vec![
        ("url", json!({})),
        ("url", json!({"events": ["CALL"]})),
        ("url", json!({"url": "/webhook"})),
        ("url", json!({"url": "example.com/webhook"})),
        ("url", json!({"url": "ftp://example.com/webhook"})),
        ("url", json!({"url": "http://"})),
        ("url", json!({"url": "javascript:alert(1)"})),
        ("url", json!({"url": "mailto:ops@example.com"})),
        ("url", json!({"url": ""})),
        ("url", json!({"url": 42})),
        ("url", json!({"url": null})),
        ("events", json!({"url": ok, "events": []})),
        ("events", json!({"url": ok, "events": ["SMS"]})),
        ("events", json!({"url": ok, "events": ["CALL", "NOPE"]})),
        ("events", json!({"url": ok, "events": "CALL"})),
        ("events", json!({"url": ok, "events": [1]})),
        ("signingAlgo", json!({"url": ok, "signingAlgo": "MD5"})),
        ("signingAlgo", json!({"url": ok, "signingAlgo": 256})),
        ("signingKey", json!({"url": ok, "signingKey": 12345})),
        ("signingKey", json!({"url": ok, "signingKey": ["k"]})),
        (
            "metadataPolicy",
            json!({"url": ok, "metadataPolicy": "ALL"}),
        ),
        (
            "metadataPolicy",
            json!({"url": ok, "metadataPolicy": "none"}),
        ),
        ("metadataPolicy", json!({"url": ok, "metadataPolicy": true})),
    ];

    for (field, body) in cases {
        // Act
        let resp = server.post(&vis("/self/webhooks"), &token, &body).await;

        // Assert
        assert_eq!(
            resp.expect_validation(),
            vec![field.to_string()],
            "body {body}: {resp:?}"
        );
        assert_no_webhooks(&server, &token, &body.to_string()).await;
    }
}

#[tokio::test]
async fn several_invalid_create_fields_are_each_named_once() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let body = json!({"url": "not a url", "events": [], "signingAlgo": "RSA", "signingKey": false, "metadataPolicy": "X"});

    // Act
    let resp = server.post(&vis("/self/webhooks"), &token, &body).await;

    // Assert
    assert_eq!(
        resp.expect_validation(),
        [
            "events",
            "metadataPolicy",
            "signingAlgo",
            "signingKey",
            "url"
        ]
    );
    assert_no_webhooks(&server, &token, "several bad fields").await;
}

#[tokio::test]
async fn unknown_extra_create_fields_are_ignored() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let body = json!({"url": "https://example.com/h", "description": "crm", "status": "PAUSED",
                      "id": "mine", "statistics": {"failed": true}});

    // Act
    let resp = server.post(&vis("/self/webhooks"), &token, &body).await;

    // Assert
    resp.expect(201);
    let w = resp.json();
    assert_eq!(w["status"], "ACTIVE", "extra fields cannot set the status");
    assert_ne!(w["id"], "mine", "extra fields cannot choose the id");
    assert_eq!(w["statistics"]["failed"], false);
    assert_eq!(keys(&resp.text, ""), webhook_keys(false, false));
}

#[tokio::test]
async fn a_create_body_that_is_json_but_not_an_object_is_refused_with_422_body() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");

    for body in [
        "[]",
        "[{\"url\": \"https://example.com\"}]",
        "\"https://example.com\"",
        "42",
        "null",
        "true",
    ] {
        // Act
        let resp = server
            .post_json_text(&vis("/self/webhooks"), &token, body)
            .await;

        // Assert
        assert_eq!(resp.expect_validation(), ["body"], "body {body}");
        assert_no_webhooks(&server, &token, body).await;
    }
}

#[tokio::test]
async fn malformed_create_json_is_refused_with_400_and_nothing_is_stored() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    // The seed's own curl --data-raw forgets the closing brace.
    let seed_curl = SEED_BODY.trim_end_matches('}');

    for body in [
        seed_curl,
        "{",
        "{\"url\": }",
        "not json",
        "{\"url\": \"https://e.com\",}",
        "",
    ] {
        // Act
        let resp = server
            .post_json_text(&vis("/self/webhooks/"), &token, body)
            .await;

        // Assert
        resp.expect_error(400, "BAD_REQUEST");
        assert_no_webhooks(&server, &token, body).await;
    }
}

#[tokio::test]
async fn a_create_body_that_is_not_declared_json_is_refused_with_415() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");

    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/xml"),
        None,
    ] {
        // Act
        let resp = server
            .post_raw(&vis("/self/webhooks"), &token, content_type, SEED_BODY)
            .await;

        // Assert
        resp.expect_error(415, "UNSUPPORTED_MEDIA_TYPE");
        assert_no_webhooks(&server, &token, &format!("{content_type:?}")).await;
    }
}

#[tokio::test]
async fn a_json_content_type_with_a_charset_parameter_is_accepted() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");

    // Act
    let resp = server
        .post_raw(
            &vis("/self/webhooks"),
            &token,
            Some("application/json; charset=utf-8"),
            SEED_BODY,
        )
        .await;

    // Assert
    resp.expect(201);
}

#[tokio::test]
async fn a_create_body_over_64_kib_is_refused_with_413() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let body =
        json!({"url": "https://example.com/h", "signingKey": "k".repeat(65 * 1024)}).to_string();
    assert!(body.len() > 64 * 1024);

    // Act
    let resp = server
        .post_json_text(&vis("/self/webhooks"), &token, body)
        .await;

    // Assert
    resp.expect_error(413, "PAYLOAD_TOO_LARGE");
    assert_no_webhooks(&server, &token, "huge body").await;
}

#[tokio::test]
async fn a_create_body_of_exactly_64_kib_is_accepted() {
    // Arrange: unknown fields are ignored on create, so one pads the body to the limit.
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let skeleton = json!({"url": "https://example.com/h", "padding": ""}).to_string();
    let padding = "p".repeat(64 * 1024 - skeleton.len());
    let body = json!({"url": "https://example.com/h", "padding": padding}).to_string();
    assert_eq!(body.len(), 64 * 1024);

    // Act
    let resp = server
        .post_json_text(&vis("/self/webhooks"), &token, body)
        .await;

    // Assert
    resp.expect(201);
}

#[tokio::test]
async fn a_url_with_port_path_and_query_is_kept_exactly() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let url = "http://127.0.0.1:3000/webhook/v1?tenant=acme&x=1";

    // Act
    let w = server.create_webhook(&token, &minimal_webhook(url)).await;

    // Assert
    assert_eq!(w["url"], url);
}

#[tokio::test]
async fn concurrent_creates_each_make_their_own_webhook() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let bodies: Vec<Value> = (0..20)
        .map(|i| minimal_webhook(&format!("https://example.com/{i}")))
        .collect();

    // Act
    let path = vis("/self/webhooks");
    let resps = join_all(bodies.iter().map(|b| server.post(&path, &token, b))).await;

    // Assert
    assert!(
        resps.iter().all(|r| r.status == 201),
        "{:?}",
        resps.iter().filter(|r| r.status != 201).collect::<Vec<_>>()
    );
    let mut ids: Vec<String> = resps
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "distinct ids");
    assert_eq!(server.webhooks(&token).await.len(), 20);
}
