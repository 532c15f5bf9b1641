//! The contract for the outbox's upkeep: skipping what can no longer be delivered, replaying
//! skipped deliveries after a renewal, and the backlog figures.

use crate::fixtures::*;
use callhook::domain::CallState;
use callhook::store::{AttemptEnd, Backlog, Replay, Store};
use std::sync::Arc;

/// A webhook is expired from its `expireAt` on (`expireAt <= now`).
pub(crate) async fn skipping_undeliverable_skips_the_waiting_deliveries_of_expired_webhooks(
    store: Arc<dyn Store>,
) {
    let mut d = Driver::new(&store);
    // Arrange: w-exp expires at 5000; both webhooks get c1 at 1000.
    let mut expiring = webhook(&ann(), "w-exp");
    expiring.expire_at = at(5_000);
    create(&store, &expiring).await;
    hook(&store, &ann(), "w-live").await;
    let outcome = apply(
        &store,
        &report(&ann(), "c1", CallState::Ringing, 1_000),
        1_000,
    )
    .await;
    assert_eq!((outcome.deliveries, outcome.skipped), (2, 0), "arrange");

    // Act
    let before = store.skip_undeliverable(at(4_999)).await.expect("skip");
    let at_expiry = store.skip_undeliverable(at(5_000)).await.expect("skip");
    let again = store.skip_undeliverable(at(5_000)).await.expect("skip");

    // Assert
    assert_eq!((before, at_expiry, again), (0, 1, 0));
    assert_eq!(store.backlog().await.expect("backlog").pending, 1);
    let jobs = d.take(claim(6_000, 7_000)).await;
    assert_eq!(whats(&jobs), [job("w-live", "c1", "RINGING")]);
}

/// Events that happen while a webhook is paused (after a retry) and then expires are not lost:
/// skipping writes them down as skipped, and a replay after renewal sends them.
pub(crate) async fn a_webhook_that_expires_while_paused_keeps_its_events_for_a_replay(
    store: Arc<dyn Store>,
) {
    let mut d = Driver::new(&store);
    // Arrange: w1 (expiring at 5000) is retrying c1 when c2 happens.
    let mut w = webhook(&ann(), "w1");
    w.expire_at = at(5_000);
    create(&store, &w).await;
    event(&store, &ann(), "c1", CallState::Ringing, 1_000).await;
    let probe = d.take(claim(1_000, 2_000)).await;
    d.finish(&probe[0], retry_at(4_000), 1_100).await;
    event(&store, &ann(), "c2", CallState::Ringing, 2_000).await;

    // Act
    let skipped = store.skip_undeliverable(at(5_000)).await.expect("skip");
    store
        .renew_webhook(&ann(), "w1", at(6_000), at(FAR), at(2 * FAR))
        .await
        .expect("renew")
        .expect("w1 is ann's");
    let replay = store
        .replay_skipped(&ann(), "w1", None, at(6_000))
        .await
        .expect("replay");
    let replayed = d.take(claim(6_000, 7_000)).await;

    // Assert
    assert_eq!(skipped, 2, "c1 and c2");
    assert_eq!(replay, Replay::Queued(2));
    let mut sent = whats(&replayed);
    sent.sort();
    assert_eq!(
        sent,
        [job("w1", "c1", "RINGING"), job("w1", "c2", "RINGING")]
    );
    // A later event reaches w1 too, once a delivery has succeeded.
    event(&store, &ann(), "c3", CallState::Ringing, 6_500).await;
    for sent in &replayed {
        d.finish(sent, AttemptEnd::Delivered, 6_600).await;
    }
    let later = d.take(claim(6_700, 8_000)).await;
    assert_eq!(whats(&later), [job("w1", "c3", "RINGING")]);
}

pub(crate) async fn a_replay_is_refused_for_strangers_and_for_webhooks_that_are_not_live(
    store: Arc<dyn Store>,
) {
    let mut d = Driver::new(&store);
    // Arrange: Ann's w-failed failed; her w-exp expired at 500; Bob has w-bob.
    hook(&store, &ann(), "w-failed").await;
    event(&store, &ann(), "c1", CallState::Ringing, 100).await;
    let sent = d.take(claim(100, 200)).await;
    d.finish(&sent[0], AttemptEnd::Failed(http_500()), 150)
        .await;
    let mut expired = webhook(&ann(), "w-exp");
    expired.expire_at = at(500);
    create(&store, &expired).await;
    hook(&store, &bob(), "w-bob").await;
    let replay = |owner, id: &'static str| {
        let store = store.clone();
        async move {
            store
                .replay_skipped(&owner, id, None, at(1_000))
                .await
                .expect("replay")
        }
    };

    // Act / Assert
    assert_eq!(replay(ann(), "w-bob").await, Replay::NoSuchWebhook, "Bob's");
    assert_eq!(replay(ann(), "w-none").await, Replay::NoSuchWebhook);
    assert_eq!(replay(ann(), "w-failed").await, Replay::NotLive, "failed");
    assert_eq!(replay(ann(), "w-exp").await, Replay::NotLive, "expired");
    assert_eq!(replay(bob(), "w-bob").await, Replay::Queued(0));
}

/// A replayed delivery keeps its `deliveryId` and goes on counting attempts; its retry budget
/// starts again after the attempts made before the replay. A failed delivery is not replayed.
pub(crate) async fn a_replay_after_renewal_requeues_the_skipped_deliveries(store: Arc<dyn Store>) {
    let mut d = Driver::new(&store);
    // Arrange: c1 fails for good while c2 is in flight (then skipped after one attempt); c3
    // happens while w1 is failed.
    hook(&store, &ann(), "w1").await;
    event(&store, &ann(), "c1", CallState::Ringing, 1_000).await;
    event(&store, &ann(), "c2", CallState::Ringing, 1_001).await;
    let jobs = d.take(claim(1_100, 5_000)).await;
    assert_eq!(jobs.len(), 2, "arrange: {:?}", whats(&jobs));
    let c2 = jobs
        .iter()
        .find(|j| what(j).1 == "c2")
        .expect("c2 in flight")
        .clone();
    let c1 = jobs.iter().find(|j| j.seq != c2.seq).expect("c1 in flight");
    d.finish(c1, AttemptEnd::Failed(http_500()), 1_200).await;
    assert_eq!(d.finish(&c2, retry_at(2_000), 1_300).await, 1, "arrange");
    event(&store, &ann(), "c3", CallState::Ringing, 1_400).await;
    store
        .renew_webhook(&ann(), "w1", at(3_000), at(FAR), at(2 * FAR))
        .await
        .expect("renew")
        .expect("w1 is ann's");

    // Act
    let replay = store
        .replay_skipped(&ann(), "w1", None, at(3_000))
        .await
        .expect("replay");
    let replayed = d.take(claim(3_000, 4_000)).await;

    // Assert
    assert_eq!(replay, Replay::Queued(2), "c2 and c3, not the failed c1");
    let by_call = |ext: &str| {
        replayed
            .iter()
            .find(|j| what(j).1 == ext)
            .unwrap_or_else(|| panic!("{ext} replayed: {:?}", whats(&replayed)))
    };
    assert_eq!(replayed.len(), 2, "{:?}", whats(&replayed));
    let c2_again = by_call("c2");
    assert_eq!(c2_again.id, c2.id, "the same deliveryId");
    assert_eq!((c2_again.attempt, c2_again.replayed_after), (2, 1));
    let c3 = by_call("c3");
    assert_eq!((c3.attempt, c3.replayed_after), (1, 0));
}

/// `since` is on the time the event happened, and includes it.
pub(crate) async fn a_replay_since_an_instant_requeues_only_events_from_then_on(
    store: Arc<dyn Store>,
) {
    let mut d = Driver::new(&store);
    // Arrange: w1 failed on c0; c1, c2, c3 happened at 1000, 2000, 3000 (reported at 3500).
    hook(&store, &ann(), "w1").await;
    event(&store, &ann(), "c0", CallState::Ringing, 100).await;
    let sent = d.take(claim(100, 200)).await;
    d.finish(&sent[0], AttemptEnd::Failed(http_500()), 150)
        .await;
    for (ext, happened) in [("c1", 1_000), ("c2", 2_000), ("c3", 3_000)] {
        let outcome = apply(
            &store,
            &report(&ann(), ext, CallState::Ringing, happened),
            3_500,
        )
        .await;
        assert_eq!(outcome.skipped, 1, "arrange: {ext} skipped");
    }
    store
        .renew_webhook(&ann(), "w1", at(4_000), at(FAR), at(2 * FAR))
        .await
        .expect("renew")
        .expect("w1 is ann's");

    // Act
    let since = store
        .replay_skipped(&ann(), "w1", Some(at(2_000)), at(4_000))
        .await
        .expect("replay since 2000");
    let first = d.take(claim(4_000, 100_000)).await;
    let rest = store
        .replay_skipped(&ann(), "w1", None, at(4_100))
        .await
        .expect("replay the rest");
    let second = d.take(claim(4_100, 100_000)).await;
    let none_left = store
        .replay_skipped(&ann(), "w1", None, at(4_200))
        .await
        .expect("replay again");

    // Assert
    assert_eq!(since, Replay::Queued(2));
    let mut first = whats(&first);
    first.sort();
    assert_eq!(
        first,
        [job("w1", "c2", "RINGING"), job("w1", "c3", "RINGING")]
    );
    assert_eq!(rest, Replay::Queued(1));
    assert_eq!(whats(&second), [job("w1", "c1", "RINGING")]);
    assert_eq!(none_left, Replay::Queued(0));
}

/// The backlog counts deliveries waiting to be sent, in flight included, and when the oldest
/// was queued (the `now` it was queued at, not when its event happened).
pub(crate) async fn the_backlog_counts_waiting_deliveries_and_the_oldest(store: Arc<dyn Store>) {
    let mut d = Driver::new(&store);
    // Arrange
    assert_eq!(store.backlog().await.expect("backlog"), Backlog::default());
    hook(&store, &ann(), "w1").await;
    hook(&store, &ann(), "w2").await;
    apply(
        &store,
        &report(&ann(), "c1", CallState::Ringing, 900),
        1_000,
    )
    .await;
    apply(
        &store,
        &report(&ann(), "c2", CallState::Ringing, 1_900),
        2_000,
    )
    .await;
    let queued = store.backlog().await.expect("backlog");
    let jobs = d.take(claim(2_000, 3_000)).await;
    let in_flight = store.backlog().await.expect("backlog");

    // Act: c1 is delivered to both; w2 fails on c2, so c3 skips it.
    for sent in jobs.iter().filter(|j| what(j).1 == "c1") {
        d.finish(sent, AttemptEnd::Delivered, 2_500).await;
    }
    let w2_c2 = jobs
        .iter()
        .find(|j| what(j) == job("w2", "c2", "RINGING"))
        .expect("w2's c2 in flight");
    d.finish(w2_c2, AttemptEnd::Failed(http_500()), 2_600).await;
    apply(
        &store,
        &report(&ann(), "c3", CallState::Ringing, 2_700),
        2_700,
    )
    .await;
    let after = store.backlog().await.expect("backlog");

    // Assert
    let backlog = |pending, oldest_ms| Backlog {
        pending,
        oldest: Some(at(oldest_ms)),
    };
    assert_eq!(queued, backlog(4, 1_000));
    assert_eq!(in_flight, backlog(4, 1_000), "in flight still waits");
    assert_eq!(after, backlog(2, 2_000), "w1's c2 and c3");
}

/// Events held while a webhook is paused are waiting deliveries like any other, whether the
/// backend writes their rows at once (PostgreSQL) or only when the webhook answers (SQLite's
/// held ranges); and once it answers they all go out, each call's in order.
pub(crate) async fn the_backlog_counts_what_a_paused_webhook_holds(store: Arc<dyn Store>) {
    let mut d = Driver::new(&store);
    // Arrange: w1 fails c1 once (paused), then c1's ACTIVE and c2 happen.
    hook(&store, &ann(), "w1").await;
    event(&store, &ann(), "c1", CallState::Ringing, 1_000).await;
    let probe = d.take(claim(1_000, 2_000)).await;
    d.finish(&probe[0], retry_at(3_000), 1_100).await;
    event(&store, &ann(), "c1", CallState::Active, 1_200).await;
    event(&store, &ann(), "c2", CallState::Ringing, 1_300).await;

    // Act
    let paused = store.backlog().await.expect("backlog");
    let before_retry = d.take(claim(2_000, 2_500)).await;
    let retried = d.take(claim(3_000, 4_000)).await;
    d.finish(&retried[0], AttemptEnd::Delivered, 3_100).await;
    let resumed = d.take(claim(3_200, 4_000)).await;

    // Assert
    assert_eq!(paused.pending, 3, "the probe and the two held events");
    assert_eq!(paused.oldest, Some(at(1_000)));
    assert!(
        before_retry.is_empty(),
        "held: nothing due before the retry"
    );
    assert_eq!(whats(&retried), [job("w1", "c1", "RINGING")]);
    let mut after = whats(&resumed);
    after.sort();
    assert_eq!(
        after,
        [job("w1", "c1", "ACTIVE"), job("w1", "c2", "RINGING")],
        "both held events, c1's after its RINGING"
    );
}
