//! Webhook subscriptions (`/self/webhooks`): the seed's own sequence, the `Webhook` shape,
//! get/list/delete/renew, ownership, and the expire/purge lifecycle.

mod support;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::json;
use support::*;

#[tokio::test]
async fn seed_sequence_creates_lists_deletes_and_the_webhook_is_gone() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("257073", "522078");

    // Act: the seed's curl request, exactly (trailing slash, its JSON, its headers).
    let created = server
        .post_json_text(&vis("/self/webhooks/"), &token, SEED_BODY)
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
    assert_eq!(
        listed.json(),
        json!([webhook]),
        "the list holds exactly the new webhook"
    );

    let deleted = server
        .delete(&vis(&format!("/self/webhooks/{id}")), &token)
        .await;
    deleted.expect(204);
    assert!(
        deleted.text.is_empty(),
        "204 must have an empty body: {deleted:?}"
    );

    let again = server.get(&vis("/self/webhooks/"), &token).await;
    again.expect(200);
    assert_eq!(
        again.json(),
        json!([]),
        "the deleted webhook no longer exists"
    );
}

#[tokio::test]
async fn seed_recovery_recipe_creating_again_then_deleting_the_old_one_works() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let old = server
        .create_webhook(&token, &serde_json::from_str(SEED_BODY).unwrap())
        .await;

    // Act: create the same subscription again, then delete the old one.
    let new = server
        .create_webhook(&token, &serde_json::from_str(SEED_BODY).unwrap())
        .await;
    server
        .delete(
            &vis(&format!("/self/webhooks/{}", old["id"].as_str().unwrap())),
            &token,
        )
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
    assert_eq!(keys(&resp.text, ""), webhook_keys(true, false), "{resp:?}");
    let w = resp.json();
    assert!(
        w["id"].as_str().is_some_and(|s| !s.is_empty()),
        "id is a non-empty string: {w}"
    );
    assert_eq!(w["userId"], "522078");
    assert_eq!(w["accountId"], "257073");
    assert_eq!(w["url"], "https://example.com/hook");
    assert_eq!(w["status"], "ACTIVE");
    assert_eq!(w["events"], json!(["CALL"]));
    assert_eq!(w["signingAlgo"], "HMAC_SHA256");
    assert_eq!(
        w["signingKey"], "s3cret",
        "signingKey is echoed back in clear"
    );
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
    let w = server
        .create_webhook(&token, &minimal_webhook("https://example.com/hook"))
        .await;

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
    assert_eq!(
        expire - created,
        TimeDelta::days(10),
        "expireAt = createdAt + 10 days"
    );
    assert_eq!(
        purge - expire,
        TimeDelta::days(30),
        "purgeAt = expireAt + 30 days"
    );
}

#[tokio::test]
async fn lifecycle_periods_follow_the_serve_flags() {
    // Arrange
    let server = Server::start_with(&["--webhook-ttl", "90s", "--purge-grace", "2d"]);
    let token = server.user_token("a1", "u1");

    // Act
    let w = server
        .create_webhook(&token, &minimal_webhook("https://example.com/hook"))
        .await;

    // Assert
    let created = parse_webhook_time(w["createdAt"].as_str().unwrap());
    let expire = parse_webhook_time(w["expireAt"].as_str().unwrap());
    let purge = parse_webhook_time(w["purgeAt"].as_str().unwrap());
    assert_eq!(expire - created, TimeDelta::seconds(90));
    assert_eq!(purge - expire, TimeDelta::days(2));
}

#[tokio::test]
async fn list_is_a_bare_array_holding_each_of_the_users_webhooks() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let a = server
        .create_webhook(&token, &minimal_webhook("https://a.example.com/h"))
        .await;
    let b = server
        .create_webhook(&token, &minimal_webhook("https://b.example.com/h"))
        .await;

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
        assert_eq!(
            keys(&resp.text, &format!("/{i}")),
            webhook_keys(false, false)
        );
    }
}

#[tokio::test]
async fn get_returns_the_webhook_as_created() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let w = server
        .create_webhook(&token, &serde_json::from_str(SEED_BODY).unwrap())
        .await;
    let id = w["id"].as_str().unwrap();

    // Act
    let resp = server
        .get(&vis(&format!("/self/webhooks/{id}")), &token)
        .await;

    // Assert
    resp.expect(200);
    assert_eq!(resp.json(), w);
    assert_eq!(keys(&resp.text, ""), webhook_keys(true, false));
}

#[tokio::test]
async fn unknown_webhook_ids_are_404_on_get_delete_and_renew() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let kept = server
        .create_webhook(&token, &minimal_webhook("https://example.com/h"))
        .await;

    for id in ["00000000-0000-0000-0000-000000000000", "nope", "123", "%20"] {
        // Act
        let get = server
            .get(&vis(&format!("/self/webhooks/{id}")), &token)
            .await;
        let delete = server
            .delete(&vis(&format!("/self/webhooks/{id}")), &token)
            .await;
        let renew = server
            .put(&vis(&format!("/self/webhooks/{id}/renew")), &token)
            .await;

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
    let gone = server
        .create_webhook(&token, &minimal_webhook("https://gone.example.com/h"))
        .await;
    let kept = server
        .create_webhook(&token, &minimal_webhook("https://kept.example.com/h"))
        .await;
    let path = vis(&format!("/self/webhooks/{}", gone["id"].as_str().unwrap()));

    // Act
    let first = server.delete(&path, &token).await;
    let second = server.delete(&path, &token).await;

    // Assert
    first.expect(204);
    assert!(first.text.is_empty(), "{first:?}");
    second.expect_error(404, "NOT_FOUND");
    server
        .get(&path, &token)
        .await
        .expect_error(404, "NOT_FOUND");
    assert_eq!(
        server.webhooks(&token).await,
        vec![kept],
        "only the deleted webhook went away"
    );
}

#[tokio::test]
async fn renew_moves_expiry_and_purge_forward_and_records_who_renewed() {
    // Arrange
    let server = Server::start_with(&["--webhook-ttl", "1d", "--purge-grace", "3d"]);
    let token = server.user_token("a1", "u1");
    let w = server
        .create_webhook(
            &token,
            &json!({"url": "https://example.com/h", "signingKey": "k"}),
        )
        .await;
    let id = w["id"].as_str().unwrap();

    // Act
    let resp = server
        .put(&vis(&format!("/self/webhooks/{id}/renew")), &token)
        .await;

    // Assert
    resp.expect(200);
    assert_eq!(keys(&resp.text, ""), webhook_keys(true, true), "{resp:?}");
    let r = resp.json();
    let renewed_at = parse_webhook_time(r["renewedAt"].as_str().unwrap());
    let expire = parse_webhook_time(r["expireAt"].as_str().unwrap());
    let purge = parse_webhook_time(r["purgeAt"].as_str().unwrap());
    assert!(renewed_at >= parse_webhook_time(w["createdAt"].as_str().unwrap()));
    assert_eq!(
        expire - renewed_at,
        TimeDelta::days(1),
        "expireAt = renewedAt + ttl"
    );
    assert_eq!(
        purge - expire,
        TimeDelta::days(3),
        "purgeAt = expireAt + grace"
    );
    assert!(expire >= parse_webhook_time(w["expireAt"].as_str().unwrap()));
    assert_eq!(r["renewedBy"], "u1");
    for same in [
        "id",
        "userId",
        "accountId",
        "url",
        "status",
        "events",
        "signingAlgo",
        "signingKey",
        "metadataPolicy",
        "createdAt",
        "createdBy",
        "statistics",
    ] {
        assert_eq!(r[same], w[same], "renew must keep {same}");
    }
    assert_eq!(
        server
            .get_json(&vis(&format!("/self/webhooks/{id}")), &token)
            .await,
        r,
        "renewal is stored"
    );
}

#[tokio::test]
async fn renew_ignores_any_body() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let w = server
        .create_webhook(&token, &minimal_webhook("https://example.com/h"))
        .await;
    let path = vis(&format!(
        "/self/webhooks/{}/renew",
        w["id"].as_str().unwrap()
    ));

    // Act
    let with_json = server
        .req("PUT", &path)
        .bearer(&token)
        .json(&json!({"url": "https://evil.example.com", "expireAt": "2099-01-01T00:00:00.000Z"}))
        .send()
        .await;
    let with_text = server
        .req("PUT", &path)
        .bearer(&token)
        .raw(Some("text/plain"), "hello")
        .send()
        .await;

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
        .create_webhook(
            &owner,
            &json!({"url": "https://owner.example.com/secret-path", "signingKey": "owner-key"}),
        )
        .await;
    let id = w["id"].as_str().unwrap();
    let unknown = "ffffffff-ffff-ffff-ffff-ffffffffffff";

    for other in [&colleague, &stranger] {
        // Act
        let get = server
            .get(&vis(&format!("/self/webhooks/{id}")), other)
            .await;
        let renew = server
            .put(&vis(&format!("/self/webhooks/{id}/renew")), other)
            .await;
        let delete = server
            .delete(&vis(&format!("/self/webhooks/{id}")), other)
            .await;
        let list = server.webhooks(other).await;
        let control = server
            .get(&vis(&format!("/self/webhooks/{unknown}")), other)
            .await;

        // Assert
        for resp in [&get, &renew, &delete] {
            resp.expect_error(404, "NOT_FOUND");
            assert!(
                !resp.text.contains("owner.example.com") && !resp.text.contains("owner-key"),
                "leak: {resp:?}"
            );
            assert_eq!(
                resp.error_message().replace(id, "ID"),
                control.error_message().replace(unknown, "ID"),
                "another user's id must look exactly like an unknown id"
            );
        }
        assert!(
            list.is_empty(),
            "another user's webhook must never be listed: {list:?}"
        );
    }
    assert_eq!(
        server.webhooks(&owner).await,
        vec![w],
        "the owner's webhook is unchanged"
    );
}

#[tokio::test]
async fn webhooks_past_purge_at_are_deleted_by_the_background_task() {
    // Arrange
    let server = Server::start_with(&["--webhook-ttl", "200ms", "--purge-grace", "200ms"]);
    let token = server.user_token("a1", "u1");
    let w = server
        .create_webhook(&token, &minimal_webhook("https://example.com/h"))
        .await;
    let created = parse_webhook_time(w["createdAt"].as_str().unwrap());
    assert_eq!(
        parse_webhook_time(w["purgeAt"].as_str().unwrap()) - created,
        TimeDelta::milliseconds(400)
    );

    // Act: wait for the purge, bounded by a deadline.
    eventually(
        "the webhook to be purged",
        Duration::from_secs(15),
        || async { server.webhooks(&token).await.is_empty().then_some(()) },
    )
    .await;

    // Assert
    server
        .get(
            &vis(&format!("/self/webhooks/{}", w["id"].as_str().unwrap())),
            &token,
        )
        .await
        .expect_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn expired_webhooks_are_still_listed_before_purge_and_renew_revives_them() {
    // Arrange
    let server = Server::start_with(&["--webhook-ttl", "200ms", "--purge-grace", "1h"]);
    let token = server.user_token("a1", "u1");
    let w = server
        .create_webhook(&token, &minimal_webhook("https://example.com/h"))
        .await;
    let expire = parse_webhook_time(w["expireAt"].as_str().unwrap());
    eventually("the webhook to expire", Duration::from_secs(10), || async {
        (Utc::now() > expire + TimeDelta::milliseconds(50)).then_some(())
    })
    .await;

    // Act
    let list = server.webhooks(&token).await;
    let renewed = server
        .put(
            &vis(&format!(
                "/self/webhooks/{}/renew",
                w["id"].as_str().unwrap()
            )),
            &token,
        )
        .await;

    // Assert
    assert_eq!(
        list,
        vec![w.clone()],
        "an expired webhook is still listed, unchanged"
    );
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
        let resp = server
            .post(
                &vis_short("/self/webhooks/"),
                &token,
                &minimal_webhook("https://example.com/h"),
            )
            .await;
        resp.expect(201);
        resp.json()
    };
    let id = w["id"].as_str().unwrap();
    let w2 = {
        let resp = server
            .post(
                &vis_short("/self/webhooks"),
                &token,
                &minimal_webhook("https://example.com/2"),
            )
            .await;
        resp.expect(201);
        resp.json()
    };

    for base in [VIS, VIS_SHORT] {
        for slash in ["", "/"] {
            let list = server
                .get(&format!("{base}/self/webhooks{slash}"), &token)
                .await;
            list.expect(200);
            assert_eq!(list.json().as_array().map(Vec::len), Some(2), "{list:?}");
            let one = server
                .get(&format!("{base}/self/webhooks/{id}{slash}"), &token)
                .await;
            one.expect(200);
            assert_eq!(one.json()["id"], w["id"]);
            server
                .put(&format!("{base}/self/webhooks/{id}/renew{slash}"), &token)
                .await
                .expect(200);
        }
    }
    server
        .delete(&vis_short(&format!("/self/webhooks/{id}/")), &token)
        .await
        .expect(204);
    server
        .delete(
            &vis(&format!("/self/webhooks/{}/", w2["id"].as_str().unwrap())),
            &token,
        )
        .await
        .expect(204);
    assert!(server.webhooks(&token).await.is_empty());
}

#[tokio::test]
async fn unsupported_methods_on_webhook_routes_answer_405_in_vis_shape() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let w = server
        .create_webhook(&token, &minimal_webhook("https://example.com/h"))
        .await;
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

#[tokio::test]
async fn webhook_ids_are_unique_across_users() {
    // Arrange
    let server = Server::start();
    let a = server.user_token("a1", "u1");
    let b = server.user_token("a2", "u2");

    // Act
    let wa = server
        .create_webhook(&a, &minimal_webhook("https://example.com/a"))
        .await;
    let wb = server
        .create_webhook(&b, &minimal_webhook("https://example.com/b"))
        .await;

    // Assert
    assert_ne!(wa["id"], wb["id"]);
    assert_eq!(
        (wa["userId"].as_str(), wa["accountId"].as_str()),
        (Some("u1"), Some("a1"))
    );
    assert_eq!(
        (wb["userId"].as_str(), wb["accountId"].as_str()),
        (Some("u2"), Some("a2"))
    );
    assert_eq!(server.webhooks(&a).await, vec![wa]);
    assert_eq!(server.webhooks(&b).await, vec![wb]);
}
