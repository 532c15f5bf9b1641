//! Unit tests of [`super::Lane`]: order per call, the window, the pause, pages and offers.

use super::*;
use crate::domain::webhook::MetadataPolicy;
use crate::store::Failure;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms).expect("a valid time")
}

fn target() -> Target {
    Target {
        webhook_id: "w".into(),
        url: "http://127.0.0.1:9/hook".into(),
        signing_key: None,
        metadata_policy: MetadataPolicy::None,
        expire_at: at(1_000_000),
    }
}

/// Delivery `seq` of call `call`, due at `due`.
fn queued(seq: i64, call: i64, due: i64) -> Queued {
    Queued {
        seq,
        id: format!("d{seq}"),
        call_seq: call,
        attempts: 0,
        replayed_after: 0,
        due: at(due),
        event: format!("{{\"n\":{seq}}}").into(),
    }
}

/// A lane holding `deliveries` (seq, call), all due at 0, the whole queue.
fn lane_with(cap: usize, deliveries: &[(i64, i64)]) -> Lane {
    let mut lane = Lane::new(cap);
    lane.loaded(
        QueuePage {
            target: target(),
            paused: false,
            deliveries: deliveries.iter().map(|(s, c)| queued(*s, *c, 0)).collect(),
            complete: true,
        },
        &HashSet::new(),
        at(10),
    );
    lane
}

fn fresh(seq: i64, call: i64, after: Option<i64>) -> Fresh {
    Fresh {
        webhook_id: "w".into(),
        delivery: queued(seq, call, 0),
        after,
    }
}

fn deliver(lane: &mut Lane, seqs: &[i64], now: i64) {
    for seq in seqs {
        lane.ended(*seq, &AttemptEnd::Delivered, at(now));
    }
}

fn http_500() -> Failure {
    Failure {
        code: "500 INTERNAL_SERVER_ERROR".into(),
        message: "500".into(),
    }
}

#[test]
fn a_call_goes_out_one_delivery_at_a_time_and_calls_go_in_parallel() {
    // Calls 1 and 2, two deliveries each, interleaved as they were queued.
    let mut lane = lane_with(8, &[(1, 1), (2, 2), (3, 1), (4, 2)]);
    assert_eq!(lane.take(at(10), 10), [1], "the window starts at one");
    deliver(&mut lane, &[1], 11);
    assert_eq!(
        lane.take(at(11), 10),
        [2, 3],
        "the heads of both calls, oldest first"
    );
    assert_eq!(
        lane.take(at(11), 10),
        Vec::<i64>::new(),
        "each call has one in flight"
    );
    deliver(&mut lane, &[3], 12);
    assert_eq!(
        lane.take(at(12), 10),
        Vec::<i64>::new(),
        "call 2's head is still in flight"
    );
    deliver(&mut lane, &[2], 12);
    assert_eq!(lane.take(at(12), 10), [4]);
}

#[test]
fn the_window_grows_by_one_per_success_up_to_its_cap_and_a_failure_shrinks_it_to_one() {
    let calls: Vec<(i64, i64)> = (1..=20).map(|n| (n, n)).collect();
    let mut lane = lane_with(3, &calls);
    let first = lane.take(at(10), 100);
    assert_eq!(first.len(), 1);
    deliver(&mut lane, &first, 11);
    let second = lane.take(at(11), 100);
    assert_eq!(second.len(), 2);
    deliver(&mut lane, &second, 12);
    let third = lane.take(at(12), 100);
    assert_eq!(third.len(), 3, "capped at 3");
    deliver(&mut lane, &third, 13);
    let fourth = lane.take(at(13), 1);
    assert_eq!(fourth.len(), 1, "never more than the room given");
    lane.ended(fourth[0], &AttemptEnd::Retry { at: at(100) }, at(14));
    assert_eq!(
        lane.take(at(14), 100),
        Vec::<i64>::new(),
        "paused: the rest is held"
    );
    assert_eq!(lane.next_due(), Some(at(100)), "only the probe has a time");
    assert_eq!(
        lane.take(at(100), 100),
        fourth,
        "the probe goes again at its time, alone"
    );
    deliver(&mut lane, &fourth, 101);
    assert_eq!(
        lane.take(at(101), 100).len(),
        2,
        "resumed, window back to 1 + 1"
    );
}

#[test]
fn a_success_after_a_pause_releases_what_was_held_and_a_final_failure_ends_the_lane() {
    let mut lane = lane_with(4, &[(1, 1), (2, 2), (3, 3)]);
    let probe = lane.take(at(10), 10);
    lane.ended(probe[0], &AttemptEnd::Retry { at: at(50) }, at(11));
    // A delivery queued while paused comes held, as the store writes it.
    assert_eq!(lane.offer(fresh(4, 4, None), at(12)), Offer::Taken);
    assert_eq!(lane.take(at(49), 10), Vec::<i64>::new());
    assert_eq!(lane.take(at(50), 10), [1]);
    deliver(&mut lane, &[1], 51);
    assert_eq!(
        lane.take(at(51), 10),
        [2, 3],
        "the window is 2 after one success"
    );
    lane.ended(2, &AttemptEnd::Failed(http_500()), at(52));
    assert!(!lane.is_finished(at(52)), "3 is still in flight");
    assert_eq!(
        lane.take(at(52), 10),
        Vec::<i64>::new(),
        "a failed webhook gets nothing"
    );
    lane.ended(3, &AttemptEnd::Delivered, at(53));
    assert!(lane.is_finished(at(53)));
    assert!(
        lane.is_empty(),
        "the held delivery is skipped with the rest"
    );
}

#[test]
fn an_offered_delivery_is_taken_only_when_nothing_of_its_call_can_be_missing() {
    let mut lane = lane_with(8, &[(1, 1)]);
    assert_eq!(
        lane.offer(fresh(1, 1, None), at(10)),
        Offer::Ignored,
        "known"
    );
    assert_eq!(
        lane.offer(fresh(2, 1, Some(1)), at(10)),
        Offer::Taken,
        "after one here"
    );
    assert_eq!(
        lane.offer(fresh(3, 2, None), at(10)),
        Offer::Taken,
        "a call's first"
    );
    let sent = lane.take(at(10), 1);
    deliver(&mut lane, &sent, 11);
    assert_eq!(
        lane.offer(fresh(5, 1, Some(1)), at(11)),
        Offer::Taken,
        "after one done here"
    );
    // Call 3's earlier delivery 4 was queued by another process and never came here.
    assert_eq!(lane.offer(fresh(6, 3, Some(4)), at(11)), Offer::Ignored);
    assert!(lane.wants_page(), "the store has it in order");
    assert_eq!(
        lane.page_request().1.len(),
        lane.len(),
        "known ones are left out"
    );
    // While a page is due, even a call's first delivery waits for it (it comes in order).
    assert_eq!(lane.offer(fresh(7, 5, None), at(11)), Offer::Ignored);
}

#[test]
fn a_lane_reads_the_next_page_at_half_and_marks_what_is_in_flight_elsewhere() {
    let mut lane = Lane::new(4);
    assert!(lane.wants_page(), "a new lane reads its first page");
    let page = |range: std::ops::Range<i64>, complete| QueuePage {
        target: target(),
        paused: false,
        deliveries: range.map(|n| queued(n, n, 0)).collect(),
        complete,
    };
    // Delivery 1 is still in flight from an earlier lane of this webhook.
    lane.loaded(
        page(1..(CAP as i64 + 1), false),
        &HashSet::from([1]),
        at(10),
    );
    assert!(!lane.wants_page(), "full");
    assert!(!lane.take(at(10), 10).contains(&1), "not sent twice");
    lane.ended(1, &AttemptEnd::Delivered, at(11));
    let mut sent = 1;
    while lane.len() > CAP / 2 {
        let seqs = lane.take(at(12), 4);
        sent += seqs.len();
        deliver(&mut lane, &seqs, 12);
    }
    assert!(lane.wants_page());
    let (limit, skip) = lane.page_request();
    assert_eq!((limit, skip.len()), (CAP - lane.len(), lane.len()));
    lane.loaded(
        page(sent as i64 + 500..sent as i64 + 510, true),
        &HashSet::new(),
        at(13),
    );
    assert!(!lane.wants_page(), "the whole queue is here");
    assert_eq!(
        lane.offer(fresh(99_999, 99_999, None), at(13)),
        Offer::Taken
    );
}

#[test]
fn nothing_goes_out_once_the_webhook_has_expired() {
    let mut lane = lane_with(4, &[(1, 1)]);
    assert_eq!(lane.take(at(1_000_000), 4), Vec::<i64>::new());
    assert!(lane.is_finished(at(1_000_000)));
}

#[test]
fn a_delivery_the_store_did_not_start_leaves_the_lane_and_the_lane_reads_again() {
    let mut lane = lane_with(4, &[(1, 1), (2, 1)]);
    let seqs = lane.take(at(10), 4);
    lane.not_started(seqs[0], at(10));
    assert_eq!(lane.len(), 1);
    assert!(lane.wants_page());
    assert_eq!(lane.take(at(10), 4), [2], "the call's next is free to go");
}

#[test]
fn a_forgotten_call_is_never_sent_twice_from_an_offer() {
    let mut lane = Lane::new(1);
    lane.loaded(
        QueuePage {
            target: target(),
            paused: false,
            deliveries: vec![],
            complete: true,
        },
        &HashSet::new(),
        at(0),
    );
    // Many calls finish here, each after one delivery: the oldest are forgotten.
    for n in 1..=(REMEMBERED_CALLS as i64 + 10) {
        assert_eq!(lane.offer(fresh(n, n, None), at(n)), Offer::Taken);
        assert_eq!(lane.take(at(n), 1), [n]);
        deliver(&mut lane, &[n], n);
    }
    // A late offer of delivery 1 (already sent) is not taken again.
    assert_eq!(lane.offer(fresh(1, 1, None), at(1)), Offer::Ignored);
    assert_eq!(lane.take(at(99_999), 1), Vec::<i64>::new());
}

#[test]
fn a_delivery_that_arrives_while_the_webhook_is_paused_is_held_whatever_its_time_says() {
    let mut lane = lane_with(4, &[(1, 1)]);
    let probe = lane.take(at(10), 4);
    lane.ended(probe[0], &AttemptEnd::Retry { at: at(50) }, at(11));
    // Queued before the pause was recorded, announced after: the store holds it now.
    assert_eq!(lane.offer(fresh(2, 2, None), at(12)), Offer::Taken);
    assert_eq!(
        lane.take(at(12), 4),
        Vec::<i64>::new(),
        "not sent while paused"
    );
    assert_eq!(lane.take(at(50), 4), [1], "the probe alone at its time");
    deliver(&mut lane, &[1], 51);
    assert_eq!(lane.take(at(51), 4), [2], "released by the success");
}

#[test]
fn a_page_carries_the_stores_pause_into_the_lane_and_out_of_it() {
    // A lane of a webhook paused before this process knew of it (a restart, a node taking over).
    let mut lane = Lane::new(4);
    let mut probe = queued(1, 1, 50);
    probe.attempts = 1;
    lane.loaded(
        QueuePage {
            target: target(),
            paused: true,
            deliveries: vec![probe, queued(2, 2, 0)],
            complete: true,
        },
        &HashSet::new(),
        at(10),
    );
    assert_eq!(
        lane.take(at(10), 4),
        Vec::<i64>::new(),
        "the never-tried one is held"
    );
    assert_eq!(lane.next_due(), Some(at(50)), "the probe goes at its time");
    // The store ended the pause (the webhook expired and was renewed): what was held goes.
    lane.read_again();
    lane.loaded(
        QueuePage {
            target: target(),
            paused: false,
            deliveries: vec![],
            complete: true,
        },
        &HashSet::new(),
        at(20),
    );
    let mut sent = lane.take(at(20), 4);
    sent.sort();
    assert_eq!(sent, [2], "released; the window is one");
}
