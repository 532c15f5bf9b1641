//! The platform under test: a real `callhook serve` child process on a fresh database in its own
//! temporary directory, plus the setup the bench needs on it (tokens through `callhook token
//! create`, webhooks through the VIS API) and a look at its delivery counters (`GET /metrics`).
//!
//! The child gets default settings: every `CALLHOOK_*` variable is removed from its environment,
//! so only the arguments the bench passes count. [`Platform::restart`] stops it with SIGTERM and
//! starts it again on the same database. [`Platform::stop`] sends SIGTERM and waits; if the bench
//! ends any other way (an error, Ctrl-C, a panic), dropping the `Platform` does the same, and
//! either way the temporary directory is removed.

use super::BenchError;
use reqwest::Client;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How long `serve` may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `serve` may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// The VIS base path.
const VIS: &str = "/t/vbc.prod/vis/v1";

/// Webhooks created at once by [`Platform::create_webhooks`].
const CREATE_CONCURRENCY: usize = 32;

/// A running `serve` child and its temporary directory.
pub struct Platform {
    exe: PathBuf,
    extra: Vec<String>,
    dir: PathBuf,
    db: PathBuf,
    child: Option<Child>,
    pid: u32,
    base: String,
}

/// How a start on an existing database went.
#[derive(Debug, Clone, Copy)]
pub struct Resumed {
    /// When the new process was spawned.
    pub spawned: Instant,
    /// From the spawn to its listening line.
    pub listening_in: Duration,
}

/// `callhook_deliveries_total` by outcome, as `serve` counted them (since it started), and
/// `callhook_delivery_queue_depth`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryCounters {
    pub delivered: u64,
    pub retried: u64,
    pub failed: u64,
    pub skipped: u64,
    pub queue_depth: u64,
}

impl Platform {
    /// Starts `exe serve --listen 127.0.0.1:0 --db <fresh> <extra>` and waits for its listening
    /// line.
    pub async fn start(exe: &Path, extra: &[String]) -> Result<Platform, BenchError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("callhook-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| BenchError::io(format!("creating {}", dir.display()), e))?;
        let db = dir.join("bench.db");
        let mut platform = Platform {
            exe: exe.to_path_buf(),
            extra: extra.to_vec(),
            dir,
            db,
            child: None,
            pid: 0,
            base: String::new(),
        };
        platform.spawn().await?;
        Ok(platform)
    }

    /// Stops `serve` with SIGTERM and waits for it to exit, keeping its database; returns how
    /// long that took. [`Platform::resume`] starts it again.
    pub async fn halt(&mut self) -> Duration {
        let stopping = Instant::now();
        self.terminate_and_wait().await;
        stopping.elapsed()
    }

    /// Starts `serve` again on the same database, with the same arguments (on a new port).
    pub async fn resume(&mut self) -> Result<Resumed, BenchError> {
        let spawned = Instant::now();
        self.spawn().await?;
        Ok(Resumed {
            spawned,
            listening_in: spawned.elapsed(),
        })
    }

    /// Spawns `serve` on the database and waits for its listening line.
    async fn spawn(&mut self) -> Result<(), BenchError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| BenchError::io("opening the serve log", e))?;
        let mut child = self
            .command()
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--db")
            .arg(&self.db)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| BenchError::io(format!("starting {} serve", self.exe.display()), e))?;
        self.pid = child.id().unwrap_or(0);
        let stdout = child.stdout.take();
        self.child = Some(child);
        let Some(stdout) = stdout else {
            return Err(self.failed("serve has no stdout"));
        };
        let mut lines = BufReader::new(stdout).lines();
        let first = match tokio::time::timeout(START_TIMEOUT, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => return Err(self.failed("serve exited before listening")),
            Ok(Err(e)) => return Err(self.failed(&format!("reading serve's stdout: {e}"))),
            Err(_) => return Err(self.failed("serve did not print its listening line")),
        };
        let Some(address) = first.strip_prefix("callhook listening on ") else {
            return Err(self.failed(&format!("unexpected first line from serve: {first:?}")));
        };
        self.base = address.trim_end_matches('/').to_string();
        // Keep draining stdout so the pipe never fills.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(())
    }

    /// `http://127.0.0.1:PORT` of the running `serve`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Runs `callhook token create --db <db> <args>` and returns the printed token.
    pub async fn create_token(&self, args: &[&str]) -> Result<String, BenchError> {
        let output = self
            .command()
            .args(["token", "create", "--db"])
            .arg(&self.db)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| BenchError::io("running token create", e))?;
        let token = String::from_utf8_lossy(&output.stdout).trim().to_string();
        if !output.status.success() || token.is_empty() {
            return Err(BenchError::Setup(format!(
                "token create {} failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(token)
    }

    /// Creates one webhook per URL (metadata policy NONE) for the user of `token`, a few at a
    /// time, through the VIS API.
    pub async fn create_webhooks(
        &self,
        client: &Client,
        token: &str,
        urls: impl IntoIterator<Item = String>,
    ) -> Result<(), BenchError> {
        let endpoint: Arc<str> = format!("{}{VIS}/self/webhooks", self.base).into();
        let token: Arc<str> = token.into();
        let slots = Arc::new(Semaphore::new(CREATE_CONCURRENCY));
        let mut tasks = JoinSet::new();
        for url in urls {
            let permit = slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| BenchError::Setup("webhook creation was cancelled".into()))?;
            let (client, endpoint, token) = (client.clone(), endpoint.clone(), token.clone());
            tasks.spawn(async move {
                let created = create_webhook(&client, &endpoint, &token, &url).await;
                drop(permit);
                created
            });
            // Fail early rather than after queueing every request.
            while let Some(done) = tasks.try_join_next() {
                done.map_err(|e| BenchError::Setup(format!("creating a webhook: {e}")))??;
            }
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| BenchError::Setup(format!("creating a webhook: {e}")))??;
        }
        Ok(())
    }

    /// Bytes of the database file and of its write-ahead log (0 when there is none).
    pub fn db_bytes(&self) -> Option<(u64, u64)> {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
        let mut wal = self.db.clone().into_os_string();
        wal.push("-wal");
        Some((size(&self.db)?, size(Path::new(&wal)).unwrap_or(0)))
    }

    /// Reads `callhook_deliveries_total` and the queue depth from `GET /metrics`.
    pub async fn delivery_counters(&self, client: &Client) -> Result<DeliveryCounters, BenchError> {
        let text = client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| BenchError::http("reading /metrics", e))?
            .text()
            .await
            .map_err(|e| BenchError::http("reading /metrics", e))?;
        Ok(parse_counters(&text))
    }

    /// Sends SIGTERM, waits for the exit (killing it after a deadline), removes the temporary
    /// directory. Returns how long the shutdown took.
    pub async fn stop(mut self) -> Result<Duration, BenchError> {
        let started = Instant::now();
        self.terminate_and_wait().await;
        let took = started.elapsed();
        self.remove_dir();
        Ok(took)
    }

    /// SIGTERM, then wait for the exit (killing it after a deadline).
    async fn terminate_and_wait(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        terminate(self.pid).await;
        let status = match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                tracing::warn!("serve did not stop within {STOP_TIMEOUT:?} of SIGTERM; killing it");
                let _ = child.kill().await;
                None
            }
        };
        if let Some(status) = status.filter(|s| !s.success()) {
            tracing::warn!(%status, log = %self.log_tail(), "serve exited uncleanly");
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.exe);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("CALLHOOK_") {
                command.env_remove(name);
            }
        }
        command.kill_on_drop(true);
        command
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("serve.log")
    }

    /// The end of what `serve` wrote on stderr.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// A setup error carrying the end of the serve log.
    fn failed(&self, why: &str) -> BenchError {
        BenchError::Setup(format!("{why}\n--- serve log ---\n{}", self.log_tail()))
    }

    fn remove_dir(&self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove the bench directory");
        }
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Not on the normal path (that is `stop`): an error, Ctrl-C or a panic got here.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status();
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.start_kill();
        }
        if self.dir.exists() {
            self.remove_dir();
        }
    }
}

/// SIGTERM, through `kill(1)` (the crate has no direct libc binding).
async fn terminate(pid: u32) {
    let sent = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await;
    if !matches!(sent, Ok(s) if s.success()) {
        tracing::warn!(pid, "could not send SIGTERM to serve");
    }
}

/// `POST {endpoint}` with a webhook for `url`: 201 expected.
async fn create_webhook(
    client: &Client,
    endpoint: &str,
    token: &str,
    url: &str,
) -> Result<(), BenchError> {
    let body = serde_json::json!({"url": url, "metadataPolicy": "NONE"}).to_string();
    let response = client
        .post(endpoint)
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| BenchError::http("creating a webhook", e))?;
    let status = response.status();
    if status.as_u16() != 201 {
        let text = response.text().await.unwrap_or_default();
        return Err(BenchError::Setup(format!(
            "creating a webhook answered {status}: {text}"
        )));
    }
    Ok(())
}

/// Picks `callhook_deliveries_total{outcome="..."} N` and `callhook_delivery_queue_depth N` out
/// of Prometheus text.
fn parse_counters(text: &str) -> DeliveryCounters {
    let mut counters = DeliveryCounters::default();
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("callhook_delivery_queue_depth ") {
            counters.queue_depth = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
            continue;
        }
        let Some(rest) = line.strip_prefix("callhook_deliveries_total{outcome=\"") else {
            continue;
        };
        let Some((outcome, value)) = rest.split_once("\"}") else {
            continue;
        };
        let value = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
        match outcome {
            "delivered" => counters.delivered = value,
            "retried" => counters.retried = value,
            "failed" => counters.failed = value,
            "skipped" => counters.skipped = value,
            _ => {}
        }
    }
    counters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_counters_are_read_from_prometheus_text() {
        let text = "# HELP callhook_deliveries_total Delivery attempts\n\
            # TYPE callhook_deliveries_total counter\n\
            callhook_deliveries_total{outcome=\"delivered\"} 3000\n\
            callhook_deliveries_total{outcome=\"retried\"} 2\n\
            callhook_delivery_queue_depth 17\n";
        let c = parse_counters(text);
        assert_eq!(
            (c.delivered, c.retried, c.failed, c.skipped, c.queue_depth),
            (3000, 2, 0, 0, 17)
        );
    }
}
