//! The observer and the relay on recorded SIP messages: SIPp's, as they cross the proxy (a
//! callee's responses carry every Via merged into one header, as SIPp's `[last_Via:]` writes them).
//! This file holds the recorded messages; `observe.rs` and `relay.rs` the tests.

mod observe;
mod relay;

pub(super) const USERS: &str = r#"
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

pub(super) const CALL_ID: &str = "1-4242@127.0.0.1";
pub(super) const CALLER_VIA: &str = "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4242-1-0";
pub(super) const PROXY_VIA: &str = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ch0123456789abcdef";

/// A request from the caller (`from` the caller's user, `to` the callee's) as it reaches the
/// proxy; `to_tag` set makes it in-dialog.
pub(super) fn request(
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
pub(super) fn response(
    code: u16,
    reason: &str,
    cseq: u32,
    method: &str,
    from: &str,
    to: &str,
) -> String {
    let tag = if code > 100 { ";tag=callee-tag" } else { "" };
    format!(
        "SIP/2.0 {code} {reason}\r\nVia: {PROXY_VIA}, {CALLER_VIA}\r\nFrom: \"{from} name\" <sip:{from}@127.0.0.1:5061>;tag=caller-tag\r\n\
         To: <sip:{to}@127.0.0.1>{tag}\r\nCall-ID: {CALL_ID}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    )
}
