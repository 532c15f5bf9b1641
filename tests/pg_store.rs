//! The PostgreSQL store where it differs from SQLite: migrations shared by nodes, one node driving
//! each webhook's queue and another taking it over, news of queues across nodes, once-per-cluster
//! jobs.
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
use callhook::store::{AttemptEnd, Created, Finished, NewToken, PgStore, QueueNews, Store};
use std::sync::Arc;
use std::time::Duration;
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
async fn a_report_is_delivered_through_its_webhooks_queue() {
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
    assert_eq!(store.find_queues(now).await.unwrap(), ["w1"]);
    let page = drive_and_load(&store, "w1").await;
    let jobs = start(&store, &page, &[0]).await;
    let [job] = jobs.as_slice() else {
        panic!("one job expected: {jobs:?}");
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

    let advanced = store
        .advance(vec![delivered(job)], vec![], now)
        .await
        .unwrap();
    assert_eq!(advanced.skipped, 0);
    assert_eq!(store.backlog().await.unwrap().pending, 0);
    let stats = store
        .get_webhook(&owner(), "w1")
        .await
        .unwrap()
        .expect("webhook")
        .statistics;
    assert_eq!((stats.total_attempts, stats.total_successes), (1, 1));
    assert!(store.find_queues(now).await.unwrap().is_empty());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_at_a_time_drives_a_webhook_and_another_takes_it_over_once_its_drive_lapses() {
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
    // Node a drives w1, with a short drive, and has the delivery in flight.
    a.keep_driving(Duration::from_millis(500)).await.unwrap();
    assert_eq!(a.drive(vec!["w1".into()], now).await.unwrap(), ["w1"]);
    let page = a
        .load_queue("w1", 10, vec![], now)
        .await
        .unwrap()
        .expect("live");
    let on_a = start(&a, &page, &[0]).await;
    assert_eq!(on_a.len(), 1);

    // While a's drive holds, b neither finds nor takes w1, and cannot start its deliveries.
    b.keep_driving(LEASE).await.unwrap();
    assert!(b.find_queues(now).await.unwrap().is_empty());
    assert!(b.drive(vec!["w1".into()], now).await.unwrap().is_empty());
    let refused = b
        .advance(vec![], vec![on_a[0].seq], ms(now, 60_000))
        .await
        .unwrap();
    assert!(
        refused.started.is_empty(),
        "b started a's webhook: {refused:?}"
    );

    // Node a dies (its drive is not renewed): b takes w1 over and sends the delivery again.
    let took_over = eventually_true(|| async {
        let found = b.find_queues(Timestamp::now()).await?;
        Ok(found == ["w1"] && b.drive(found, Timestamp::now()).await? == ["w1"])
    })
    .await;
    assert!(took_over, "b took w1 over once a's drive lapsed");
    let page = b
        .load_queue("w1", 10, vec![], Timestamp::now())
        .await
        .unwrap()
        .expect("live");
    let on_b = start(&b, &page, &[0]).await;
    assert_eq!(
        (on_b[0].id.as_str(), on_b[0].attempt),
        (on_a[0].id.as_str(), 2)
    );
    // a, back, can start nothing of w1: it is b's now.
    a.keep_driving(LEASE).await.unwrap();
    let late = a
        .advance(vec![], vec![on_a[0].seq], ms(now, 60_000))
        .await
        .unwrap();
    assert!(late.started.is_empty(), "{late:?}");
}

#[tokio::test]
async fn a_node_that_stops_driving_hands_its_webhooks_over_at_once() {
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
    drive_and_load(&a, "w1").await;
    b.keep_driving(LEASE).await.unwrap();
    assert!(b.drive(vec!["w1".into()], now).await.unwrap().is_empty());

    a.stop_driving().await.unwrap();

    assert_eq!(b.find_queues(now).await.unwrap(), ["w1"]);
    assert_eq!(b.drive(vec!["w1".into()], now).await.unwrap(), ["w1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_go_to_the_engine_of_their_driver_and_other_nodes_announce_them() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    let now = Timestamp::now();
    a.create_webhook(&webhook("w1", now, 172_800_000), None)
        .await
        .unwrap();
    let mut news_a = a.queue_news();
    let mut news_b = b.queue_news();
    drive_and_load(&a, "w1").await;
    let shutdown = CancellationToken::new();
    let forwarding = tokio::spawn({
        let (a, shutdown) = (a.clone(), shutdown.clone());
        async move { a.forward_wakeups(shutdown).await }
    });
    // The forwarder says "anything may have changed" once it listens.
    let listening = tokio::time::timeout(WAIT, news_a.recv()).await;
    assert_eq!(listening.expect("listening"), Some(QueueNews::Everything));

    // On the driver: its engine gets the deliveries, each with the one before it in its call.
    a.apply_call_report(&report("ext-1", CallState::Ringing), now)
        .await
        .unwrap();
    a.apply_call_report(&report("ext-1", CallState::Active), now)
        .await
        .unwrap();
    let mut fresh = Vec::new();
    while fresh.len() < 2 {
        match tokio::time::timeout(WAIT, news_a.recv())
            .await
            .expect("news")
        {
            Some(QueueNews::Fresh(f)) => fresh.extend(f),
            other => panic!("unexpected news {other:?}"),
        }
    }
    assert_eq!(fresh[0].after, None);
    assert_eq!(fresh[1].after, Some(fresh[0].delivery.seq));
    // On another node: its own engine gets nothing (w1 is a's), and a hears of it.
    b.apply_call_report(&report("ext-2", CallState::Ringing), now)
        .await
        .unwrap();
    let heard = tokio::time::timeout(WAIT, news_a.recv())
        .await
        .expect("announced");
    assert_eq!(heard, Some(QueueNews::Changed(vec!["w1".into()])));
    assert!(news_b.try_recv().is_err(), "b's engine does not drive w1");

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
    let page = drive_and_load(&store, "w1").await;
    let probe = start(&store, &page, &[0]).await;
    assert_eq!(
        probe.iter().map(external_id_of).collect::<Vec<_>>(),
        ["ext-1"]
    );
    let t = Timestamp::now();
    let retry = ms(t, 30_000);
    let failed = Finished {
        job: probe[0].clone(),
        end: AttemptEnd::Retry { at: retry },
        at: t,
    };
    store.advance(vec![failed], vec![], t).await.unwrap();
    // Queued while paused: held as well.
    let outcome = store
        .apply_call_report(&report("ext-3", CallState::Ringing), t)
        .await
        .unwrap();
    assert_eq!(outcome.deliveries, 1);
    let paused = store
        .load_queue("w1", 10, vec![], t)
        .await
        .unwrap()
        .expect("live");
    assert!(paused.paused, "the queue reads paused");
    let tried: Vec<(u32, Timestamp)> = paused
        .deliveries
        .iter()
        .map(|d| (d.attempts, d.due))
        .collect();
    assert_eq!(tried[0], (1, retry), "the probe, due at its retry");
    assert!(
        tried[1..].iter().all(|(attempts, _)| *attempts == 0),
        "never tried: held"
    );
    assert_eq!(store.backlog().await.unwrap().pending, 3);

    let probed = start(&store, &paused, &[0]).await;
    assert_eq!(probed[0].attempt, 2);
    store
        .advance(probed.iter().map(delivered).collect(), vec![], t)
        .await
        .unwrap();
    let resumed = store
        .load_queue("w1", 10, vec![], Timestamp::now())
        .await
        .unwrap()
        .expect("live");
    assert!(!resumed.paused, "resumed by the success");
    assert_eq!(resumed.deliveries.len(), 2);
}
