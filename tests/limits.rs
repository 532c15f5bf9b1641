//! What one client can make the server hold: request bodies (64 KiB, 413, also when sent chunked
//! without a Content-Length), webhooks per user (`--max-webhooks-per-user`, 422, counted in the
//! same write as the insert) and the receiver's error text kept in `lastErrorMessage` (capped).

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Most bytes of `lastErrorMessage` (the server's cap).
const MAX_ERROR_MESSAGE: usize = 1024;

/// Sends `head` (request line and headers, without the blank line) and then `body` over a raw
/// connection, and reads the answer to the end (`Connection: close`). Returns the status and the
/// body text.
async fn raw_exchange(server: &Server, head: &str, body: &[u8]) -> (u16, String) {
    let address = server.base().trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect to the server");
    let request = format!("{head}\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send head");
    // The server may answer before the whole body is sent; what matters is its answer.
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers in time")
        .expect("read the answer");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// `body` in HTTP/1.1 chunked encoding, 16 KiB a chunk.
fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in body.chunks(16 * 1024) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[tokio::test]
async fn a_chunked_body_over_64_kib_is_refused_with_413_on_every_body_route() {
    // Arrange: valid JSON, 100 KiB, sent without a Content-Length.
    let server = Server::start();
    let user = server.user_token("a1", "u1");
    let ingest = server.ingest_token();
    let body = json!({"url": "https://example.com/h", "padding": "p".repeat(100 * 1024)});
    let body = chunked(body.to_string().as_bytes());
    let routes = [
        (vis("/self/webhooks"), &user),
        (vis("/self/calls"), &user),
        (vis("/self/calls/some-call/transfer"), &user),
        ("/callhook/v1/calls/ring".to_string(), &ingest),
        (INGEST.to_string(), &ingest),
    ];

    for (path, token) in routes {
        // Act
        let head = format!(
            "POST {path} HTTP/1.1\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked"
        );
        let (status, text) = raw_exchange(&server, &head, &body).await;

        // Assert
        assert_eq!(status, 413, "POST {path}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(
            v["errorCode"],
            json!("PAYLOAD_TOO_LARGE"),
            "POST {path}: {text}"
        );
    }
    assert_no_webhooks(&server, &user, "chunked bodies").await;
    assert_eq!(server.events_count(&user).await, json!({"count": 0}));
}

#[tokio::test]
async fn a_huge_declared_content_length_is_refused_without_waiting_for_the_body() {
    // Arrange
    let server = Server::start();
    let user = server.user_token("a1", "u1");
    let head = format!(
        "POST {} HTTP/1.1\r\nAuthorization: Bearer {user}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000000000",
        vis("/self/webhooks")
    );

    // Act: only the first bytes of the announced gigabyte are sent.
    let (status, text) = raw_exchange(&server, &head, b"{\"url\":").await;

    // Assert
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("PAYLOAD_TOO_LARGE"), "{text}");
    assert_no_webhooks(&server, &user, "huge Content-Length").await;
}

/// Creates `n` webhooks for `token` at once; returns the statuses.
async fn create_many(server: &Server, token: &str, n: usize) -> Vec<Resp> {
    let path = vis("/self/webhooks");
    join_all((0..n).map(|i| {
        let (path, body) = (&path, minimal_webhook(&format!("https://example.com/h{i}")));
        async move { server.post(path, token, &body).await }
    }))
    .await
}

fn count_status(answers: &[Resp], status: u16) -> usize {
    answers.iter().filter(|r| r.status == status).count()
}

#[tokio::test]
async fn the_101st_webhook_of_a_user_is_refused_with_422_by_default_and_deleting_one_frees_a_slot()
{
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");
    let other = server.user_token("a1", "u2");
    let made = create_many(&server, &token, 100).await;
    assert_eq!(count_status(&made, 201), 100);

    // Act
    let refused = server
        .post(
            &vis("/self/webhooks"),
            &token,
            &minimal_webhook("https://example.com/extra"),
        )
        .await;

    // Assert
    assert_eq!(refused.expect_validation(), ["webhooks"]);
    assert!(
        refused.text.contains("already has 100 webhooks"),
        "{refused:?}"
    );
    let listed = server.webhooks(&token).await;
    assert_eq!(listed.len(), 100);
    assert!(
        listed
            .iter()
            .all(|w| w["url"] != json!("https://example.com/extra")),
        "the refused webhook was not stored"
    );
    server
        .create_webhook(&other, &minimal_webhook("https://example.com/other"))
        .await;
    let gone = wid(&listed[0]);
    server
        .delete(&webhook_path(&gone), &token)
        .await
        .expect(204);
    server
        .create_webhook(&token, &minimal_webhook("https://example.com/extra"))
        .await;
    assert_eq!(server.webhooks(&token).await.len(), 100);
}

#[tokio::test]
async fn concurrent_creates_never_pass_the_cap() {
    // Arrange
    let server = Server::start_with(&["--max-webhooks-per-user", "3"]);
    let token = server.user_token("a1", "u1");

    // Act
    let answers = create_many(&server, &token, 20).await;

    // Assert
    assert_eq!(count_status(&answers, 201), 3, "{answers:?}");
    assert_eq!(count_status(&answers, 422), 17, "{answers:?}");
    assert_eq!(server.webhooks(&token).await.len(), 3);
}

#[tokio::test]
async fn a_cap_of_zero_means_no_cap() {
    // Arrange
    let server = Server::start_with(&["--max-webhooks-per-user", "0"]);
    let token = server.user_token("a1", "u1");

    // Act
    let answers = create_many(&server, &token, 120).await;

    // Assert
    assert_eq!(count_status(&answers, 201), 120);
    assert_eq!(server.webhooks(&token).await.len(), 120);
}

/// A user with one webhook (HEADER policy) at `url` on a server with quick retries, and an
/// ingest token; a call rings and the test waits until the webhook has failed.
async fn failed_webhook(url: &str) -> (Server, Value) {
    let server = delivery_server(&[("--retries", "0")]);
    let user = server.user_token("a1", "u1");
    let ingest = server.ingest_token();
    let id = create_hook(&server, &user, &hook(url, "HEADER", None)).await;
    server
        .ingest_ok(&ingest, &report("a1", "u1", "c1", "INBOUND", "RINGING"))
        .await;
    let webhook = wait_until_failed(&server, &user, &id).await;
    (server, webhook)
}

fn last_error_message(webhook: &Value) -> String {
    webhook["statistics"]["lastErrorMessage"]
        .as_str()
        .unwrap_or_else(|| panic!("lastErrorMessage is set: {webhook}"))
        .to_string()
}

#[tokio::test]
async fn a_500_with_a_huge_body_leaves_only_a_short_error_message() {
    // Arrange: 4 MiB of error text.
    let receiver = Receiver::start();
    let body = "stack frame\n".repeat(4 * 1024 * 1024 / 12);
    receiver.on("/webhook", Reply::status(500, body.clone()));

    // Act
    let (_server, webhook) = failed_webhook(&receiver.url("/webhook")).await;

    // Assert
    let message = last_error_message(&webhook);
    assert!(
        message.len() <= MAX_ERROR_MESSAGE,
        "{} bytes",
        message.len()
    );
    assert_eq!(
        message,
        format!(
            "500 INTERNAL SERVER ERROR: [{}... ({} bytes)]",
            &body[..200],
            body.len()
        )
    );
}

#[tokio::test]
async fn a_transport_error_naming_a_long_url_is_cut_to_the_cap() {
    // Arrange: a 2,000-character URL on port 0, where no server can ever listen (a port that
    // was free a moment ago may be taken by the server of a test running alongside).
    let url = format!("http://127.0.0.1:0/{}", "long-path/".repeat(198));
    assert!(url.len() > MAX_ERROR_MESSAGE && url.len() <= 2048);

    // Act
    let (_server, webhook) = failed_webhook(&url).await;

    // Assert
    let code = &webhook["statistics"]["lastHttpErrorCode"];
    assert!(
        code == "CONNECTION_REFUSED" || code == "CONNECTION_ERROR",
        "a transport failure: {webhook}"
    );
    let message = last_error_message(&webhook);
    assert!(
        message.len() <= MAX_ERROR_MESSAGE,
        "{} bytes",
        message.len()
    );
    assert!(message.ends_with("..."), "{message}");
}
