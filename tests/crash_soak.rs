//! The crash test: a real `serve` under steady traffic (whole calls from several concurrent
//! telephony sources) is killed with SIGKILL at random moments, six times, and started again on
//! the same database each time. The sources keep going across the kills: they retry a report until
//! it is acknowledged (202, or 200 when the killed process had applied it but died before
//! answering). At the end every acknowledged event reached the receiver at least once, each call's
//! events in order, a repeat with the deliveryId of its first arrival, and the webhook's statistics
//! agree with what the receiver saw. The figures are printed.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use serde_json::Value;
use support::*;
use tokio::sync::watch;

const ME: (&str, &str) = ("a1", "u1");
/// Calls placed at least (each RINGING, ACTIVE, ANSWERED).
const CALLS: usize = 2_000;
/// Kills survived at least.
const KILLS: usize = 6;
/// Telephony sources reporting at once.
const SOURCES: usize = 16;
const STATES: [&str; 3] = ["RINGING", "ACTIVE", "ANSWERED"];
/// Generous: a debug build on a shared 2-core machine, with restarts in between.
const SETTLE: Duration = Duration::from_secs(60);

/// What the sources did, shared between them.
struct Traffic {
    /// Per call id, the acknowledged events in the order they were acknowledged.
    acked: Mutex<BTreeMap<String, Vec<Value>>>,
    /// Reports sent again after a connection error, a 503 or a 429.
    retries: AtomicU64,
    /// Acknowledgements that were a 200: the killed process had applied the report already.
    repeats: AtomicU64,
    next_call: AtomicUsize,
    /// How many events are acknowledged so far (the kills are timed by it).
    progress: watch::Sender<usize>,
}

/// Reports `body` until acknowledged, following the server across restarts.
async fn report_until_acked(
    http: &reqwest::Client,
    base: &mut watch::Receiver<String>,
    token: &str,
    body: &Value,
    traffic: &Traffic,
) -> Value {
    let mut tries = 0;
    loop {
        tries += 1;
        assert!(tries < 1_000, "a report was never acknowledged: {body}");
        let url = format!("{}{INGEST}", base.borrow_and_update().clone());
        let sent = http
            .post(&url)
            .bearer_auth(token)
            .json(body)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status() == 202 || resp.status() == 200 => {
                if resp.status() == 200 {
                    traffic.repeats.fetch_add(1, Ordering::Relaxed);
                }
                let envelope: Value = resp.json().await.expect("ingest answers JSON");
                return envelope["event"].clone();
            }
            Ok(resp) if resp.status() == 503 || resp.status() == 429 => {
                traffic.retries.fetch_add(1, Ordering::Relaxed);
                let wait = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .map_or(Duration::from_millis(50), Duration::from_secs);
                let _ = tokio::time::timeout(wait, base.changed()).await;
            }
            Ok(resp) => {
                let status = resp.status();
                panic!(
                    "ingest answered {status}: {}",
                    resp.text().await.unwrap_or_default()
                )
            }
            // The process is gone: wait for the next one (or retry the same one shortly).
            Err(_) => {
                traffic.retries.fetch_add(1, Ordering::Relaxed);
                let _ = tokio::time::timeout(Duration::from_secs(1), base.changed()).await;
            }
        }
    }
}

/// One telephony source: places whole calls until `CALLS` are placed.
async fn source(
    http: reqwest::Client,
    mut base: watch::Receiver<String>,
    token: String,
    traffic: Arc<Traffic>,
) {
    loop {
        let n = traffic.next_call.fetch_add(1, Ordering::SeqCst);
        if n >= CALLS {
            return;
        }
        let ext = format!("soak-{n}");
        for state in STATES {
            let body = report(ME.0, ME.1, &ext, "INBOUND", state);
            let event = report_until_acked(&http, &mut base, &token, &body, &traffic).await;
            traffic
                .acked
                .lock()
                .unwrap()
                .entry(id_of(&event))
                .or_default()
                .push(event);
            traffic.progress.send_modify(|n| *n += 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_six_sigkills_under_steady_traffic_in_order_with_exact_statistics()
 {
    // Arrange: a healthy receiver, one webhook, sources reporting through a shared address.
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    let receiver = Receiver::start();
    // Retries to spare: a healthy receiver on a loaded machine may still time out once.
    let mut server = delivery_server(&[("--retries", "10")]);
    let (user, token, id) = subscribe_to(&server, ME, &receiver.url("/hook")).await;
    let (publish, base) = watch::channel(server.base().to_string());
    let traffic = Arc::new(Traffic {
        acked: Mutex::default(),
        retries: AtomicU64::new(0),
        repeats: AtomicU64::new(0),
        next_call: AtomicUsize::new(0),
        progress: watch::channel(0).0,
    });
    let mut progress = traffic.progress.subscribe();
    let http = reqwest::Client::new();
    let sources: Vec<_> = (0..SOURCES)
        .map(|_| {
            tokio::spawn(source(
                http.clone(),
                base.clone(),
                token.clone(),
                traffic.clone(),
            ))
        })
        .collect();

    // Act: kill at random moments while the calls go on (after a random number of
    // acknowledgements), restarting on the same database each time.
    let seed = std::env::var("CALLHOOK_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let total = CALLS * STATES.len();
    let mut moments: Vec<usize> = (0..KILLS)
        .map(|_| rng.random_range(total / 20..total * 19 / 20))
        .collect();
    moments.sort_unstable();
    for moment in &moments {
        tokio::time::timeout(SETTLE, progress.wait_for(|n| n >= moment))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the calls stalled before {moment} acknowledgements\n--- server log ---\n{}",
                    server.log()
                )
            })
            .expect("the sources are gone");
        tokio::task::block_in_place(|| server.crash_and_restart());
        publish.send_replace(server.base().to_string());
    }
    for s in sources {
        s.await.expect("a source panicked");
    }

    // Assert: everything acknowledged arrived, in order, repeats with their first deliveryId.
    let acked = traffic.acked.lock().unwrap().clone();
    let events: usize = acked.values().map(Vec::len).sum();
    let all_arrived = tokio::time::timeout(
        SETTLE,
        receiver.wait_until("every acknowledged event", SETTLE * 2, |reqs| {
            let arrived: BTreeSet<String> = reqs.iter().map(|r| r.delivery_id()).collect();
            (arrived.len() >= events).then(|| reqs.to_vec())
        }),
    )
    .await;
    let reqs = match all_arrived {
        Ok(reqs) => reqs,
        Err(_) => {
            let reqs = receiver.requests();
            let arrived: BTreeSet<(String, String)> = reqs.iter().map(|r| r.call_state()).collect();
            let missing: Vec<(String, String)> = acked
                .iter()
                .flat_map(|(call, events)| {
                    events
                        .iter()
                        .map(move |e| (call.clone(), e["state"].as_str().unwrap_or("").to_string()))
                })
                .filter(|k| !arrived.contains(k))
                .collect();
            panic!(
                "{} of {events} acknowledged events never arrived, e.g. {:?}\n--- server log ---\n{}",
                missing.len(),
                &missing[..missing.len().min(10)],
                server.log()
            );
        }
    };
    assert_all_arrived_in_order(&reqs, &acked);
    let distinct: BTreeSet<String> = reqs.iter().map(|r| r.delivery_id()).collect();
    assert_eq!(
        distinct.len(),
        events,
        "one delivery per acknowledged event"
    );
    // The statistics count each delivery once, as it was recorded; an attempt lost with a killed
    // process is not counted, its repeat is.
    let webhook = eventually("the statistics to settle", SETTLE, || async {
        let w = get_hook(&server, &user, &id).await;
        (w["statistics"]["totalSuccesses"].as_u64() == Some(events as u64)).then_some(w)
    })
    .await;
    let stats = &webhook["statistics"];
    assert_eq!(
        stats["totalAttempts"].as_u64(),
        Some(events as u64),
        "{webhook}"
    );
    assert_eq!(stats["totalFailures"].as_u64(), Some(0), "{webhook}");
    assert_eq!(stats["failed"], Value::Bool(false), "{webhook}");

    println!(
        "crash soak (seed {seed}): {} calls, {events} events acknowledged ({} after a repeat), \
         {} delivered, {} requests received, {} duplicates, {} reports retried, {KILLS} kills survived \
         (after {moments:?} acknowledgements)",
        acked.len(),
        traffic.repeats.load(Ordering::Relaxed),
        distinct.len(),
        reqs.len(),
        reqs.len() - distinct.len(),
        traffic.retries.load(Ordering::Relaxed),
    );
    assert!(acked.len() >= CALLS, "{} calls", acked.len());
}
