//! Webhook subscriptions (`/self/webhooks`): the seed's own sequence, the `Webhook` shape, create
//! validation, get/list/delete/renew, ownership, and the expire/purge lifecycle.

mod support;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use support::*;

const ORDER: [&str; 16] = [
    "id",
    "userId",
    "accountId",
    "url",
    "status",
    "events",
    "signingAlgo",
    "signingKey",
    "metadataPolicy",
    "expireAt",
    "createdAt",
    "createdBy",
    "renewedAt",
    "renewedBy",
    "purgeAt",
    "statistics",
];

/// The seed's create body, byte for byte in its whitespace style, with a concrete URL.
const SEED_BODY: &str = "{\n \"url\": \"https://example.ngrok.io/webhook\",\n \"events\": [\n \"CALL\"\n ],\n \"signingAlgo\": \"HMAC_SHA256\",\n \"signingKey\": \"string\",\n \"metadataPolicy\": \"NONE\"\n}";

/// The exact key list a webhook must have, given which optional keys are present.
fn expected_keys(signing_key: bool, renewed: bool) -> Vec<&'static str> {
    ORDER
        .iter()
        .copied()
        .filter(|k| signing_key || *k != "signingKey")
        .filter(|k| renewed || (*k != "renewedAt" && *k != "renewedBy"))
        .collect()
}

fn minimal(url: &str) -> Value {
    json!({ "url": url })
}

async fn assert_no_webhooks(server: &Server, token: &str, context: &str) {
    let list = server.webhooks(token).await;
    assert!(list.is_empty(), "{context}: bad request must store nothing, list is {list:?}");
}

#[tokio::test]
async fn seed_sequence_creates_lists_deletes_and_the_webhook_is_gone() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("257073", "522078");

    // Act: the seed's curl request, exactly (trailing slash, its JSON, its headers).
    let created = server
        .req("POST", &vis("/self/webhooks/"))
        .bearer(&token)
        .raw(Some("application/json"), SEED_BODY)
        .send()
        .await;

    // Assert
    created.expect(201);
    let webhook = created.json();
    assert_eq!(webhook["url"], "https://example.ngrok.io/webhook");
    assert_eq!(webhook["events"], json!(["CALL"]));
    assert_eq!(webhook["signingAlgo"], "HMAC_SHA256");
    assert_eq!(webhook["signingKey"], "string");
    assert_eq!(webhook["metadataPolicy"], "NONE");
    assert_eq!(webhook["status"], "ACTIVE");
    assert_eq!(webhook["statistics"]["failed"], false);
    let id = webhook["id"].as_str().expect("string id").to_string();

    let listed = server.get(&vis("/self/webhooks/"), &token).await;
    listed.expect(200);
    assert_eq!(listed.json(), json!([webhook]), "the list holds exactly the new webhook");

    let deleted = server.delete(&vis(&format!("/self/webhooks/{id}")), &token).await;
    deleted.expect(204);
    assert!(deleted.text.is_empty(), "204 must have an empty body: {deleted:?}");

    let again = server.get(&vis("/self/webhooks/"), &token).await;
    again.expect(200);
    assert_eq!(again.json(), json!([]), "the deleted webhook no longer exists");
}

#[tokio::test]
async fn seed_recovery_recipe_creating_again_then_deleting_the_old_one_works() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let old = server.create_webhook(&token, &serde_json::from_str(SEED_BODY).unwrap()).await;

    // Act: create the same subscription again, then delete the old one.
    let new = server.create_webhook(&token, &serde_json::from_str(SEED_BODY).unwrap()).await;
    server
        .delete(&vis(&format!("/self/webhooks/{}", old["id"].as_str().unwrap())), &token)
        .await
        .expect(204);

    // Assert
    assert_ne!(old["id"], new["id"], "each create makes a new webhook");
    assert_eq!(server.webhooks(&token).await, vec![new]);
}

#[tokio::test]
async fn created_webhook_has_every_vis_field_in_the_contract_key_order() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("257073", "522078");

    // Act
    let resp = server
        .post(
            &vis("/self/webhooks"),
            &token,
            &json!({"url": "https://example.com/hook", "events": ["CALL"], "signingAlgo": "HMAC_SHA256",
                    "signingKey": "s3cret", "metadataPolicy": "HEADER"}),
        )
        .await;

    // Assert
    resp.expect(201);
    assert!(resp.is_json(), "webhook must be application/json: {resp:?}");
    assert_eq!(keys(&resp.text, ""), expected_keys(true, false), "{resp:?}");
    let w = resp.json();
    assert!(w["id"].as_str().is_some_and(|s| !s.is_empty()), "id is a non-empty string: {w}");
    assert_eq!(w["userId"], "522078");
    assert_eq!(w["accountId"], "257073");
    assert_eq!(w["url"], "https://example.com/hook");
    assert_eq!(w["status"], "ACTIVE");
    assert_eq!(w["events"], json!(["CALL"]));
    assert_eq!(w["signingAlgo"], "HMAC_SHA256");
    assert_eq!(w["signingKey"], "s3cret", "signingKey is echoed back in clear");
    assert_eq!(w["metadataPolicy"], "HEADER");
    assert_eq!(w["createdBy"], "522078");
    assert_eq!(
        w["statistics"],
        json!({"totalAttempts": 0, "totalSuccesses": 0, "totalFailures": 0, "failed": false})
    );
    assert_eq!(
        keys(&resp.text, "/statistics"),
        ["totalAttempts", "totalSuccesses", "totalFailures", "failed"]
    );
    assert_no_nulls(&w, "webhook");
}

#[tokio::test]
async fn lifecycle_timestamps_default_to_ten_days_to_expiry_and_thirty_more_to_purge() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let before = Utc::now();

    // Act
    let w = server.create_webhook(&token, &minimal("https://example.com/hook")).await;

    // Assert
    let after = Utc::now();
    let created = parse_webhook_time(w["createdAt"].as_str().unwrap());
    let expire = parse_webhook_time(w["expireAt"].as_str().unwrap());
    let purge = parse_webhook_time(w["purgeAt"].as_str().unwrap());
    let slack = TimeDelta::seconds(2);
    assert!(
        created >= before - slack && created <= after + slack,
        "createdAt {created} is not now ({before}..{after})"
    );
    assert_eq!(expire - created, TimeDelta::days(10), "expireAt = createdAt + 10 days");
    assert_eq!(purge - expire, TimeDelta::days(30), "purgeAt = expireAt + 30 days");
}

#[tokio::test]
async fn lifecycle_periods_follow_the_serve_flags() {
    // Arrange
    let server = Server::start_with(&["--webhook-ttl", "90s", "--purge-grace", "2d"]);
    let token = server.user_token("a1", "u1");

    // Act
    let w = server.create_webhook(&token, &minimal("https://example.com/hook")).await;

    // Assert
    let created = parse_webhook_time(w["createdAt"].as_str().unwrap());
    let expire = parse_webhook_time(w["expireAt"].as_str().unwrap());
    let purge = parse_webhook_time(w["purgeAt"].as_str().unwrap());
    assert_eq!(expire - created, TimeDelta::seconds(90));
    assert_eq!(purge - expire, TimeDelta::days(2));
}

#[tokio::test]
async fn omitted_create_fields_get_their_defaults_and_no_signing_key() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");

    // Act
    let resp = server.post(&vis("/self/webhooks"), &token, &minimal("http://localhost:3000/webhook")).await;

    // Assert
    resp.expect(201);
    assert_eq!(keys(&resp.text, ""), expected_keys(false, false), "{resp:?}");
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
        .create_webhook(&token, &json!({"url": "https://example.com/h", "signingKey": "k"}))
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

    for (algo, policy) in [("NONE", "NONE"), ("HMAC_SHA256", "HEADER"), ("HMAC_SHA256", "BODY")] {
        // Act
        let w = server
            .create_webhook(
                &token,
                &json!({"url": "https://example.com/h", "signingAlgo": algo, "signingKey": "k", "metadataPolicy": policy}),
            )
            .await;

        // Assert
        assert_eq!((w["signingAlgo"].as_str(), w["metadataPolicy"].as_str()), (Some(algo), Some(policy)));
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
        ("metadataPolicy", json!({"url": ok, "metadataPolicy": "ALL"})),
        ("metadataPolicy", json!({"url": ok, "metadataPolicy": "none"})),
        ("metadataPolicy", json!({"url": ok, "metadataPolicy": true})),
    ];

    for (field, body) in cases {
        // Act
        let resp = server.post(&vis("/self/webhooks"), &token, &body).await;

        // Assert
        assert_eq!(resp.expect_validation(), vec![field.to_string()], "body {body}: {resp:?}");
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
        ["events", "metadataPolicy", "signingAlgo", "signingKey", "url"]
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
    assert_eq!(keys(&resp.text, ""), expected_keys(false, false));
}

#[tokio::test]
async fn a_create_body_that_is_json_but_not_an_object_is_refused_with_422_body() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");

    for body in ["[]", "[{\"url\": \"https://example.com\"}]", "\"https://example.com\"", "42", "null", "true"] {
        // Act
        let resp = server
            .req("POST", &vis("/self/webhooks"))
            .bearer(&token)
            .raw(Some("application/json"), body)
            .send()
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

    for body in [seed_curl, "{", "{\"url\": }", "not json", "{\"url\": \"https://e.com\",}", ""] {
        // Act
        let resp = server
            .req("POST", &vis("/self/webhooks/"))
            .bearer(&token)
            .raw(Some("application/json"), body)
            .send()
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

    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("application/xml"), None] {
        // Act
        let resp = server
            .req("POST", &vis("/self/webhooks"))
            .bearer(&token)
            .raw(content_type, SEED_BODY)
            .send()
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
        .req("POST", &vis("/self/webhooks"))
        .bearer(&token)
        .raw(Some("application/json; charset=utf-8"), SEED_BODY)
        .send()
        .await;

    // Assert
    resp.expect(201);
}

#[tokio::test]
async fn a_create_body_over_64_kib_is_refused_with_413() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let body = json!({"url": "https://example.com/h", "signingKey": "k".repeat(65 * 1024)}).to_string();
    assert!(body.len() > 64 * 1024);

    // Act
    let resp = server
        .req("POST", &vis("/self/webhooks"))
        .bearer(&token)
        .raw(Some("application/json"), body)
        .send()
        .await;

    // Assert
    resp.expect_error(413, "PAYLOAD_TOO_LARGE");
    assert_no_webhooks(&server, &token, "huge body").await;
}

#[tokio::test]
async fn list_is_a_bare_array_holding_each_of_the_users_webhooks() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let a = server.create_webhook(&token, &minimal("https://a.example.com/h")).await;
    let b = server.create_webhook(&token, &minimal("https://b.example.com/h")).await;

    // Act
    let resp = server.get(&vis("/self/webhooks"), &token).await;

    // Assert
    resp.expect(200);
    assert!(resp.is_json());
    let list = resp.json();
    let list = list.as_array().expect("bare array");
    assert_eq!(list.len(), 2);
    assert!(list.contains(&a) && list.contains(&b), "{list:?}");
    for i in 0..2 {
        assert_eq!(keys(&resp.text, &format!("/{i}")), expected_keys(false, false));
    }
}

#[tokio::test]
async fn get_returns_the_webhook_as_created() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let w = server.create_webhook(&token, &serde_json::from_str(SEED_BODY).unwrap()).await;
    let id = w["id"].as_str().unwrap();

    // Act
    let resp = server.get(&vis(&format!("/self/webhooks/{id}")), &token).await;

    // Assert
    resp.expect(200);
    assert_eq!(resp.json(), w);
    assert_eq!(keys(&resp.text, ""), expected_keys(true, false));
}

#[tokio::test]
async fn unknown_webhook_ids_are_404_on_get_delete_and_renew() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let kept = server.create_webhook(&token, &minimal("https://example.com/h")).await;

    for id in ["00000000-0000-0000-0000-000000000000", "nope", "123", "%20"] {
        // Act
        let get = server.get(&vis(&format!("/self/webhooks/{id}")), &token).await;
        let delete = server.delete(&vis(&format!("/self/webhooks/{id}")), &token).await;
        let renew = server.put(&vis(&format!("/self/webhooks/{id}/renew")), &token).await;

        // Assert
        get.expect_error(404, "NOT_FOUND");
        delete.expect_error(404, "NOT_FOUND");
        renew.expect_error(404, "NOT_FOUND");
    }
    assert_eq!(server.webhooks(&token).await, vec![kept], "nothing changed");
}

#[tokio::test]
async fn delete_answers_204_with_an_empty_body_and_a_second_delete_404() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let gone = server.create_webhook(&token, &minimal("https://gone.example.com/h")).await;
    let kept = server.create_webhook(&token, &minimal("https://kept.example.com/h")).await;
    let path = vis(&format!("/self/webhooks/{}", gone["id"].as_str().unwrap()));

    // Act
    let first = server.delete(&path, &token).await;
    let second = server.delete(&path, &token).await;

    // Assert
    first.expect(204);
    assert!(first.text.is_empty(), "{first:?}");
    second.expect_error(404, "NOT_FOUND");
    server.get(&path, &token).await.expect_error(404, "NOT_FOUND");
    assert_eq!(server.webhooks(&token).await, vec![kept], "only the deleted webhook went away");
}

#[tokio::test]
async fn renew_moves_expiry_and_purge_forward_and_records_who_renewed() {
    // Arrange
    let server = Server::start_with(&["--webhook-ttl", "1d", "--purge-grace", "3d"]);
    let token = server.user_token("a1", "u1");
    let w = server.create_webhook(&token, &json!({"url": "https://example.com/h", "signingKey": "k"})).await;
    let id = w["id"].as_str().unwrap();

    // Act
    let resp = server.put(&vis(&format!("/self/webhooks/{id}/renew")), &token).await;

    // Assert
    resp.expect(200);
    assert_eq!(keys(&resp.text, ""), expected_keys(true, true), "{resp:?}");
    let r = resp.json();
    let renewed_at = parse_webhook_time(r["renewedAt"].as_str().unwrap());
    let expire = parse_webhook_time(r["expireAt"].as_str().unwrap());
    let purge = parse_webhook_time(r["purgeAt"].as_str().unwrap());
    assert!(renewed_at >= parse_webhook_time(w["createdAt"].as_str().unwrap()));
    assert_eq!(expire - renewed_at, TimeDelta::days(1), "expireAt = renewedAt + ttl");
    assert_eq!(purge - expire, TimeDelta::days(3), "purgeAt = expireAt + grace");
    assert!(expire >= parse_webhook_time(w["expireAt"].as_str().unwrap()));
    assert_eq!(r["renewedBy"], "u1");
    for same in ["id", "userId", "accountId", "url", "status", "events", "signingAlgo", "signingKey",
                 "metadataPolicy", "createdAt", "createdBy", "statistics"] {
        assert_eq!(r[same], w[same], "renew must keep {same}");
    }
    assert_eq!(server.get_json(&vis(&format!("/self/webhooks/{id}")), &token).await, r, "renewal is stored");
}

#[tokio::test]
async fn renew_ignores_any_body() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let w = server.create_webhook(&token, &minimal("https://example.com/h")).await;
    let path = vis(&format!("/self/webhooks/{}/renew", w["id"].as_str().unwrap()));

    // Act
    let with_json = server
        .req("PUT", &path)
        .bearer(&token)
        .json(&json!({"url": "https://evil.example.com", "expireAt": "2099-01-01T00:00:00.000Z"}))
        .send()
        .await;
    let with_text = server.req("PUT", &path).bearer(&token).raw(Some("text/plain"), "hello").send().await;

    // Assert
    with_json.expect(200);
    with_text.expect(200);
    assert_eq!(with_text.json()["url"], "https://example.com/h");
    assert_eq!(with_text.json()["createdAt"], w["createdAt"]);
}

#[tokio::test]
async fn another_users_webhook_is_404_on_every_route_never_listed_and_left_untouched() {
    // Arrange
    let server = Server::start();
    let owner = server.user_token("a1", "u1");
    let colleague = server.user_token("a1", "u2");
    let stranger = server.user_token("a2", "u9");
    let w = server
        .create_webhook(&owner, &json!({"url": "https://owner.example.com/secret-path", "signingKey": "owner-key"}))
        .await;
    let id = w["id"].as_str().unwrap();
    let unknown = "ffffffff-ffff-ffff-ffff-ffffffffffff";

    for other in [&colleague, &stranger] {
        // Act
        let get = server.get(&vis(&format!("/self/webhooks/{id}")), other).await;
        let renew = server.put(&vis(&format!("/self/webhooks/{id}/renew")), other).await;
        let delete = server.delete(&vis(&format!("/self/webhooks/{id}")), other).await;
        let list = server.webhooks(other).await;
        let control = server.get(&vis(&format!("/self/webhooks/{unknown}")), other).await;

        // Assert
        for resp in [&get, &renew, &delete] {
            resp.expect_error(404, "NOT_FOUND");
            assert!(!resp.text.contains("owner.example.com") && !resp.text.contains("owner-key"), "leak: {resp:?}");
            assert_eq!(
                resp.error_message().replace(id, "ID"),
                control.error_message().replace(unknown, "ID"),
                "another user's id must look exactly like an unknown id"
            );
        }
        assert!(list.is_empty(), "another user's webhook must never be listed: {list:?}");
    }
    assert_eq!(server.webhooks(&owner).await, vec![w], "the owner's webhook is unchanged");
}

#[tokio::test]
async fn webhooks_past_purge_at_are_deleted_by_the_background_task() {
    // Arrange
    let server = Server::start_with(&["--webhook-ttl", "200ms", "--purge-grace", "200ms"]);
    let token = server.user_token("a1", "u1");
    let w = server.create_webhook(&token, &minimal("https://example.com/h")).await;
    let created = parse_webhook_time(w["createdAt"].as_str().unwrap());
    assert_eq!(parse_webhook_time(w["purgeAt"].as_str().unwrap()) - created, TimeDelta::milliseconds(400));

    // Act: wait for the purge, bounded by a deadline.
    eventually("the webhook to be purged", Duration::from_secs(15), || async {
        server.webhooks(&token).await.is_empty().then_some(())
    })
    .await;

    // Assert
    server
        .get(&vis(&format!("/self/webhooks/{}", w["id"].as_str().unwrap())), &token)
        .await
        .expect_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn expired_webhooks_are_still_listed_before_purge_and_renew_revives_them() {
    // Arrange
    let server = Server::start_with(&["--webhook-ttl", "200ms", "--purge-grace", "1h"]);
    let token = server.user_token("a1", "u1");
    let w = server.create_webhook(&token, &minimal("https://example.com/h")).await;
    let expire = parse_webhook_time(w["expireAt"].as_str().unwrap());
    eventually("the webhook to expire", Duration::from_secs(10), || async {
        (Utc::now() > expire + TimeDelta::milliseconds(50)).then_some(())
    })
    .await;

    // Act
    let list = server.webhooks(&token).await;
    let renewed = server.put(&vis(&format!("/self/webhooks/{}/renew", w["id"].as_str().unwrap())), &token).await;

    // Assert
    assert_eq!(list, vec![w.clone()], "an expired webhook is still listed, unchanged");
    renewed.expect(200);
    let new_expire = parse_webhook_time(renewed.json()["expireAt"].as_str().unwrap());
    assert!(new_expire > expire, "renew moves expireAt past the old one");
}

#[tokio::test]
async fn webhook_routes_answer_under_both_prefixes_with_and_without_trailing_slash() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");

    // Act + Assert: create under the short prefix with a slash.
    let w = {
        let resp = server.post(&vis_short("/self/webhooks/"), &token, &minimal("https://example.com/h")).await;
        resp.expect(201);
        resp.json()
    };
    let id = w["id"].as_str().unwrap();
    let w2 = {
        let resp = server.post(&vis_short("/self/webhooks"), &token, &minimal("https://example.com/2")).await;
        resp.expect(201);
        resp.json()
    };

    for base in [VIS, VIS_SHORT] {
        for slash in ["", "/"] {
            let list = server.get(&format!("{base}/self/webhooks{slash}"), &token).await;
            list.expect(200);
            assert_eq!(list.json().as_array().map(Vec::len), Some(2), "{list:?}");
            let one = server.get(&format!("{base}/self/webhooks/{id}{slash}"), &token).await;
            one.expect(200);
            assert_eq!(one.json()["id"], w["id"]);
            server.put(&format!("{base}/self/webhooks/{id}/renew{slash}"), &token).await.expect(200);
        }
    }
    server.delete(&vis_short(&format!("/self/webhooks/{id}/")), &token).await.expect(204);
    server
        .delete(&vis(&format!("/self/webhooks/{}/", w2["id"].as_str().unwrap())), &token)
        .await
        .expect(204);
    assert!(server.webhooks(&token).await.is_empty());
}

#[tokio::test]
async fn unsupported_methods_on_webhook_routes_answer_405_in_vis_shape() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let w = server.create_webhook(&token, &minimal("https://example.com/h")).await;
    let id = w["id"].as_str().unwrap();

    for (method, path) in [
        ("PUT", vis("/self/webhooks")),
        ("DELETE", vis("/self/webhooks")),
        ("PATCH", vis(&format!("/self/webhooks/{id}"))),
        ("POST", vis(&format!("/self/webhooks/{id}"))),
        ("GET", vis(&format!("/self/webhooks/{id}/renew"))),
    ] {
        // Act
        let resp = server.req(method, &path).bearer(&token).send().await;

        // Assert
        resp.expect_error(405, "METHOD_NOT_ALLOWED");
    }
    assert_eq!(server.webhooks(&token).await, vec![w]);
}
