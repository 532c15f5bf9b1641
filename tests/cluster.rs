//! The cluster test: three `serve` nodes on one PostgreSQL database under simulated traffic,
//! reports spread over all of them; the node driving the webhook's queue is killed with SIGKILL
//! mid-run, another takes the queue over, and the two left finish the work. At the end: every acknowledged event reached the receiver, each
//! call's events in order; every delivery was sent once, except those in flight on the killed
//! node, whose repeat carries the same `deliveryId` (so their first copy arrived before the kill);
//! the webhook's statistics count each delivery once. The figures are printed.
//!
//! Skipped (saying so) without a reachable PostgreSQL, except under `CI=true`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;
use tokio::sync::watch;

const ME: (&str, &str) = ("a1", "u1");
const NODES: usize = 3;
/// Calls placed (each RINGING, ACTIVE, ANSWERED).
const CALLS: usize = 400;
/// Telephony sources reporting at once.
const SOURCES: usize = 8;
const STATES: [&str; 3] = ["RINGING", "ACTIVE", "ANSWERED"];
/// The node that drives the webhook's queue is killed after this share of the events is
/// acknowledged.
const KILL_AT: usize = CALLS * STATES.len() / 3;
/// Generous: debug builds on a shared 2-core machine, and the dead node's leases to run out.
const SETTLE: Duration = Duration::from_secs(90);
/// Short attempts and leases, so that the dead node's deliveries are taken over within seconds.
const NODE_ARGS: [&str; 8] = [
    "--connect-timeout",
    "1s",
    "--response-timeout",
    "2s",
    "--lease-margin",
    "2s",
    "--retries",
    "10",
];

/// What the sources did, shared between them.
struct Traffic {
    /// Per call id, the acknowledged events in the order they were acknowledged.
    acked: Mutex<BTreeMap<String, Vec<Value>>>,
    /// Reports sent again to another node after a connection error.
    retries: AtomicU64,
    /// Reports acknowledged by each node.
    per_node: Vec<AtomicU64>,
    next_call: AtomicUsize,
    progress: watch::Sender<usize>,
}

/// Reports `body` to the live nodes in turn (starting at `first`) until one acknowledges it.
async fn report_until_acked(
    http: &reqwest::Client,
    nodes: &watch::Receiver<Vec<Option<String>>>,
    first: usize,
    token: &str,
    body: &Value,
    traffic: &Traffic,
) -> Value {
    for attempt in 0..100 {
        let node = (first + attempt) % NODES;
        let Some(base) = nodes.borrow()[node].clone() else {
            continue;
        };
        let sent = http
            .post(format!("{base}{INGEST}"))
            .bearer_auth(token)
            .json(body)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status() == 202 || resp.status() == 200 => {
                traffic.per_node[node].fetch_add(1, Ordering::Relaxed);
                let envelope: Value = resp.json().await.expect("ingest answers JSON");
                return envelope["event"].clone();
            }
            Ok(resp) => {
                let status = resp.status();
                panic!(
                    "node {node} answered {status}: {}",
                    resp.text().await.unwrap_or_default()
                )
            }
            // The node is gone (killed): the next one takes the report.
            Err(_) => {
                traffic.retries.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    panic!("no node acknowledged {body}");
}

/// One telephony source: places whole calls, each report to the next node in turn.
async fn source(
    http: reqwest::Client,
    nodes: watch::Receiver<Vec<Option<String>>>,
    token: String,
    traffic: Arc<Traffic>,
) {
    let mut turn = 0;
    loop {
        let n = traffic.next_call.fetch_add(1, Ordering::SeqCst);
        if n >= CALLS {
            return;
        }
        let ext = format!("cluster-{n}");
        for state in STATES {
            turn += 1;
            let body = report(ME.0, ME.1, &ext, "INBOUND", state);
            let event = report_until_acked(&http, &nodes, n + turn, &token, &body, &traffic).await;
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

/// The node (by index) that drives webhook `id`'s queue, as the database and the nodes' logs say
/// (each node logs its id when it starts).
async fn driver_of(db: &TestDb, id: &str, nodes: &[Server]) -> usize {
    let driver: String = eventually("a node to drive the webhook", SETTLE, || async {
        let mut conn = db.conn().await;
        sqlx::query_scalar::<_, Option<String>>("SELECT driver FROM webhooks WHERE id = $1")
            .bind(id)
            .fetch_one(&mut conn)
            .await
            .expect("read the webhook's driver")
    })
    .await;
    nodes
        .iter()
        .position(|n| n.log().contains(&driver))
        .unwrap_or_else(|| panic!("no node logged the id {driver}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_postgres_lose_nothing_and_keep_order_when_one_is_killed() {
    // Arrange: one database, three nodes, one webhook, a healthy receiver.
    let Some(db) = TestDb::create().await else {
        return;
    };
    let receiver = Receiver::start();
    let mut nodes: Vec<Server> = (0..NODES)
        .map(|_| Server::start_on_db(&db.url, &NODE_ARGS))
        .collect();
    let (user, token, id) = subscribe_to(&nodes[0], ME, &receiver.url("/hook")).await;
    let (publish, watch_nodes) = watch::channel(
        nodes
            .iter()
            .map(|n| Some(n.base().to_string()))
            .collect::<Vec<_>>(),
    );
    let traffic = Arc::new(Traffic {
        acked: Mutex::default(),
        retries: AtomicU64::new(0),
        per_node: (0..NODES).map(|_| AtomicU64::new(0)).collect(),
        next_call: AtomicUsize::new(0),
        progress: watch::channel(0).0,
    });
    let mut progress = traffic.progress.subscribe();
    let http = reqwest::Client::new();
    let sources: Vec<_> = (0..SOURCES)
        .map(|_| {
            tokio::spawn(source(
                http.clone(),
                watch_nodes.clone(),
                token.clone(),
                traffic.clone(),
            ))
        })
        .collect();

    // Act: a third of the way in, node 1 dies; the sources move to the others.
    tokio::time::timeout(SETTLE, progress.wait_for(|n| *n >= KILL_AT))
        .await
        .expect("the calls stalled before the kill")
        .expect("the sources are gone");
    let victim = driver_of(&db, &id, &nodes).await;
    let killed_at = Instant::now();
    let sent_by_victim_before = receiver.count();
    tokio::task::block_in_place(|| {
        let (status, _) = nodes[victim].stop_with_signal("KILL");
        assert!(!status.success(), "a SIGKILLed node cannot exit cleanly");
    });
    publish.send_modify(|bases| bases[victim] = None);
    let alive = (victim + 1) % NODES;
    for s in sources {
        s.await.expect("a source panicked");
    }

    // Assert: everything acknowledged arrived, each call in order, once per deliveryId.
    let acked = traffic.acked.lock().unwrap().clone();
    let events: usize = acked.values().map(Vec::len).sum();
    let reqs = tokio::time::timeout(
        SETTLE,
        receiver.wait_until("every acknowledged event", SETTLE * 2, |reqs| {
            let arrived: BTreeSet<String> = reqs.iter().map(|r| r.delivery_id()).collect();
            (arrived.len() >= events).then(|| reqs.to_vec())
        }),
    )
    .await
    .unwrap_or_else(|_| {
        let logs: Vec<String> = nodes.iter().map(|n| n.log()).collect();
        panic!(
            "{} of {events} acknowledged events arrived\n{}",
            receiver.count(),
            logs.join("\n")
        )
    });
    assert_all_arrived_in_order(&reqs, &acked);
    let distinct: BTreeSet<String> = reqs.iter().map(|r| r.delivery_id()).collect();
    assert_eq!(
        distinct.len(),
        events,
        "one delivery per acknowledged event"
    );
    // A repeat is a delivery the killed node had in flight: its first copy arrived before the
    // kill (allowing for the request already on the wire), and the repeat after it.
    let mut first_seen: BTreeMap<String, Instant> = BTreeMap::new();
    let mut repeated = Vec::new();
    for r in &reqs {
        match first_seen.get(&r.delivery_id()) {
            Some(first) => repeated.push((r.delivery_id(), *first, r.at)),
            None => {
                first_seen.insert(r.delivery_id(), r.at);
            }
        }
    }
    let wire = Duration::from_millis(500);
    for (delivery, first, again) in &repeated {
        assert!(
            *first <= killed_at + wire && *again > killed_at,
            "delivery {delivery} was sent twice, and not because the node that had it died \
             (first {:?} after the kill, again {:?} after)",
            first.saturating_duration_since(killed_at),
            again.saturating_duration_since(killed_at)
        );
    }
    let webhook = eventually("the statistics to settle", SETTLE, || async {
        let w = get_hook(&nodes[alive], &user, &id).await;
        (w["statistics"]["totalSuccesses"].as_u64() == Some(events as u64)).then_some(w)
    })
    .await;
    assert_eq!(
        webhook["statistics"]["totalFailures"].as_u64(),
        Some(0),
        "{webhook}"
    );
    let successor = driver_of(&db, &id, &nodes).await;
    assert_ne!(
        successor, victim,
        "another node drives the webhook's queue now"
    );
    let per_node: Vec<u64> = traffic
        .per_node
        .iter()
        .map(|n| n.load(Ordering::Relaxed))
        .collect();
    assert!(
        per_node.iter().all(|n| *n > 0),
        "every node took reports: {per_node:?}"
    );

    println!(
        "cluster: {NODES} nodes on PostgreSQL, node {victim} (the webhook's driver) SIGKILLed \
         after {KILL_AT} acknowledgements ({sent_by_victim_before} deliveries received by then), \
         node {successor} drove it after; {} calls, {events} events acknowledged (per node \
         {per_node:?}, {} reports moved to another node), {} delivered, {} requests received, \
         {} repeats of deliveries in flight on the killed node",
        acked.len(),
        traffic.retries.load(Ordering::Relaxed),
        distinct.len(),
        reqs.len(),
        repeated.len(),
    );
}
