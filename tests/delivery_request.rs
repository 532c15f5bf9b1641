//! What a delivery looks like on the wire: the seed's sequence end to end, the request shape
//! (method, headers, body), the three metadata policies, and signatures checked independently of
//! callhook's code (our own canonical JSON and HMAC in the test).

mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use support::*;

const ACCOUNT: &str = "376";
const USER: &str = "24785";

fn user_agent() -> String {
    format!("callhook/{}", env!("CARGO_PKG_VERSION"))
}

/// The requests' events grouped by call id, in arrival order.
fn events_by_call(reqs: &[Request]) -> BTreeMap<String, Vec<Value>> {
    let mut by_call: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in reqs {
        let e = r.event();
        by_call.entry(id_of(&e)).or_default().push(e);
    }
    by_call
}

#[tokio::test]
async fn seed_sequence_reaches_the_receiver_per_call_in_order_as_the_ingest_api_answered() {
    // Arrange: the seed's webhook (signed, metadataPolicy NONE) pointing at a local receiver.
    let receiver = Receiver::start();
    let server = delivery_server(&[]);
    let user = server.user_token(ACCOUNT, USER);
    let ingest = server.ingest_token();
    let id = create_hook(&server, &user, &seed_hook(&receiver.url("/webhook"))).await;

    // Act: one call rings, is answered and ends; another rings and is missed.
    let mut sent: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (ext, state) in [
        ("call-1", "RINGING"),
        ("call-2", "RINGING"),
        ("call-1", "ACTIVE"),
        ("call-2", "MISSED"),
        ("call-1", "ANSWERED"),
    ] {
        let body = with(
            report(ACCOUNT, USER, ext, "INBOUND", state),
            "callerId",
            json!("Bob"),
        );
        let event = server.ingest_ok(&ingest, &body).await;
        sent.entry(id_of(&event)).or_default().push(event);
    }

    // Assert: once the five successes are counted, the receiver holds exactly five requests.
    wait_for_successes(&server, &user, &id, 5).await;
    let reqs = receiver.requests();
    assert_eq!(
        reqs.len(),
        5,
        "exactly one request per event:\n{}",
        summary(&reqs)
    );
    assert_eq!(
        events_by_call(&reqs),
        sent,
        "each call's events arrive in order, equal to the ingest answers"
    );
    for r in &reqs {
        assert_eq!(r.method, "POST", "{r:?}");
        assert_eq!(r.target, "/webhook", "{r:?}");
        let ct = r.header("content-type").unwrap_or_default();
        assert!(ct.starts_with("application/json"), "Content-Type {ct:?}");
        assert_eq!(r.header("user-agent"), Some(user_agent().as_str()));
        assert!(
            r.headers_starting_with("x-von-").is_empty(),
            "no metadata headers under NONE: {:?}",
            r.headers
        );
        let text = r.text();
        assert_eq!(
            keys(&text, ""),
            ["event"],
            "body is {{\"event\": ...}}: {text}"
        );
        let event_keys = keys(&text, "/event");
        let mut sorted = event_keys.clone();
        sorted.sort();
        assert_eq!(
            event_keys, sorted,
            "event keys are in alphabetical order: {text}"
        );
        assert_no_nulls(&r.json(), "delivery body");
    }
}

#[tokio::test]
async fn header_policy_sends_the_four_von_headers_with_a_signature_the_receiver_can_verify() {
    // Arrange
    let receiver = Receiver::start();
    let server = delivery_server(&[]);
    let user = server.user_token(ACCOUNT, USER);
    let ingest = server.ingest_token();
    let key = "mysecretkey";
    let id = create_hook(
        &server,
        &user,
        &hook(&receiver.url("/h"), "HEADER", Some(key)),
    )
    .await;

    // Act
    let ringing = server
        .ingest_ok(&ingest, &report(ACCOUNT, USER, "c1", "OUTBOUND", "RINGING"))
        .await;
    let active = server
        .ingest_ok(&ingest, &report(ACCOUNT, USER, "c1", "OUTBOUND", "ACTIVE"))
        .await;

    // Assert
    let reqs = receiver.wait_for(2, ARRIVAL).await;
    assert_eq!(reqs[0].event(), ringing);
    assert_eq!(reqs[1].event(), active);
    for r in &reqs {
        let sig = r.header("x-von-signature").expect("X-VON-Signature");
        assert!(
            sig.len() == 64
                && sig
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
            "signature is 64 lowercase hex digits: {sig:?}"
        );
        assert_eq!(
            sig,
            expected_signature(key, &r.event()),
            "signature verifies: {r:?}"
        );
        assert_eq!(r.webhook_id(), id);
        assert!(!r.delivery_id().is_empty());
        assert_eq!(r.header("x-von-attempt"), Some("1"));
        assert_eq!(
            keys(&r.text(), ""),
            ["event"],
            "HEADER puts nothing in the body"
        );
        assert_eq!(
            r.headers_starting_with("x-von-").len(),
            4,
            "{:?}",
            r.headers
        );
    }
    assert_ne!(
        reqs[0].delivery_id(),
        reqs[1].delivery_id(),
        "each event is its own delivery"
    );
}

#[tokio::test]
async fn body_policy_puts_attempt_delivery_id_signature_and_webhook_id_in_metadata() {
    // Arrange: a key with non-ASCII characters, used as its UTF-8 bytes.
    let receiver = Receiver::start();
    let server = delivery_server(&[]);
    let user = server.user_token(ACCOUNT, USER);
    let ingest = server.ingest_token();
    let key = "clé secrète ☎";
    let id = create_hook(
        &server,
        &user,
        &hook(&receiver.url("/b"), "BODY", Some(key)),
    )
    .await;

    // Act
    let ringing = server
        .ingest_ok(
            &ingest,
            &with(
                report(ACCOUNT, USER, "c1", "INBOUND", "RINGING"),
                "callerId",
                json!("Zoë \"Z\" <z@example.com>"),
            ),
        )
        .await;

    // Assert
    let r = receiver.wait_for(1, ARRIVAL).await.remove(0);
    let body = r.json();
    assert_eq!(body["event"], ringing);
    let meta = body["metadata"]
        .as_object()
        .unwrap_or_else(|| panic!("metadata object under BODY: {body}"));
    assert_eq!(
        meta.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from(["attempt", "deliveryId", "signature", "webhookId"]),
        "metadata keys: {body}"
    );
    assert_eq!(meta["attempt"], json!(1), "attempt is the number 1");
    assert!(meta["deliveryId"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(meta["webhookId"], json!(id));
    assert_eq!(
        meta["signature"],
        json!(expected_signature(key, &body["event"])),
        "the signature covers the event only, keyed with the UTF-8 bytes of the key"
    );
    let mut top = keys(&r.text(), "");
    top.sort();
    assert_eq!(top, ["event", "metadata"]);
    assert!(
        r.headers_starting_with("x-von-").is_empty(),
        "BODY sends no metadata headers: {:?}",
        r.headers
    );
}

#[test]
fn the_published_test_vector_verifies_with_an_independent_canonical_form() {
    // Arrange: the contract's event, with its keys shuffled.
    let canonical = r#"{"accountId":"376","answerTime":"2018-02-15T18:59:03.496+0000","direction":"OUTBOUND","duration":2950,"endTime":"2018-02-15T18:59:06.446+0000","externalId":"callhalf-60227142553:0","id":"5a85d86f253bcd10897f3189","startTime":"2018-02-15T18:58:56.194+0000","state":"ANSWERED","type":"CALL","userId":"24785"}"#;
    let shuffled = r#"{ "userId": "24785", "type": "CALL", "state": "ANSWERED",
        "startTime": "2018-02-15T18:58:56.194+0000", "id": "5a85d86f253bcd10897f3189",
        "externalId": "callhalf-60227142553:0", "endTime": "2018-02-15T18:59:06.446+0000",
        "duration": 2950, "direction": "OUTBOUND", "answerTime": "2018-02-15T18:59:03.496+0000",
        "accountId": "376" }"#;

    // Act
    let ours = canonical_json(&serde_json::from_str(shuffled).unwrap());

    // Assert
    assert_eq!(ours, canonical);
    assert_eq!(
        hmac_sha256_hex(b"mysecretkey", ours.as_bytes()),
        "95aafd08cb72b1f9216ccd002b8917b04e41ecb19276ae759241fdc0cbb53fb5"
    );
}

#[tokio::test]
async fn unsigned_webhooks_send_metadata_without_a_signature() {
    // Arrange: HEADER and BODY webhooks that are not signed, three ways: signingAlgo NONE with a
    // key, no key at all, and HMAC_SHA256 with an empty key.
    let receiver = Receiver::start();
    let server = delivery_server(&[]);
    let user = server.user_token(ACCOUNT, USER);
    let ingest = server.ingest_token();
    let mut ids = BTreeMap::new();
    for policy in ["HEADER", "BODY"] {
        for (name, algo, key) in [
            ("none", Some("NONE"), Some("k")),
            ("nokey", None, None),
            ("empty", Some("HMAC_SHA256"), Some("")),
        ] {
            let path = format!("/{policy}-{name}");
            let mut body = json!({"url": receiver.url(&path), "metadataPolicy": policy});
            if let Some(algo) = algo {
                body["signingAlgo"] = json!(algo);
            }
            if let Some(key) = key {
                body["signingKey"] = json!(key);
            }
            ids.insert(path, create_hook(&server, &user, &body).await);
        }
    }

    // Act
    let event = server
        .ingest_ok(&ingest, &report(ACCOUNT, USER, "c1", "INBOUND", "RINGING"))
        .await;

    // Assert
    let reqs = receiver.wait_for(6, ARRIVAL).await;
    for r in &reqs {
        assert_eq!(r.event(), event, "{r:?}");
        let id = &ids[&r.path];
        if r.path.starts_with("/HEADER") {
            assert_eq!(r.header("x-von-signature"), None, "unsigned: {r:?}");
            assert_eq!(&r.webhook_id(), id);
            assert!(!r.delivery_id().is_empty());
            assert_eq!(r.attempt(), 1);
        } else {
            let body = r.json();
            assert_no_nulls(&body, "unsigned BODY delivery");
            let meta = &body["metadata"];
            assert!(meta.get("signature").is_none(), "unsigned: {body}");
            assert_eq!(meta["webhookId"], json!(id));
            assert_eq!(meta["attempt"], json!(1));
            assert!(meta["deliveryId"].as_str().is_some_and(|d| !d.is_empty()));
        }
    }
}

#[tokio::test]
async fn a_users_events_reach_only_that_users_webhooks() {
    // Arrange: two users of one account, each with a webhook.
    let receiver = Receiver::start();
    let server = delivery_server(&[]);
    let ann = server.user_token(ACCOUNT, "ann");
    let bob = server.user_token(ACCOUNT, "bob");
    let ingest = server.ingest_token();
    let ann_hook = create_hook(&server, &ann, &hook(&receiver.url("/ann"), "NONE", None)).await;
    let bob_hook = create_hook(&server, &bob, &hook(&receiver.url("/bob"), "NONE", None)).await;

    // Act: one call of Ann's, then one of Bob's.
    let anns = server
        .ingest_ok(&ingest, &report(ACCOUNT, "ann", "c1", "INBOUND", "RINGING"))
        .await;
    let bobs = server
        .ingest_ok(&ingest, &report(ACCOUNT, "bob", "c2", "INBOUND", "RINGING"))
        .await;

    // Assert
    wait_for_successes(&server, &ann, &ann_hook, 1).await;
    wait_for_successes(&server, &bob, &bob_hook, 1).await;
    let to_ann: Vec<Value> = receiver
        .requests_on("/ann")
        .iter()
        .map(Request::event)
        .collect();
    let to_bob: Vec<Value> = receiver
        .requests_on("/bob")
        .iter()
        .map(Request::event)
        .collect();
    assert_eq!((to_ann, to_bob), (vec![anns], vec![bobs]));
}

#[tokio::test]
async fn a_repeated_report_of_the_current_state_delivers_nothing_new() {
    // Arrange
    let receiver = Receiver::start();
    let server = delivery_server(&[]);
    let user = server.user_token(ACCOUNT, USER);
    let ingest = server.ingest_token();
    let id = create_hook(&server, &user, &hook(&receiver.url("/h"), "NONE", None)).await;
    let ringing = report(ACCOUNT, USER, "c1", "INBOUND", "RINGING");
    server.ingest_ok(&ingest, &ringing).await;

    // Act: the same report again (200, nothing new), then a real change.
    server.ingest(&ingest, &ringing).await.expect(200);
    let active = server
        .ingest_ok(&ingest, &report(ACCOUNT, USER, "c1", "INBOUND", "ACTIVE"))
        .await;

    // Assert
    wait_for_successes(&server, &user, &id, 2).await;
    let states: Vec<String> = receiver.requests().iter().map(Request::state).collect();
    assert_eq!(states, ["RINGING", "ACTIVE"]);
    assert_eq!(receiver.requests()[1].event(), active);
}

#[tokio::test]
async fn the_webhook_urls_query_string_is_sent_as_given() {
    // Arrange: receivers often carry a secret in the query.
    let receiver = Receiver::start();
    let server = delivery_server(&[]);
    let user = server.user_token(ACCOUNT, USER);
    let ingest = server.ingest_token();
    let url = receiver.url("/hooks/call?token=abc%20def&x=1");
    let id = create_hook(&server, &user, &hook(&url, "NONE", None)).await;

    // Act
    server
        .ingest_ok(&ingest, &report(ACCOUNT, USER, "c1", "INBOUND", "RINGING"))
        .await;

    // Assert
    wait_for_successes(&server, &user, &id, 1).await;
    assert_eq!(
        receiver.requests()[0].target,
        "/hooks/call?token=abc%20def&x=1"
    );
}
