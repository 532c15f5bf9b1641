//! The proxy's forwarding rules (RFC 3261 §16), on parsed messages and without sockets, so they
//! can be tested alone. Requests: refuse when Max-Forwards is spent, drop our own Route entry,
//! route on the next Route or the Request-URI, stamp the sender's Via with `received`/`rport`,
//! put our Via on top (a branch derived from the sender's, so retransmissions, CANCEL and the
//! ACK of a failure take the same branch downstream) and, on a dialog-creating request, a
//! Record-Route so the whole dialog passes through us. Responses: check and remove our Via and
//! send to the next one. No transaction state: retransmissions pass end to end (§16.11).
//!
//! May depend on: rsipstack's `sip` codec.

use rsipstack::sip::headers::typed::Via as TypedVia;
use rsipstack::sip::{
    Header, HeadersExt, Host, Method, Request, Response, StatusCode, Transport as SipTransport,
    Uri, Version,
};
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};

/// Where a message goes next, and over what: UDP unless the variant says TCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hop {
    Addr(SocketAddr),
    /// A host name still to resolve, and its port.
    Name(String, u16),
    /// Over TCP: the connection with this peer, opened if there is none.
    TcpAddr(SocketAddr),
    TcpName(String, u16),
}

impl Hop {
    fn over_tcp(self) -> Hop {
        match self {
            Hop::Addr(a) => Hop::TcpAddr(a),
            Hop::Name(n, p) => Hop::TcpName(n, p),
            tcp => tcp,
        }
    }
}

/// What to do with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Relay these bytes to the next hop.
    Forward(Hop, Vec<u8>),
    /// Answer the sender with these bytes (a response the proxy makes itself).
    Reply(SocketAddr, Vec<u8>),
    /// Drop the message, for this reason.
    Drop(&'static str),
}

/// The proxy's identity on the wire: the address in its Via and Record-Route.
pub struct Relay {
    local: SocketAddr,
    via_prefix: String,
    via_prefix_tcp: String,
    record_route: String,
    record_route_tcp: String,
    hasher: std::collections::hash_map::RandomState,
}

const MAGIC: &str = "z9hG4bK";
const DEFAULT_PORT: u16 = 5060;

impl Relay {
    pub fn new(local: SocketAddr) -> Relay {
        Relay {
            local,
            via_prefix: format!("SIP/2.0/UDP {local};branch={MAGIC}-ch"),
            via_prefix_tcp: format!("SIP/2.0/TCP {local};branch={MAGIC}-ch"),
            record_route: format!("<sip:{local};lr>"),
            record_route_tcp: format!("<sip:{local};transport=tcp;lr>"),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Relays a request that came from `from` over UDP.
    pub fn request(&self, req: Request, from: SocketAddr) -> Action {
        self.request_on(req, from, false)
    }

    /// Relays a request that came from `from`, over TCP when `tcp`. It leaves over the transport
    /// the next hop's URI names (`;transport=tcp`), else over the one it came in on; when either
    /// is TCP, the Record-Route says `transport=tcp`, and a TCP sender's Via always gets
    /// `received` and `rport`, which name the connection its responses go back on.
    pub fn request_on(&self, mut req: Request, from: SocketAddr, tcp: bool) -> Action {
        let max_forwards = req.headers.iter().find_map(|h| match h {
            Header::MaxForwards(m) => Some(m.value().trim().parse::<u32>().unwrap_or(0)),
            _ => None,
        });
        if max_forwards == Some(0) {
            return self.respond(&req, from, 483);
        }
        self.pop_own_route(&mut req);
        let next = match first_route(&req) {
            Some(uri) => uri,
            None => req.uri.clone(),
        };
        let hop = hop_of(&next);
        let out_tcp = next
            .params
            .iter()
            .find_map(|p| match p {
                rsipstack::sip::Param::Transport(t) => Some(*t == SipTransport::Tcp),
                _ => None,
            })
            .unwrap_or(tcp);
        if hop == Hop::Addr(self.local) {
            return match req.method {
                Method::Ack => Action::Drop("ACK addressed to the proxy"),
                Method::Options => self.respond(&req, from, 200),
                // No location service: the Request-URI must name the callee's address.
                _ => self.respond(&req, from, 404),
            };
        }
        let Ok(top) = req.via_header().and_then(|v| v.first_value()) else {
            return Action::Drop("request without Via");
        };
        let Ok(typed) = TypedVia::parse(top.value()) else {
            return Action::Drop("unreadable Via");
        };
        if typed.sent_by() == &self.local_host_port() {
            return self.respond(&req, from, 482);
        }
        let branch = self.branch(typed.branch().map(|b| b.to_string()), &req);
        stamp_sender(&mut req, typed, from, tcp);
        let mut headers = Vec::with_capacity(req.headers.len() + 2);
        let via_prefix = if out_tcp {
            &self.via_prefix_tcp
        } else {
            &self.via_prefix
        };
        headers.push(Header::Via(rsipstack::sip::Via::new(format!(
            "{via_prefix}{branch:016x}"
        ))));
        let creates_dialog = matches!(
            req.method,
            Method::Invite | Method::Subscribe | Method::Refer
        ) && req
            .to_header()
            .is_ok_and(|t| t.tag().ok().flatten().is_none());
        if creates_dialog {
            let record_route = if tcp || out_tcp {
                &self.record_route_tcp
            } else {
                &self.record_route
            };
            headers.push(Header::RecordRoute(rsipstack::sip::RecordRoute::new(
                record_route.clone(),
            )));
        }
        let mut saw_max_forwards = false;
        for h in req.headers.0.drain(..) {
            headers.push(match h {
                Header::MaxForwards(_) => {
                    saw_max_forwards = true;
                    let left = max_forwards.unwrap_or(70).saturating_sub(1);
                    Header::MaxForwards(rsipstack::sip::MaxForwards::new(left.to_string()))
                }
                other => other,
            });
        }
        if !saw_max_forwards {
            headers.push(Header::MaxForwards(rsipstack::sip::MaxForwards::new("69")));
        }
        req.headers.0 = headers;
        let hop = if out_tcp { hop.over_tcp() } else { hop };
        Action::Forward(hop, req.to_bytes())
    }

    /// Relays a response: it must carry our Via on top; it goes to the Via below.
    pub fn response(&self, mut resp: Response) -> Action {
        let Some(index) = resp
            .headers
            .iter()
            .position(|h| matches!(h, Header::Via(_)))
        else {
            return Action::Drop("response without Via");
        };
        let Header::Via(via) = &resp.headers.0[index] else {
            return Action::Drop("response without Via");
        };
        let (first, rest) = split_first(via.value());
        if !first.starts_with(&self.via_prefix) && !first.starts_with(&self.via_prefix_tcp) {
            return Action::Drop("response whose top Via is not ours");
        }
        match rest {
            // SIPp (and others) may merge every Via into one header: keep the rest of it.
            Some(rest) => resp.headers.0[index] = Header::Via(rsipstack::sip::Via::new(rest)),
            None => {
                resp.headers.0.remove(index);
            }
        }
        let Ok(next) = resp.via_header().and_then(|v| v.first_value()) else {
            return Action::Drop("response with no Via below ours");
        };
        let Ok(next) = TypedVia::parse(next.value()) else {
            return Action::Drop("unreadable Via below ours");
        };
        let port = match next.rport() {
            Some(Some(port)) => port,
            _ => next
                .sent_by()
                .port
                .as_ref()
                .map_or(DEFAULT_PORT, |p| p.value()),
        };
        let hop = match next.received().and_then(Result::ok) {
            Some(ip) => Hop::Addr(SocketAddr::new(ip, port)),
            None => host_hop(&next.sent_by().host, port),
        };
        let hop = match next.transport {
            SipTransport::Tcp => hop.over_tcp(),
            _ => hop,
        };
        Action::Forward(hop, response_bytes(&resp))
    }

    /// A response the proxy makes itself to `req` (483, 482, 404, 503, or 200 to OPTIONS),
    /// sent back where the request came from. Never for an ACK.
    pub fn respond(&self, req: &Request, from: SocketAddr, code: u16) -> Action {
        if req.method == Method::Ack {
            return Action::Drop("ACK cannot be answered");
        }
        let mut headers = rsipstack::sip::Headers::default();
        for h in req.headers.iter() {
            match h {
                Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                    headers.push(h.clone())
                }
                Header::To(to) if to.tag().ok().flatten().is_none() => {
                    headers.push(Header::To(rsipstack::sip::To::new(format!(
                        "{};tag=ch{:x}",
                        to.value(),
                        self.hasher.hash_one(to.value())
                    ))))
                }
                Header::To(_) => headers.push(h.clone()),
                _ => {}
            }
        }
        if code == 503 {
            headers.push(Header::RetryAfter(rsipstack::sip::RetryAfter::new("5")));
        }
        headers.push(Header::ContentLength(rsipstack::sip::ContentLength::new(
            "0",
        )));
        let resp = Response {
            status_code: StatusCode::from(code),
            wire_reason: None,
            version: Version::V2,
            headers,
            body: Vec::new(),
        };
        Action::Reply(from, response_bytes(&resp))
    }

    fn local_host_port(&self) -> rsipstack::sip::HostWithPort {
        rsipstack::sip::HostWithPort {
            host: Host::IpAddr(self.local.ip()),
            port: Some(self.local.port().into()),
        }
    }

    /// Our branch: the same for every message that carries the same branch from the sender
    /// (RFC 3261 branches), else for the same Call-ID, From tag, CSeq number and Request-URI.
    fn branch(&self, theirs: Option<String>, req: &Request) -> u64 {
        let mut h = self.hasher.build_hasher();
        match theirs.filter(|b| b.starts_with(MAGIC)) {
            Some(branch) => h.write(branch.as_bytes()),
            None => {
                for part in [
                    req.call_id_header().map(|c| c.value().to_string()),
                    req.from_header().map(|f| f.value().to_string()),
                    req.cseq_header().map(|c| c.seq().unwrap_or(0).to_string()),
                ] {
                    h.write(part.unwrap_or_default().as_bytes());
                }
                h.write(req.uri.to_string().as_bytes());
            }
        }
        h.finish()
    }

    /// Removes the first Route entry when it names us (we are a loose router).
    fn pop_own_route(&self, req: &mut Request) {
        let Some(index) = req
            .headers
            .iter()
            .position(|h| matches!(h, Header::Route(_)))
        else {
            return;
        };
        let Header::Route(route) = &req.headers.0[index] else {
            return;
        };
        let (first, rest) = split_first(route.value());
        let ours =
            Uri::try_from(first.trim()).is_ok_and(|uri| hop_of(&uri) == Hop::Addr(self.local));
        if !ours {
            return;
        }
        match rest {
            Some(rest) => req.headers.0[index] = Header::Route(rsipstack::sip::Route::new(rest)),
            None => {
                req.headers.0.remove(index);
            }
        }
    }
}

/// The first entry of the first Route header.
fn first_route(req: &Request) -> Option<Uri> {
    let route = req.headers.iter().find_map(|h| match h {
        Header::Route(r) => Some(r.value()),
        _ => None,
    })?;
    Uri::try_from(split_first(route).0.trim()).ok()
}

fn hop_of(uri: &Uri) -> Hop {
    let port = uri
        .host_with_port
        .port
        .as_ref()
        .map_or(DEFAULT_PORT, |p| p.value());
    host_hop(&uri.host_with_port.host, port)
}

fn host_hop(host: &Host, port: u16) -> Hop {
    match host {
        Host::IpAddr(ip) => Hop::Addr(SocketAddr::new(*ip, port)),
        Host::Domain(d) => match d.to_string().parse::<IpAddr>() {
            Ok(ip) => Hop::Addr(SocketAddr::new(ip, port)),
            Err(_) => Hop::Name(d.to_string(), port),
        },
    }
}

/// Adds `received` (the address the request really came from, when its Via says otherwise)
/// and fills an empty `rport` (RFC 3581) on the sender's Via, so responses find their way back;
/// with `always_rport` (a TCP sender: its connection's port), `rport` in any case.
fn stamp_sender(req: &mut Request, mut via: TypedVia, from: SocketAddr, always_rport: bool) {
    let mut changed = false;
    let says = match &via.sent_by().host {
        Host::IpAddr(ip) => Some(*ip),
        Host::Domain(d) => d.to_string().parse().ok(),
    };
    if says != Some(from.ip()) {
        via = via.with_received(from.ip().to_string().into());
        changed = true;
    }
    if via.rport() == Some(None) || (always_rport && via.rport() != Some(Some(from.port()))) {
        via = via.with_rport(Some(from.port()));
        changed = true;
    }
    if !changed {
        return;
    }
    if let Ok(header) = req.via_header_mut() {
        let value = header.value().trim().to_string();
        let (_, rest) = split_first(&value);
        let first = via.to_string();
        header.replace(match rest {
            Some(rest) => format!("{first}, {rest}"),
            None => first,
        });
    }
}

/// Splits a header value at its first top-level comma (outside quotes and `<...>`).
pub fn split_first(value: &str) -> (&str, Option<&str>) {
    let value = value.trim();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                let rest = value[i + 1..].trim();
                return (value[..i].trim(), (!rest.is_empty()).then_some(rest));
            }
            _ => {}
        }
    }
    (value, None)
}

/// A response on the wire, keeping the reason phrase it came with.
fn response_bytes(resp: &Response) -> Vec<u8> {
    let reason = resp
        .wire_reason
        .clone()
        .unwrap_or_else(|| resp.status_code.text().to_string());
    let mut bytes = format!(
        "{} {} {}\r\n{}\r\n",
        resp.version,
        resp.status_code.code(),
        reason,
        resp.headers
    )
    .into_bytes();
    bytes.extend_from_slice(&resp.body);
    bytes
}
