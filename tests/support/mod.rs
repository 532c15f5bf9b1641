//! Black-box test support: runs the real `callhook` binary and talks to it over real HTTP.
//!
//! `Server::start()` gives every test its own temporary directory with a fresh database, a server
//! bound to port 0 (the test reads the real address from the first stdout line), and a `Drop` that
//! kills and reaps the process so nothing is left running. The helpers here only speak the wire
//! contract: they never look inside `src/`.

#![allow(dead_code)]

mod delivery;
mod fixture;
mod http;
mod listen;
#[path = "../pg_support/mod.rs"]
mod pg;
mod receiver;
mod reports;
mod vis_cli;
mod waiting;
mod webhooks;
mod wire;

// Not every test binary uses every helper.
#[allow(unused_imports)]
pub use delivery::*;
#[allow(unused_imports)]
pub use fixture::*;
#[allow(unused_imports)]
pub use http::{Req, Resp};
#[allow(unused_imports)]
pub use listen::*;
#[allow(unused_imports)]
pub use pg::*;
#[allow(unused_imports)]
pub use receiver::*;
#[allow(unused_imports)]
pub use reports::*;
#[allow(unused_imports)]
pub use vis_cli::*;
#[allow(unused_imports)]
pub use waiting::*;
#[allow(unused_imports)]
pub use webhooks::*;
#[allow(unused_imports)]
pub use wire::*;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

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
    /// The `--db` setting when it is not `dir/callhook.db` (a PostgreSQL URL).
    db_url: Option<String>,
    extra_args: Vec<String>,
    /// Pass `--listen`/`--db` through `CALLHOOK_LISTEN`/`CALLHOOK_DB` instead of flags.
    from_env: bool,
    child: Option<Child>,
    stdout_reader: Option<JoinHandle<Vec<String>>>,
    base: String,
    /// The SIP proxy's address, when started with `--sip`.
    sip: Option<std::net::SocketAddr>,
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

    /// Starts a server on the database `db` (a `postgres://` URL), which several servers may share.
    pub fn start_on_db(db: &str, extra_args: &[&str]) -> Server {
        let mut server = Server::create(
            tempfile::tempdir().expect("create temp dir"),
            extra_args,
            false,
        );
        server.db_url = Some(db.to_string());
        server.spawn();
        server
    }

    /// Starts a server configured through `CALLHOOK_LISTEN` and `CALLHOOK_DB` only.
    pub fn start_from_env() -> Server {
        Server::launch(tempfile::tempdir().expect("create temp dir"), &[], true)
    }

    fn launch(dir: tempfile::TempDir, extra_args: &[&str], from_env: bool) -> Server {
        let mut server = Server::create(dir, extra_args, from_env);
        server.spawn();
        server
    }

    fn create(dir: tempfile::TempDir, extra_args: &[&str], from_env: bool) -> Server {
        // reqwest is built without a default TLS crypto provider (callhook installs ring).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("build HTTP client");
        Server {
            dir,
            db_url: None,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            from_env,
            child: None,
            stdout_reader: None,
            base: String::new(),
            sip: None,
            starts: 0,
            client,
        }
    }

    /// `http://127.0.0.1:PORT` of the running process.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The database this server uses: a path, or the URL it was started on.
    pub fn db(&self) -> String {
        self.db_url
            .clone()
            .unwrap_or_else(|| db_in(self.dir.path()))
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
            cmd.arg("serve")
                .env("CALLHOOK_LISTEN", "127.0.0.1:0")
                .env("CALLHOOK_DB", self.db());
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
        let wants_sip = self.extra_args.iter().any(|a| a == "--sip");
        let reader = std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            match lines.next() {
                Some(Ok(first)) => {
                    let _ = tx.send(first);
                }
                _ => return Vec::new(),
            }
            // With --sip, the second line is the SIP address.
            if wants_sip && let Some(Ok(second)) = lines.next() {
                let _ = tx.send(second);
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
        if wants_sip {
            let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
            match line
                .strip_prefix("callhook relaying SIP on udp://")
                .and_then(|a| a.parse().ok())
            {
                Some(addr) => self.sip = Some(addr),
                None => self.fail(&format!(
                    "second stdout line is not `callhook relaying SIP on udp://IP:PORT`: {line:?}"
                )),
            }
        }
    }

    /// The SIP proxy's address (the server was started with `--sip`).
    pub fn sip_addr(&self) -> std::net::SocketAddr {
        self.sip.expect("server started with --sip")
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
        self.restart_after(|_| {});
    }

    /// Like [`Server::restart`], running `between(db path)` while the server is stopped.
    pub fn restart_after(&mut self, between: impl FnOnce(&str)) {
        let (status, _) = self.stop_with_signal("TERM");
        assert!(
            status.success(),
            "server exited with {status} after SIGTERM\n--- server log ---\n{}",
            self.log()
        );
        between(&self.db());
        self.spawn();
    }

    /// Kills the server with SIGKILL (a crash: no shutdown code runs) and starts it again on the
    /// same database.
    pub fn crash_and_restart(&mut self) {
        let (status, _) = self.stop_with_signal("KILL");
        assert!(
            !status.success(),
            "a SIGKILLed server cannot exit cleanly: {status}"
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

    /// `POST path` with `token` and a raw `body` declared as `content_type` (None: no
    /// Content-Type header at all).
    pub async fn post_raw(
        &self,
        path: &str,
        token: &str,
        content_type: Option<&str>,
        body: impl Into<Vec<u8>>,
    ) -> Resp {
        self.req("POST", path)
            .bearer(token)
            .raw(content_type, body)
            .send()
            .await
    }

    /// `POST path` with `token` and `body` sent verbatim as `application/json`.
    pub async fn post_json_text(&self, path: &str, token: &str, body: impl Into<Vec<u8>>) -> Resp {
        self.post_raw(path, token, Some("application/json"), body)
            .await
    }

    /// The answer of `GET /self/events/count` (which must be 200) for `token`'s user.
    pub async fn events_count(&self, token: &str) -> Value {
        self.get_json(&vis("/self/events/count"), token).await
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
        if std::thread::panicking() {
            // The test failed: show what the server logged (the harness prints it with the failure).
            eprintln!(
                "--- server log ({}) ---\n{}",
                self.dir.path().display(),
                self.log()
            );
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(reader) = self.stdout_reader.take() {
            let _ = reader.join();
        }
    }
}

/// The database path in `dir` (`dir/callhook.db`), as `Server::start_on(dir)` uses it.
pub fn db_in(dir: &std::path::Path) -> String {
    dir.join("callhook.db").to_string_lossy().into_owned()
}

/// A fresh temporary directory and the database path in it; keep the directory alive as long as
/// the database is used (or hand it to `Server::start_on`).
pub fn fresh_db() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("create temp dir");
    let db = db_in(dir.path());
    (dir, db)
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
    assert_eq!(
        lines.len(),
        1,
        "token create must print exactly one line, got {stdout:?}"
    );
    let token = lines[0].trim();
    assert!(
        token.starts_with("chk_"),
        "token must start with chk_, got {token:?}"
    );
    token.to_string()
}
