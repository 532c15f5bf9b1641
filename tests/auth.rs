//! Bearer tokens: missing, malformed, unknown, revoked and expired tokens are 401; a token of the
//! wrong role is 403; nothing is stored by a refused request; tokens are never stored in clear.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

/// Every route a `user` token may call, with a body where the route takes one.
fn self_routes() -> Vec<(&'static str, String, Option<Value>)> {
    let hook = json!({"url": "https://example.com/hook"});
    let phone = json!({"phoneNumber": "+14155550100"});
    let mut routes = Vec::new();
    for base in [VIS, VIS_SHORT] {
        let r = |m: &'static str, p: &str, b: Option<Value>| (m, format!("{base}{p}"), b);
        routes.extend([
            r("GET", "/self", None),
            r("GET", "/self/account", None),
            r("GET", "/self/webhooks", None),
            r("POST", "/self/webhooks", Some(hook.clone())),
            r("GET", "/self/webhooks/w1", None),
            r("DELETE", "/self/webhooks/w1", None),
            r("PUT", "/self/webhooks/w1/renew", None),
            r("GET", "/self/calls", None),
            r("GET", "/self/calls/count", None),
            r("GET", "/self/calls/c1", None),
            r("GET", "/self/events", None),
            r("GET", "/self/events/count", None),
            r("GET", "/self/events/c1", None),
            r("POST", "/self/calls", Some(phone.clone())),
            r("DELETE", "/self/calls/c1", None),
            r("PUT", "/self/calls/c1/answer", None),
            r("PUT", "/self/calls/c1/hold", None),
            r("DELETE", "/self/calls/c1/hold", None),
            r("PUT", "/self/calls/c1/vmtransfer", None),
            r("POST", "/self/calls/c1/transfer", Some(phone.clone())),
        ]);
    }
    routes
}

async fn send(
    server: &Server,
    method: &str,
    path: &str,
    body: &Option<Value>,
    authorization: Option<&str>,
) -> Resp {
    let mut req = server.req(method, path);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send().await
}

fn ingest_body() -> Value {
    report("a1", "u1", "c1", "INBOUND", "RINGING")
}

/// What a user's refused requests could have changed: their webhooks and their calls.
async fn snapshot(server: &Server, user_token: &str) -> (Value, Value) {
    (
        server.get_json(&vis("/self/webhooks"), user_token).await,
        server.get_json(&vis("/self/events"), user_token).await,
    )
}

#[tokio::test]
async fn every_self_route_without_a_token_is_401_and_changes_nothing() {
    // Arrange
    let server = Server::start();
    let me = server.user_token("a1", "u1");
    let before = snapshot(&server, &me).await;

    for (method, path, body) in self_routes() {
        // Act
        let resp = send(&server, method, &path, &body, None).await;

        // Assert
        resp.expect_error(401, "UNAUTHORIZED");
    }
    assert_eq!(snapshot(&server, &me).await, before);
}

#[tokio::test]
async fn every_self_route_with_a_bad_authorization_header_is_401() {
    // Arrange
    let server = Server::start();
    let me = server.user_token("a1", "u1");
    let before = snapshot(&server, &me).await;
    let bad = [
        "Basic dXNlcjpwYXNz".to_string(),
        "Bearer".to_string(),
        "Bearer ".to_string(),
        "Bearer chk_this-is-not-a-token".to_string(),
        "Bearer not-even-the-prefix".to_string(),
        me.clone(),
        format!("Token {me}"),
        format!("Bearer {me}x"),
    ];

    for authorization in &bad {
        for (method, path, body) in self_routes() {
            // Act
            let resp = send(&server, method, &path, &body, Some(authorization)).await;

            // Assert
            assert_eq!(
                resp.status, 401,
                "Authorization {authorization:?}: {resp:?}"
            );
            resp.expect_error(401, "UNAUTHORIZED");
        }
    }
    assert_eq!(snapshot(&server, &me).await, before);
}

#[tokio::test]
async fn an_ingest_token_on_any_self_route_is_403() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let bound_ingest =
        server.token_create(&["--role", "ingest", "--account", "a1", "--user", "u1"]);
    let me = server.user_token("a1", "u1");
    let before = snapshot(&server, &me).await;

    for token in [&ingest, &bound_ingest] {
        for (method, path, body) in self_routes() {
            // Act
            let resp = send(
                &server,
                method,
                &path,
                &body,
                Some(&format!("Bearer {token}")),
            )
            .await;

            // Assert
            resp.expect_error(403, "FORBIDDEN");
        }
    }
    assert_eq!(snapshot(&server, &me).await, before);
}

#[tokio::test]
async fn ingestion_refuses_missing_bad_and_user_tokens() {
    // Arrange
    let server = Server::start();
    let me = server.user_token("a1", "u1");
    let body = Some(ingest_body());

    // Act
    let none = send(&server, "POST", INGEST, &body, None).await;
    let basic = send(&server, "POST", INGEST, &body, Some("Basic dXNlcjpwYXNz")).await;
    let unknown = send(&server, "POST", INGEST, &body, Some("Bearer chk_unknown")).await;
    let user = send(
        &server,
        "POST",
        INGEST,
        &body,
        Some(&format!("Bearer {me}")),
    )
    .await;

    // Assert
    none.expect_error(401, "UNAUTHORIZED");
    basic.expect_error(401, "UNAUTHORIZED");
    unknown.expect_error(401, "UNAUTHORIZED");
    user.expect_error(403, "FORBIDDEN");
    assert_eq!(
        server.get_json(&vis("/self/events"), &me).await,
        json!([]),
        "no call was stored"
    );
}

#[tokio::test]
async fn authentication_comes_before_body_validation() {
    // Arrange
    let server = Server::start();
    let me = server.user_token("a1", "u1");

    // Act
    let hook = server
        .req("POST", &vis("/self/webhooks"))
        .raw(Some("application/json"), "{not json")
        .send()
        .await;
    let ingest = server
        .req("POST", INGEST)
        .raw(Some("text/plain"), "{not json")
        .send()
        .await;

    // Assert
    hook.expect_error(401, "UNAUTHORIZED");
    ingest.expect_error(401, "UNAUTHORIZED");
    assert_eq!(
        server.get_json(&vis("/self/webhooks"), &me).await,
        json!([])
    );
}

#[tokio::test]
async fn a_revoked_user_token_is_refused_at_once_by_the_running_server() {
    // Arrange
    let server = Server::start();
    let token = server.token_create(&["--account", "a1", "--user", "u1", "--name", "to-revoke"]);
    let other = server.user_token("a1", "u1");
    server.get(&vis("/self"), &token).await.expect(200);
    let id = token_id_named(&server, "to-revoke");

    // Act
    server.token_revoke(&id);

    // Assert
    server
        .get(&vis("/self"), &token)
        .await
        .expect_error(401, "UNAUTHORIZED");
    server
        .get(&vis("/self/webhooks"), &token)
        .await
        .expect_error(401, "UNAUTHORIZED");
    server.get(&vis("/self"), &other).await.expect(200);
}

#[tokio::test]
async fn a_revoked_ingest_token_is_refused_and_stores_nothing() {
    // Arrange
    let server = Server::start();
    let ingest = server.token_create(&["--role", "ingest", "--name", "feeder"]);
    let me = server.user_token("a1", "u1");
    server
        .ingest_ok(&ingest, &report("a1", "u1", "before", "INBOUND", "RINGING"))
        .await;
    let id = server
        .token_list()
        .into_iter()
        .find(|t| t["name"] == "feeder")
        .expect("listed")["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Act
    server.token_revoke(&id);
    let resp = server
        .ingest(&ingest, &report("a1", "u1", "after", "INBOUND", "RINGING"))
        .await;

    // Assert
    resp.expect_error(401, "UNAUTHORIZED");
    let events = server.get_json(&vis("/self/events"), &me).await;
    assert_eq!(
        events.as_array().map(Vec::len),
        Some(1),
        "only the call reported before revocation: {events}"
    );
}

#[tokio::test]
async fn an_expired_token_is_refused_with_401() {
    // Arrange
    let server = Server::start();
    let short = server.token_create(&["--account", "a1", "--user", "u1", "--expires-in", "300ms"]);
    let long = server.token_create(&["--account", "a1", "--user", "u1", "--expires-in", "10d"]);

    // Act: wait (bounded) until the short token has expired.
    let refused = eventually(
        "the short-lived token to expire",
        Duration::from_secs(15),
        || async {
            let resp = server.get(&vis("/self"), &short).await;
            (resp.status != 200).then_some(resp)
        },
    )
    .await;

    // Assert
    refused.expect_error(401, "UNAUTHORIZED");
    server.get(&vis("/self"), &long).await.expect(200);
}

#[tokio::test]
async fn an_expired_ingest_token_is_refused_with_401() {
    // Arrange
    let server = Server::start();
    let short = server.token_create(&["--role", "ingest", "--expires-in", "300ms"]);
    let me = server.user_token("a1", "u1");

    // Act
    let mut n = 0;
    let refused = eventually(
        "the short-lived ingest token to expire",
        Duration::from_secs(15),
        || {
            n += 1;
            let body = report("a1", "u1", &format!("c{n}"), "INBOUND", "RINGING");
            let server = &server;
            let short = &short;
            async move {
                let resp = server.ingest(short, &body).await;
                (resp.status != 202).then_some(resp)
            }
        },
    )
    .await;

    // Assert
    refused.expect_error(401, "UNAUTHORIZED");
    let stored = server.get_json(&vis("/self/events/count"), &me).await;
    assert_eq!(
        stored["count"].as_i64(),
        Some(n - 1),
        "only reports before expiry were stored"
    );
}

#[tokio::test]
async fn tokens_are_not_stored_in_clear() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let ingest = server.ingest_token();
    server.get(&vis("/self"), &token).await.expect(200);

    // Act
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(server.dir()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("callhook.db")
        {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }

    // Assert
    assert!(!stored.is_empty(), "the database files exist");
    for secret in [&token, &ingest] {
        let body = secret.trim_start_matches("chk_").as_bytes();
        assert!(
            !stored.windows(body.len()).any(|w| w == body),
            "the token secret appears in clear in the database files"
        );
    }
}

/// Nodes on PostgreSQL remember the tokens they authenticated for a moment, so a report does not
/// cost a round trip to find its token; a revocation must still reach every node.
#[tokio::test]
async fn a_revoked_token_is_refused_by_every_node_sharing_a_postgres_database() {
    // Arrange
    let Some(db) = TestDb::create().await else {
        return;
    };
    let nodes = [
        Server::start_on_db(&db.url, &[]),
        Server::start_on_db(&db.url, &[]),
    ];
    let token = nodes[0].token_create(&["--account", "a1", "--user", "u1", "--name", "to-revoke"]);
    let other = nodes[0].user_token("a1", "u1");
    for node in &nodes {
        node.get(&vis("/self"), &token).await.expect(200);
    }
    let id = token_id_named(&nodes[0], "to-revoke");

    // Act
    nodes[1].token_revoke(&id);

    // Assert: refused everywhere well within the second a node may trust what it remembers,
    // and from then on; the other token still works.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    for node in &nodes {
        loop {
            let status = node.get(&vis("/self"), &token).await.status;
            if status == 401 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "a node still accepts the revoked token ({status})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for node in &nodes {
        node.get(&vis("/self/webhooks"), &token)
            .await
            .expect_error(401, "UNAUTHORIZED");
        node.get(&vis("/self"), &other).await.expect(200);
    }
}

/// The id (`tok_...`) of the token called `name`, from `token list`.
fn token_id_named(server: &Server, name: &str) -> String {
    server
        .token_list()
        .into_iter()
        .find(|t| t["name"] == name)
        .expect("the token is listed")["id"]
        .as_str()
        .expect("an id")
        .to_string()
}
