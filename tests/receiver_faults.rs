//! Receiver faults at scale: 100 endpoints that hang, refuse connections, reset them or answer
//! 500, next to one healthy endpoint. The healthy endpoint gets every event once, in call order,
//! and every dead endpoint ends failed with exactly the statistics CONTRACT.md prescribes (one
//! failure after the retries, the error of its kind, nothing counted for the events skipped after
//! it). The healthy endpoint's latency next to them is a bench figure (`callhook bench --scenario
//! faults`), not asserted here.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use support::*;

/// Two users share the dead endpoints (the default cap is 100 webhooks per user); the healthy
/// one belongs to the first.
const USERS: [(&str, &str); 2] = [("a1", "u1"), ("a1", "u2")];
const PER_KIND: usize = 25;
const CALLS_PER_USER: usize = 10;
/// Hanging attempts end at the response timeout: three attempts each, a hundred endpoints.
const SETTLE: Duration = Duration::from_secs(90);

#[derive(Clone, Copy, Debug)]
enum Kind {
    Hang,
    Refuse,
    Reset,
    Error500,
}

impl Kind {
    /// `lastHttpErrorCode` after the retries.
    fn code(self) -> &'static str {
        match self {
            Kind::Hang => "RESPONSE_TIMEOUT",
            Kind::Refuse => "CONNECTION_REFUSED",
            Kind::Reset => "CONNECTION_ERROR",
            Kind::Error500 => "500 INTERNAL_SERVER_ERROR",
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_dead_endpoints_end_with_exact_statistics_and_the_healthy_one_gets_everything() {
    // Arrange: 25 endpoints of each kind, split between two users, and one healthy endpoint.
    let receiver = Receiver::start();
    receiver.on("/healthy", Reply::ok());
    let server = delivery_server(&[
        ("--response-timeout", "1s"),
        ("--connect-timeout", "1s"),
        ("--retries", "2"),
        ("--retry-interval", "100ms"),
    ]);
    let ingest = server.ingest_token();
    let tokens: Vec<String> = USERS.iter().map(|(a, u)| server.user_token(a, u)).collect();
    let mut dead: Vec<(Kind, usize, String)> = Vec::new();
    let kinds = [Kind::Hang, Kind::Refuse, Kind::Reset, Kind::Error500];
    for (k, kind) in kinds.into_iter().enumerate() {
        for i in 0..PER_KIND {
            let url = match kind {
                // Port 0 refuses every connection, and no test server running alongside
                // can take it (as it could take a port freed for the purpose).
                Kind::Refuse => "http://127.0.0.1:0/refused".to_string(),
                _ => {
                    let path = format!("/{kind:?}/{i}");
                    receiver.on(
                        &path,
                        match kind {
                            Kind::Hang => Reply::Hang,
                            Kind::Reset => Reply::Reset,
                            _ => Reply::status(500, "down"),
                        },
                    );
                    receiver.url(&path)
                }
            };
            let owner = (k * PER_KIND + i) % USERS.len();
            let id = create_hook(&server, &tokens[owner], &hook(&url, "HEADER", None)).await;
            dead.push((kind, owner, id));
        }
    }
    let healthy = create_hook(
        &server,
        &tokens[0],
        &hook(&receiver.url("/healthy"), "HEADER", None),
    )
    .await;

    // Act: whole calls for both users.
    let mut sent: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for n in 0..CALLS_PER_USER {
        for (u, (account, user)) in USERS.iter().enumerate() {
            for state in ["RINGING", "ACTIVE", "ANSWERED"] {
                let body = report(account, user, &format!("c{u}-{n}"), "INBOUND", state);
                let event = server.ingest_ok(&ingest, &body).await;
                if u == 0 {
                    sent.entry(id_of(&event)).or_default().push(event.clone());
                }
            }
        }
    }

    // Assert: the healthy endpoint got the first user's events, each once, in call order.
    let events: usize = sent.values().map(Vec::len).sum();
    let reqs = receiver.wait_for_on("/healthy", events, SETTLE).await;
    assert_all_arrived_in_order(&reqs, &sent);
    assert_eq!(reqs.len(), events, "{}", summary(&reqs));
    let ok = wait_for_successes(&server, &tokens[0], &healthy, events as u64).await;
    assert_eq!(ok["statistics"]["totalFailures"].as_u64(), Some(0), "{ok}");
    // Every dead endpoint failed once, with its kind's error.
    for (kind, owner, id) in &dead {
        let webhook = eventually(
            &format!("{kind:?} webhook {id} to fail"),
            SETTLE,
            || async {
                let w = get_hook(&server, &tokens[*owner], id).await;
                (w["statistics"]["failed"] == Value::Bool(true)).then_some(w)
            },
        )
        .await;
        assert_failed_once(&webhook, kind.code());
    }
    println!(
        "receiver faults: {} dead endpoints ({PER_KIND} each hang, refuse, reset, 500) failed with exact \
         statistics; the healthy one got {events} of {events} events in order",
        dead.len()
    );
}
