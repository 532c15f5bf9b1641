//! An in-process webhook receiver for delivery tests: a small HTTP/1.1 server on `127.0.0.1:0`,
//! written on raw tokio TCP so that it can also misbehave at the socket level.
//!
//! It records every request (method, path, headers, raw body, arrival time, connection) and lets a
//! test wait for requests with a deadline (a `watch` channel, no sleeps). What it answers is
//! programmable per path and can change mid-test: a status with a body (200 by default), a hang
//! (never answer), a reset (read the request, then close the socket with an RST), a redirect, or
//! a script of replies consumed in order before the steady one. `close()` stops listening and
//! drops every open connection, so the port refuses connections; `open()` listens on the same
//! port again.
//!
//! The server runs on its own thread with its own Tokio runtime, so a test thread that blocks
//! (running the CLI, restarting the server) never delays an answer. Dropping the `Receiver`
//! stops it and closes every socket: nothing is left running.

mod server;

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Arrival order across all paths, from 0.
    pub seq: usize,
    pub method: String,
    /// Path and query, as in the request line.
    pub target: String,
    /// The path without the query.
    pub path: String,
    /// Header names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the whole request (head and body) had been read.
    pub at: Instant,
    /// Which TCP connection carried it (connections are numbered from 0 in accept order).
    pub conn: u64,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every header whose name starts with `prefix` (case-insensitive).
    pub fn headers_starting_with(&self, prefix: &str) -> Vec<(String, String)> {
        let prefix = prefix.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .cloned()
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics with the request when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("delivery body is not JSON ({e}): {self:?}"))
    }

    /// `body.event`.
    pub fn event(&self) -> Value {
        let v = self.json();
        assert!(v["event"].is_object(), "body has no event object: {v}");
        v["event"].clone()
    }

    /// `(event.id, event.state)`: which call and which state this delivery carries.
    pub fn call_state(&self) -> (String, String) {
        let e = self.event();
        (
            e["id"].as_str().unwrap_or_default().to_string(),
            e["state"].as_str().unwrap_or_default().to_string(),
        )
    }

    /// `event.state`.
    pub fn state(&self) -> String {
        self.call_state().1
    }

    /// `X-VON-Attempt` as a number (HEADER policy).
    pub fn attempt(&self) -> u32 {
        let v = self
            .header("x-von-attempt")
            .unwrap_or_else(|| panic!("no X-VON-Attempt header: {self:?}"));
        v.parse()
            .unwrap_or_else(|e| panic!("X-VON-Attempt {v:?} is not a number ({e})"))
    }

    /// `X-VON-Delivery-Id` (HEADER policy).
    pub fn delivery_id(&self) -> String {
        self.header("x-von-delivery-id")
            .unwrap_or_else(|| panic!("no X-VON-Delivery-Id header: {self:?}"))
            .to_string()
    }

    /// `X-VON-Webhook-Id` (HEADER policy).
    pub fn webhook_id(&self) -> String {
        self.header("x-von-webhook-id")
            .unwrap_or_else(|| panic!("no X-VON-Webhook-Id header: {self:?}"))
            .to_string()
    }
}

/// What the receiver does with a request.
#[derive(Clone)]
pub enum Reply {
    /// Answer this status with this body (`Content-Type` given, `Content-Length` always).
    Status {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// Never answer; keep the connection open until the client gives up.
    Hang,
    /// Close the connection without answering, with a TCP reset.
    Reset,
    /// Answer `status` (301, 302, 303, 307, 308) with `Location: location` (a path or a URL).
    Redirect { status: u16, location: String },
}

impl Reply {
    /// 200 with an empty body.
    pub fn ok() -> Reply {
        Reply::status(200, "")
    }

    /// `status` with a plain-text body.
    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Status {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    /// `status` with an HTML body.
    pub fn html(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Status {
            status,
            content_type: "text/html; charset=utf-8",
            body: body.into(),
        }
    }

    pub fn redirect(status: u16, location: impl Into<String>) -> Reply {
        Reply::Redirect {
            status,
            location: location.into(),
        }
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Status { status, body, .. } => {
                write!(f, "Status({status}, {} bytes)", body.len())
            }
            Reply::Hang => write!(f, "Hang"),
            Reply::Reset => write!(f, "Reset"),
            Reply::Redirect { status, location } => write!(f, "Redirect({status} -> {location})"),
        }
    }
}

/// A reply computed from the request (e.g. by event state).
pub type ReplyFn = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

#[derive(Clone)]
enum Steady {
    Reply(Reply),
    With(ReplyFn),
}

/// How one path answers: the scripted replies first, in order, then the steady one.
#[derive(Clone)]
struct Route {
    script: VecDeque<Reply>,
    steady: Steady,
}

impl Default for Route {
    fn default() -> Route {
        Route {
            script: VecDeque::new(),
            steady: Steady::Reply(Reply::ok()),
        }
    }
}

#[derive(Default)]
struct Log {
    requests: Vec<Request>,
    /// Requests received and not answered yet (hanging), per path.
    open: HashMap<String, usize>,
    /// The most requests ever open at once, per path.
    max_open: HashMap<String, usize>,
}

struct Shared {
    routes: Mutex<HashMap<String, Route>>,
    log: Mutex<Log>,
    /// Bumped on every change of `log`; waiters watch it.
    changed: watch::Sender<u64>,
    next_conn: AtomicU64,
}

impl Shared {
    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    fn reply_for(&self, req: &Request) -> Reply {
        let mut routes = self.routes.lock().unwrap();
        let route = routes.entry(req.path.clone()).or_default();
        if let Some(reply) = route.script.pop_front() {
            return reply;
        }
        match &route.steady {
            Steady::Reply(r) => r.clone(),
            Steady::With(f) => {
                let f = f.clone();
                drop(routes);
                f(req)
            }
        }
    }
}

enum Command {
    Close(std::sync::mpsc::Sender<()>),
    Open(std::sync::mpsc::Sender<std::io::Result<()>>),
}

/// The test receiver. See the module documentation.
pub struct Receiver {
    port: u16,
    shared: Arc<Shared>,
    commands: Option<mpsc::UnboundedSender<Command>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Starts a receiver on `127.0.0.1:0` answering 200 to everything.
    pub fn start() -> Receiver {
        let std_listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind test receiver");
        let port = std_listener.local_addr().expect("receiver address").port();
        std_listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let (changed, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            routes: Mutex::new(HashMap::new()),
            log: Mutex::new(Log::default()),
            changed,
            next_conn: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("test-receiver-{port}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("receiver runtime");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(std_listener).expect("tokio listener");
                    server::serve(port, Some(listener), thread_shared, rx).await;
                });
            })
            .expect("spawn receiver thread");
        Receiver {
            port,
            shared,
            commands: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// From now on `path` answers `reply` (after any scripted replies still queued).
    pub fn on(&self, path: &str, reply: Reply) {
        let mut routes = self.shared.routes.lock().unwrap();
        routes.entry(path.to_string()).or_default().steady = Steady::Reply(reply);
    }

    /// From now on `path` answers what `f` says for each request.
    pub fn respond_with(&self, path: &str, f: impl Fn(&Request) -> Reply + Send + Sync + 'static) {
        let mut routes = self.shared.routes.lock().unwrap();
        routes.entry(path.to_string()).or_default().steady = Steady::With(Arc::new(f));
    }

    /// The next requests on `path` get `replies`, one each, in order; then the steady reply.
    pub fn script(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        let mut routes = self.shared.routes.lock().unwrap();
        routes
            .entry(path.to_string())
            .or_default()
            .script
            .extend(replies);
    }

    /// Stops listening and drops every open connection: the port now refuses connections.
    pub fn close(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        self.command(Command::Close(tx));
        rx.recv_timeout(Duration::from_secs(10))
            .expect("receiver closed its port");
    }

    /// Listens on the same port again after `close()`.
    pub fn open(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        self.command(Command::Open(tx));
        rx.recv_timeout(Duration::from_secs(10))
            .expect("receiver answered open")
            .unwrap_or_else(|e| {
                panic!("receiver could not listen on port {} again: {e}", self.port)
            });
    }

    fn command(&self, c: Command) {
        self.commands
            .as_ref()
            .expect("receiver running")
            .send(c)
            .unwrap_or_else(|_| panic!("receiver thread is gone"));
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.log.lock().unwrap().requests.clone()
    }

    /// How many requests arrived so far (cheap: copies nothing).
    pub fn count(&self) -> usize {
        self.shared.log.lock().unwrap().requests.len()
    }

    /// Waits until at least `n` requests arrived in all, without copying them on every change
    /// (for runs with thousands of requests). Returns the count.
    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.shared.changed.subscribe();
        loop {
            changes.borrow_and_update();
            let count = self.count();
            if count >= n {
                return count;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => panic!("receiver stopped while waiting for {n} requests"),
                Err(_) => {
                    panic!("timed out after {timeout:?} waiting for {n} requests; {count} arrived")
                }
            }
        }
    }

    /// Every request on `path` so far, in arrival order.
    pub fn requests_on(&self, path: &str) -> Vec<Request> {
        on_path(&self.requests(), path)
    }

    /// The most requests on `path` that were open (received, not answered) at the same time.
    pub fn max_open(&self, path: &str) -> usize {
        let log = self.shared.log.lock().unwrap();
        log.max_open.get(path).copied().unwrap_or(0)
    }

    /// Requests on `path` received and not answered right now.
    pub fn open_now(&self, path: &str) -> usize {
        let log = self.shared.log.lock().unwrap();
        log.open.get(path).copied().unwrap_or(0)
    }

    /// Waits until `f` returns `Some` for the requests received so far; panics naming `what`
    /// (and listing what arrived) when `timeout` passes first.
    pub async fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&[Request]) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.shared.changed.subscribe();
        loop {
            changes.borrow_and_update();
            if let Some(v) = f(&self.requests()) {
                return v;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => panic!("receiver stopped while waiting for: {what}"),
                Err(_) => panic!(
                    "timed out after {timeout:?} waiting for: {what}\nreceived:\n{}",
                    summary(&self.requests())
                ),
            }
        }
    }

    /// Waits for at least `n` requests in all; returns all of them.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Request> {
        self.wait_until(&format!("{n} requests"), timeout, |reqs| {
            (reqs.len() >= n).then(|| reqs.to_vec())
        })
        .await
    }

    /// Waits for at least `n` requests on `path`; returns the requests on `path`.
    pub async fn wait_for_on(&self, path: &str, n: usize, timeout: Duration) -> Vec<Request> {
        self.wait_until(&format!("{n} requests on {path}"), timeout, |reqs| {
            let on = on_path(reqs, path);
            (on.len() >= n).then_some(on)
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Closing the command channel ends the serve loop; the runtime's drop closes every socket.
        self.commands.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The requests on `path`, in order.
pub fn on_path(reqs: &[Request], path: &str) -> Vec<Request> {
    reqs.iter().filter(|r| r.path == path).cloned().collect()
}

/// One line per request, for failure messages.
pub fn summary(reqs: &[Request]) -> String {
    reqs.iter()
        .map(|r| {
            let what = serde_json::from_slice::<Value>(&r.body)
                .ok()
                .map(|v| {
                    format!(
                        "{} {}",
                        v["event"]["id"].as_str().unwrap_or("-"),
                        v["event"]["state"].as_str().unwrap_or("-")
                    )
                })
                .unwrap_or_else(|| format!("{} body bytes", r.body.len()));
            format!(
                "  #{} conn {} {} {} attempt={} delivery={} {}",
                r.seq,
                r.conn,
                r.method,
                r.target,
                r.header("x-von-attempt").unwrap_or("-"),
                r.header("x-von-delivery-id").unwrap_or("-"),
                what
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn refused_port() -> u16 {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    l.local_addr().expect("address").port()
}
