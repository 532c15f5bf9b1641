//! The route table as a whole: health, the OpenAPI document (and that everything it lists is
//! routed), both base prefixes and trailing slashes, call control refusing calls it does not simulate, and unknown
//! routes or methods answering in the VIS error shape.

mod support;

use serde_json::json;
use support::*;

#[tokio::test]
async fn healthz_answers_ok_without_a_token() {
    // Arrange
    let server = Server::start();

    // Act
    let resp = server.get_anon("/healthz").await;

    // Assert
    resp.expect(200);
    assert!(resp.is_json(), "{resp:?}");
    assert_eq!(resp.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn openapi_document_is_served_without_a_token_and_lists_every_route() {
    // Arrange
    let server = Server::start();

    // Act
    let resp = server.get_anon("/openapi.json").await;

    // Assert
    resp.expect(200);
    assert!(resp.is_json(), "{resp:?}");
    let doc = resp.json();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "OpenAPI 3: {}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths object");
    let normalized: Vec<String> = paths.keys().map(|p| normalize_params(p)).collect();
    let wanted = [
        ("/t/vbc.prod/vis/v1/self", "get"),
        ("/t/vbc.prod/vis/v1/self/account", "get"),
        ("/t/vbc.prod/vis/v1/self/webhooks", "get"),
        ("/t/vbc.prod/vis/v1/self/webhooks", "post"),
        ("/t/vbc.prod/vis/v1/self/webhooks/{}", "get"),
        ("/t/vbc.prod/vis/v1/self/webhooks/{}", "delete"),
        ("/t/vbc.prod/vis/v1/self/webhooks/{}/renew", "put"),
        ("/t/vbc.prod/vis/v1/self/calls", "get"),
        ("/t/vbc.prod/vis/v1/self/calls", "post"),
        ("/t/vbc.prod/vis/v1/self/calls/count", "get"),
        ("/t/vbc.prod/vis/v1/self/calls/{}", "get"),
        ("/t/vbc.prod/vis/v1/self/calls/{}", "delete"),
        ("/t/vbc.prod/vis/v1/self/calls/{}/answer", "put"),
        ("/t/vbc.prod/vis/v1/self/calls/{}/hold", "put"),
        ("/t/vbc.prod/vis/v1/self/calls/{}/hold", "delete"),
        ("/t/vbc.prod/vis/v1/self/calls/{}/vmtransfer", "put"),
        ("/t/vbc.prod/vis/v1/self/calls/{}/transfer", "post"),
        ("/t/vbc.prod/vis/v1/self/events", "get"),
        ("/t/vbc.prod/vis/v1/self/events/count", "get"),
        ("/t/vbc.prod/vis/v1/self/events/{}", "get"),
        ("/ingest/v1/call-events", "post"),
        ("/healthz", "get"),
    ];
    let mut missing = Vec::new();
    for (path, method) in wanted {
        let found = paths
            .iter()
            .zip(&normalized)
            .any(|((_, item), norm)| norm == path && item.get(method).is_some());
        if !found {
            missing.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    assert!(
        missing.is_empty(),
        "OpenAPI document lacks: {missing:?}\npaths: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
}

/// `/self/webhooks/{id}/renew` -> `/self/webhooks/{}/renew`, whatever the parameter is named.
fn normalize_params(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                "{}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_operation_in_the_openapi_document_is_routed() {
    // Arrange
    let server = Server::start();
    let user = server.user_token("a1", "u1");
    let ingest = server.ingest_token();
    let doc = server.get_anon("/openapi.json").await.json();
    let paths = doc["paths"].as_object().expect("paths object").clone();
    let mut failures = Vec::new();
    let mut operations = 0;

    for (path, item) in &paths {
        let concrete = normalize_params(path).replace("{}", "no-such-id");
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let token = if path.starts_with("/ingest") {
                &ingest
            } else {
                &user
            };
            let mut req = server.req(&method.to_uppercase(), &concrete).bearer(token);
            if matches!(method, "post" | "put" | "patch") {
                req = req.json(&json!({}));
            }

            // Act
            let resp = req.send().await;

            // Assert
            // A 5xx is a failure too.
            let unrouted = resp.status == 405
                || resp.status >= 500
                || (resp.status == 404 && resp.text.to_lowercase().contains("no route"));
            if unrouted {
                failures.push(format!("{} {path}: {resp:?}", method.to_uppercase()));
            }
        }
    }

    assert!(operations >= 22, "only {operations} operations documented");
    assert!(
        failures.is_empty(),
        "documented but not routed:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn read_routes_answer_the_same_under_both_prefixes_with_and_without_trailing_slash() {
    // Arrange
    let server = Server::start();
    let user = server.token_create(&[
        "--account",
        "a1",
        "--user",
        "u1",
        "--first-name",
        "Ada",
        "--account-name",
        "Acme",
    ]);
    let ingest = server.ingest_token();
    let event = server
        .ingest_ok(&ingest, &report("a1", "u1", "c1", "INBOUND", "RINGING"))
        .await;
    let call_id = event["id"].as_str().unwrap();
    let w = server
        .create_webhook(&user, &json!({"url": "https://example.com/h"}))
        .await;
    let webhook_id = w["id"].as_str().unwrap();
    let routes = [
        "/self".to_string(),
        "/self/account".to_string(),
        "/self/webhooks".to_string(),
        format!("/self/webhooks/{webhook_id}"),
        "/self/calls".to_string(),
        "/self/calls/count?states=RINGING".to_string(),
        format!("/self/calls/{call_id}"),
        "/self/events".to_string(),
        "/self/events/count".to_string(),
        format!("/self/events/{call_id}"),
    ];

    for route in routes {
        let (path, query) = route
            .split_once('?')
            .map(|(p, q)| (p, format!("?{q}")))
            .unwrap_or((&route, String::new()));
        let reference = server.get_json(&format!("{VIS}{path}{query}"), &user).await;
        for base in [VIS, VIS_SHORT] {
            for slash in ["", "/"] {
                // Act
                let url = format!("{base}{path}{slash}{query}");
                let resp = server.get(&url, &user).await;

                // Assert
                resp.expect(200);
                assert_eq!(resp.json(), reference, "GET {url}");
            }
        }
    }
}

#[tokio::test]
async fn call_control_refuses_calls_reported_by_an_outside_source_under_both_prefixes() {
    // Arrange
    let server = Server::start();
    let user = server.user_token("a1", "u1");
    let ingest = server.ingest_token();
    let event = server
        .ingest_ok(&ingest, &report("a1", "u1", "c1", "INBOUND", "RINGING"))
        .await;
    let id = event["id"].as_str().unwrap().to_string();
    let phone = json!({"phoneNumber": "+14155550100"});

    for base in [VIS, VIS_SHORT] {
        for slash in ["", "/"] {
            for (method, path, body) in [
                ("DELETE", format!("/self/calls/{id}"), None),
                ("PUT", format!("/self/calls/{id}/answer"), None),
                ("PUT", format!("/self/calls/{id}/hold"), None),
                ("DELETE", format!("/self/calls/{id}/hold"), None),
                ("PUT", format!("/self/calls/{id}/vmtransfer"), None),
                ("POST", format!("/self/calls/{id}/transfer"), Some(&phone)),
            ] {
                let mut req = server
                    .req(method, &format!("{base}{path}{slash}"))
                    .bearer(&user);
                if let Some(b) = body {
                    req = req.json(b);
                }

                // Act
                let resp = req.send().await;

                // Assert
                resp.expect_error(409, "CONFLICT");
            }
        }
    }
    let stored = server
        .get_json(&vis(&format!("/self/calls/{id}")), &user)
        .await;
    assert_eq!(stored, json!([event]), "call control changed nothing");
}

#[tokio::test]
async fn unknown_routes_are_404_in_vis_shape_naming_the_route() {
    // Arrange
    let server = Server::start();
    let user = server.user_token("a1", "u1");

    for (method, path) in [
        ("GET", "/"),
        ("GET", "/nope"),
        ("GET", "/t/vbc.prod/vis/v2/self"),
        ("GET", "/t/vbc.prod/vis/v1/self/nope"),
        ("GET", "/vis/v1/self/webhooks/w1/renew/extra"),
        ("POST", "/ingest/v1/other"),
        ("GET", "/index.html"),
    ] {
        // Act
        let resp = server.req(method, path).bearer(&user).send().await;

        // Assert
        resp.expect_error(404, "NOT_FOUND");
        assert!(resp.error_message().contains("no route"), "{resp:?}");
    }
}

#[tokio::test]
async fn known_routes_with_an_unsupported_method_are_405_in_vis_shape() {
    // Arrange
    let server = Server::start();
    let user = server.user_token("a1", "u1");
    let ingest = server.ingest_token();

    for (method, path, token) in [
        ("POST", "/healthz".to_string(), &user),
        ("DELETE", vis("/self"), &user),
        ("POST", vis("/self/account"), &user),
        ("PUT", vis("/self/calls/count"), &user),
        ("POST", vis("/self/events"), &user),
        ("DELETE", vis("/self/events/c1"), &user),
        ("PATCH", vis_short("/self/calls/c1"), &user),
        ("GET", INGEST.to_string(), &ingest),
        ("PUT", INGEST.to_string(), &ingest),
    ] {
        // Act
        let resp = server.req(method, &path).bearer(token).send().await;

        // Assert
        resp.expect_error(405, "METHOD_NOT_ALLOWED");
    }
}

#[tokio::test]
async fn errors_are_json_never_html_even_for_browsers() {
    // Arrange
    let server = Server::start();

    // Act
    let resp = server
        .req("GET", "/definitely/not/here")
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await;

    // Assert
    resp.expect_error(404, "NOT_FOUND");
    assert!(!resp.text.to_lowercase().contains("<html"), "{resp:?}");
}

#[tokio::test]
async fn unknown_query_parameters_are_ignored_everywhere() {
    // Arrange
    let server = Server::start();
    let user = server.user_token("a1", "u1");

    for path in [
        "/self",
        "/self/account",
        "/self/webhooks",
        "/self/calls",
        "/self/calls/count",
        "/self/events",
        "/self/events/count",
    ] {
        // Act
        let plain = server.get_json(&vis(path), &user).await;
        let resp = server
            .get(&vis(&format!("{path}?foo=bar&utm_source=x")), &user)
            .await;

        // Assert
        resp.expect(200);
        assert_eq!(resp.json(), plain, "GET {path} with unknown params");
    }
}
