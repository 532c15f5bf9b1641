//! Outbound safety: `--targets public|private|any` decides which addresses deliveries may reach,
//! at create time for IP-literal URLs, on the resolved address for host names, and on every
//! redirect.
//!
//! These tests only ever ask callhook to *refuse* non-loopback addresses: no test ingests an
//! event for a webhook whose URL is outside 127.0.0.1/::1, except the redirect test, where the
//! refusal must happen before any connection (and `--connect-timeout` is short in case it does
//! not).

mod support;

use serde_json::json;
use support::*;

const ME: (&str, &str) = ("a1", "u1");

#[tokio::test]
async fn public_policy_refuses_webhook_urls_that_are_non_global_ip_literals() {
    // Arrange
    let server = delivery_server(&[("--targets", "public")]);
    let user = server.user_token(ME.0, ME.1);

    for url in [
        "http://127.0.0.1:3000/webhook",
        "http://10.0.0.1/webhook",
        "http://172.16.5.4/webhook",
        "http://192.168.1.10/webhook",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/webhook",
        "http://0.0.0.0:3000/webhook",
        "http://[::1]:3000/webhook",
        "http://[fe80::1]/webhook",
        "http://[fd00::1]/webhook",
    ] {
        // Act
        let resp = server
            .post(&vis("/self/webhooks"), &user, &json!({"url": url}))
            .await;

        // Assert
        assert_eq!(resp.expect_validation(), ["url"], "{url}: {resp:?}");
    }
    assert_no_webhooks(&server, &user, "refused targets").await;
}

#[tokio::test]
async fn public_policy_accepts_global_ip_literals_and_host_names_at_create() {
    // Arrange: no event is ever reported here, so nothing is sent anywhere.
    let server = delivery_server(&[("--targets", "public")]);
    let user = server.user_token(ME.0, ME.1);

    // Act + Assert
    for url in [
        "http://1.1.1.1/webhook",
        "https://example.ngrok.io/webhook",
        "http://localhost:3000/webhook",
    ] {
        let resp = server
            .post(&vis("/self/webhooks"), &user, &json!({"url": url}))
            .await;
        resp.expect(201);
    }
}

#[tokio::test]
async fn private_policy_refuses_link_local_literals_and_accepts_private_and_loopback_ones() {
    // Arrange: no event is ever reported here, so nothing is sent anywhere.
    let server = delivery_server(&[("--targets", "private")]);
    let user = server.user_token(ME.0, ME.1);

    // Act + Assert
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/webhook",
    ] {
        let resp = server
            .post(&vis("/self/webhooks"), &user, &json!({"url": url}))
            .await;
        assert_eq!(resp.expect_validation(), ["url"], "{url}: {resp:?}");
    }
    for url in [
        "http://127.0.0.1:3000/webhook",
        "http://10.0.0.1/webhook",
        "http://[::1]:3000/webhook",
    ] {
        let resp = server
            .post(&vis("/self/webhooks"), &user, &json!({"url": url}))
            .await;
        resp.expect(201);
    }
}

#[tokio::test]
async fn any_policy_accepts_link_local_literals_at_create() {
    // Arrange: no event is ever reported here, so nothing is sent anywhere.
    let server = delivery_server(&[("--targets", "any")]);
    let user = server.user_token(ME.0, ME.1);

    // Act
    let resp = server
        .post(
            &vis("/self/webhooks"),
            &user,
            &json!({"url": "http://169.254.169.254/latest/meta-data/"}),
        )
        .await;

    // Assert
    resp.expect(201);
}

#[tokio::test]
async fn public_policy_fails_a_delivery_to_a_host_name_that_resolves_to_loopback() {
    // Arrange: `localhost` is a name, so create accepts it; it resolves to loopback.
    let receiver = Receiver::start();
    let server = delivery_server(&[("--targets", "public"), ("--retries", "1")]);
    let user = server.user_token(ME.0, ME.1);
    let ingest = server.ingest_token();
    let url = format!("http://localhost:{}/webhook", receiver.port());
    let id = create_hook(&server, &user, &hook(&url, "HEADER", None)).await;

    // Act
    server
        .ingest_ok(&ingest, &report(ME.0, ME.1, "c1", "INBOUND", "RINGING"))
        .await;

    // Assert
    let webhook = wait_until_failed(&server, &user, &id).await;
    assert_failed_once(&webhook, "TARGET_NOT_ALLOWED");
    assert!(
        receiver.requests().is_empty(),
        "nothing may reach a refused address:\n{}",
        summary(&receiver.requests())
    );
}

#[tokio::test]
async fn a_redirect_to_a_link_local_address_fails_as_target_not_allowed() {
    // Arrange: under `private` the loopback receiver is allowed; it redirects to the cloud
    // metadata address, which `private` refuses.
    let receiver = Receiver::start();
    receiver.on(
        "/webhook",
        Reply::redirect(302, "http://169.254.169.254/latest/meta-data/"),
    );
    let server = delivery_server(&[
        ("--targets", "private"),
        ("--retries", "1"),
        ("--connect-timeout", "300ms"),
    ]);
    let user = server.user_token(ME.0, ME.1);
    let ingest = server.ingest_token();
    let id = create_hook(
        &server,
        &user,
        &hook(&receiver.url("/webhook"), "HEADER", None),
    )
    .await;

    // Act
    server
        .ingest_ok(&ingest, &report(ME.0, ME.1, "c1", "INBOUND", "RINGING"))
        .await;

    // Assert
    let webhook = wait_until_failed(&server, &user, &id).await;
    assert_failed_once(&webhook, "TARGET_NOT_ALLOWED");
    let attempts: Vec<u32> = receiver.requests().iter().map(Request::attempt).collect();
    assert_eq!(attempts, [1, 2], "{}", summary(&receiver.requests()));
}

#[tokio::test]
async fn by_default_a_server_listening_on_loopback_delivers_to_loopback_receivers() {
    // Arrange: no --targets; `serve` listens on 127.0.0.1, so the policy is `private`. One
    // webhook by IP literal, one by the name `localhost` (as the seed's Flask example runs).
    let receiver = Receiver::start();
    let server = Server::start_with(&["--retries", "1", "--retry-interval", "100ms"]);
    let user = server.user_token(ME.0, ME.1);
    let ingest = server.ingest_token();
    let literal = create_hook(
        &server,
        &user,
        &hook(&receiver.url("/literal"), "NONE", None),
    )
    .await;
    let by_name = format!("http://localhost:{}/by-name", receiver.port());
    let named = create_hook(&server, &user, &hook(&by_name, "NONE", None)).await;

    // Act
    let event = server
        .ingest_ok(&ingest, &report(ME.0, ME.1, "c1", "INBOUND", "RINGING"))
        .await;

    // Assert
    for (id, path) in [(&literal, "/literal"), (&named, "/by-name")] {
        let webhook = wait_for_successes(&server, &user, id, 1).await;
        assert_eq!(webhook["statistics"]["failed"], json!(false));
        assert_eq!(receiver.requests_on(path)[0].event(), event);
    }
}
