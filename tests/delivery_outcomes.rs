//! Outcomes and statistics: every failure mode ends one delivery with the exact statistics the
//! contract fixes, after `--retries` retries of the same delivery; a success at any attempt counts
//! once; redirects are followed as the README says, within the hop limit.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

const RETRIES: u32 = 2;

/// A user, an ingest token and one HEADER-policy webhook (signed) at `url`.
async fn subscribe(server: &Server, url: &str) -> (String, String, String) {
    let user = server.user_token("a1", "u1");
    let ingest = server.ingest_token();
    let id = create_hook(server, &user, &hook(url, "HEADER", Some("k"))).await;
    (user, ingest, id)
}

/// Reports one new call (RINGING) of the user; returns the event.
async fn ring(server: &Server, ingest: &str, ext: &str) -> Value {
    server
        .ingest_ok(ingest, &report("a1", "u1", ext, "INBOUND", "RINGING"))
        .await
}

/// Asserts that `reqs` are the attempts 1..=RETRIES+1 of one delivery of `event`.
fn assert_every_attempt_of_one_delivery(reqs: &[Request], event: &Value) {
    let attempts: Vec<u32> = reqs.iter().map(Request::attempt).collect();
    let expected: Vec<u32> = (1..=RETRIES + 1).collect();
    assert_eq!(attempts, expected, "attempts:\n{}", summary(reqs));
    for r in reqs {
        assert_eq!(
            r.delivery_id(),
            reqs[0].delivery_id(),
            "one deliveryId:\n{}",
            summary(reqs)
        );
        assert_eq!(&r.event(), event);
    }
}

/// An HTML error page of exactly `len` bytes that starts like the seed's Werkzeug page.
fn werkzeug_page(len: usize) -> String {
    let mut page = String::from(
        "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01 Transitional//EN\"\n  \"http://www.w3.org/TR/html4/loose.dtd\">\n<html>\n  <head>\n    <title>NameError: name 'flask' is not defined // Werkzeug Debugger</title>\n    <link rel=\"stylesheet\" href=\"?__debugger__=yes&amp;cmd=resource&amp;f=style.css\">\n",
    );
    while page.len() < len - 8 {
        page.push_str("<p>traceback line</p>\n");
    }
    page.truncate(len - 8);
    page.push_str("</html>\n");
    assert_eq!(page.len(), len);
    page
}

#[tokio::test]
async fn a_500_with_a_long_body_fails_after_every_retry_with_the_seed_shaped_error() {
    // Arrange
    let receiver = Receiver::start();
    let page = werkzeug_page(19_777);
    receiver.on("/webhook", Reply::html(500, page.clone()));
    let server = delivery_server(&[]);
    let (user, ingest, id) = subscribe(&server, &receiver.url("/webhook")).await;

    // Act
    let event = ring(&server, &ingest, "c1").await;

    // Assert
    let webhook = wait_until_failed(&server, &user, &id).await;
    assert_failed_once(&webhook, "500 INTERNAL_SERVER_ERROR");
    assert_eq!(
        webhook["statistics"]["lastErrorMessage"],
        json!(format!(
            "500 INTERNAL SERVER ERROR: [{}... (19777 bytes)]",
            &page[..200]
        ))
    );
    assert_every_attempt_of_one_delivery(&receiver.requests(), &event);
}

#[tokio::test]
async fn a_404_fails_with_its_status_and_the_whole_short_body() {
    // Arrange: Express's answer for a route that does not exist.
    let receiver = Receiver::start();
    let page = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot POST /webhook</pre>\n</body>\n</html>\n";
    receiver.on("/webhook", Reply::html(404, page));
    let server = delivery_server(&[]);
    let (user, ingest, id) = subscribe(&server, &receiver.url("/webhook")).await;

    // Act
    let event = ring(&server, &ingest, "c1").await;

    // Assert
    let webhook = wait_until_failed(&server, &user, &id).await;
    assert_failed_once(&webhook, "404 NOT_FOUND");
    assert_eq!(
        webhook["statistics"]["lastErrorMessage"],
        json!(format!("404 NOT FOUND: [{page}]"))
    );
    assert_every_attempt_of_one_delivery(&receiver.requests(), &event);
}

#[tokio::test]
async fn the_error_message_cuts_the_body_only_past_200_bytes() {
    // Arrange: two webhooks of one user, one answered with 200 bytes, one with 201.
    let receiver = Receiver::start();
    let exact = "x".repeat(200);
    let longer = "y".repeat(201);
    receiver.on("/exact", Reply::status(503, exact.clone()));
    receiver.on("/longer", Reply::status(503, longer.clone()));
    let server = delivery_server(&[]);
    let (user, ingest, exact_id) = subscribe(&server, &receiver.url("/exact")).await;
    let longer_id = create_hook(
        &server,
        &user,
        &hook(&receiver.url("/longer"), "HEADER", None),
    )
    .await;

    // Act
    ring(&server, &ingest, "c1").await;

    // Assert
    let exact_hook = wait_until_failed(&server, &user, &exact_id).await;
    let longer_hook = wait_until_failed(&server, &user, &longer_id).await;
    assert_failed_once(&exact_hook, "503 SERVICE_UNAVAILABLE");
    assert_failed_once(&longer_hook, "503 SERVICE_UNAVAILABLE");
    assert_eq!(
        exact_hook["statistics"]["lastErrorMessage"],
        json!(format!("503 SERVICE UNAVAILABLE: [{exact}]"))
    );
    assert_eq!(
        longer_hook["statistics"]["lastErrorMessage"],
        json!(format!(
            "503 SERVICE UNAVAILABLE: [{}... (201 bytes)]",
            &longer[..200]
        ))
    );
}

#[tokio::test]
async fn a_refused_connection_fails_with_connection_refused() {
    // Arrange: a port nothing listens on.
    let server = delivery_server(&[]);
    let url = format!("http://127.0.0.1:{}/webhook", refused_port());
    let (user, ingest, id) = subscribe(&server, &url).await;

    // Act
    ring(&server, &ingest, "c1").await;

    // Assert
    let webhook = wait_until_failed(&server, &user, &id).await;
    assert_failed_once(&webhook, "CONNECTION_REFUSED");
}

#[tokio::test]
async fn an_endpoint_that_never_answers_fails_with_response_timeout() {
    // Arrange
    let receiver = Receiver::start();
    receiver.on("/webhook", Reply::Hang);
    let server = delivery_server(&[("--response-timeout", "300ms")]);
    let (user, ingest, id) = subscribe(&server, &receiver.url("/webhook")).await;

    // Act
    let event = ring(&server, &ingest, "c1").await;

    // Assert
    let webhook = wait_until_failed(&server, &user, &id).await;
    assert_failed_once(&webhook, "RESPONSE_TIMEOUT");
    let reqs = receiver.requests();
    assert_every_attempt_of_one_delivery(&reqs, &event);
    for pair in reqs.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(300),
            "an attempt waits the whole response timeout before the next: {gap:?}"
        );
    }
}

#[tokio::test]
async fn a_connection_reset_fails_with_connection_error() {
    // Arrange: the receiver reads the request, then resets the connection.
    let receiver = Receiver::start();
    receiver.on("/webhook", Reply::Reset);
    let server = delivery_server(&[]);
    let (user, ingest, id) = subscribe(&server, &receiver.url("/webhook")).await;

    // Act
    let event = ring(&server, &ingest, "c1").await;

    // Assert
    let webhook = wait_until_failed(&server, &user, &id).await;
    assert_failed_once(&webhook, "CONNECTION_ERROR");
    assert_every_attempt_of_one_delivery(&receiver.requests(), &event);
}

#[tokio::test]
async fn a_listener_that_never_accepts_fails_with_connect_timeout() {
    // Arrange: a loopback listener whose accept queue is full, so new connections are never
    // established (the kernel drops their SYNs).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    loop {
        match tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(stream)) => fillers.push(stream),
            Ok(Err(e)) => panic!("filling the accept queue: {e}"),
            Err(_) => break,
        }
        assert!(fillers.len() < 64, "the accept queue never filled");
    }
    let server = delivery_server(&[("--connect-timeout", "300ms")]);
    let (user, ingest, id) = subscribe(&server, &format!("http://{addr}/webhook")).await;

    // Act
    ring(&server, &ingest, "c1").await;

    // Assert
    let webhook = wait_until_failed(&server, &user, &id).await;
    assert_failed_once(&webhook, "CONNECT_TIMEOUT");
    drop(listener);
}

#[tokio::test]
async fn a_redirect_loop_fails_with_too_many_redirects() {
    // Arrange: /loop-a and /loop-b send each other back and forth.
    let receiver = Receiver::start();
    receiver.on("/loop-a", Reply::redirect(307, "/loop-b"));
    receiver.on("/loop-b", Reply::redirect(307, "/loop-a"));
    let server = delivery_server(&[]);
    let (user, ingest, id) = subscribe(&server, &receiver.url("/loop-a")).await;

    // Act
    let event = ring(&server, &ingest, "c1").await;

    // Assert
    let webhook = wait_until_failed(&server, &user, &id).await;
    assert_failed_once(&webhook, "TOO_MANY_REDIRECTS");
    let reqs = receiver.requests();
    for attempt in 1..=RETRIES + 1 {
        let hops = reqs.iter().filter(|r| r.attempt() == attempt).count();
        assert!(
            (1..=6).contains(&hops),
            "attempt {attempt}: the first request and at most 5 redirects, got {hops}:\n{}",
            summary(&reqs)
        );
    }
    let first_hops: Vec<Request> = reqs
        .iter()
        .filter(|r| r.path == "/loop-a")
        .cloned()
        .collect();
    let mut attempts: Vec<u32> = first_hops.iter().map(Request::attempt).collect();
    attempts.dedup();
    assert_eq!(attempts, (1..=RETRIES + 1).collect::<Vec<_>>());
    assert!(
        first_hops
            .iter()
            .all(|r| r.event() == event && r.delivery_id() == first_hops[0].delivery_id())
    );
}

#[tokio::test]
async fn five_redirects_are_followed_and_a_sixth_fails_the_attempt() {
    // Arrange: two chains of 307s, /five/0 -> ... -> /five/5 (200), /six/0 -> ... -> /six/6.
    let receiver = Receiver::start();
    for i in 0..5 {
        receiver.on(
            &format!("/five/{i}"),
            Reply::redirect(307, format!("/five/{}", i + 1)),
        );
    }
    for i in 0..6 {
        receiver.on(
            &format!("/six/{i}"),
            Reply::redirect(307, format!("/six/{}", i + 1)),
        );
    }
    let server = delivery_server(&[]);
    let (user, ingest, five) = subscribe(&server, &receiver.url("/five/0")).await;
    let six = create_hook(
        &server,
        &user,
        &hook(&receiver.url("/six/0"), "HEADER", None),
    )
    .await;

    // Act
    ring(&server, &ingest, "c1").await;

    // Assert
    let five_hook = wait_for_successes(&server, &user, &five, 1).await;
    assert_eq!(five_hook["statistics"]["failed"], json!(false));
    let six_hook = wait_until_failed(&server, &user, &six).await;
    assert_failed_once(&six_hook, "TOO_MANY_REDIRECTS");
    assert_eq!(receiver.requests_on("/five/5").len(), 1);
    assert!(
        receiver.requests_on("/six/6").is_empty(),
        "the sixth redirect is not followed:\n{}",
        summary(&receiver.requests())
    );
}

#[tokio::test]
async fn a_delivery_that_succeeds_after_two_500s_counts_as_one_attempt_and_one_success() {
    // Arrange
    let receiver = Receiver::start();
    receiver.script(
        "/webhook",
        [Reply::status(500, "boom"), Reply::status(500, "boom")],
    );
    let server = delivery_server(&[]);
    let (user, ingest, id) = subscribe(&server, &receiver.url("/webhook")).await;

    // Act
    let event = ring(&server, &ingest, "c1").await;

    // Assert
    let webhook = wait_for_successes(&server, &user, &id, 1).await;
    let s = &webhook["statistics"];
    assert_eq!(s["totalAttempts"], json!(1), "{webhook}");
    assert_eq!(s["totalSuccesses"], json!(1), "{webhook}");
    assert_eq!(s["totalFailures"], json!(0), "{webhook}");
    assert_eq!(s["failed"], json!(false), "{webhook}");
    parse_webhook_time(s["lastSuccess"].as_str().expect("lastSuccess set"));
    for absent in ["lastFailure", "lastHttpErrorCode", "lastErrorMessage"] {
        assert!(
            s.get(absent).is_none(),
            "only the end counts, no {absent}: {webhook}"
        );
    }
    assert_every_attempt_of_one_delivery(&receiver.requests(), &event);
}

#[tokio::test]
async fn redirects_301_302_303_are_followed_as_get_and_307_308_as_the_same_post() {
    // Arrange: one webhook per redirect status, each redirected to its own target path, plus a
    // 307 to an absolute URL on another receiver.
    let receiver = Receiver::start();
    let other = Receiver::start();
    let server = delivery_server(&[]);
    let user = server.user_token("a1", "u1");
    let ingest = server.ingest_token();
    let mut hooks = Vec::new();
    for code in [301u16, 302, 303, 307, 308] {
        receiver.on(
            &format!("/from-{code}"),
            Reply::redirect(code, format!("/to-{code}")),
        );
        let url = receiver.url(&format!("/from-{code}"));
        hooks.push((
            code,
            create_hook(&server, &user, &hook(&url, "HEADER", Some("k"))).await,
        ));
    }
    receiver.on("/from-abs", Reply::redirect(307, other.url("/abs")));
    let abs = create_hook(
        &server,
        &user,
        &hook(&receiver.url("/from-abs"), "HEADER", Some("k")),
    )
    .await;

    // Act
    ring(&server, &ingest, "c1").await;

    // Assert
    for (code, id) in &hooks {
        let webhook = wait_for_successes(&server, &user, id, 1).await;
        assert_eq!(
            webhook["statistics"]["failed"],
            json!(false),
            "{code}: {webhook}"
        );
        let from = receiver.requests_on(&format!("/from-{code}"));
        let to = receiver.requests_on(&format!("/to-{code}"));
        assert_eq!(
            (from.len(), to.len()),
            (1, 1),
            "{code}:\n{}",
            summary(&receiver.requests())
        );
        assert_eq!(from[0].method, "POST");
        if *code == 307 || *code == 308 {
            assert_eq!(to[0].method, "POST", "{code} keeps the method");
            assert_eq!(to[0].body, from[0].body, "{code} keeps the body");
            for h in [
                "content-type",
                "x-von-signature",
                "x-von-webhook-id",
                "x-von-delivery-id",
                "x-von-attempt",
            ] {
                assert_eq!(to[0].header(h), from[0].header(h), "{code} keeps {h}");
            }
        } else {
            assert_eq!(to[0].method, "GET", "{code} is followed with a GET");
            assert!(to[0].body.is_empty(), "{code}: a GET has no body");
        }
    }
    wait_for_successes(&server, &user, &abs, 1).await;
    let arrived = other.requests_on("/abs");
    assert_eq!(arrived.len(), 1);
    assert_eq!(arrived[0].method, "POST");
    assert_eq!(arrived[0].body, receiver.requests_on("/from-abs")[0].body);
}

#[tokio::test]
async fn any_2xx_answer_is_a_success() {
    // Arrange: webhooks answered 201, 202 and 204.
    let receiver = Receiver::start();
    let server = delivery_server(&[]);
    let (user, ingest, first) = subscribe(&server, &receiver.url("/201")).await;
    receiver.on("/201", Reply::status(201, "created"));
    receiver.on("/202", Reply::status(202, ""));
    receiver.on("/204", Reply::status(204, ""));
    let mut ids = vec![first];
    for path in ["/202", "/204"] {
        ids.push(create_hook(&server, &user, &hook(&receiver.url(path), "HEADER", None)).await);
    }

    // Act
    ring(&server, &ingest, "c1").await;

    // Assert: one attempt each, no retry.
    for id in &ids {
        let webhook = wait_for_successes(&server, &user, id, 1).await;
        assert_eq!(webhook["statistics"]["failed"], json!(false), "{webhook}");
    }
    assert_eq!(
        receiver.requests().len(),
        3,
        "{}",
        summary(&receiver.requests())
    );
}

#[tokio::test]
async fn with_no_retries_one_failed_attempt_fails_the_webhook() {
    // Arrange
    let receiver = Receiver::start();
    receiver.on("/webhook", Reply::status(500, "boom"));
    let server = delivery_server(&[("--retries", "0")]);
    let (user, ingest, id) = subscribe(&server, &receiver.url("/webhook")).await;

    // Act
    ring(&server, &ingest, "c1").await;

    // Assert
    let webhook = wait_until_failed(&server, &user, &id).await;
    assert_failed_once(&webhook, "500 INTERNAL_SERVER_ERROR");
    let attempts: Vec<u32> = receiver.requests().iter().map(Request::attempt).collect();
    assert_eq!(attempts, [1]);
}

#[tokio::test]
async fn an_error_body_over_a_megabyte_is_reported_with_its_full_size() {
    // Arrange: a 2 MiB error page (its size is in Content-Length).
    let receiver = Receiver::start();
    let page = werkzeug_page(2 * 1024 * 1024);
    receiver.on("/webhook", Reply::html(500, page.clone()));
    let server = delivery_server(&[("--retries", "0")]);
    let (user, ingest, id) = subscribe(&server, &receiver.url("/webhook")).await;

    // Act
    ring(&server, &ingest, "c1").await;

    // Assert: "cut with `... (N bytes)` giving the full size".
    let webhook = wait_until_failed(&server, &user, &id).await;
    assert_failed_once(&webhook, "500 INTERNAL_SERVER_ERROR");
    assert_eq!(
        webhook["statistics"]["lastErrorMessage"],
        json!(format!(
            "500 INTERNAL SERVER ERROR: [{}... (2097152 bytes)]",
            &page[..200]
        ))
    );
}
