//! The contract for recording how attempts ended: webhook statistics exactly as CONTRACT.md
//! counts them (one attempt per delivery, not per try), the circuit breaker that holds a failing
//! webhook's other deliveries until a success, and a final failure that skips the rest.

use crate::fixtures::*;
use callhook::domain::CallState;
use callhook::domain::webhook::Statistics;
use callhook::store::{AttemptEnd, Finished, Replay, Store};
use std::sync::Arc;

/// "A delivery that succeeds at any attempt counts as one attempt and one success"; the tries
/// before it count nothing.
pub(crate) async fn a_delivery_that_succeeds_after_retries_counts_once(store: Arc<dyn Store>) {
    let mut d = Driver::new(&store);
    // Arrange
    hook(&store, &ann(), "w1").await;
    event(&store, &ann(), "c1", CallState::Ringing, 1_000).await;
    let first = d.take(claim(1_000, 2_000)).await;

    // Act
    let skipped = d.finish(&first[0], retry_at(3_000), 1_500).await;
    let after_retry = stats(&store, &ann(), "w1").await;
    let second = d.take(claim(3_000, 4_000)).await;
    d.finish(&second[0], AttemptEnd::Delivered, 3_500).await;

    // Assert
    assert_eq!(skipped, 0);
    assert_eq!(after_retry, Statistics::default(), "a retry counts nothing");
    assert_eq!(
        (second[0].id.as_str(), second[0].attempt),
        (first[0].id.as_str(), 2)
    );
    assert_eq!(
        stats(&store, &ann(), "w1").await,
        Statistics {
            total_attempts: 1,
            total_successes: 1,
            last_success: Some(at(3_500)),
            ..Statistics::default()
        }
    );
    assert!(
        d.take(claim(10_000, 20_000)).await.is_empty(),
        "delivered twice"
    );
}

pub(crate) async fn a_batch_of_successes_counts_each_delivery(store: Arc<dyn Store>) {
    let mut d = Driver::new(&store);
    // Arrange: three calls for w1, one for Bob's w2.
    hook(&store, &ann(), "w1").await;
    hook(&store, &bob(), "w2").await;
    for ext in ["c1", "c2", "c3"] {
        event(&store, &ann(), ext, CallState::Ringing, 1_000).await;
    }
    event(&store, &bob(), "c4", CallState::Ringing, 1_000).await;
    let jobs = d.take(claim(1_000, 2_000)).await;
    assert_eq!(jobs.len(), 4, "arrange: {:?}", whats(&jobs));
    let ends = [1_300, 1_100, 1_200, 1_050];

    // Act
    let finished = jobs
        .iter()
        .zip(ends)
        .map(|(job, ms)| Finished {
            job: job.clone(),
            end: AttemptEnd::Delivered,
            at: at(ms),
        })
        .collect();
    let skipped = d.finish_all(finished).await;

    // Assert
    assert_eq!(skipped, 0);
    let last = |id: &str| {
        jobs.iter()
            .zip(ends)
            .filter(|(j, _)| j.webhook_id == id)
            .map(|(_, ms)| ms)
            .max()
            .expect("a job of the webhook")
    };
    let w1 = stats(&store, &ann(), "w1").await;
    assert_eq!(
        (w1.total_attempts, w1.total_successes, w1.total_failures),
        (3, 3, 0)
    );
    assert_eq!(w1.last_success, Some(at(last("w1"))), "the latest success");
    let w2 = stats(&store, &bob(), "w2").await;
    assert_eq!((w2.total_attempts, w2.total_successes), (1, 1));
    assert_eq!(w2.last_success, Some(at(last("w2"))));
    assert_eq!(store.backlog().await.expect("backlog").pending, 0);
    // A success recorded later but that happened earlier (another node's, say) keeps the latest.
    event(&store, &ann(), "c5", CallState::Ringing, 1_400).await;
    let late = d.take(claim(1_400, 2_000)).await;
    d.finish(&late[0], AttemptEnd::Delivered, 1_000).await;
    let w1 = stats(&store, &ann(), "w1").await;
    assert_eq!(
        (w1.total_successes, w1.last_success),
        (4, Some(at(last("w1"))))
    );
}

/// "Only when every retry of a delivery has failed does it count: totalAttempts += 1,
/// totalFailures += 1, failed = true", with the last error; the webhook's other waiting
/// deliveries are skipped, and later events skip it.
pub(crate) async fn a_final_failure_counts_once_marks_the_webhook_failed_and_skips_the_rest(
    store: Arc<dyn Store>,
) {
    let mut d = Driver::new(&store);
    // Arrange: w1 delivered c0 once; then c1 (ringing, active) and c2 wait.
    hook(&store, &ann(), "w1").await;
    event(&store, &ann(), "c0", CallState::Ringing, 500).await;
    let c0 = d.take(claim(500, 600)).await;
    d.finish(&c0[0], AttemptEnd::Delivered, 550).await;
    event(&store, &ann(), "c1", CallState::Ringing, 1_000).await;
    event(&store, &ann(), "c1", CallState::Active, 1_100).await;
    event(&store, &ann(), "c2", CallState::Ringing, 1_200).await;
    let c1 = d.take(claim_one(1_300)).await;
    d.finish(&c1[0], retry_at(2_000), 1_400).await;
    let retried = d.take(claim(2_000, 3_000)).await;
    assert_eq!(whats(&retried), [job("w1", "c1", "RINGING")], "arrange");

    // Act
    let skipped = d
        .finish(&retried[0], AttemptEnd::Failed(http_500()), 2_500)
        .await;

    // Assert
    assert_eq!(skipped, 2, "c1 ACTIVE and c2 RINGING");
    let failure = http_500();
    assert_eq!(
        stats(&store, &ann(), "w1").await,
        Statistics {
            total_attempts: 2,
            total_successes: 1,
            total_failures: 1,
            failed: true,
            last_success: Some(at(550)),
            last_failure: Some(at(2_500)),
            last_http_error_code: Some(failure.code),
            last_error_message: Some(failure.message),
        }
    );
    assert!(d.take(claim(10_000, 20_000)).await.is_empty());
    assert_eq!(store.backlog().await.expect("backlog").pending, 0);
    let later = apply(
        &store,
        &report(&ann(), "c3", CallState::Ringing, 3_000),
        3_000,
    )
    .await;
    assert_eq!(
        (later.deliveries, later.skipped),
        (0, 1),
        "a failed webhook gets no events"
    );
}

/// A delivery in flight when its webhook fails is skipped when its attempt ends in a retry; one
/// that succeeds still counts, and the webhook stays failed until renewed.
pub(crate) async fn attempts_in_flight_when_the_webhook_fails_are_not_retried(
    store: Arc<dyn Store>,
) {
    let mut d = Driver::new(&store);
    // Arrange: c1, c2 and c3 in flight together.
    hook(&store, &ann(), "w1").await;
    for ext in ["c1", "c2", "c3"] {
        event(&store, &ann(), ext, CallState::Ringing, 1_000).await;
    }
    let jobs = d.take(claim(1_000, 5_000)).await;
    assert_eq!(jobs.len(), 3, "arrange: {:?}", whats(&jobs));
    let end = |n: usize, end: AttemptEnd| Finished {
        job: jobs[n].clone(),
        end,
        at: at(1_500),
    };

    // Act: one batch, in this order.
    let skipped = d
        .finish_all(vec![
            end(0, AttemptEnd::Failed(http_500())),
            end(1, retry_at(2_000)),
            end(2, AttemptEnd::Delivered),
        ])
        .await;

    // Assert
    assert_eq!(skipped, 1, "the retry of c2");
    let w1 = stats(&store, &ann(), "w1").await;
    assert_eq!(
        (
            w1.total_attempts,
            w1.total_successes,
            w1.total_failures,
            w1.failed
        ),
        (2, 1, 1, true)
    );
    assert!(d.take(claim(2_000, 3_000)).await.is_empty(), "c2 retried");
    assert_eq!(store.backlog().await.expect("backlog").pending, 0);
}

/// The circuit breaker: after a retry, only the retried delivery is claimed (at its time) until
/// one succeeds; other webhooks go on meanwhile; a success makes the held ones claimable.
pub(crate) async fn a_retry_holds_the_webhooks_other_deliveries_until_a_success(
    store: Arc<dyn Store>,
) {
    let mut d = Driver::new(&store);
    // Arrange: w-down and w-up both get c1, c2, c3; w-down's c1 fails once.
    hook(&store, &ann(), "w-down").await;
    hook(&store, &ann(), "w-up").await;
    for (n, ext) in ["c1", "c2", "c3"].into_iter().enumerate() {
        event(&store, &ann(), ext, CallState::Ringing, 1_000 + n as i64).await;
    }
    let first = d.take(claim_one(1_100)).await;
    assert_eq!(whats(&first), [job("w-down", "c1", "RINGING")], "arrange");
    let probe = first[0].clone();

    // Act
    d.finish(&probe, retry_at(5_000), 1_200).await;
    let paused = event(&store, &ann(), "c4", CallState::Ringing, 2_000).await;
    let meanwhile = d.take(claim(2_100, 100_000)).await;
    let mut up_driver = Driver::new(&store);
    let before_retry = up_driver.take(claim(4_999, 100_000)).await;
    let at_retry = d.take(claim(5_000, 6_000)).await;
    d.finish(&at_retry[0], AttemptEnd::Delivered, 5_100).await;
    let resumed = d.take(claim(5_200, 6_000)).await;

    // Assert
    let mut up: Vec<_> = whats(&meanwhile);
    up.sort();
    assert_eq!(
        up,
        [
            job("w-up", "c1", "RINGING"),
            job("w-up", "c2", "RINGING"),
            job("w-up", "c3", "RINGING"),
            job("w-up", "c4", "RINGING"),
        ],
        "w-down's deliveries are held while w-up's go on"
    );
    assert!(
        before_retry.iter().all(|j| j.webhook_id == "w-up"),
        "nothing of w-down before the probe's time: {:?}",
        whats(&before_retry)
    );
    assert_eq!(whats(&at_retry), [job("w-down", "c1", "RINGING")]);
    assert_eq!(
        (at_retry[0].id.as_str(), at_retry[0].attempt),
        (probe.id.as_str(), 2)
    );
    let mut down = whats(&resumed);
    down.sort();
    assert_eq!(
        down,
        [
            job("w-down", "c2", "RINGING"),
            job("w-down", "c3", "RINGING"),
            job("w-down", "c4", "RINGING"),
        ],
        "after the success, the held ones and the one queued while paused ({}) are due",
        paused.external_id
    );
}

/// A final failure skips the deliveries held while the webhook was paused too, also those of
/// events that happened meanwhile: a replay after renewal finds them all.
pub(crate) async fn a_final_failure_after_a_pause_skips_everything_held(store: Arc<dyn Store>) {
    let mut d = Driver::new(&store);
    // Arrange: w1's c1 is retried; c2 waits; c3 and c4 happen while w1 is paused.
    hook(&store, &ann(), "w1").await;
    event(&store, &ann(), "c1", CallState::Ringing, 1_000).await;
    event(&store, &ann(), "c2", CallState::Ringing, 1_001).await;
    let probe = d.take(claim_one(1_100)).await;
    assert_eq!(whats(&probe), [job("w1", "c1", "RINGING")], "arrange");
    d.finish(&probe[0], retry_at(5_000), 1_200).await;
    event(&store, &ann(), "c3", CallState::Ringing, 2_000).await;
    event(&store, &ann(), "c1", CallState::Active, 2_100).await;
    let retried = d.take(claim(5_000, 6_000)).await;
    assert_eq!(whats(&retried), [job("w1", "c1", "RINGING")], "arrange");

    // Act
    let skipped = d
        .finish(&retried[0], AttemptEnd::Failed(http_500()), 5_500)
        .await;

    // Assert
    assert_eq!(skipped, 3, "c2, c3 and c1 ACTIVE");
    store
        .renew_webhook(&ann(), "w1", at(6_000), at(FAR), at(2 * FAR))
        .await
        .expect("renew")
        .expect("w1 is ann's");
    let replay = store
        .replay_skipped(&ann(), "w1", None, at(6_000))
        .await
        .expect("replay");
    assert_eq!(replay, Replay::Queued(3));
    let mut replayed = whats(&d.take(claim(6_000, 7_000)).await);
    replayed.sort();
    assert_eq!(
        replayed,
        [
            job("w1", "c1", "ACTIVE"),
            job("w1", "c2", "RINGING"),
            job("w1", "c3", "RINGING"),
        ]
    );
}
