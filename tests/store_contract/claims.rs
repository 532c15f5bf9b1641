//! The contract for filling and draining the outbox: which deliveries a call event queues, how a
//! webhook's queue reads (order per webhook and call, pages), which processes drive it, and how
//! starting an attempt counts.

use crate::fixtures::*;
use callhook::domain::CallState;
use callhook::domain::call::Applied;
use callhook::domain::event::CallEvent;
use callhook::domain::webhook::{MetadataPolicy, SigningAlgo};
use callhook::store::{AttemptEnd, Store};
use std::sync::Arc;

pub(crate) async fn an_event_queues_one_delivery_per_live_webhook_and_skips_the_others(
    store: Arc<dyn Store>,
) {
    let mut d = Driver::new(&store);
    // Arrange: Ann's w-failed failed on an earlier call; w-expired expired at 500; Bob has w-bob.
    hook(&store, &ann(), "w-failed").await;
    event(&store, &ann(), "c0", CallState::Ringing, 100).await;
    let sent = d.take(claim(100, 200)).await;
    d.finish(&sent[0], AttemptEnd::Failed(http_500()), 150)
        .await;
    let mut expired = webhook(&ann(), "w-expired");
    expired.expire_at = at(500);
    create(&store, &expired).await;
    let mut live = webhook(&ann(), "w-live");
    live.spec.signing_algo = SigningAlgo::HmacSha256;
    live.spec.signing_key = Some("key".to_string());
    live.spec.metadata_policy = MetadataPolicy::Body;
    create(&store, &live).await;
    hook(&store, &bob(), "w-bob").await;

    // Act
    let outcome = apply(
        &store,
        &report(&ann(), "c1", CallState::Ringing, 1_000),
        1_000,
    )
    .await;
    let jobs = d.take(claim(1_000, 2_000)).await;

    // Assert
    assert_eq!((outcome.deliveries, outcome.skipped), (1, 2));
    assert_eq!(jobs.len(), 1, "claimed {:?}", whats(&jobs));
    let Applied::Changed(call) = outcome.applied else {
        panic!("a new call was not a change");
    };
    let sent = &jobs[0];
    assert_eq!(sent.webhook_id, "w-live");
    assert_eq!(sent.url, live.spec.url);
    assert_eq!(sent.signing_key.as_deref(), Some("key"));
    assert_eq!(sent.metadata_policy, MetadataPolicy::Body);
    assert_eq!((sent.attempt, sent.replayed_after), (1, 0));
    let canonical = serde_json::to_string(&CallEvent::from(&call)).expect("serialise the event");
    assert_eq!(
        &*sent.event, canonical,
        "the event, as canonical JSON, byte for byte"
    );
}

/// A delivery queued while its webhook was live is not claimed once the webhook has expired,
/// even before `skip_undeliverable` has run.
pub(crate) async fn nothing_is_claimed_for_a_webhook_that_expired_after_queueing(
    store: Arc<dyn Store>,
) {
    let mut d = Driver::new(&store);
    // Arrange: w1 expires at 5000 with a delivery waiting.
    let mut w = webhook(&ann(), "w1");
    w.expire_at = at(5_000);
    create(&store, &w).await;
    event(&store, &ann(), "c1", CallState::Ringing, 1_000).await;

    // Act
    let expired = d.take(claim(5_000, 6_000)).await;

    // Assert
    assert!(expired.is_empty(), "claimed {:?}", whats(&expired));
    let renewed = store
        .renew_webhook(&ann(), "w1", at(5_500), at(FAR), at(2 * FAR))
        .await
        .expect("renew");
    assert!(renewed.is_some(), "w1 is ann's");
    let after_renewal = d.take(claim(5_500, 6_000)).await;
    assert_eq!(whats(&after_renewal), [job("w1", "c1", "RINGING")]);
}

/// The signing key goes out only for `HMAC_SHA256` with a non-empty key.
pub(crate) async fn a_job_carries_a_signing_key_only_when_it_must_be_signed(store: Arc<dyn Store>) {
    let mut d = Driver::new(&store);
    // Arrange
    let cases = [
        ("w-hmac", SigningAlgo::HmacSha256, Some("k"), Some("k")),
        ("w-empty", SigningAlgo::HmacSha256, Some(""), None),
        ("w-nokey", SigningAlgo::HmacSha256, None, None),
        ("w-none", SigningAlgo::None, Some("k"), None),
    ];
    for (id, algo, key, _) in cases {
        let mut w = webhook(&ann(), id);
        w.spec.signing_algo = algo;
        w.spec.signing_key = key.map(str::to_string);
        create(&store, &w).await;
    }
    event(&store, &ann(), "c1", CallState::Ringing, 1_000).await;

    // Act
    let jobs = d.take(claim(1_000, 2_000)).await;

    // Assert
    for (id, _, _, expected) in cases {
        let sent = only_for(&jobs, id);
        assert_eq!(sent.signing_key.as_deref(), expected, "{id}");
    }
}

pub(crate) async fn only_the_first_waiting_event_of_each_call_is_claimed_per_webhook(
    store: Arc<dyn Store>,
) {
    let mut d = Driver::new(&store);
    // Arrange: c1 rings and is answered, c2 rings; two webhooks.
    hook(&store, &ann(), "w1").await;
    hook(&store, &ann(), "w2").await;
    event(&store, &ann(), "c1", CallState::Ringing, 1_000).await;
    event(&store, &ann(), "c1", CallState::Active, 1_100).await;
    event(&store, &ann(), "c2", CallState::Ringing, 1_200).await;

    // Act
    let first = d.take(claim(2_000, 10_000)).await;
    let w1_ringing = first
        .iter()
        .find(|j| what(j) == job("w1", "c1", "RINGING"))
        .expect("w1's c1 RINGING is claimed")
        .clone();
    d.finish(&w1_ringing, AttemptEnd::Delivered, 2_100).await;
    let second = d.take(claim(2_200, 10_000)).await;

    // Assert
    let mut first = whats(&first);
    first.sort();
    assert_eq!(
        first,
        [
            job("w1", "c1", "RINGING"),
            job("w1", "c2", "RINGING"),
            job("w2", "c1", "RINGING"),
            job("w2", "c2", "RINGING"),
        ]
    );
    assert_eq!(
        whats(&second),
        [job("w1", "c1", "ACTIVE")],
        "w2's c1 ACTIVE waits for its RINGING, still in flight"
    );
}

pub(crate) async fn a_claim_takes_the_oldest_first_up_to_its_limit(store: Arc<dyn Store>) {
    let mut d = Driver::new(&store);
    // Arrange: three calls queued at 1000, 1100, 1200 (their events happened the other way).
    hook(&store, &ann(), "w1").await;
    for (ext, queued, happened) in [("c1", 1_000, 900), ("c2", 1_100, 800), ("c3", 1_200, 700)] {
        apply(
            &store,
            &report(&ann(), ext, CallState::Ringing, happened),
            queued,
        )
        .await;
    }
    let limited = |now| Claim {
        limit: 2,
        ..claim(now, 10_000)
    };

    // Act
    let first = d.take(limited(2_000)).await;
    let second = d.take(limited(2_000)).await;
    let third = d.take(limited(2_000)).await;

    // Assert
    assert_eq!(
        whats(&first),
        [job("w1", "c1", "RINGING"), job("w1", "c2", "RINGING")]
    );
    assert_eq!(whats(&second), [job("w1", "c3", "RINGING")]);
    assert!(third.is_empty(), "claimed twice: {:?}", whats(&third));
}

/// A webhook's queue reads in `seq` order, a page at a time, leaving out what the reader already
/// holds; the page says whether it is the whole queue.
pub(crate) async fn a_queue_reads_in_order_a_page_at_a_time(store: Arc<dyn Store>) {
    // Arrange: five calls ring for w1; w2 is Bob's and has nothing.
    hook(&store, &ann(), "w1").await;
    hook(&store, &bob(), "w2").await;
    for (n, ext) in ["c1", "c2", "c3", "c4", "c5"].into_iter().enumerate() {
        event(&store, &ann(), ext, CallState::Ringing, 1_000 + n as i64).await;
    }

    // Act
    let found = store.find_queues(at(2_000)).await.expect("find");
    let driven = store.drive(found.clone(), at(2_000)).await.expect("drive");
    let load = |limit, skip: Vec<i64>| {
        let store = store.clone();
        async move {
            store
                .load_queue("w1", limit, skip, at(2_000))
                .await
                .expect("load")
                .expect("w1 is live")
        }
    };
    let first = load(2, vec![]).await;
    let known: Vec<i64> = first.deliveries.iter().map(|d| d.seq).collect();
    let rest = load(10, known.clone()).await;
    let none = store
        .load_queue("nope", 10, vec![], at(2_000))
        .await
        .expect("load");

    // Assert
    assert_eq!(found, ["w1"], "only queues with something pending");
    assert_eq!(driven, found, "nobody else drives it");
    let externals = |page: &callhook::store::QueuePage| -> Vec<String> {
        page.deliveries
            .iter()
            .map(|d| {
                serde_json::from_str::<serde_json::Value>(&d.event).expect("JSON")["externalId"]
                    .as_str()
                    .expect("externalId")
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        (externals(&first), first.complete),
        (vec!["c1".into(), "c2".into()], false)
    );
    assert_eq!(
        (externals(&rest), rest.complete),
        (vec!["c3".into(), "c4".into(), "c5".into()], true)
    );
    assert!(known[0] < known[1] && known[1] < rest.deliveries[0].seq);
    assert_eq!(first.target.webhook_id, "w1");
    assert!(none.is_none(), "no such webhook");
}

/// Starting an attempt counts it and keeps the `deliveryId`; a delivery that is no longer pending
/// is not started; a process that starts again after a crash sends what was in flight again,
/// with a higher attempt.
pub(crate) async fn each_start_counts_one_attempt_and_only_pending_deliveries_start(
    store: Arc<dyn Store>,
) {
    // Arrange
    hook(&store, &ann(), "w1").await;
    event(&store, &ann(), "c1", CallState::Ringing, 1_000).await;
    event(&store, &ann(), "c2", CallState::Ringing, 1_000).await;
    let mut crashed = Driver::new(&store);
    let first = crashed.take(claim(1_000, 2_000)).await;
    assert_eq!(first.len(), 2, "arrange: both in flight");
    crashed
        .finish(&first[1], AttemptEnd::Delivered, 1_100)
        .await;

    // Act: a new process takes over; the delivered one cannot be started again.
    let mut restarted = Driver::new(&store);
    let again = restarted.take(claim(3_000, 4_000)).await;
    let refused = store
        .advance(vec![], vec![first[1].seq], at(4_000))
        .await
        .expect("advance");

    // Assert
    assert_eq!(whats(&again), [what(&first[0])]);
    assert_eq!(
        (again[0].id.as_str(), first[0].attempt, again[0].attempt),
        (first[0].id.as_str(), 1, 2)
    );
    assert!(refused.started.is_empty(), "{refused:?}");
}

pub(crate) async fn released_deliveries_keep_their_attempts(store: Arc<dyn Store>) {
    let mut d = Driver::new(&store);
    // Arrange: two deliveries in flight under a long lease, and one already delivered.
    hook(&store, &ann(), "w1").await;
    for ext in ["c1", "c2", "c3"] {
        event(&store, &ann(), ext, CallState::Ringing, 1_000).await;
    }
    let jobs = d.take(claim(1_000, 100_000)).await;
    assert_eq!(jobs.len(), 3, "arrange: three in flight");
    d.finish(&jobs[2], AttemptEnd::Delivered, 1_100).await;

    // Act
    let released = store
        .release_deliveries(vec![jobs[0].seq, jobs[2].seq, -1])
        .await
        .expect("release");
    let again = Driver::new(&store).take(claim(1_200, 100_000)).await;

    // Assert
    assert_eq!(released, 1, "only the pending one is released");
    let mut again = whats(&again);
    again.sort();
    assert_eq!(again, [what(&jobs[0]), what(&jobs[1])]);
}
