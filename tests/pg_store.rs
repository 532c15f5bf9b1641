//! The PostgreSQL store where it differs from SQLite: migrations shared by nodes, several nodes
//! claiming from one outbox, leases taken over, wake-ups across nodes, once-per-cluster jobs.
//! (The behaviour both backends share is the contract suite's.)
//!
//! Runs against `CALLHOOK_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`), each
//! test in a database of its own, created and dropped here. Without a reachable server each test
//! prints that it was skipped and passes, except under `CI=true`, where it fails.

use callhook::domain::Timestamp;
use callhook::domain::call::CallState;
use callhook::domain::identity::{Role, UserProfile, hash_token};
use callhook::store::postgres::schema::{MigrationError, VERSION};
use callhook::store::postgres::{self, PgOpenError};
use callhook::store::{AttemptEnd, Created, DeliveryJob, Finished, NewToken, PgStore, Store};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

mod pg_support;

use pg_support::TestDb;
use pg_support::fixtures::*;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn migrations_apply_once_and_a_newer_schema_is_refused() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    assert_eq!(postgres::migrate(&db.url).await.expect("migrate"), VERSION);
    assert_eq!(postgres::migrate(&db.url).await.expect("again"), VERSION);
    drop(db.store().await);

    sqlx::query("UPDATE callhook_schema SET version = $1")
        .bind(VERSION + 1)
        .execute(&mut db.conn().await)
        .await
        .expect("pretend a newer callhook migrated");
    let refused = postgres::migrate(&db.url).await.expect_err("newer schema");
    assert!(
        matches!(
            refused,
            PgOpenError::Migration(MigrationError::TooNew { found, known })
                if found == VERSION + 1 && known == VERSION
        ),
        "{refused:?}"
    );
    assert!(
        refused
            .to_string()
            .contains("newer than this callhook understands"),
        "{refused}"
    );
    assert!(PgStore::connect(&db.url).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_the_database_once() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (a, b, c) = tokio::join!(
        PgStore::connect(&db.url),
        PgStore::connect(&db.url),
        PgStore::connect(&db.url)
    );
    // A second run of a migration would fail on tables that exist already.
    for store in [a, b, c] {
        store.expect("every node starts");
    }
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM callhook_schema")
        .fetch_all(&mut db.conn().await)
        .await
        .expect("read the version");
    assert_eq!(versions, [VERSION]);
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_is_named_without_its_password() {
    // Port 1 refuses connections whether or not a PostgreSQL server runs here.
    let url = "postgres://app:s3cret@127.0.0.1:1/callhook";
    let started = std::time::Instant::now();
    let Err(refused) = PgStore::connect(url).await else {
        panic!("connected to port 1");
    };
    let message = refused.to_string();
    assert!(
        message.starts_with("cannot connect to postgres://app@127.0.0.1:1/callhook: "),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
    assert!(
        started.elapsed() < WAIT,
        "gave up after {:?}",
        started.elapsed()
    );
    let Err(refused) = postgres::migrate(url).await else {
        panic!("migrated through port 1");
    };
    assert!(!refused.to_string().contains("s3cret"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_applying_reports_of_one_call_apply_them_one_after_the_other() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    let now = Timestamp::now();
    a.create_webhook(&webhook("w1", now, 172_800_000), None)
        .await
        .unwrap();
    const CALLS: usize = 10;
    for call in 0..CALLS {
        // The same new call reported on both nodes at once: one creates it, the other finds it
        // created (a repeat) instead of failing on the unique key.
        let ringing = report(&format!("ext-{call}"), CallState::Ringing);
        let (on_a, on_b) = tokio::join!(
            a.apply_call_report(&ringing, now),
            b.apply_call_report(&ringing, now)
        );
        let mut queued = [on_a.unwrap().deliveries, on_b.unwrap().deliveries];
        queued.sort();
        assert_eq!(queued, [0, 1], "ext-{call}");
    }
    let calls = a.count_calls(&owner(), &Default::default()).await.unwrap();
    assert_eq!(calls, CALLS as u64);
    assert_eq!(a.backlog().await.unwrap().pending, CALLS as u64);
}

#[tokio::test]
async fn a_report_is_delivered_through_claim_and_finish() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = db.store().await;
    let now = Timestamp::now();
    let token = NewToken {
        id: "t1".into(),
        hash: hash_token("secret"),
        role: Role::User,
        account_id: Some("acc".into()),
        user_id: Some("u1".into()),
        name: None,
        created_at: now,
        expires_at: None,
        profile: Some(UserProfile {
            account_id: "acc".into(),
            user_id: "u1".into(),
            ..UserProfile::default()
        }),
    };
    store.create_token(token).await.expect("token");
    let principal = store.authenticate(hash_token("secret"), now).await.unwrap();
    assert_eq!(principal.and_then(|p| p.owner()), Some(owner()));
    let hook = webhook("w1", now, 172_800_000);
    assert_eq!(
        store.create_webhook(&hook, Some(5)).await.unwrap(),
        Created::Created
    );
    assert_eq!(store.get_webhook(&owner(), "w1").await.unwrap(), Some(hook));

    let outcome = store
        .apply_call_report(&report("ext-1", CallState::Ringing), now)
        .await
        .expect("apply");
    assert_eq!((outcome.deliveries, outcome.skipped), (1, 0));
    assert_eq!(store.backlog().await.unwrap().pending, 1);
    let claimed = store
        .claim_deliveries(claim_at(Timestamp::now(), 60_000, 10))
        .await
        .expect("claim");
    let [job] = claimed.jobs.as_slice() else {
        panic!("one job expected: {claimed:?}");
    };
    assert_eq!(
        (
            job.webhook_id.as_str(),
            job.attempt,
            job.signing_key.as_deref()
        ),
        ("w1", 1, Some("key"))
    );
    assert_eq!(state_of(job), "RINGING");

    let skipped = store.finish_attempts(vec![delivered(job)]).await.unwrap();
    assert_eq!(skipped, 0);
    assert_eq!(store.backlog().await.unwrap().pending, 0);
    let stats = store
        .get_webhook(&owner(), "w1")
        .await
        .unwrap()
        .expect("webhook")
        .statistics;
    assert_eq!((stats.total_attempts, stats.total_successes), (1, 1));
    let again = store
        .claim_deliveries(claim_at(Timestamp::now(), 60_000, 10))
        .await
        .unwrap();
    assert!(again.jobs.is_empty(), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_on_two_nodes_stop_at_the_cap() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    let now = Timestamp::now();
    const CREATES: usize = 24;
    // Every create starts at once, each on a connection of its own.
    let start = Arc::new(tokio::sync::Barrier::new(CREATES));
    let creates = (0..CREATES).map(|i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let start = start.clone();
        tokio::spawn(async move {
            store.ping().await.expect("ping");
            start.wait().await;
            store
                .create_webhook(&webhook(&format!("w{i}"), now, 172_800_000), Some(3))
                .await
        })
    });
    let creates: Vec<_> = creates.collect();
    let mut created = 0;
    for create in creates {
        if create.await.unwrap().expect("create") == Created::Created {
            created += 1;
        }
    }
    assert_eq!(created, 3);
    assert_eq!(a.list_webhooks(&owner()).await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_call_whose_first_event_is_leased_on_one_node_gives_the_other_nothing() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    let now = Timestamp::now();
    a.create_webhook(&webhook("w1", now, 172_800_000), None)
        .await
        .unwrap();
    for state in [CallState::Ringing, CallState::Active] {
        a.apply_call_report(&report("ext-1", state), now)
            .await
            .unwrap();
    }
    let on_a = a
        .claim_deliveries(claim_at(Timestamp::now(), 60_000, 1))
        .await
        .unwrap()
        .jobs;
    assert_eq!(on_a.iter().map(state_of).collect::<Vec<_>>(), ["RINGING"]);
    let on_b = b
        .claim_deliveries(claim_at(Timestamp::now(), 60_000, 10))
        .await
        .unwrap()
        .jobs;
    assert!(on_b.is_empty(), "the call's second event waits: {on_b:?}");

    a.finish_attempts(on_a.iter().map(delivered).collect())
        .await
        .unwrap();
    let on_b = b
        .claim_deliveries(claim_at(Timestamp::now(), 60_000, 10))
        .await
        .unwrap()
        .jobs;
    assert_eq!(on_b.iter().map(state_of).collect::<Vec<_>>(), ["ACTIVE"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_claiming_at_once_never_share_a_delivery_and_keep_each_calls_order() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    let now = Timestamp::now();
    a.create_webhook(&webhook("w1", now, 172_800_000), None)
        .await
        .unwrap();
    const CALLS: usize = 20;
    let states = [CallState::Ringing, CallState::Active, CallState::Answered];
    for call in 0..CALLS {
        for state in states {
            a.apply_call_report(&report(&format!("ext-{call}"), state), now)
                .await
                .unwrap();
        }
    }

    // Two workers per node claim small batches and deliver them at once, until nothing is left.
    // One counter numbers the moments each claim and each finish returned.
    let clock = Arc::new(AtomicU64::new(0));
    let log: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let workers = [a.clone(), a, b.clone(), b].map(|store| {
        let (clock, log) = (clock.clone(), log.clone());
        tokio::spawn(async move {
            loop {
                let jobs = store
                    .claim_deliveries(claim_at(Timestamp::now(), 60_000, 3))
                    .await
                    .expect("claim")
                    .jobs;
                if jobs.is_empty() {
                    if store.backlog().await.expect("backlog").pending == 0 {
                        return;
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
                let claimed = clock.fetch_add(1, Ordering::SeqCst);
                store
                    .finish_attempts(jobs.iter().map(delivered).collect())
                    .await
                    .expect("finish");
                let finished = clock.fetch_add(1, Ordering::SeqCst);
                let sent = jobs.into_iter().map(|job| Sent {
                    claimed,
                    finished,
                    job,
                });
                log.lock().unwrap().extend(sent);
            }
        })
    });
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(60), worker)
            .await
            .expect("the outbox drains")
            .unwrap();
    }

    let log = std::mem::take(&mut *log.lock().unwrap());
    assert_eq!(log.len(), CALLS * states.len(), "every delivery once");
    let seqs: HashSet<i64> = log.iter().map(|s| s.job.seq).collect();
    assert_eq!(seqs.len(), log.len(), "no delivery claimed twice");
    let mut per_call: HashMap<String, Vec<&Sent>> = HashMap::new();
    for sent in &log {
        per_call
            .entry(external_id_of(&sent.job))
            .or_default()
            .push(sent);
    }
    for (call, mut sent) in per_call {
        sent.sort_by_key(|s| s.claimed);
        let seen: Vec<String> = sent.iter().map(|s| state_of(&s.job)).collect();
        assert_eq!(seen, ["RINGING", "ACTIVE", "ANSWERED"], "order of {call}");
        for pair in sent.windows(2) {
            assert!(
                pair[1].claimed > pair[0].finished,
                "{call}: {} claimed while {} was in flight",
                state_of(&pair[1].job),
                state_of(&pair[0].job)
            );
        }
    }
}

/// A delivery as a worker sent it: when it was claimed and when its outcome was recorded.
struct Sent {
    claimed: u64,
    finished: u64,
    job: DeliveryJob,
}

#[tokio::test]
async fn a_lease_that_ran_out_is_taken_over_by_another_node() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    let now = Timestamp::now();
    a.create_webhook(&webhook("w1", now, 172_800_000), None)
        .await
        .unwrap();
    a.apply_call_report(&report("ext-1", CallState::Ringing), now)
        .await
        .unwrap();
    let t = Timestamp::now();
    let on_a = a
        .claim_deliveries(claim_at(t, 1_000, 10))
        .await
        .unwrap()
        .jobs;
    assert_eq!(on_a.len(), 1);
    // Node a dies here, its delivery in flight.
    let while_leased = b.claim_deliveries(claim_at(ms(t, 500), 1_000, 10)).await;
    assert!(while_leased.unwrap().jobs.is_empty());
    // `release_leases` (run when a node starts) leaves other nodes' leases alone.
    assert_eq!(b.release_leases().await.unwrap(), 0);
    let taken_over = b
        .claim_deliveries(claim_at(ms(t, 1_000), 1_000, 10))
        .await
        .unwrap()
        .jobs;
    let [job] = taken_over.as_slice() else {
        panic!("the expired lease is taken over: {taken_over:?}");
    };
    assert_eq!((job.id.as_str(), job.attempt), (on_a[0].id.as_str(), 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_queued_on_one_node_wakes_the_others() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    let wake = Arc::new(Notify::new());
    let shutdown = CancellationToken::new();
    let forwarding = tokio::spawn({
        let (a, wake, shutdown) = (a.clone(), wake.clone(), shutdown.clone());
        async move { a.forward_wakeups(wake, shutdown).await }
    });
    // The forwarder wakes once when it starts listening.
    tokio::time::timeout(WAIT, wake.notified())
        .await
        .expect("listening");

    let now = Timestamp::now();
    b.create_webhook(&webhook("w1", now, 172_800_000), None)
        .await
        .unwrap();
    b.apply_call_report(&report("ext-1", CallState::Ringing), now)
        .await
        .unwrap();
    tokio::time::timeout(WAIT, wake.notified())
        .await
        .expect("woken by the queued delivery");

    shutdown.cancel();
    tokio::time::timeout(WAIT, forwarding)
        .await
        .expect("stops on shutdown")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_at_a_time_leads_housekeeping_and_another_takes_over_when_it_is_gone() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);

    let (on_a, on_b) = tokio::join!(a.leads_housekeeping(), b.leads_housekeeping());
    let (on_a, on_b) = (on_a.unwrap(), on_b.unwrap());

    assert!(on_a ^ on_b, "exactly one leads: {on_a} {on_b}");
    let (leader, follower) = if on_a { (a, b) } else { (b, a) };
    assert!(
        leader.leads_housekeeping().await.unwrap(),
        "the leader stays"
    );
    assert!(!follower.leads_housekeeping().await.unwrap());
    // The leader's process goes (its connections close): the follower takes over.
    drop(leader);
    let took_over = eventually_true(|| follower.leads_housekeeping()).await;
    assert!(took_over, "the follower took over once the leader was gone");
}

/// Polls `f` until it gives `Ok(true)` or 10 s pass; the lock goes when the server notices the
/// closed connection, which takes a moment.
async fn eventually_true<F, Fut>(f: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<bool, callhook::store::StoreError>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if f().await.unwrap_or(false) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_failed_attempt_holds_the_webhooks_other_deliveries_until_one_succeeds() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = db.store().await;
    let now = Timestamp::now();
    store
        .create_webhook(&webhook("w1", now, 172_800_000), None)
        .await
        .unwrap();
    for call in ["ext-1", "ext-2"] {
        store
            .apply_call_report(&report(call, CallState::Ringing), now)
            .await
            .unwrap();
    }
    let t = Timestamp::now();
    let probe = store
        .claim_deliveries(claim_at(t, 60_000, 1))
        .await
        .unwrap()
        .jobs;
    assert_eq!(
        probe.iter().map(external_id_of).collect::<Vec<_>>(),
        ["ext-1"]
    );
    let retry = ms(t, 30_000);
    store
        .finish_attempts(vec![Finished {
            job: probe[0].clone(),
            end: AttemptEnd::Retry { at: retry },
            at: t,
        }])
        .await
        .unwrap();
    // Queued while paused: held as well.
    let outcome = store
        .apply_call_report(&report("ext-3", CallState::Ringing), t)
        .await
        .unwrap();
    assert_eq!(outcome.deliveries, 1);
    let paused = store
        .claim_deliveries(claim_at(t, 60_000, 10))
        .await
        .unwrap();
    assert!(paused.jobs.is_empty(), "{paused:?}");
    assert_eq!(paused.next_retry, Some(retry), "held rows are never due");
    assert_eq!(store.backlog().await.unwrap().pending, 3);

    let probed = store
        .claim_deliveries(claim_at(retry, 60_000, 10))
        .await
        .unwrap()
        .jobs;
    assert_eq!(
        probed.iter().map(external_id_of).collect::<Vec<_>>(),
        ["ext-1"]
    );
    assert_eq!(probed[0].attempt, 2);
    store
        .finish_attempts(probed.iter().map(delivered).collect())
        .await
        .unwrap();
    let resumed = store
        .claim_deliveries(claim_at(Timestamp::now(), 60_000, 10))
        .await
        .unwrap()
        .jobs;
    let mut calls: Vec<String> = resumed.iter().map(external_id_of).collect();
    calls.sort();
    assert_eq!(calls, ["ext-2", "ext-3"]);
}
