//! `callhook listen` as a real process: started on port 0 (the test reads the real URL from the
//! `callhook listen: receiving on URL` line on stderr), its stdout and stderr collected line by
//! line by reader threads, waited on with deadlines (a condition variable, no sleeps), and killed
//! and reaped on `Drop`. Also a direct HTTP POST to it, for what a platform would never send.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Resp, clean_command, wait_until};

/// How long `listen` may take to print its receiving line (generous: parallel builds and tests
/// share a small machine).
pub const LISTEN_START: Duration = Duration::from_secs(30);
/// How long `listen` may take to exit once it should.
pub const LISTEN_EXIT: Duration = Duration::from_secs(20);

/// Lines a process printed on one stream, and whether the stream has ended.
#[derive(Default)]
struct Stream {
    lines: Vec<String>,
    ended: bool,
}

#[derive(Default)]
struct Streams {
    out: Stream,
    err: Stream,
}

type Shared = Arc<(Mutex<Streams>, Condvar)>;

/// A running `callhook listen`. See the module documentation.
pub struct Listen {
    child: Option<Child>,
    streams: Shared,
    readers: Vec<JoinHandle<()>>,
    url: String,
    args: Vec<String>,
}

impl Listen {
    /// `callhook listen --listen 127.0.0.1:0 ARGS`.
    pub fn start(args: &[&str]) -> Listen {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        Listen::start_raw(&all, &[])
    }

    /// `callhook listen ARGS` with these environment variables (nothing implicit).
    pub fn start_raw(args: &[&str], env: &[(&str, &str)]) -> Listen {
        let mut listen = Listen::spawn(args, env);
        let line = listen.wait_stderr("the receiving line", LISTEN_START, |l| {
            l.starts_with("callhook listen: receiving on ")
        });
        let url = line
            .trim_start_matches("callhook listen: receiving on ")
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        let port_ok = url
            .strip_prefix("http://127.0.0.1:")
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse::<u16>().ok())
            .is_some_and(|p| p != 0);
        if !port_ok {
            listen.fail(&format!(
                "receiving line does not name http://127.0.0.1:PORT/...: {line:?}"
            ));
        }
        listen.url = url;
        listen
    }

    /// Spawns without waiting for anything.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Listen {
        let mut cmd = clean_command();
        cmd.arg("listen")
            .args(args)
            .envs(env.iter().copied())
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn callhook listen");
        let streams: Shared = Arc::default();
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let readers = vec![
            read_lines(out, streams.clone(), |s| &mut s.out),
            read_lines(err, streams.clone(), |s| &mut s.err),
        ];
        Listen {
            child: Some(child),
            streams,
            readers,
            url: String::new(),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The URL deliveries go to, e.g. `http://127.0.0.1:41237/webhook`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn at(&self, path: &str) -> String {
        let rest = self.url.trim_start_matches("http://");
        let host = rest.split('/').next().unwrap_or_default();
        format!("http://{host}{path}")
    }

    /// Every stdout line so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.streams.0.lock().unwrap().out.lines.clone()
    }

    /// Everything on stderr so far.
    pub fn stderr_text(&self) -> String {
        self.streams.0.lock().unwrap().err.lines.join("\n")
    }

    /// Waits for at least `n` stdout lines; returns all of them.
    pub fn wait_stdout(&mut self, n: usize, timeout: Duration) -> Vec<String> {
        match self.wait_for(timeout, |s| {
            (s.out.lines.len() >= n).then(|| s.out.lines.clone())
        }) {
            Some(lines) => lines,
            None => self.fail(&format!("fewer than {n} stdout lines within {timeout:?}")),
        }
    }

    /// Waits for a stderr line for which `pred` holds; returns it.
    pub fn wait_stderr(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let found = self.wait_for(timeout, |s| s.err.lines.iter().find(|l| pred(l)).cloned());
        match found {
            Some(line) => line,
            None => self.fail(&format!("no stderr line within {timeout:?} for: {what}")),
        }
    }

    /// Waits on the collected lines until `f` gives `Some`, the streams end, or `timeout`.
    fn wait_for<T>(&self, timeout: Duration, f: impl Fn(&Streams) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let (lock, changed) = &*self.streams;
        let mut streams = lock.lock().unwrap();
        loop {
            if let Some(v) = f(&streams) {
                return Some(v);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || (streams.out.ended && streams.err.ended) {
                return None;
            }
            streams = changed.wait_timeout(streams, left).unwrap().0;
        }
    }

    /// Waits for the process to exit by itself; then every line it printed is in.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("listen is running");
        match wait_until(timeout, || child.try_wait().expect("try_wait")) {
            Some(status) => {
                self.child = None;
                self.join_readers();
                status
            }
            None => self.fail(&format!("did not exit within {timeout:?}")),
        }
    }

    /// Sends `signal` ("TERM", "INT") and waits for the exit.
    pub fn stop_with(&mut self, signal: &str) -> ExitStatus {
        let pid = self.child.as_ref().expect("listen is running").id();
        let sent = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} {pid} failed");
        self.wait_exit(LISTEN_EXIT)
    }

    fn join_readers(&mut self) {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }

    /// What the process printed, for failure messages.
    pub fn transcript(&self) -> String {
        format!(
            "callhook listen {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.stdout_lines().join("\n"),
            self.stderr_text()
        )
    }

    pub fn fail(&mut self, why: &str) -> ! {
        self.kill();
        panic!("{why}\n{}", self.transcript());
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.join_readers();
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        if std::thread::panicking() && self.child.is_some() {
            eprintln!("{}", self.transcript());
        }
        self.kill();
    }
}

fn read_lines(
    stream: impl Read + Send + 'static,
    shared: Shared,
    pick: fn(&mut Streams) -> &mut Stream,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let (lock, changed) = &*shared;
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            pick(&mut lock.lock().unwrap()).lines.push(line);
            changed.notify_all();
        }
        pick(&mut lock.lock().unwrap()).ended = true;
        changed.notify_all();
    })
}

/// Runs `callhook listen ARGS` that should end by itself (a start failure, a short timeout);
/// returns its exit status, stdout and stderr lines.
pub fn listen_to_exit(args: &[&str]) -> (ExitStatus, Vec<String>, Vec<String>) {
    let mut listen = Listen::spawn(args, &[]);
    let status = listen.wait_exit(LISTEN_EXIT);
    let out = listen.stdout_lines();
    let err = listen.streams.0.lock().unwrap().err.lines.clone();
    (status, out, err)
}

/// POSTs `body` with `headers` to `url`, as a platform (or anything else) would.
pub async fn post_to(url: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Resp {
    request_to("POST", url, headers, body.into()).await
}

/// Sends `method url` with `headers` and `body`.
pub async fn request_to(method: &str, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Resp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("build HTTP client");
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("valid method");
    let mut builder = client.request(m, url).body(body);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let resp = builder
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url} failed at the transport level: {e:?}"));
    Resp::read(method, url, resp).await
}
