//! The SIP observer at work: one UDP socket and one TCP listener on the same port, one task on a
//! thread of its own that parses, relays and observes every message in arrival order (so a
//! dialog's messages are observed in the order they crossed the proxy), a once-a-second timer for the dialogs that died, and report workers that hand the
//! reports to [`CallSink`] in order per call, several calls at once.
//!
//! A report is handed on after the message that caused it is relayed, so the database never
//! delays signalling; the queue to the workers is bounded, and when it is full the relay waits
//! rather than drop an event.
//!
//! May depend on: `sip::*`, `domain`, `metrics`, `telephony::CallSink`, tokio.

use super::facts::{Facts, Kind, Method};
use super::observe::{Note, OUTBOUND_SUFFIX, Observer, Timers};
use super::relay::{Action, Hop, Relay};
use super::tcp::{self, TcpEvent};
use super::users::Users;
use crate::domain::report::CallReport;
use crate::domain::time::Timestamp;
use crate::metrics::Metrics;
use crate::store::ApplyError;
use crate::telephony::CallSink;
use rsipstack::sip::{Header, SipMessage};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How the observer runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The address to bind (UDP, and TCP on the same port).
    pub bind: SocketAddr,
    /// The address written in Via and Record-Route; default: the bound one (which must then
    /// not be 0.0.0.0 or ::).
    pub advertise: Option<SocketAddr>,
    pub users: Users,
    pub timers: Timers,
    /// The most calls followed at once; a new call beyond it is refused with 503.
    pub max_calls: usize,
}

/// Report workers; a call always goes to the same one, so its reports keep their order.
const WORKERS: usize = 16;
/// Reports queued per worker before the relay waits.
const QUEUE: usize = 4096;
/// Open TCP connections at most; one more is closed at once.
const MAX_TCP_CONNECTIONS: usize = 10_000;
/// How often a report is tried when the store fails, before it is given up (and logged).
const STORE_TRIES: u32 = 6;

/// A bound SIP socket, ready to run.
pub struct Bound {
    socket: std::net::UdpSocket,
    /// TCP on the same address and port.
    listener: std::net::TcpListener,
    relay: Relay,
    settings: Settings,
}

impl Bound {
    pub async fn bind(settings: Settings) -> anyhow::Result<Bound> {
        let (socket, listener) = bind_both(settings.bind)?;
        socket.set_nonblocking(true)?;
        listener.set_nonblocking(true)?;
        let bound = socket.local_addr()?;
        let local = match settings.advertise {
            Some(addr) => addr,
            None if bound.ip().is_unspecified() => anyhow::bail!(
                "--sip {bound} binds every address: say which one goes in Via and Record-Route \
                 with --sip-advertise IP:PORT"
            ),
            None => bound,
        };
        Ok(Bound {
            socket,
            listener,
            relay: Relay::new(local),
            settings,
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap_or(self.settings.bind)
    }

    /// Relays and observes until `shutdown`, then hands on the reports still queued. The relay
    /// runs on a thread of its own (a single-threaded runtime), so a datagram never waits behind
    /// the API's or the delivery engine's tasks; the report workers run on the caller's runtime.
    pub async fn run(self, sink: CallSink, metrics: Arc<Metrics>, shutdown: CancellationToken) {
        let mut workers = tokio::task::JoinSet::new();
        let mut queues = Vec::with_capacity(WORKERS);
        for _ in 0..WORKERS {
            let (tx, rx) = mpsc::channel(QUEUE);
            queues.push(tx);
            workers.spawn(apply_reports(rx, sink.clone(), metrics.clone()));
        }
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let Bound {
            socket,
            listener,
            relay,
            settings,
        } = self;
        let relay_thread = std::thread::Builder::new()
            .name("callhook-sip".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => return tracing::error!(error = %e, "SIP relay thread has no runtime"),
                };
                runtime.block_on(async move {
                    let (socket, listener) =
                        match (UdpSocket::from_std(socket), TcpListener::from_std(listener)) {
                            (Ok(socket), Ok(listener)) => (Arc::new(socket), listener),
                            (Err(e), _) | (_, Err(e)) => {
                                return tracing::error!(error = %e, "SIP socket unusable");
                            }
                        };
                    let (tcp_events, tcp_inbox) = mpsc::channel(QUEUE);
                    let mut proxy = Proxy {
                        socket,
                        tcp: Tcp {
                            connections: HashMap::new(),
                            events: tcp_events,
                        },
                        relay,
                        observer: Observer::new(
                            settings.users,
                            settings.timers,
                            settings.max_calls,
                        ),
                        metrics,
                        queues,
                        spread: std::collections::hash_map::RandomState::new(),
                    };
                    proxy.serve(listener, tcp_inbox, shutdown).await;
                });
                let _ = done_tx.send(());
            });
        if let Err(e) = relay_thread {
            tracing::error!(error = %e, "cannot start the SIP relay thread");
        }
        // The relay's end (or its thread's failure to start) drops the queues: the workers
        // then drain what is queued and stop.
        let _ = done_rx.await;
        while workers.join_next().await.is_some() {}
    }
}

struct Proxy {
    socket: Arc<UdpSocket>,
    tcp: Tcp,
    relay: Relay,
    observer: Observer,
    metrics: Arc<Metrics>,
    queues: Vec<mpsc::Sender<CallReport>>,
    spread: std::collections::hash_map::RandomState,
}

/// The open TCP connections by peer, and where their tasks report.
struct Tcp {
    connections: HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>,
    events: mpsc::Sender<TcpEvent>,
}

impl Proxy {
    async fn serve(
        &mut self,
        listener: TcpListener,
        mut tcp_inbox: mpsc::Receiver<TcpEvent>,
        shutdown: CancellationToken,
    ) {
        let mut buf = vec![0u8; 65_536];
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reports = Vec::new();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => self.observer.expire(Timestamp::now(), &mut reports),
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) if self.tcp.connections.len() < MAX_TCP_CONNECTIONS => {
                        let tx = tcp::start(stream, peer, self.tcp.events.clone());
                        self.tcp.connections.insert(peer, tx);
                    }
                    Ok((_, peer)) => {
                        tracing::warn!(%peer, "SIP TCP connection refused: too many open");
                    }
                    Err(e) => tracing::debug!(error = %e, "SIP TCP accept failed"),
                },
                Some(event) = tcp_inbox.recv() => match event {
                    TcpEvent::Message(peer, bytes) => self.take(&bytes, peer, true, &mut reports).await,
                    TcpEvent::Opened(peer, tx) => {
                        self.tcp.connections.insert(peer, tx);
                    }
                    TcpEvent::Closed(peer) => {
                        self.tcp.connections.remove(&peer);
                    }
                },
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, from)) => self.take(&buf[..n], from, false, &mut reports).await,
                    // An ICMP error from an earlier send, for instance: not fatal.
                    Err(e) => tracing::debug!(error = %e, "SIP socket receive failed"),
                },
            }
            for report in reports.drain(..) {
                let call_id = report
                    .external_id
                    .strip_suffix(OUTBOUND_SUFFIX)
                    .unwrap_or(&report.external_id);
                let queue = &self.queues[self.spread.hash_one(call_id) as usize % WORKERS];
                // A worker only stops when its queue is dropped, which happens after this loop.
                let _ = queue.send(report).await;
            }
        }
    }

    /// One message (a datagram, or one framed off a TCP connection when `tcp`): parse, relay,
    /// observe.
    async fn take(
        &mut self,
        bytes: &[u8],
        from: SocketAddr,
        tcp: bool,
        reports: &mut Vec<CallReport>,
    ) {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return; // A keep-alive (RFC 5626 CRLF ping).
        }
        self.metrics.sip_message("received");
        let (message, facts) = match parse(bytes) {
            Ok(parsed) => parsed,
            Err(why) => {
                self.metrics.sip_message("malformed");
                tracing::debug!(%from, why, "malformed SIP message dropped");
                return;
            }
        };
        let now = Timestamp::now();
        let initial_invite = facts.kind == Kind::Request(Method::Invite) && facts.to.tag.is_none();
        let action = match message {
            SipMessage::Request(req) => {
                let copy = initial_invite.then(|| req.clone());
                let action = self.relay.request_on(req, from, tcp);
                match (action, copy) {
                    (Action::Forward(hop, bytes), Some(req)) => {
                        match self.observer.observe(&facts, now, reports) {
                            Note::Full => {
                                self.metrics.sip_call("refused_full");
                                tracing::warn!(
                                    calls = self.observer.len(),
                                    "SIP call refused (503): too many calls followed"
                                );
                                self.relay.respond(&req, from, 503)
                            }
                            note => {
                                match note {
                                    Note::NewCall => self.metrics.sip_call("followed"),
                                    Note::Unknown => self.metrics.sip_call("unknown_parties"),
                                    _ => {}
                                }
                                Action::Forward(hop, bytes)
                            }
                        }
                    }
                    (action, _) => {
                        if matches!(action, Action::Forward(..)) {
                            self.observer.observe(&facts, now, reports);
                        }
                        action
                    }
                }
            }
            SipMessage::Response(resp) => {
                let action = self.relay.response(resp);
                if matches!(action, Action::Forward(..)) {
                    self.observer.observe(&facts, now, reports);
                }
                action
            }
        };
        self.send(action, tcp.then_some(from)).await;
    }

    /// Sends what the relay decided; `tcp_from` is the connection the message came in on, where
    /// the proxy's own answers go back.
    async fn send(&mut self, action: Action, tcp_from: Option<SocketAddr>) {
        let (to, bytes, result) = match action {
            Action::Forward(Hop::Addr(to), bytes) => (to, bytes, "forwarded"),
            Action::Reply(to, bytes) if tcp_from == Some(to) => {
                self.metrics.sip_message("answered");
                self.tcp_send(to, bytes);
                return;
            }
            Action::Reply(to, bytes) => (to, bytes, "answered"),
            Action::Forward(Hop::TcpAddr(to), bytes) => {
                self.metrics.sip_message("forwarded");
                self.tcp_send(to, bytes);
                return;
            }
            Action::Forward(Hop::TcpName(name, port), _) => {
                self.metrics.sip_message("dropped");
                tracing::info!(%name, port, "SIP over TCP to a host name is not supported; dropped");
                return;
            }
            Action::Forward(Hop::Name(name, port), bytes) => {
                // Resolving may take a while: not on the relay's path.
                self.metrics.sip_message("forwarded");
                let socket = self.socket.clone();
                tokio::spawn(async move {
                    match tokio::net::lookup_host((name.as_str(), port)).await {
                        Ok(mut addrs) => {
                            if let Some(to) = addrs.next() {
                                let _ = socket.send_to(&bytes, to).await;
                            }
                        }
                        Err(e) => {
                            tracing::info!(%name, error = %e, "SIP next hop does not resolve")
                        }
                    }
                });
                return;
            }
            Action::Drop(why) => {
                self.metrics.sip_message("dropped");
                tracing::debug!(why, "SIP message dropped");
                return;
            }
        };
        self.metrics.sip_message(result);
        if let Err(e) = self.socket.send_to(&bytes, to).await {
            tracing::debug!(%to, error = %e, "SIP send failed");
        }
    }
}

impl Proxy {
    /// Sends on the open connection with `to`, or opens one.
    fn tcp_send(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        let bytes = match self.tcp.connections.get(&to) {
            Some(tx) => match tx.send(bytes) {
                Ok(()) => return,
                Err(mpsc::error::SendError(bytes)) => bytes,
            },
            None => bytes,
        };
        self.tcp.connections.remove(&to);
        tcp::connect(to, bytes, self.tcp.events.clone());
    }
}

/// Binds UDP and then TCP on the same address and port. With port 0 the port UDP got may be
/// taken for TCP (by another socket's ephemeral port, for instance): then both are tried again on
/// another port.
fn bind_both(addr: SocketAddr) -> anyhow::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    const TRIES: usize = 20;
    for _ in 0..TRIES {
        let socket = std::net::UdpSocket::bind(addr)?;
        let bound = socket.local_addr()?;
        match std::net::TcpListener::bind(bound) {
            Ok(listener) => return Ok((socket, listener)),
            Err(e) if addr.port() == 0 && e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => anyhow::bail!("TCP on {bound}: {e}"),
        }
    }
    anyhow::bail!(
        "no port of {} free for both UDP and TCP in {TRIES} tries",
        addr.ip()
    )
}

/// Parses a datagram and reads its facts; a body shorter than its Content-Length is refused.
pub fn parse(bytes: &[u8]) -> Result<(SipMessage, Facts), String> {
    let message = SipMessage::try_from(bytes).map_err(|e| e.to_string())?;
    let (headers, body) = match &message {
        SipMessage::Request(r) => (&r.headers, &r.body),
        SipMessage::Response(r) => (&r.headers, &r.body),
    };
    let declared = headers.iter().find_map(|h| match h {
        Header::ContentLength(l) => Some(l.value().trim().parse::<usize>()),
        _ => None,
    });
    match declared {
        Some(Ok(n)) if n > body.len() => return Err("body shorter than Content-Length".into()),
        Some(Err(_)) => return Err("unreadable Content-Length".into()),
        _ => {}
    }
    let facts = Facts::of(&message)?;
    Ok((message, facts))
}

/// Hands one worker's reports to the sink, in order.
async fn apply_reports(
    mut queue: mpsc::Receiver<CallReport>,
    sink: CallSink,
    metrics: Arc<Metrics>,
) {
    while let Some(report) = queue.recv().await {
        let mut tries = 0;
        loop {
            tries += 1;
            match sink.report(&report).await {
                Ok(_) => metrics.sip_report("applied"),
                Err(ApplyError::Refused(e)) => {
                    metrics.sip_report("refused");
                    tracing::warn!(call = %report.external_id, error = %e, "SIP call report refused");
                }
                Err(ApplyError::Store(e)) if tries < STORE_TRIES => {
                    tracing::warn!(error = %e, tries, "SIP call report not stored; trying again");
                    tokio::time::sleep(Duration::from_millis(100 << tries)).await;
                    continue;
                }
                Err(ApplyError::Store(e)) => {
                    metrics.sip_report("failed");
                    tracing::error!(call = %report.external_id, state = report.state.as_str(), error = %e, "SIP call report lost: the store keeps failing");
                }
            }
            break;
        }
    }
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("local", &self.relay.local())
            .finish()
    }
}
