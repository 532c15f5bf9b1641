//! The contract for calls: applying reports (legal, refused, repeated), and reading calls back
//! with filters, sorting and paging, each only for its owner.

use crate::fixtures::*;
use callhook::domain::call::{Applied, Call, TransitionError};
use callhook::domain::{CallState, Direction};
use callhook::store::{ApplyError, ApplyOutcome, CallFilter, CallPage, SortKey, Store};
use std::sync::Arc;

pub(crate) async fn a_legal_sequence_moves_the_call_and_keeps_its_times(store: Arc<dyn Store>) {
    // Arrange
    hook(&store, &ann(), "w1").await;

    // Act
    let ringing = event(&store, &ann(), "c1", CallState::Ringing, 1_000).await;
    let active = event(&store, &ann(), "c1", CallState::Active, 2_000).await;
    let answered = apply(
        &store,
        &report(&ann(), "c1", CallState::Answered, 5_000),
        6_000,
    )
    .await;

    // Assert
    assert_eq!(ringing.id, active.id, "one call, one id");
    let Applied::Changed(ended) = &answered.applied else {
        panic!("ANSWERED was not a change: {answered:?}");
    };
    assert_eq!((answered.deliveries, answered.skipped), (1, 0));
    assert_eq!(ended.id, ringing.id);
    assert_eq!(ended.state, CallState::Answered);
    assert_eq!(
        (ended.start_time, ended.answer_time, ended.end_time),
        (at(1_000), Some(at(2_000)), Some(at(5_000)))
    );
    assert_eq!((ended.duration, ended.updated_at), (3_000, at(5_000)));
    let stored = store.get_call(&ann(), &ringing.id).await.expect("get call");
    assert_eq!(stored.as_ref(), Some(ended));
}

pub(crate) async fn a_report_without_a_time_happens_at_now(store: Arc<dyn Store>) {
    // Arrange
    let mut ringing = report(&ann(), "c1", CallState::Ringing, 0);
    ringing.at = None;

    // Act
    let outcome = apply(&store, &ringing, 7_000).await;

    // Assert
    let Applied::Changed(call) = outcome.applied else {
        panic!("a new call was not a change: {outcome:?}");
    };
    assert_eq!((call.start_time, call.updated_at), (at(7_000), at(7_000)));
    assert_eq!(
        (outcome.deliveries, outcome.skipped),
        (0, 0),
        "no webhooks, no deliveries"
    );
}

pub(crate) async fn a_refused_report_changes_nothing_and_queues_nothing(store: Arc<dyn Store>) {
    // Arrange: an answered (final) call, and one webhook.
    hook(&store, &ann(), "w1").await;
    event(&store, &ann(), "c1", CallState::Ringing, 1_000).await;
    let answered = event(&store, &ann(), "c1", CallState::Answered, 2_000).await;
    let backlog = store.backlog().await.expect("backlog");
    let refusals = [
        report(&ann(), "c1", CallState::Active, 3_000),
        report(&bob(), "c1", CallState::Answered, 3_000),
        report(&ann(), "c2", CallState::Active, 3_000),
    ];

    for refused in &refusals {
        // Act
        let result = store.apply_call_report(refused, at(3_000)).await;

        // Assert
        assert!(
            matches!(result, Err(ApplyError::Refused(_))),
            "{} {:?} for {}: {result:?}",
            refused.external_id,
            refused.state,
            refused.user_id
        );
    }
    assert!(matches!(
        store
            .apply_call_report(&refusals[0], at(3_000))
            .await
            .unwrap_err(),
        ApplyError::Refused(TransitionError::Illegal { .. })
    ));
    let stored = store.get_call(&ann(), &answered.id).await.expect("get");
    assert_eq!(stored, Some(answered), "a refused report changed the call");
    let all = CallFilter::default();
    assert_eq!(store.count_calls(&ann(), &all).await.expect("count"), 1);
    assert_eq!(store.count_calls(&bob(), &all).await.expect("count"), 0);
    assert_eq!(store.backlog().await.expect("backlog"), backlog);
}

pub(crate) async fn a_repeated_report_is_a_repeat_and_queues_nothing(store: Arc<dyn Store>) {
    let mut d = Driver::new(&store);
    // Arrange
    hook(&store, &ann(), "w1").await;
    let ringing = event(&store, &ann(), "c1", CallState::Ringing, 1_000).await;

    // Act
    let repeated = apply(
        &store,
        &report(&ann(), "c1", CallState::Ringing, 1_500),
        1_500,
    )
    .await;

    // Assert
    assert_eq!(
        repeated,
        ApplyOutcome {
            applied: Applied::Repeated(ringing.clone()),
            deliveries: 0,
            skipped: 0,
        }
    );
    assert_eq!(store.backlog().await.expect("backlog").pending, 1);
    let jobs = d.take(claim(2_000, 3_000)).await;
    assert_eq!(whats(&jobs), [job("w1", "c1", "RINGING")]);
    assert_eq!(
        store.get_call(&ann(), &ringing.id).await.expect("get"),
        Some(ringing),
        "a repeat changed the call"
    );
}

/// Ann's calls: c1 inbound ringing (1000), c2 outbound answered (2000 to 3000), c3 inbound
/// missed (3500 to 4000), c4 outbound initializing (5000); Bob's c5 ringing (1500). Returned in
/// that order.
async fn five_calls(store: &Arc<dyn Store>) -> Vec<Call> {
    let plan = [
        (
            ann(),
            "c1",
            Direction::Inbound,
            "+15550003",
            vec![(CallState::Ringing, 1_000)],
        ),
        (
            ann(),
            "c2",
            Direction::Outbound,
            "15550001",
            vec![
                (CallState::Ringing, 2_000),
                (CallState::Active, 2_500),
                (CallState::Answered, 3_000),
            ],
        ),
        (
            ann(),
            "C3",
            Direction::Inbound,
            "+15550002",
            vec![(CallState::Ringing, 3_500), (CallState::Missed, 4_000)],
        ),
        (
            ann(),
            "c4",
            Direction::Outbound,
            "+25550000",
            vec![(CallState::Initializing, 5_000)],
        ),
        (
            bob(),
            "c5",
            Direction::Inbound,
            "+15550009",
            vec![(CallState::Ringing, 1_500)],
        ),
    ];
    let mut calls = Vec::new();
    for (who, ext, direction, number, steps) in plan {
        let mut last = None;
        for (state, ms) in steps {
            let mut r = report(&who, ext, state, ms);
            r.direction = direction;
            r.phone_number = number.to_string();
            match apply(store, &r, ms).await.applied {
                Applied::Changed(call) => last = Some(call),
                repeated => panic!("arrange: {ext} {state:?} was {repeated:?}"),
            }
        }
        calls.push(last.expect("every call has a step"));
    }
    calls
}

fn externals(calls: &[Call]) -> Vec<&str> {
    calls.iter().map(|c| c.external_id.as_str()).collect()
}

fn page(filter: CallFilter, sort: SortKey, descending: bool, page: u64, size: u64) -> CallPage {
    CallPage {
        filter,
        sort,
        descending,
        page,
        size,
    }
}

/// `from` is inclusive and `to` exclusive, both on the latest state change.
pub(crate) async fn calls_are_filtered_and_counted_per_owner(store: Arc<dyn Store>) {
    // Arrange
    five_calls(&store).await;
    let filters: [(CallFilter, &[&str]); 7] = [
        (CallFilter::default(), &["c1", "c2", "C3", "c4"]),
        (
            CallFilter {
                active_only: true,
                ..CallFilter::default()
            },
            &["c1", "c4"],
        ),
        (
            CallFilter {
                directions: vec![Direction::Outbound],
                ..CallFilter::default()
            },
            &["c2", "c4"],
        ),
        (
            CallFilter {
                states: vec![CallState::Missed, CallState::Answered],
                ..CallFilter::default()
            },
            &["c2", "C3"],
        ),
        (
            CallFilter {
                from: Some(at(3_000)),
                ..CallFilter::default()
            },
            &["c2", "C3", "c4"],
        ),
        (
            CallFilter {
                to: Some(at(4_000)),
                ..CallFilter::default()
            },
            &["c1", "c2"],
        ),
        (
            CallFilter {
                active_only: true,
                directions: vec![Direction::Inbound],
                states: vec![CallState::Ringing, CallState::Missed],
                from: Some(at(1_000)),
                to: Some(at(1_001)),
            },
            &["c1"],
        ),
    ];

    for (filter, expected) in filters {
        // Act
        let count = store.count_calls(&ann(), &filter).await.expect("count");
        let listed = store
            .list_calls(
                &ann(),
                &page(filter.clone(), SortKey::StartTime, false, 0, 10),
            )
            .await
            .expect("list");

        // Assert
        assert_eq!(count, expected.len() as u64, "count with {filter:?}");
        assert_eq!(externals(&listed), expected, "list with {filter:?}");
    }
    let bobs = store
        .count_calls(&bob(), &CallFilter::default())
        .await
        .expect("count");
    let strangers = store
        .count_calls(&owner("acc2", "ann"), &CallFilter::default())
        .await
        .expect("count");
    assert_eq!((bobs, strangers), (1, 0));
}

/// Ties keep the order the calls were first reported in (in the sort's direction), so that
/// pages never overlap; text sorts by bytes; calls without a value come first ascending.
pub(crate) async fn calls_are_sorted_by_every_key_both_ways(store: Arc<dyn Store>) {
    // Arrange
    let calls = five_calls(&store).await;
    let mut by_id: Vec<&Call> = calls[..4].iter().collect();
    by_id.sort_by(|a, b| a.id.as_bytes().cmp(b.id.as_bytes()));
    let by_id: Vec<&str> = by_id.iter().map(|c| c.external_id.as_str()).collect();
    let ascending: [(SortKey, Vec<&str>); 9] = [
        (SortKey::StartTime, vec!["c1", "c2", "C3", "c4"]),
        (SortKey::AnswerTime, vec!["c1", "C3", "c4", "c2"]),
        (SortKey::EndTime, vec!["c1", "c4", "c2", "C3"]),
        (SortKey::Duration, vec!["c1", "C3", "c4", "c2"]),
        (SortKey::State, vec!["c2", "c4", "C3", "c1"]),
        (SortKey::Direction, vec!["c1", "C3", "c2", "c4"]),
        (SortKey::PhoneNumber, vec!["C3", "c1", "c4", "c2"]),
        (SortKey::ExternalId, vec!["C3", "c1", "c2", "c4"]),
        (SortKey::Id, by_id),
    ];

    for (key, expected) in ascending {
        // Act
        let up = store
            .list_calls(&ann(), &page(CallFilter::default(), key, false, 0, 10))
            .await
            .expect("list ascending");
        let down = store
            .list_calls(&ann(), &page(CallFilter::default(), key, true, 0, 10))
            .await
            .expect("list descending");

        // Assert
        assert_eq!(externals(&up), expected, "{key:?} ascending");
        let reversed: Vec<&str> = expected.iter().rev().copied().collect();
        assert_eq!(externals(&down), reversed, "{key:?} descending");
    }
}

pub(crate) async fn calls_are_paged(store: Arc<dyn Store>) {
    // Arrange
    five_calls(&store).await;
    let listing = |number, size, descending| {
        let store = store.clone();
        async move {
            let calls = store
                .list_calls(
                    &ann(),
                    &page(
                        CallFilter::default(),
                        SortKey::StartTime,
                        descending,
                        number,
                        size,
                    ),
                )
                .await
                .expect("list a page");
            externals(&calls)
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        }
    };

    // Act / Assert
    assert_eq!(listing(0, 3, false).await, ["c1", "c2", "C3"]);
    assert_eq!(listing(1, 3, false).await, ["c4"]);
    assert_eq!(listing(2, 3, false).await, Vec::<String>::new());
    assert_eq!(listing(1, 2, true).await, ["c2", "c1"]);
    assert_eq!(listing(0, 0, false).await, Vec::<String>::new());
    assert_eq!(
        listing(u64::MAX, u64::MAX, false).await,
        Vec::<String>::new(),
        "a page past any number of calls"
    );
}

pub(crate) async fn a_call_is_found_by_id_only_by_its_owner(store: Arc<dyn Store>) {
    // Arrange
    let calls = five_calls(&store).await;
    let c1 = &calls[0];

    // Act
    let mine = store.get_call(&ann(), &c1.id).await.expect("get");
    let bobs = store.get_call(&bob(), &c1.id).await.expect("get");
    let other_account = store
        .get_call(&owner("acc2", "ann"), &c1.id)
        .await
        .expect("get");
    let by_external_id = store.get_call(&ann(), "c1").await.expect("get");

    // Assert
    assert_eq!(mine.as_ref(), Some(c1));
    assert_eq!((bobs, other_account), (None, None));
    assert_eq!(
        by_external_id, None,
        "the id is callhook's, not the external id"
    );
}
