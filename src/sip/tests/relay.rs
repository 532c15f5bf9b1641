//! The relay on recorded messages: Via, Route, Record-Route, and what the proxy answers itself.

use super::super::relay::{Action, Hop, Relay};
use super::super::server::parse;
use super::{CALL_ID, CALLER_VIA, PROXY_VIA, request, response};
use rsipstack::sip::SipMessage;
use std::net::SocketAddr;

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

#[test]
fn over_tcp_the_via_record_route_and_the_way_back_say_so() {
    let relay = proxy();
    let invite = request("INVITE", 1, "alice", "bob", false, None)
        .replace("SIP/2.0/UDP 127.0.0.1:5061", "SIP/2.0/TCP 127.0.0.1:5061");
    let SipMessage::Request(req) = SipMessage::try_from(invite.as_bytes()).unwrap() else {
        panic!()
    };
    // In over TCP from the connection's port 40001: out over TCP (the URI names no transport).
    let Action::Forward(hop, bytes) =
        relay.request_on(req, "127.0.0.1:40001".parse().unwrap(), true)
    else {
        panic!("not forwarded")
    };
    let out = String::from_utf8(bytes).unwrap();
    assert_eq!(hop, Hop::TcpAddr("127.0.0.1:5070".parse().unwrap()));
    assert!(
        out.contains("Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-ch"),
        "{out}"
    );
    assert!(
        out.contains("Record-Route: <sip:127.0.0.1:5060;transport=tcp;lr>"),
        "{out}"
    );
    // The sender's Via names the connection its responses go back on.
    assert!(
        out.contains("Via: SIP/2.0/TCP 127.0.0.1:5061;branch=z9hG4bK-4242-1-0;rport=40001"),
        "{out}"
    );
    // The callee's 180 comes back: to that connection, over TCP.
    let ours = out
        .lines()
        .nth(1)
        .unwrap()
        .trim_start_matches("Via: ")
        .to_string();
    let theirs = out
        .lines()
        .find(|l| l.starts_with("Via: SIP/2.0/TCP 127.0.0.1:5061"))
        .unwrap()
        .trim_start_matches("Via: ")
        .to_string();
    let ringing = response(180, "Ringing", 1, "INVITE", "alice", "bob").replace(
        &format!("{PROXY_VIA}, {CALLER_VIA}"),
        &format!("{ours}, {theirs}"),
    );
    let SipMessage::Response(resp) = SipMessage::try_from(ringing.as_bytes()).unwrap() else {
        panic!()
    };
    let Action::Forward(hop, _) = relay.response(resp) else {
        panic!("dropped")
    };
    assert_eq!(hop, Hop::TcpAddr("127.0.0.1:40001".parse().unwrap()));
    // A URI that names UDP wins over the way the request came in.
    let udp = request("BYE", 2, "alice", "bob", true, None).replace(
        "sip:bob@127.0.0.1:5070 SIP/2.0",
        "sip:bob@127.0.0.1:5070;transport=udp SIP/2.0",
    );
    let SipMessage::Request(req) = SipMessage::try_from(udp.as_bytes()).unwrap() else {
        panic!()
    };
    let Action::Forward(hop, _) = relay.request_on(req, "127.0.0.1:40001".parse().unwrap(), true)
    else {
        panic!()
    };
    assert_eq!(hop, Hop::Addr("127.0.0.1:5070".parse().unwrap()));
}
