//! The contract for filling and draining the outbox: which deliveries a call event queues, and
//! which of them a claim takes (order per webhook and call, limit, room, leases, attempts).

use crate::fixtures::*;
use callhook::domain::CallState;
use callhook::domain::call::Applied;
use callhook::domain::event::CallEvent;
use callhook::domain::webhook::{MetadataPolicy, SigningAlgo};
use callhook::store::{AttemptEnd, Claim, Store};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) async fn an_event_queues_one_delivery_per_live_webhook_and_skips_the_others(
    store: Arc<dyn Store>,
) {
    // Arrange: Ann's w-failed failed on an earlier call; w-expired expired at 500; Bob has w-bob.
    hook(&store, &ann(), "w-failed").await;
    event(&store, &ann(), "c0", CallState::Ringing, 100).await;
    let sent = take(&store, claim(100, 200)).await;
    finish(&store, &sent[0], AttemptEnd::Failed(http_500()), 150).await;
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
    let jobs = take(&store, claim(1_000, 2_000)).await;

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
        sent.event, canonical,
        "the event, as canonical JSON, byte for byte"
    );
}

/// A delivery queued while its webhook was live is not claimed once the webhook has expired,
/// even before `skip_undeliverable` has run.
pub(crate) async fn nothing_is_claimed_for_a_webhook_that_expired_after_queueing(
    store: Arc<dyn Store>,
) {
    // Arrange: w1 expires at 5000 with a delivery waiting.
    let mut w = webhook(&ann(), "w1");
    w.expire_at = at(5_000);
    create(&store, &w).await;
    event(&store, &ann(), "c1", CallState::Ringing, 1_000).await;

    // Act
    let expired = store
        .claim_deliveries(claim(5_000, 6_000))
        .await
        .expect("claim");

    // Assert
    assert!(
        expired.jobs.is_empty(),
        "claimed {:?}",
        whats(&expired.jobs)
    );
    let renewed = store
        .renew_webhook(&ann(), "w1", at(5_500), at(FAR), at(2 * FAR))
        .await
        .expect("renew");
    assert!(renewed.is_some(), "w1 is ann's");
    let after_renewal = take(&store, claim(5_500, 6_000)).await;
    assert_eq!(whats(&after_renewal), [job("w1", "c1", "RINGING")]);
}

/// The signing key goes out only for `HMAC_SHA256` with a non-empty key.
pub(crate) async fn a_job_carries_a_signing_key_only_when_it_must_be_signed(store: Arc<dyn Store>) {
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
    let jobs = take(&store, claim(1_000, 2_000)).await;

    // Assert
    for (id, _, _, expected) in cases {
        let sent = only_for(&jobs, id);
        assert_eq!(sent.signing_key.as_deref(), expected, "{id}");
    }
}

pub(crate) async fn only_the_first_waiting_event_of_each_call_is_claimed_per_webhook(
    store: Arc<dyn Store>,
) {
    // Arrange: c1 rings and is answered, c2 rings; two webhooks.
    hook(&store, &ann(), "w1").await;
    hook(&store, &ann(), "w2").await;
    event(&store, &ann(), "c1", CallState::Ringing, 1_000).await;
    event(&store, &ann(), "c1", CallState::Active, 1_100).await;
    event(&store, &ann(), "c2", CallState::Ringing, 1_200).await;

    // Act
    let first = take(&store, claim(2_000, 10_000)).await;
    let w1_ringing = first
        .iter()
        .find(|j| what(j) == job("w1", "c1", "RINGING"))
        .expect("w1's c1 RINGING is claimed")
        .clone();
    finish(&store, &w1_ringing, AttemptEnd::Delivered, 2_100).await;
    let second = take(&store, claim(2_200, 10_000)).await;

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
    let first = take(&store, limited(2_000)).await;
    let second = take(&store, limited(2_000)).await;
    let third = take(&store, limited(2_000)).await;

    // Assert
    assert_eq!(
        whats(&first),
        [job("w1", "c1", "RINGING"), job("w1", "c2", "RINGING")]
    );
    assert_eq!(whats(&second), [job("w1", "c3", "RINGING")]);
    assert!(third.is_empty(), "claimed twice: {:?}", whats(&third));
}

pub(crate) async fn a_claim_gives_each_webhook_at_most_its_room(store: Arc<dyn Store>) {
    // Arrange: three calls, so three due deliveries for each of three webhooks.
    for id in ["w1", "w2", "w3"] {
        hook(&store, &ann(), id).await;
    }
    for (n, ext) in ["c1", "c2", "c3"].into_iter().enumerate() {
        event(&store, &ann(), ext, CallState::Ringing, 1_000 + n as i64).await;
    }
    let c = Claim {
        room: HashMap::from([("w1".to_string(), 2), ("w2".to_string(), 0)]),
        fresh_room: 1,
        ..claim(2_000, 10_000)
    };

    // Act
    let jobs = take(&store, c).await;

    // Assert
    let per_webhook = |id: &str| jobs.iter().filter(|j| j.webhook_id == id).count();
    assert_eq!(
        (per_webhook("w1"), per_webhook("w2"), per_webhook("w3")),
        (2, 0, 1),
        "room w1 2, w2 0, others 1: {:?}",
        whats(&jobs)
    );
    let later = take(&store, claim(2_000, 10_000)).await;
    assert_eq!(
        later.len(),
        6,
        "the rest stayed claimable: {:?}",
        whats(&later)
    );
}

/// A lease hides a claimed delivery until `lease_until` (then it may be claimed again); each
/// claim counts one attempt, and the `deliveryId` stays.
pub(crate) async fn a_leased_delivery_is_hidden_until_its_lease_ends(store: Arc<dyn Store>) {
    // Arrange
    hook(&store, &ann(), "w1").await;
    event(&store, &ann(), "c1", CallState::Ringing, 1_000).await;

    // Act
    let first = take(&store, claim(1_000, 2_000)).await;
    let during = take(&store, claim(1_999, 3_000)).await;
    let after = take(&store, claim(2_000, 3_000)).await;
    let third = take(&store, claim(3_000, 4_000)).await;

    // Assert
    assert_eq!(first.len(), 1);
    assert!(
        during.is_empty(),
        "claimed under a lease: {:?}",
        whats(&during)
    );
    assert_eq!(after.len(), 1, "not claimable when its lease ended");
    assert_eq!(
        (after[0].id.as_str(), after[0].seq),
        (first[0].id.as_str(), first[0].seq)
    );
    let attempts: Vec<u32> = [&first[0], &after[0], &third[0]]
        .iter()
        .map(|j| j.attempt)
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
}

pub(crate) async fn released_deliveries_are_claimable_again_at_once(store: Arc<dyn Store>) {
    // Arrange: two deliveries in flight under a long lease, and one already delivered.
    hook(&store, &ann(), "w1").await;
    for ext in ["c1", "c2", "c3"] {
        event(&store, &ann(), ext, CallState::Ringing, 1_000).await;
    }
    let jobs = take(&store, claim(1_000, 100_000)).await;
    assert_eq!(jobs.len(), 3, "arrange: three in flight");
    finish(&store, &jobs[2], AttemptEnd::Delivered, 1_100).await;

    // Act
    let released = store
        .release_deliveries(vec![jobs[0].seq, jobs[2].seq, -1])
        .await
        .expect("release");
    let again = take(&store, claim(1_200, 100_000)).await;

    // Assert
    assert_eq!(released, 1, "only the pending one is released");
    assert_eq!(whats(&again), [what(&jobs[0])]);
    assert_eq!(
        (again[0].id.as_str(), again[0].attempt),
        (jobs[0].id.as_str(), 2)
    );
}
