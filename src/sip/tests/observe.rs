//! The call observer on recorded messages: the mapping table, retransmissions, timers.

use super::super::facts::Facts;
use super::super::observe::{Note, Observer, Timers};
use super::super::server::parse;
use super::super::users::Users;
use super::{CALL_ID, USERS, request, response};
use crate::domain::call::{CallState, Direction};
use crate::domain::report::CallReport;
use crate::domain::time::Timestamp;
use rsipstack::sip::SipMessage;

struct Run {
    observer: Observer,
    clock: i64,
    reports: Vec<CallReport>,
}

impl Run {
    fn new() -> Run {
        Run {
            observer: Observer::new(Users::parse(USERS, false).unwrap(), Timers::default(), 10),
            clock: 1_700_000_000_000,
            reports: Vec::new(),
        }
    }

    /// Feeds one message 100 ms after the previous one.
    fn feed(&mut self, text: &str) -> Note {
        self.clock += 100;
        let (_, facts): (SipMessage, Facts) =
            parse(text.as_bytes()).expect("recorded message parses");
        self.observer.observe(&facts, self.now(), &mut self.reports)
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.clock).unwrap()
    }

    /// Each user's states, in order.
    fn states(&self, user: &str) -> Vec<CallState> {
        self.reports
            .iter()
            .filter(|r| r.user_id == user)
            .map(|r| r.state)
            .collect()
    }
}

use CallState::*;

/// Alice's initial INVITE to bob (SDP: sendrecv) with this CSeq.
fn invite(cseq: u32) -> String {
    request("INVITE", cseq, "alice", "bob", false, Some("sendrecv"))
}

/// Bob's response to alice's INVITE with this CSeq.
fn answer(code: u16, reason: &str, cseq: u32) -> String {
    response(code, reason, cseq, "INVITE", "alice", "bob")
}

fn answered(run: &mut Run, from: &str, to: &str) {
    assert_eq!(
        run.feed(&request("INVITE", 1, from, to, false, Some("sendrecv"))),
        Note::NewCall
    );
    run.feed(&response(100, "Trying", 1, "INVITE", from, to));
    run.feed(&response(180, "Ringing", 1, "INVITE", from, to));
    run.feed(&response(200, "OK", 1, "INVITE", from, to));
    run.feed(&request("ACK", 1, from, to, true, None));
}

#[test]
fn an_answered_call_between_two_users_reports_both_sides() {
    let mut run = Run::new();
    answered(&mut run, "alice", "bob");
    run.clock += 5_000;
    run.feed(&request("BYE", 2, "alice", "bob", true, None));
    run.feed(&response(200, "OK", 2, "BYE", "alice", "bob"));
    let want = vec![Initializing, Ringing, Active, Answered];
    assert_eq!(run.states("bob"), want);
    assert_eq!(run.states("24785"), want);
    let bob = run.reports.iter().find(|r| r.user_id == "bob").unwrap();
    assert_eq!(
        (
            bob.external_id.as_str(),
            bob.direction,
            bob.phone_number.as_str(),
            bob.caller_id.as_deref()
        ),
        (CALL_ID, Direction::Inbound, "alice", Some("alice name"))
    );
    assert!(bob.internal);
    assert_eq!(bob.ucp_type, "SIP");
    let alice = run.reports.iter().find(|r| r.user_id == "24785").unwrap();
    // Both in account 376, which keys calls by externalId: the caller's side is told apart.
    assert_eq!(alice.external_id, format!("{CALL_ID};outbound"));
    assert_eq!(
        (alice.direction, alice.phone_number.as_str()),
        (Direction::Outbound, "bob")
    );
    // ACTIVE at the 200 OK, ANSWERED at the BYE: 5.2 s later.
    let at = |user: &str, state| {
        run.reports
            .iter()
            .find(|r| r.user_id == user && r.state == state)
            .unwrap()
            .at
            .unwrap()
    };
    assert_eq!(at("bob", Answered).since(at("bob", Active)), 5_200);
}

#[test]
fn retransmissions_and_late_responses_change_nothing() {
    let mut run = Run::new();
    answered(&mut run, "alice", "bob");
    let before = run.reports.len();
    // The INVITE again, the 180 after the 200, the 200 again.
    assert_eq!(run.feed(&invite(1)), Note::None);
    run.feed(&answer(180, "Ringing", 1));
    run.feed(&answer(200, "OK", 1));
    assert_eq!(run.reports.len(), before);
    run.feed(&request("BYE", 2, "alice", "bob", true, None));
    run.feed(&request("BYE", 2, "alice", "bob", true, None));
    run.feed(&response(200, "OK", 2, "BYE", "alice", "bob"));
    assert_eq!(
        run.states("bob"),
        vec![Initializing, Ringing, Active, Answered]
    );
}

#[test]
fn unanswered_ends_map_to_missed_rejected_and_cancelled() {
    for (code, reason, callee_end) in [
        (486, "Busy Here", Rejected),
        (603, "Decline", Rejected),
        (600, "Busy Everywhere", Rejected),
        (480, "Temporarily Unavailable", Missed),
        (408, "Request Timeout", Missed),
        (404, "Not Found", Missed),
    ] {
        let mut run = Run::new();
        run.feed(&invite(1));
        run.feed(&answer(180, "Ringing", 1));
        run.feed(&response(code, reason, 1, "INVITE", "alice", "bob"));
        run.feed(&request("ACK", 1, "alice", "bob", true, None));
        assert_eq!(
            run.states("bob"),
            vec![Initializing, Ringing, callee_end],
            "{code}"
        );
        assert_eq!(
            run.states("24785"),
            vec![Initializing, Ringing, Cancelled],
            "{code}"
        );
    }
}

#[test]
fn a_cancel_while_ringing_is_missed_by_the_callee_and_cancelled_by_the_caller() {
    let mut run = Run::new();
    run.feed(&invite(1));
    run.feed(&answer(180, "Ringing", 1));
    run.feed(&request("CANCEL", 1, "alice", "bob", false, None));
    run.feed(&response(200, "OK", 1, "CANCEL", "alice", "bob"));
    // Nothing ends before the INVITE's own final answer: the callee could still have answered.
    assert_eq!(run.states("bob"), vec![Initializing, Ringing]);
    run.feed(&answer(487, "Request Terminated", 1));
    assert_eq!(run.states("bob"), vec![Initializing, Ringing, Missed]);
    assert_eq!(run.states("24785"), vec![Initializing, Ringing, Cancelled]);
}

#[test]
fn a_refusal_without_ringing_rings_first() {
    let mut run = Run::new();
    run.feed(&invite(1));
    run.feed(&answer(100, "Trying", 1));
    run.feed(&answer(486, "Busy Here", 1));
    assert_eq!(run.states("bob"), vec![Initializing, Ringing, Rejected]);
}

#[test]
fn a_challenged_invite_sent_again_is_the_same_call() {
    let mut run = Run::new();
    run.feed(&invite(1));
    run.feed(&answer(407, "Proxy Authentication Required", 1));
    assert_eq!(run.feed(&invite(2)), Note::None);
    run.feed(&answer(180, "Ringing", 2));
    run.feed(&answer(200, "OK", 2));
    assert_eq!(run.states("bob"), vec![Initializing, Ringing, Active]);
}

#[test]
fn hold_and_resume_by_either_side() {
    let mut run = Run::new();
    answered(&mut run, "alice", "bob");
    // The caller holds: a re-INVITE with sendonly, accepted.
    run.feed(&request(
        "INVITE",
        2,
        "alice",
        "bob",
        true,
        Some("sendonly"),
    ));
    assert_eq!(
        run.states("bob"),
        vec![Initializing, Ringing, Active],
        "not before the 200"
    );
    run.feed(&answer(200, "OK", 2));
    run.feed(&request(
        "INVITE",
        3,
        "alice",
        "bob",
        true,
        Some("sendrecv"),
    ));
    run.feed(&answer(200, "OK", 3));
    assert_eq!(
        run.states("24785"),
        vec![Initializing, Ringing, Active, Held, Active]
    );
    assert_eq!(
        run.states("bob"),
        vec![Initializing, Ringing, Active, RemoteHeld, Active]
    );

    // The callee holds (its From tag is the dialog's To tag): inactive, then refused resume.
    let callee_reinvite = |cseq: u32, dir: &str| {
        request("INVITE", cseq, "alice", "bob", true, Some(dir))
            .replace("tag=caller-tag", "tag=XX")
            .replace("tag=callee-tag", "tag=caller-tag")
            .replace("tag=XX", "tag=callee-tag")
    };
    run.feed(&callee_reinvite(10, "inactive"));
    run.feed(&answer(200, "OK", 10));
    // A re-INVITE refused changes nothing.
    run.feed(&callee_reinvite(11, "sendrecv"));
    run.feed(&answer(491, "Request Pending", 11));
    assert_eq!(run.states("bob").last(), Some(&Held));
    assert_eq!(run.states("24785").last(), Some(&RemoteHeld));
    // The caller cannot resume a hold it did not start.
    run.feed(&request(
        "INVITE",
        4,
        "alice",
        "bob",
        true,
        Some("sendrecv"),
    ));
    run.feed(&answer(200, "OK", 4));
    assert_eq!(run.states("bob").last(), Some(&Held));
    run.feed(&request("BYE", 5, "alice", "bob", true, None));
    assert_eq!(run.states("bob").last(), Some(&Answered));
    assert_eq!(run.states("24785").last(), Some(&Answered));
}

#[test]
fn only_local_parties_get_reports() {
    // Neither party known: relayed, not followed.
    let mut run = Run::new();
    assert_eq!(
        run.feed(&request("INVITE", 1, "mallory", "trent", false, None)),
        Note::Unknown
    );
    run.feed(&response(180, "Ringing", 1, "INVITE", "mallory", "trent"));
    assert!(run.reports.is_empty());
    assert!(run.observer.is_empty());

    // Only the callee known: one INBOUND side, not internal. An extension matches any host;
    // a URI entry only its own host.
    let mut run = Run::new();
    assert_eq!(
        run.feed(&request("INVITE", 1, "mallory", "carol", false, None)),
        Note::NewCall
    );
    assert_eq!(run.reports.len(), 1);
    let r = &run.reports[0];
    assert_eq!(
        (r.user_id.as_str(), r.direction, r.internal),
        ("carol", Direction::Inbound, false)
    );
    assert_eq!(
        (r.external_id.as_str(), r.phone_number.as_str()),
        (CALL_ID, "mallory")
    );

    // Two users in different accounts: both sides keep the Call-ID as externalId.
    let mut run = Run::new();
    run.feed(&request("INVITE", 1, "alice", "carol", false, None));
    assert!(
        run.reports
            .iter()
            .all(|r| r.external_id == CALL_ID && r.internal)
    );
    assert_eq!(run.reports.len(), 2);
}

#[test]
fn dialogs_that_die_end_on_their_timers_and_are_then_forgotten() {
    let timers = Timers::default();
    let mut run = Run::new();
    answered(&mut run, "alice", "bob");
    let mut out = Vec::new();
    let t = |ms: i64| Timestamp::from_millis(ms).unwrap();
    run.observer.expire(t(run.clock + 1_000), &mut out);
    assert!(out.is_empty());
    let died = run.clock + timers.session.as_millis() as i64;
    run.observer.expire(t(died), &mut out);
    assert_eq!(
        out.iter().map(|r| r.state).collect::<Vec<_>>(),
        vec![Answered, Answered]
    );
    assert_eq!(
        run.observer.len(),
        1,
        "remembered while retransmissions may come"
    );
    run.observer
        .expire(t(died + timers.linger.as_millis() as i64), &mut out);
    assert!(run.observer.is_empty());

    // A call never answered ends after the setup timer (Timer C).
    let mut run = Run::new();
    run.feed(&request("INVITE", 1, "alice", "bob", false, None));
    run.feed(&answer(180, "Ringing", 1));
    let mut out = Vec::new();
    run.observer
        .expire(t(run.clock + timers.setup.as_millis() as i64), &mut out);
    let ends: Vec<_> = out.iter().map(|r| (r.user_id.as_str(), r.state)).collect();
    assert_eq!(ends, vec![("bob", Missed), ("24785", Cancelled)]);

    // Session-Expires replaces the session timer for its dialog.
    let mut run = Run::new();
    answered(&mut run, "alice", "bob");
    let refresh = request("INVITE", 2, "alice", "bob", true, Some("sendrecv")).replace(
        "Max-Forwards: 70",
        "Max-Forwards: 70\r\nSession-Expires: 120;refresher=uac",
    );
    run.feed(&refresh);
    let mut out = Vec::new();
    run.observer.expire(t(run.clock + 119_000), &mut out);
    assert!(out.is_empty());
    run.observer.expire(t(run.clock + 120_000), &mut out);
    assert_eq!(out.len(), 2);
}

#[test]
fn a_full_observer_refuses_new_calls_it_would_follow() {
    let mut observer = Observer::new(Users::parse(USERS, false).unwrap(), Timers::default(), 1);
    let now = Timestamp::from_millis(1_700_000_000_000).unwrap();
    let mut out = Vec::new();
    let first = request("INVITE", 1, "alice", "bob", false, None);
    let second = first.replace(CALL_ID, "another-call");
    let unknown = request("INVITE", 1, "x", "y", false, None).replace(CALL_ID, "third");
    let facts = |text: &str| parse(text.as_bytes()).unwrap().1;
    assert_eq!(
        observer.observe(&facts(&first), now, &mut out),
        Note::NewCall
    );
    assert_eq!(observer.observe(&facts(&second), now, &mut out), Note::Full);
    assert_eq!(
        observer.observe(&facts(&unknown), now, &mut out),
        Note::Unknown
    );
    assert_eq!(out.len(), 2);
}
