//! Hostile-input harnesses shared by the cargo-fuzz targets (`fuzz/`) and their stable regression
//! test (`tests/fuzz_regressions.rs`), and the call invariants the property tests assert
//! (`tests/call_properties.rs`). Each harness takes raw bytes, runs them through the same functions
//! a request does, and panics when an invariant breaks; so the fuzz targets and the regression test
//! cannot drift apart.
//!
//! Not a public API (hidden from the docs). Depends on `domain`, `signing` and `sip` only.

use crate::domain::call::{self, Applied, Call, CallState, TransitionError, allowed};
use crate::domain::report::CallReport;
use crate::domain::target::TargetPolicy;
use crate::domain::time::Timestamp;
use crate::domain::webhook::{WebhookSpec, check_url};
use crate::signing;
use serde_json::Value;
use std::net::IpAddr;

/// A harness: raw bytes in, a panic when an invariant breaks.
pub type Harness = fn(&[u8]);

/// Every fuzz target by name (the name of its `fuzz/fuzz_targets/` file and of its
/// `fuzz/regressions/` directory).
pub const TARGETS: [(&str, Harness); 4] = [
    ("ingest_body", ingest_body),
    ("canonical_signing", canonical_signing),
    ("webhook_url", webhook_url),
    ("sip_message", sip_message),
];

/// The clock the ingestion harness passes for reports without `at` (2001-09-09).
const NOW: i64 = 1_000_000_000_000;

/// Ingestion: the body bytes parsed as `POST /ingest/v1/call-events` parses them (JSON, then
/// [`CallReport::try_from`]); a valid report is then applied to a new call and to a call in every
/// state the machine can reach, and every outcome is checked with [`check_transition`].
pub fn ingest_body(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let report = match CallReport::try_from(&body) {
        Ok(report) => report,
        Err(errors) => {
            assert!(!errors.is_empty(), "a refused report names its errors");
            return;
        }
    };
    let now = Timestamp::from_millis(NOW).expect("in range");
    let outcome = call::apply(None, &report, || "fuzz".into(), now);
    check_transition(None, &report, now, &outcome);
    for existing in calls_in_every_state(&report, now) {
        let outcome = call::apply(Some(&existing), &report, || unreachable!(), now);
        check_transition(Some(&existing), &report, now, &outcome);
    }
}

/// One call in each state reachable from the start with `template`'s identity and direction,
/// one second between changes from `start`.
pub fn calls_in_every_state(template: &CallReport, start: Timestamp) -> Vec<Call> {
    let step = |from: Option<&Call>, to: CallState, at: Timestamp| {
        let report = CallReport {
            state: to,
            at: Some(at),
            ..template.clone()
        };
        match call::apply(from, &report, || "fuzz".into(), at) {
            Ok(Applied::Changed(next)) => next,
            other => panic!("a legal step {to:?} was refused: {other:?}"),
        }
    };
    let mut calls: Vec<Call> = CallState::ALL
        .into_iter()
        .filter(|&to| allowed(None, to, template.direction))
        .map(|to| step(None, to, start))
        .collect();
    let mut next = 0;
    while next < calls.len() {
        let from = calls[next].clone();
        next += 1;
        for to in CallState::ALL {
            if allowed(Some(from.state), to, from.direction) && !calls.iter().any(|c| c.state == to)
            {
                calls.push(step(Some(&from), to, from.updated_at.plus(SECOND)));
            }
        }
    }
    calls
}

const SECOND: std::time::Duration = std::time::Duration::from_secs(1);

/// The invariants of one call, whatever happened to it: the CONTRACT's timing rules.
pub fn check_call(c: &Call) {
    assert_eq!(
        c.answer_time.is_some(),
        c.state.is_answered(),
        "answerTime exactly in answered states: {c:?}"
    );
    assert_eq!(
        c.end_time.is_some(),
        c.state.is_final(),
        "endTime exactly in final states: {c:?}"
    );
    assert!(
        c.start_time <= c.updated_at,
        "starts before it changes: {c:?}"
    );
    if let Some(answer) = c.answer_time {
        assert!(
            c.start_time <= answer && answer <= c.updated_at,
            "answered between start and the last change: {c:?}"
        );
    }
    if let Some(end) = c.end_time {
        assert_eq!(end, c.updated_at, "the end is the last change: {c:?}");
    }
    let expected = match (c.state, c.answer_time, c.end_time) {
        (CallState::Answered, Some(answer), Some(end)) => end.since(answer),
        _ => 0,
    };
    assert_eq!(c.duration, expected, "duration is answer to end: {c:?}");
}

/// What applying `report` to `before` may have done: a refusal for the right reason, a repeat that
/// changes nothing, or a legal move that keeps the call's identity and timing invariants. A final
/// call never moves.
pub fn check_transition(
    before: Option<&Call>,
    report: &CallReport,
    now: Timestamp,
    outcome: &Result<Applied, TransitionError>,
) {
    let at = report.at.unwrap_or(now);
    match outcome {
        Err(TransitionError::Illegal {
            from,
            to,
            direction,
        }) => {
            assert_eq!(*from, before.map(|c| c.state));
            assert_eq!(*to, report.state);
            assert!(!allowed(*from, *to, *direction), "refused a legal move");
        }
        Err(TransitionError::UserMismatch { .. }) => {
            assert!(before.is_some_and(|c| c.user_id != report.user_id));
        }
        Err(TransitionError::DirectionMismatch { .. }) => {
            assert!(before.is_some_and(|c| c.direction != report.direction));
        }
        Err(TransitionError::TimeTravel { at: told, last }) => {
            assert!(before.is_some_and(|c| c.updated_at == *last));
            assert!(told < last && *told == at);
        }
        Ok(Applied::Repeated(c)) => {
            assert_eq!(Some(c), before, "a repeat changes nothing");
            assert_eq!(c.state, report.state);
        }
        Ok(Applied::Changed(c)) => {
            check_call(c);
            assert_eq!((c.state, c.updated_at), (report.state, at));
            assert!(
                allowed(before.map(|b| b.state), c.state, c.direction),
                "an illegal move was applied: {before:?} -> {c:?}"
            );
            match before {
                None => {
                    assert_eq!(c.start_time, at);
                    assert_eq!(
                        (&c.external_id, &c.user_id, c.direction),
                        (&report.external_id, &report.user_id, report.direction)
                    );
                }
                Some(b) => {
                    assert!(!b.state.is_final(), "a final call moved: {b:?} -> {c:?}");
                    assert_eq!(
                        (&c.id, &c.external_id, &c.account_id, &c.user_id),
                        (&b.id, &b.external_id, &b.account_id, &b.user_id)
                    );
                    assert_eq!((c.direction, c.start_time), (b.direction, b.start_time));
                    assert!(b.updated_at <= c.updated_at, "time moved backwards");
                    if b.answer_time.is_some() {
                        assert_eq!(c.answer_time, b.answer_time, "answerTime is set once");
                    }
                }
            }
        }
    }
}

/// Signing: the bytes are a key, a newline, then a JSON body. The canonical form must be JSON
/// that canonicalises to itself (so a receiver re-parsing what was sent signs the same text), and
/// the signature must verify, also over the re-parsed form and in upper case.
pub fn canonical_signing(data: &[u8]) {
    let (key, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let key = String::from_utf8_lossy(key);
    let Ok(event) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let canonical = signing::canonical_json(&event);
    let reparsed: Value = serde_json::from_str(&canonical)
        .unwrap_or_else(|e| panic!("the canonical form is not JSON ({e}): {canonical}"));
    assert_eq!(
        signing::canonical_json(&reparsed),
        canonical,
        "canonicalisation is idempotent"
    );
    let signature = signing::sign(&key, &event);
    assert_eq!(signature, signing::sign_canonical(&key, &canonical));
    assert!(
        signature.len() == 64
            && signature
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "lowercase hex SHA-256: {signature}"
    );
    assert!(signing::verify(&key, &event, &signature));
    assert!(signing::verify(&key, &reparsed, &signature));
    assert!(signing::verify(&key, &event, &signature.to_uppercase()));
}

/// Webhook URLs: what [`check_url`] and `WebhookCreate` accept is an http(s) URL with a host, in
/// text that is the URL itself (no whitespace or control characters for a client or a log to
/// misread), stable under the URL's own normalisation; and the target policies nest
/// (`public` refuses all that `private` refuses, `any` refuses nothing).
pub fn webhook_url(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let checked = check_url(text);
    if let Ok(url) = &checked {
        assert!(matches!(url.scheme(), "http" | "https"), "{text:?}");
        assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{text:?}");
        assert!(
            !text.chars().any(|c| c.is_whitespace() || c.is_control()),
            "accepted a URL with whitespace or control characters: {text:?}"
        );
        let again = check_url(url.as_str())
            .unwrap_or_else(|e| panic!("the normalised URL {url} is refused: {e}"));
        assert_eq!(again.as_str(), url.as_str(), "normalisation is stable");
    }
    let spec = WebhookSpec::try_from(&serde_json::json!({ "url": text }));
    if let Ok(spec) = &spec {
        assert!(checked.is_ok(), "WebhookCreate accepted {text:?}");
        assert_eq!(spec.url, text);
    }
    let refused = |p: TargetPolicy| p.refuse_literal(text).is_some();
    assert!(!refused(TargetPolicy::Any), "any refuses nothing: {text:?}");
    if refused(TargetPolicy::Private) {
        assert!(
            refused(TargetPolicy::Public),
            "public refuses what private refuses: {text:?}"
        );
    }
    if let Some(ip) = checked.ok().and_then(|u| literal_ip(&u)) {
        for policy in [TargetPolicy::Public, TargetPolicy::Private] {
            assert_eq!(
                refused(policy),
                !policy.allows(ip),
                "{text:?} under {policy:?}"
            );
            if let IpAddr::V6(v6) = ip
                && let Some(v4) = v6.to_ipv4_mapped()
            {
                assert_eq!(policy.allows(ip), policy.allows(IpAddr::V4(v4)), "{text:?}");
            }
        }
    }
}

fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// The SIP observer: the input is one or more datagrams separated by NUL bytes, each parsed as the
/// proxy parses it, relayed (requests as if from a caller, every other one over TCP) and observed
/// in order. Nothing may panic; a relayed message must parse again with the same Call-ID, a
/// relayed request must carry our Via on top and a relayed response must no longer; and every
/// report must be a transition the state machine allows from the state that party's call was
/// last reported in, at a time no earlier than that report. The whole input is also read as one
/// TCP stream: the messages framed off it, and what is left, are exactly the input without the
/// CRLFs between messages.
pub fn sip_message(data: &[u8]) {
    tcp_stream(data);
    use crate::sip::observe::{Observer, Timers};
    use crate::sip::relay::{Action, Relay};
    use crate::sip::server::parse;
    use crate::sip::users::Users;
    use rsipstack::sip::SipMessage;
    use std::collections::HashMap;

    let users = Users::parse(
        "[[users]]\nextension = \"alice\"\naccount = \"1\"\nuser = \"alice\"\n\
         [[users]]\nextension = \"bob\"\naccount = \"1\"\nuser = \"bob\"\n",
        false,
    )
    .expect("fixed users file");
    let local: std::net::SocketAddr = "127.0.0.1:5060".parse().expect("fixed address");
    let relay = Relay::new(local);
    let mut observer = Observer::new(users, Timers::default(), 4);
    let mut last: HashMap<(String, String), (CallState, Timestamp)> = HashMap::new();
    let mut clock = NOW;
    for datagram in data.split(|b| *b == 0) {
        clock += 250;
        let now = Timestamp::from_millis(clock).expect("fixed clock");
        let Ok((message, facts)) = parse(datagram) else {
            continue;
        };
        let vias_before = via_values(&message);
        // Every other datagram's request as if it came over TCP.
        let over_tcp = clock % 500 == 0;
        let forwarded = match message {
            SipMessage::Request(req) => {
                relay.request_on(req, "127.0.0.1:5061".parse().expect("addr"), over_tcp)
            }
            SipMessage::Response(resp) => relay.response(resp),
        };
        let is_request = facts_is_request(&facts);
        if let Action::Forward(_, bytes) = &forwarded {
            let (again, again_facts) = parse(bytes).unwrap_or_else(|e| {
                panic!(
                    "relayed message does not parse again ({e}): {}",
                    String::from_utf8_lossy(bytes)
                )
            });
            assert_eq!(again_facts.call_id, facts.call_id);
            // A request gains our Via on top; a response loses its top one (ours). The Via
            // below may be ours too: a request that spiralled through the proxy twice.
            let vias_after = via_values(&again);
            if is_request {
                assert_eq!(vias_after.len(), vias_before.len() + 1);
                assert!(vias_after[0].contains(&local.to_string()), "{vias_after:?}");
            } else {
                assert!(
                    vias_before[0].contains(&local.to_string()),
                    "{vias_before:?}"
                );
                assert_eq!(vias_after.as_slice(), &vias_before[1..]);
            }
            // A Call-ID used again for a new call once the observer has forgotten the old one
            // (32 s after it ended) starts over: INITIALIZING, which the store then refuses for
            // an existing call (counted as a refused report), as it refuses any illegal report.
            let new_call = !observer.follows(&facts.call_id);
            let mut reports = Vec::new();
            observer.observe(&facts, now, &mut reports);
            if new_call {
                last.retain(|(_, id), _| !id.starts_with(facts.call_id.as_str()));
            }
            observer.expire(
                Timestamp::from_millis(clock + 3_600_000).expect("clock"),
                &mut reports,
            );
            for r in reports {
                let key = (r.account_id.clone(), r.external_id.clone());
                let at = r.at.expect("SIP reports carry their time");
                let previous = last.get(&key);
                assert!(
                    allowed(previous.map(|p| p.0), r.state, r.direction),
                    "{:?} -> {:?} for {key:?}",
                    previous.map(|p| p.0),
                    r.state
                );
                assert!(
                    previous.is_none_or(|p| p.1 <= at),
                    "report earlier than the last"
                );
                last.insert(key, (r.state, at));
            }
            assert!(observer.len() <= 4, "followed more calls than allowed");
        }
    }
}

fn facts_is_request(facts: &crate::sip::facts::Facts) -> bool {
    matches!(facts.kind, crate::sip::facts::Kind::Request(_))
}

/// Every Via value of a message, top first, merged headers split.
fn via_values(message: &rsipstack::sip::SipMessage) -> Vec<String> {
    use rsipstack::sip::{Header, SipMessage};
    let headers = match message {
        SipMessage::Request(r) => &r.headers,
        SipMessage::Response(r) => &r.headers,
    };
    let mut out = Vec::new();
    for h in headers.iter() {
        if let Header::Via(via) = h {
            let mut rest = Some(via.value());
            while let Some(value) = rest {
                let (first, more) = crate::sip::relay::split_first(value);
                if !first.is_empty() {
                    out.push(first.to_string());
                }
                rest = more;
            }
        }
    }
    out
}

/// The TCP framing of the SIP relay on `data` as one stream, fed in chunks of 7 bytes.
fn tcp_stream(data: &[u8]) {
    use crate::sip::tcp::frame;
    let (mut buf, mut framed) = (Vec::new(), Vec::new());
    let mut refused = false;
    for chunk in data.chunks(7) {
        buf.extend_from_slice(chunk);
        loop {
            match frame(&mut buf) {
                Ok(Some(message)) => {
                    assert!(!message.is_empty() && message.len() <= crate::sip::tcp::MAX_MESSAGE);
                    framed.push(message);
                }
                Ok(None) => break,
                Err(_) => {
                    refused = true;
                    break;
                }
            }
        }
        if refused {
            return;
        }
    }
    let strip = |bytes: &[u8]| -> Vec<u8> {
        bytes
            .iter()
            .copied()
            .filter(|b| *b != b'\r' && *b != b'\n')
            .collect()
    };
    let mut again: Vec<u8> = framed.concat();
    again.extend_from_slice(&buf);
    assert_eq!(strip(&again), strip(data), "framing lost or invented bytes");
}
