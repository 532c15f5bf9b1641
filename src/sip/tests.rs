//! The observer and the relay on recorded SIP messages: SIPp's, as they cross the proxy (a
//! callee's responses carry every Via merged into one header, as SIPp's `[last_Via:]` writes them).

use super::facts::Facts;
use super::observe::{Note, Observer, Timers};
use super::relay::{Action, Hop, Relay};
use super::server::parse;
use super::users::Users;
use crate::domain::call::{CallState, Direction};
use crate::domain::report::CallReport;
use crate::domain::time::Timestamp;
use rsipstack::sip::SipMessage;
use std::net::SocketAddr;

const USERS: &str = r#"
[[users]]
extension = "alice"
account = "376"
user = "24785"
[[users]]
uri = "sip:bob@127.0.0.1"
account = "376"
user = "bob"
[[users]]
extension = "carol"
account = "999"
user = "carol"
"#;

const CALL_ID: &str = "1-4242@127.0.0.1";
const CALLER_VIA: &str = "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4242-1-0";
const PROXY_VIA: &str = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ch0123456789abcdef";

/// A request from the caller (`from` the caller's user, `to` the callee's) as it reaches the
/// proxy; `to_tag` set makes it in-dialog.
fn request(
    method: &str,
    cseq: u32,
    from: &str,
    to: &str,
    to_tag: bool,
    sdp: Option<&str>,
) -> String {
    let to_tag = if to_tag { ";tag=callee-tag" } else { "" };
    let body = sdp.map_or(String::new(), |dir| {
        format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na={dir}\r\n")
    });
    let ctype = if sdp.is_some() {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    format!(
        "{method} sip:{to}@127.0.0.1:5070 SIP/2.0\r\nVia: {CALLER_VIA}\r\nFrom: \"{from} name\" <sip:{from}@127.0.0.1:5061>;tag=caller-tag\r\n\
         To: <sip:{to}@127.0.0.1>{to_tag}\r\nCall-ID: {CALL_ID}\r\nCSeq: {cseq} {method}\r\nContact: <sip:{from}@127.0.0.1:5061>\r\n\
         Max-Forwards: 70\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A response from the callee as it reaches the proxy: both Vias in one header, as SIPp writes.
fn response(code: u16, reason: &str, cseq: u32, method: &str, from: &str, to: &str) -> String {
    let tag = if code > 100 { ";tag=callee-tag" } else { "" };
    format!(
        "SIP/2.0 {code} {reason}\r\nVia: {PROXY_VIA}, {CALLER_VIA}\r\nFrom: \"{from} name\" <sip:{from}@127.0.0.1:5061>;tag=caller-tag\r\n\
         To: <sip:{to}@127.0.0.1>{tag}\r\nCall-ID: {CALL_ID}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    )
}

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
    assert_eq!(
        run.feed(&request(
            "INVITE",
            1,
            "alice",
            "bob",
            false,
            Some("sendrecv")
        )),
        Note::None
    );
    run.feed(&response(180, "Ringing", 1, "INVITE", "alice", "bob"));
    run.feed(&response(200, "OK", 1, "INVITE", "alice", "bob"));
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
        run.feed(&request(
            "INVITE",
            1,
            "alice",
            "bob",
            false,
            Some("sendrecv"),
        ));
        run.feed(&response(180, "Ringing", 1, "INVITE", "alice", "bob"));
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
    run.feed(&request(
        "INVITE",
        1,
        "alice",
        "bob",
        false,
        Some("sendrecv"),
    ));
    run.feed(&response(180, "Ringing", 1, "INVITE", "alice", "bob"));
    run.feed(&request("CANCEL", 1, "alice", "bob", false, None));
    run.feed(&response(200, "OK", 1, "CANCEL", "alice", "bob"));
    // Nothing ends before the INVITE's own final answer: the callee could still have answered.
    assert_eq!(run.states("bob"), vec![Initializing, Ringing]);
    run.feed(&response(
        487,
        "Request Terminated",
        1,
        "INVITE",
        "alice",
        "bob",
    ));
    assert_eq!(run.states("bob"), vec![Initializing, Ringing, Missed]);
    assert_eq!(run.states("24785"), vec![Initializing, Ringing, Cancelled]);
}

#[test]
fn a_refusal_without_ringing_rings_first() {
    let mut run = Run::new();
    run.feed(&request(
        "INVITE",
        1,
        "alice",
        "bob",
        false,
        Some("sendrecv"),
    ));
    run.feed(&response(100, "Trying", 1, "INVITE", "alice", "bob"));
    run.feed(&response(486, "Busy Here", 1, "INVITE", "alice", "bob"));
    assert_eq!(run.states("bob"), vec![Initializing, Ringing, Rejected]);
}

#[test]
fn a_challenged_invite_sent_again_is_the_same_call() {
    let mut run = Run::new();
    run.feed(&request(
        "INVITE",
        1,
        "alice",
        "bob",
        false,
        Some("sendrecv"),
    ));
    run.feed(&response(
        407,
        "Proxy Authentication Required",
        1,
        "INVITE",
        "alice",
        "bob",
    ));
    assert_eq!(
        run.feed(&request(
            "INVITE",
            2,
            "alice",
            "bob",
            false,
            Some("sendrecv")
        )),
        Note::None
    );
    run.feed(&response(180, "Ringing", 2, "INVITE", "alice", "bob"));
    run.feed(&response(200, "OK", 2, "INVITE", "alice", "bob"));
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
    run.feed(&response(200, "OK", 2, "INVITE", "alice", "bob"));
    run.feed(&request(
        "INVITE",
        3,
        "alice",
        "bob",
        true,
        Some("sendrecv"),
    ));
    run.feed(&response(200, "OK", 3, "INVITE", "alice", "bob"));
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
    run.feed(&response(200, "OK", 10, "INVITE", "alice", "bob"));
    // A re-INVITE refused changes nothing.
    run.feed(&callee_reinvite(11, "sendrecv"));
    run.feed(&response(
        491,
        "Request Pending",
        11,
        "INVITE",
        "alice",
        "bob",
    ));
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
    run.feed(&response(200, "OK", 4, "INVITE", "alice", "bob"));
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
    run.feed(&response(180, "Ringing", 1, "INVITE", "alice", "bob"));
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

// ---- The relay ----

fn proxy() -> Relay {
    Relay::new("127.0.0.1:5060".parse().unwrap())
}

const CALLER: &str = "127.0.0.1:5061";

fn forward_request(relay: &Relay, text: &str, from: &str) -> (Hop, String) {
    let SipMessage::Request(req) = SipMessage::try_from(text.as_bytes()).unwrap() else {
        panic!("not a request")
    };
    match relay.request(req, from.parse().unwrap()) {
        Action::Forward(hop, bytes) => (hop, String::from_utf8(bytes).unwrap()),
        other => panic!("not forwarded: {other:?}"),
    }
}

fn top_branch(text: &str) -> String {
    let line = text.lines().find(|l| l.starts_with("Via:")).unwrap();
    line.split("branch=")
        .nth(1)
        .unwrap()
        .split([';', ','])
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn requests_get_our_via_and_record_route_and_keep_their_branch_family() {
    let relay = proxy();
    let invite = request("INVITE", 1, "alice", "bob", false, Some("sendrecv"));
    let (hop, out) = forward_request(&relay, &invite, CALLER);
    assert_eq!(hop, Hop::Addr("127.0.0.1:5070".parse().unwrap()));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[1].starts_with("Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK"),
        "{out}"
    );
    assert!(
        out.contains("Record-Route: <sip:127.0.0.1:5060;lr>"),
        "{out}"
    );
    assert!(
        out.contains(&format!("Via: {CALLER_VIA}")),
        "the sender's Via stays: {out}"
    );
    assert!(out.contains("Max-Forwards: 69"), "{out}");
    assert!(out.ends_with("a=sendrecv\r\n"), "body intact: {out}");
    // CANCEL and the ACK of a failure carry the INVITE's branch, so they get ours too.
    let (_, cancel) = forward_request(
        &relay,
        &request("CANCEL", 1, "alice", "bob", false, None),
        CALLER,
    );
    assert_eq!(top_branch(&cancel), top_branch(&out));
    assert!(!cancel.contains("Record-Route"), "{cancel}");
    let bye = request("BYE", 2, "alice", "bob", true, None)
        .replace("z9hG4bK-4242-1-0", "z9hG4bK-4242-2-0");
    let (_, bye) = forward_request(&relay, &bye, CALLER);
    assert_ne!(top_branch(&bye), top_branch(&out));
    assert!(
        !bye.contains("Record-Route"),
        "no Record-Route in a dialog: {bye}"
    );
}

#[test]
fn the_sender_via_learns_where_the_request_really_came_from() {
    let relay = proxy();
    let invite = request("INVITE", 1, "alice", "bob", false, None)
        .replace(CALLER_VIA, &format!("{CALLER_VIA};rport"));
    let (_, out) = forward_request(&relay, &invite, "10.9.8.7:40000");
    assert!(
        out.contains(&format!("Via: {CALLER_VIA};received=10.9.8.7;rport=40000")),
        "{out}"
    );
}

#[test]
fn our_route_entry_is_removed_and_the_next_one_is_followed() {
    let relay = proxy();
    let bye = request("BYE", 2, "alice", "bob", true, None).replace(
        "Max-Forwards: 70",
        "Max-Forwards: 70\r\nRoute: <sip:127.0.0.1:5060;lr>, <sip:192.0.2.1:5080;lr>",
    );
    let (hop, out) = forward_request(&relay, &bye, CALLER);
    assert_eq!(hop, Hop::Addr("192.0.2.1:5080".parse().unwrap()));
    assert!(out.contains("Route: <sip:192.0.2.1:5080;lr>"), "{out}");
    assert!(!out.contains("sip:127.0.0.1:5060;lr>,"), "{out}");
    // Only our own Route: then the Request-URI.
    let bye = request("BYE", 2, "alice", "bob", true, None).replace(
        "Max-Forwards: 70",
        "Max-Forwards: 70\r\nRoute: <sip:127.0.0.1:5060;lr>",
    );
    let (hop, out) = forward_request(&relay, &bye, CALLER);
    assert_eq!(hop, Hop::Addr("127.0.0.1:5070".parse().unwrap()));
    assert!(!out.contains("Route:"), "{out}");
}

#[test]
fn responses_lose_our_via_even_when_sipp_merged_them() {
    let relay = proxy();
    // Our Via as the relay writes it: take the branch from a forwarded INVITE.
    let (_, invite) = forward_request(
        &relay,
        &request("INVITE", 1, "alice", "bob", false, None),
        CALLER,
    );
    let ours = invite
        .lines()
        .nth(1)
        .unwrap()
        .trim_start_matches("Via: ")
        .to_string();
    let merged = response(180, "Ringing", 1, "INVITE", "alice", "bob").replace(PROXY_VIA, &ours);
    let SipMessage::Response(resp) = SipMessage::try_from(merged.as_bytes()).unwrap() else {
        panic!()
    };
    let Action::Forward(hop, bytes) = relay.response(resp) else {
        panic!("dropped")
    };
    let out = String::from_utf8(bytes).unwrap();
    assert_eq!(hop, Hop::Addr(CALLER.parse().unwrap()));
    assert!(out.starts_with("SIP/2.0 180 Ringing\r\n"), "{out}");
    assert!(out.contains(&format!("Via: {CALLER_VIA}\r\n")), "{out}");
    assert!(!out.contains("127.0.0.1:5060"), "{out}");
    // A reason phrase of the callee's own is kept.
    let custom = merged.replace("180 Ringing", "486 Gone Fishing");
    let SipMessage::Response(resp) = SipMessage::try_from(custom.as_bytes()).unwrap() else {
        panic!()
    };
    let Action::Forward(_, bytes) = relay.response(resp) else {
        panic!("dropped")
    };
    assert!(
        String::from_utf8(bytes)
            .unwrap()
            .starts_with("SIP/2.0 486 Gone Fishing\r\n")
    );
    // A response whose top Via is someone else's is not ours to relay.
    let stray = response(180, "Ringing", 1, "INVITE", "alice", "bob")
        .replace(PROXY_VIA, "SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-other");
    let SipMessage::Response(resp) = SipMessage::try_from(stray.as_bytes()).unwrap() else {
        panic!()
    };
    assert!(matches!(relay.response(resp), Action::Drop(_)));
}

#[test]
fn the_proxy_answers_only_what_it_must() {
    let relay = proxy();
    let answer = |text: String| {
        let SipMessage::Request(req) = SipMessage::try_from(text.as_bytes()).unwrap() else {
            panic!()
        };
        relay.request(req, CALLER.parse::<SocketAddr>().unwrap())
    };
    let code = |action: Action| match action {
        Action::Reply(_, bytes) => String::from_utf8(bytes).unwrap()[8..11].to_string(),
        other => format!("{other:?}"),
    };
    let spent = request("INVITE", 1, "alice", "bob", false, None)
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(code(answer(spent)), "483");
    let to_us = request("INVITE", 1, "alice", "bob", false, None)
        .replace("@127.0.0.1:5070 SIP", "@127.0.0.1:5060 SIP");
    assert_eq!(code(answer(to_us.clone())), "404");
    assert_eq!(code(answer(to_us.replace("INVITE", "OPTIONS"))), "200");
    assert!(matches!(
        answer(to_us.replace("INVITE", "ACK")),
        Action::Drop(_)
    ));
    // Our own Via already on it: a loop.
    let looped = request("INVITE", 1, "alice", "bob", false, None).replace(
        &format!("Via: {CALLER_VIA}"),
        &format!("Via: {PROXY_VIA}\r\nVia: {CALLER_VIA}"),
    );
    assert_eq!(code(answer(looped)), "482");
    let Action::Reply(_, bytes) = answer(to_us) else {
        panic!()
    };
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.contains("To: <sip:bob@127.0.0.1>;tag=ch"),
        "a To tag of our own: {text}"
    );
    assert!(text.contains(&format!("Via: {CALLER_VIA}")), "{text}");
}

#[test]
fn malformed_messages_are_refused_by_parse() {
    for bad in [
        "",
        "hello\r\n\r\n",
        "INVITE sip:bob@127.0.0.1 SIP/2.0\r\n\r\n",
        "SIP/2.0 abc OK\r\nCall-ID: x\r\n\r\n",
    ] {
        assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
    }
    let short = request("INVITE", 1, "alice", "bob", false, Some("sendrecv"));
    let cut = &short[..short.len() - 10];
    assert_eq!(
        parse(cut.as_bytes()).unwrap_err(),
        "body shorter than Content-Length"
    );
    let no_call_id = short.replace(&format!("Call-ID: {CALL_ID}\r\n"), "");
    assert!(parse(no_call_id.as_bytes()).is_err());
}
