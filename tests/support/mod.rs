//! Black-box test support: runs the real `callhook` binary and talks to it over real HTTP.
//!
//! `Server::start()` gives every test its own temporary directory with a fresh database, a server
//! bound to port 0 (the test reads the real address from the first stdout line), and a `Drop` that
//! kills and reaps the process so nothing is left running. The helpers here only speak the wire
//! contract: they never look inside `src/`.

#![allow(dead_code)]

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_callhook");
/// The public VIS base path.
pub const VIS: &str = "/t/vbc.prod/vis/v1";
/// The short VIS base path callhook also serves.
pub const VIS_SHORT: &str = "/vis/v1";
/// The ingestion route.
pub const INGEST: &str = "/ingest/v1/call-events";

/// How long a server may take to print its listening line.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A `callhook serve` process on a fresh database in its own temporary directory.
pub struct Server {
    dir: tempfile::TempDir,
    extra_args: Vec<String>,
    /// Pass `--listen`/`--db` through `CALLHOOK_LISTEN`/`CALLHOOK_DB` instead of flags.
    from_env: bool,
    child: Option<Child>,
    stdout_reader: Option<JoinHandle<Vec<String>>>,
    base: String,
    starts: usize,
    client: reqwest::Client,
}

impl Server {
    /// Starts a server with default settings on a fresh database.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server with extra `serve` arguments (e.g. `--webhook-ttl 200ms`).
    pub fn start_with(extra_args: &[&str]) -> Server {
        Server::start_on(tempfile::tempdir().expect("create temp dir"), extra_args)
    }

    /// Starts a server whose database is `dir/callhook.db` (which may already exist, e.g. made by
    /// `token create` before the first `serve`).
    pub fn start_on(dir: tempfile::TempDir, extra_args: &[&str]) -> Server {
        Server::launch(dir, extra_args, false)
    }

    /// Starts a server configured through `CALLHOOK_LISTEN` and `CALLHOOK_DB` only.
    pub fn start_from_env() -> Server {
        Server::launch(tempfile::tempdir().expect("create temp dir"), &[], true)
    }

    fn launch(dir: tempfile::TempDir, extra_args: &[&str], from_env: bool) -> Server {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("build HTTP client");
        let mut server = Server {
            dir,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            from_env,
            child: None,
            stdout_reader: None,
            base: String::new(),
            starts: 0,
            client,
        };
        server.spawn();
        server
    }

    /// `http://127.0.0.1:PORT` of the running process.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The database path this server uses.
    pub fn db(&self) -> String {
        self.dir.path().join("callhook.db").to_string_lossy().into_owned()
    }

    /// The temporary directory holding the database and the logs.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// The process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log_path = self.dir.path().join(format!("serve-{}.log", self.starts));
        let log = File::create(&log_path).expect("create server log file");
        let mut cmd = clean_command();
        if self.from_env {
            cmd.arg("serve").env("CALLHOOK_LISTEN", "127.0.0.1:0").env("CALLHOOK_DB", self.db());
        } else {
            cmd.args(["serve", "--listen", "127.0.0.1:0", "--db", &self.db()]);
        }
        cmd.args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().expect("spawn callhook serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        // Reads the listening line, then keeps draining stdout so the pipe never fills; returns
        // whatever else the server printed on stdout (the contract says: nothing).
        let reader = std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            match lines.next() {
                Some(Ok(first)) => {
                    let _ = tx.send(first);
                }
                _ => return Vec::new(),
            }
            drop(tx);
            lines.map_while(Result::ok).collect()
        });
        self.child = Some(child);
        self.stdout_reader = Some(reader);
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => {
                let port = line
                    .strip_prefix("callhook listening on http://127.0.0.1:")
                    .and_then(|p| p.parse::<u16>().ok());
                match port {
                    Some(port) if port != 0 => self.base = format!("http://127.0.0.1:{port}"),
                    _ => self.fail(&format!(
                        "first stdout line is not `callhook listening on http://127.0.0.1:PORT`: {line:?}"
                    )),
                }
            }
            Err(e) => self.fail(&format!("server did not print its listening line: {e}")),
        }
    }

    fn fail(&mut self, why: &str) -> ! {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("{why}\n--- server log ---\n{}", self.log());
    }

    /// Everything the server wrote on stderr, across restarts.
    pub fn log(&self) -> String {
        let mut out = String::new();
        for n in 1..=self.starts {
            let path = self.dir.path().join(format!("serve-{n}.log"));
            out.push_str(&format!("[serve run {n}]\n"));
            out.push_str(&std::fs::read_to_string(path).unwrap_or_default());
        }
        out
    }

    /// Sends `signal` (e.g. "TERM", "INT") and waits for the process to exit. Returns its exit
    /// status and whatever it printed on stdout after the listening line.
    pub fn stop_with_signal(&mut self, signal: &str) -> (ExitStatus, Vec<String>) {
        let pid = self.pid();
        let sent = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} {pid} failed");
        let mut child = self.child.take().expect("server is running");
        let status = wait_until(STOP_TIMEOUT, || child.try_wait().expect("try_wait"));
        let status = match status {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "server did not exit within {STOP_TIMEOUT:?} after SIGTERM\n--- server log ---\n{}",
                    self.log()
                );
            }
        };
        let rest = self
            .stdout_reader
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        (status, rest)
    }

    /// Stops the server with SIGTERM (asserting a clean exit) and starts it again on the same
    /// database, on a new port.
    pub fn restart(&mut self) {
        let (status, _) = self.stop_with_signal("TERM");
        assert!(
            status.success(),
            "server exited with {status} after SIGTERM\n--- server log ---\n{}",
            self.log()
        );
        self.spawn();
    }

    // ---- CLI ----

    /// Runs `callhook ARGS` (no implicit `--db`).
    pub fn cli(&self, args: &[&str]) -> Output {
        cli(args)
    }

    /// `callhook token create --db DB ARGS`, asserting success; returns the token.
    pub fn token_create(&self, args: &[&str]) -> String {
        token_create(&self.db(), args)
    }

    /// A `user` token for (account, user).
    pub fn user_token(&self, account: &str, user: &str) -> String {
        self.token_create(&["--account", account, "--user", user])
    }

    /// An `ingest` token valid for every account.
    pub fn ingest_token(&self) -> String {
        self.token_create(&["--role", "ingest"])
    }

    /// `callhook token list --db DB --json`, parsed.
    pub fn token_list(&self) -> Vec<Value> {
        let out = cli(&["token", "list", "--db", &self.db(), "--json"]);
        assert_success(&out, "token list --json");
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("token list --json is not JSON ({e}): {text}"));
        v.as_array()
            .unwrap_or_else(|| panic!("token list --json is not an array: {text}"))
            .clone()
    }

    /// Revokes a token by id through the CLI, asserting success.
    pub fn token_revoke(&self, id: &str) {
        let out = cli(&["token", "revoke", "--db", &self.db(), id]);
        assert_success(&out, "token revoke");
    }

    // ---- HTTP ----

    /// A request builder for `METHOD base+path`.
    pub fn req(&self, method: &str, path: &str) -> Req {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("valid method");
        Req {
            method: method.to_string(),
            path: path.to_string(),
            builder: self.client.request(m, format!("{}{}", self.base, path)),
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.req("GET", path).bearer(token).send().await
    }

    pub async fn get_anon(&self, path: &str) -> Resp {
        self.req("GET", path).send().await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.req("POST", path).bearer(token).json(body).send().await
    }

    pub async fn put(&self, path: &str, token: &str) -> Resp {
        self.req("PUT", path).bearer(token).send().await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.req("DELETE", path).bearer(token).send().await
    }

    /// Reports a call event through the ingestion route.
    pub async fn ingest(&self, token: &str, body: &Value) -> Resp {
        self.post(INGEST, token, body).await
    }

    /// Reports a call event and expects 202; returns the event object.
    pub async fn ingest_ok(&self, token: &str, body: &Value) -> Value {
        let resp = self.ingest(token, body).await;
        resp.expect(202);
        resp.json()["event"].clone()
    }

    /// The JSON answer of a GET that must succeed with 200.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        let resp = self.get(path, token).await;
        resp.expect(200);
        resp.json()
    }

    /// Creates a webhook (201) and returns it.
    pub async fn create_webhook(&self, token: &str, body: &Value) -> Value {
        let resp = self.post(&vis("/self/webhooks"), token, body).await;
        resp.expect(201);
        resp.json()
    }

    /// The user's webhook list (200, a JSON array).
    pub async fn webhooks(&self, token: &str) -> Vec<Value> {
        let v = self.get_json(&vis("/self/webhooks"), token).await;
        v.as_array()
            .unwrap_or_else(|| panic!("webhook list is not an array: {v}"))
            .clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(reader) = self.stdout_reader.take() {
            let _ = reader.join();
        }
    }
}

/// `VIS + path`.
pub fn vis(path: &str) -> String {
    format!("{VIS}{path}")
}

/// `VIS_SHORT + path`.
pub fn vis_short(path: &str) -> String {
    format!("{VIS_SHORT}{path}")
}

/// A `callhook` command with no `CALLHOOK_*` variables inherited from the developer's shell.
pub fn clean_command() -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CALLHOOK_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs `callhook ARGS` to completion.
pub fn cli(args: &[&str]) -> Output {
    clean_command()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run callhook")
}

pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "`callhook {what}` failed with {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `callhook token create --db DB ARGS`, asserting success and the one-line `chk_` output.
pub fn token_create(db: &str, args: &[&str]) -> String {
    let mut all = vec!["token", "create", "--db", db];
    all.extend_from_slice(args);
    let out = cli(&all);
    assert_success(&out, &all.join(" "));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "token create must print exactly one line, got {stdout:?}");
    let token = lines[0].trim();
    assert!(token.starts_with("chk_"), "token must start with chk_, got {token:?}");
    token.to_string()
}

/// An HTTP request being built.
pub struct Req {
    method: String,
    path: String,
    builder: reqwest::RequestBuilder,
}

impl Req {
    pub fn bearer(self, token: &str) -> Req {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.builder = self.builder.header(name, value);
        self
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json(mut self, body: &Value) -> Req {
        self.builder = self.builder.json(body);
        self
    }

    /// A raw body with the given Content-Type (`None`: no Content-Type header at all).
    pub fn raw(mut self, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Req {
        if let Some(ct) = content_type {
            self.builder = self.builder.header("content-type", ct);
        }
        self.builder = self.builder.body(body.into());
        self
    }

    pub async fn send(self) -> Resp {
        let resp = self.builder.send().await.unwrap_or_else(|e| {
            panic!("{} {} failed at the transport level: {e:?}", self.method, self.path)
        });
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.bytes().await.expect("read response body");
        Resp {
            method: self.method,
            path: self.path,
            status,
            content_type,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}

/// A received HTTP response.
#[derive(Clone)]
pub struct Resp {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub content_type: Option<String>,
    pub text: String,
}

impl fmt::Debug for Resp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} -> {} [{}] {}",
            self.method,
            self.path,
            self.status,
            self.content_type.as_deref().unwrap_or("no content-type"),
            self.text
        )
    }
}

impl Resp {
    /// Asserts the status code.
    pub fn expect(&self, status: u16) -> &Resp {
        assert_eq!(self.status, status, "unexpected status: {self:?}");
        self
    }

    /// The body as JSON (panics with the response if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {self:?}"))
    }

    /// True when the Content-Type is `application/json` (parameters allowed).
    pub fn is_json(&self) -> bool {
        self.content_type
            .as_deref()
            .map(|ct| ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"))
            .unwrap_or(false)
    }

    /// Asserts a VIS error: this status, this `errorCode`, `Content-Type: application/json`, keys
    /// `errorCode`, `errorMessage`, `errors` in that order, each error a `{field, message}` of
    /// strings. Returns the error fields in order.
    pub fn expect_error(&self, status: u16, code: &str) -> Vec<String> {
        assert_eq!(self.status, status, "unexpected status: {self:?}");
        assert!(self.is_json(), "error must be application/json: {self:?}");
        let v = self.json();
        assert_eq!(v["errorCode"], json!(code), "errorCode: {self:?}");
        assert!(
            v["errorMessage"].as_str().is_some_and(|m| !m.is_empty()),
            "errorMessage must be a non-empty string: {self:?}"
        );
        assert_eq!(
            keys(&self.text, ""),
            ["errorCode", "errorMessage", "errors"],
            "error body keys: {self:?}"
        );
        let errors = v["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("errors must be an array: {self:?}"));
        errors
            .iter()
            .map(|e| {
                assert!(e["message"].is_string(), "error entry needs a message: {self:?}");
                e["field"]
                    .as_str()
                    .unwrap_or_else(|| panic!("error entry needs a string field: {self:?}"))
                    .to_string()
            })
            .collect()
    }

    /// Asserts a 422 VALIDATION_ERROR and returns the sorted error fields.
    pub fn expect_validation(&self) -> Vec<String> {
        let mut fields = self.expect_error(422, "VALIDATION_ERROR");
        fields.sort();
        fields
    }

    pub fn error_message(&self) -> String {
        self.json()["errorMessage"].as_str().unwrap_or_default().to_string()
    }
}

// ---- call events ----

/// A well-formed ingestion body; change fields with `with`.
pub fn report(account: &str, user: &str, external_id: &str, direction: &str, state: &str) -> Value {
    json!({
        "externalId": external_id,
        "accountId": account,
        "userId": user,
        "direction": direction,
        "phoneNumber": "+14155550100",
        "state": state,
    })
}

/// `body` with `key` set to `value`.
pub fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

/// `body` with `key` removed.
pub fn without(mut body: Value, key: &str) -> Value {
    body.as_object_mut().expect("object").remove(key);
    body
}

/// 2024-05-01T10:00:00Z in epoch milliseconds: the base time of scripted calls.
pub const T0: i64 = 1_714_557_600_000;

/// RFC 3339 text for an epoch-millisecond instant (as a telephony source would send it).
pub fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The event time format: `2018-02-15T18:59:03.496+0000`.
pub fn event_time(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string()
}

/// Parses an event timestamp, asserting the exact `2018-02-15T18:59:03.496+0000` format.
pub fn parse_event_time(s: &str) -> DateTime<Utc> {
    assert!(
        matches_shape(s, "dddd-dd-ddTdd:dd:dd.ddd+0000"),
        "event time must look like 2018-02-15T18:59:03.496+0000, got {s:?}"
    );
    let naive = NaiveDateTime::parse_from_str(&s[..23], "%Y-%m-%dT%H:%M:%S%.3f")
        .unwrap_or_else(|e| panic!("bad event time {s:?}: {e}"));
    Utc.from_utc_datetime(&naive)
}

/// Parses a webhook timestamp, asserting the exact `2020-06-23T11:06:21.038Z` format.
pub fn parse_webhook_time(s: &str) -> DateTime<Utc> {
    assert!(
        matches_shape(s, "dddd-dd-ddTdd:dd:dd.dddZ"),
        "webhook time must look like 2020-06-23T11:06:21.038Z, got {s:?}"
    );
    let naive = NaiveDateTime::parse_from_str(&s[..23], "%Y-%m-%dT%H:%M:%S%.3f")
        .unwrap_or_else(|e| panic!("bad webhook time {s:?}: {e}"));
    Utc.from_utc_datetime(&naive)
}

/// `d` in the shape matches an ASCII digit, anything else matches itself.
pub fn matches_shape(s: &str, shape: &str) -> bool {
    s.len() == shape.len()
        && s.chars().zip(shape.chars()).all(|(c, p)| match p {
            'd' => c.is_ascii_digit(),
            _ => c == p,
        })
}

/// Asserts that no value anywhere in `v` is `null` (absent fields are left out).
pub fn assert_no_nulls(v: &Value, context: &str) {
    match v {
        Value::Null => panic!("null value in {context}"),
        Value::Array(items) => items.iter().for_each(|i| assert_no_nulls(i, context)),
        Value::Object(map) => map.values().for_each(|i| assert_no_nulls(i, context)),
        _ => {}
    }
}

// ---- key order ----

/// JSON kept with object keys in document order (serde_json's `Value` sorts them).
#[derive(Debug, Clone)]
pub enum Ordered {
    Scalar,
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_none<E: de::Error>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Ordered>()? {
                    entries.push((k, v));
                }
                Ok(Ordered::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// The keys, in document order, of the object at `pointer` (JSON-pointer style: "", "/event",
/// "/0", "/0/statistics") in the JSON text.
pub fn keys(text: &str, pointer: &str) -> Vec<String> {
    let mut node: Ordered =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    for seg in pointer.split('/').filter(|s| !s.is_empty()) {
        node = match node {
            Ordered::Object(entries) => entries
                .into_iter()
                .find(|(k, _)| k == seg)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no key {seg:?} at {pointer:?} in {text}")),
            Ordered::Array(items) => {
                let i: usize = seg.parse().expect("array index");
                items
                    .into_iter()
                    .nth(i)
                    .unwrap_or_else(|| panic!("no index {i} at {pointer:?} in {text}"))
            }
            Ordered::Scalar => panic!("{pointer:?} goes through a scalar in {text}"),
        };
    }
    match node {
        Ordered::Object(entries) => entries.into_iter().map(|(k, _)| k).collect(),
        other => panic!("{pointer:?} is not an object ({other:?}) in {text}"),
    }
}

/// Asserts that `actual` keys appear in the same relative order as in `order` and that every key
/// is one of `order`.
pub fn assert_keys_follow(actual: &[String], order: &[&str], context: &str) {
    let mut last = None;
    for k in actual {
        let pos = order
            .iter()
            .position(|o| o == k)
            .unwrap_or_else(|| panic!("unexpected key {k:?} in {context}: {actual:?}"));
        if let Some(prev) = last {
            assert!(pos > prev, "key {k:?} out of order in {context}: {actual:?}, expected order {order:?}");
        }
        last = Some(pos);
    }
}

// ---- waiting ----

/// Polls `f` until it returns `Some`, or the deadline passes (then `None`). The only place a
/// test thread sleeps: between polls of a condition.
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Async twin of `wait_until`: polls `f` until it returns `Some`; panics naming `what` when the
/// deadline passes.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
