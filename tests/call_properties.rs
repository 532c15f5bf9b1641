//! Property tests for the call state machine (`domain::call::apply`): arbitrary sequences of
//! reports (any state, either direction, another user now and then, times moving forward, backward
//! or absent) applied one by one. Whatever the sequence, every outcome is one the machine allows
//! (`callhook::fuzzing::check_transition`: CONTRACT.md's table and timing rules), a final call never
//! moves, `answerTime` is when the call first reached an answered state, and repeating every
//! report changes nothing.

use callhook::domain::Timestamp;
use callhook::domain::call::{Applied, Call, CallState, Direction, apply};
use callhook::domain::report::CallReport;
use callhook::fuzzing::{check_call, check_transition};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::cell::Cell;

/// Cases per property: each is a whole sequence of up to [`MAX_STEPS`] reports.
const CASES: u32 = 2_000;
const MAX_STEPS: usize = 40;
/// Where the sequences start (2001-09-09) and the clock used for reports without `at`.
const START: i64 = 1_000_000_000_000;

/// One report of a sequence: its state, whether direction or user differ from the call's, and when
/// (milliseconds after the previous report, possibly negative; `None`: no `at`, "now").
#[derive(Debug, Clone)]
struct Step {
    state: CallState,
    flip_direction: bool,
    other_user: bool,
    delay: Option<i64>,
}

fn step() -> impl Strategy<Value = Step> {
    (
        proptest::sample::select(CallState::ALL.to_vec()),
        proptest::bool::weighted(0.05),
        proptest::bool::weighted(0.05),
        proptest::option::weighted(0.8, -5_000i64..120_000),
    )
        .prop_map(|(state, flip_direction, other_user, delay)| Step {
            state,
            flip_direction,
            other_user,
            delay,
        })
}

fn sequence() -> impl Strategy<Value = (Direction, Vec<Step>)> {
    (
        proptest::sample::select(vec![Direction::Inbound, Direction::Outbound]),
        proptest::collection::vec(step(), 1..MAX_STEPS),
    )
}

/// The reports a sequence stands for, with the clock each is applied at.
fn reports(direction: Direction, steps: &[Step]) -> Vec<(CallReport, Timestamp)> {
    let mut clock = START;
    steps
        .iter()
        .map(|s| {
            clock = (clock + s.delay.unwrap_or(1_000)).max(0);
            let report = CallReport {
                external_id: "ext-1".into(),
                account_id: "376".into(),
                user_id: if s.other_user { "intruder" } else { "24785" }.into(),
                direction: match (direction, s.flip_direction) {
                    (d, false) => d,
                    (Direction::Inbound, true) => Direction::Outbound,
                    (Direction::Outbound, true) => Direction::Inbound,
                },
                phone_number: "+15551234567".into(),
                caller_id: None,
                state: s.state,
                internal: false,
                ucp_type: "VBS".into(),
                at: s
                    .delay
                    .map(|_| Timestamp::from_millis(clock).expect("in range")),
            };
            (report, Timestamp::from_millis(clock).expect("in range"))
        })
        .collect()
}

/// Applies the reports in order, checking every outcome; returns the call and how many reports
/// changed it.
fn play(reports: &[(CallReport, Timestamp)]) -> (Option<Call>, usize) {
    let mut call: Option<Call> = None;
    let mut changes = 0;
    // A model of answerTime, kept apart from the machine: when the first answered state was applied.
    let mut first_answered: Option<Timestamp> = None;
    for (report, now) in reports {
        let outcome = apply(call.as_ref(), report, || "c1".into(), *now);
        check_transition(call.as_ref(), report, *now, &outcome);
        if let Some(before) = call.as_ref().filter(|c| c.state.is_final()) {
            let stayed = match &outcome {
                Err(_) => true,
                Ok(Applied::Repeated(c)) => c == before,
                Ok(Applied::Changed(_)) => false,
            };
            assert!(stayed, "a final call moved: {before:?} -> {outcome:?}");
        }
        match outcome {
            Ok(Applied::Changed(next)) => {
                changes += 1;
                if next.state.is_answered() && first_answered.is_none() {
                    first_answered = Some(next.updated_at);
                }
                assert_eq!(next.answer_time, first_answered, "answerTime: {next:?}");
                call = Some(next);
            }
            Ok(Applied::Repeated(_)) | Err(_) => {}
        }
        if let Some(c) = &call {
            check_call(c);
        }
    }
    (call, changes)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn no_sequence_of_reports_leaves_a_call_in_an_illegal_state_or_moves_a_final_call() {
    let (reports_applied, changes, finals) = (Cell::new(0), Cell::new(0), Cell::new(0));

    let result = runner().run(&sequence(), |(direction, steps)| {
        let reports = reports(direction, &steps);
        let (call, changed) = play(&reports);
        reports_applied.set(reports_applied.get() + reports.len());
        changes.set(changes.get() + changed);
        finals.set(finals.get() + usize::from(call.is_some_and(|c| c.state.is_final())));
        Ok(())
    });

    result.unwrap();
    println!(
        "{CASES} sequences, {} reports, {} state changes, {} calls ended final",
        reports_applied.get(),
        changes.get(),
        finals.get()
    );
    assert!(finals.get() > 0, "the sequences reach final states");
}

#[test]
fn repeating_every_report_changes_nothing() {
    let result = runner().run(&sequence(), |(direction, steps)| {
        let once = reports(direction, &steps);
        let twice: Vec<_> = once.iter().flat_map(|r| [r.clone(), r.clone()]).collect();

        let (call_once, changes_once) = play(&once);
        let (call_twice, changes_twice) = play(&twice);

        prop_assert_eq!(call_once, call_twice);
        prop_assert_eq!(changes_once, changes_twice);
        Ok(())
    });
    result.unwrap();
}
