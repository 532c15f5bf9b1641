//! One `callhook serve` child process ([`Node`]): spawned with the arguments [`super::platform`]
//! gives it, its listening address read from its first stdout line, its stderr in a log file,
//! stopped with SIGTERM (killed after a deadline), and the same on drop if nobody stopped it.

use super::BenchError;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long `serve` may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `serve` may take to exit after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `serve`.
pub struct Node {
    child: Option<Child>,
    pid: u32,
    base: String,
    log: PathBuf,
}

impl Node {
    /// Spawns `command` (a `serve` command line), its stderr appended to `log`, and waits for
    /// its listening line.
    pub async fn spawn(command: Command, log: &Path) -> Result<Node, BenchError> {
        Ok(Node::spawn_reading(command, log, false).await?.0)
    }

    /// [`Node::spawn`] for a `serve --sip`: also reads its second line, the SIP address.
    pub async fn spawn_sip(
        command: Command,
        log: &Path,
    ) -> Result<(Node, std::net::SocketAddr), BenchError> {
        let (node, sip) = Node::spawn_reading(command, log, true).await?;
        let line = sip.unwrap_or_default();
        match line
            .strip_prefix("callhook relaying SIP on udp://")
            .and_then(|a| a.parse().ok())
        {
            Some(addr) => Ok((node, addr)),
            None => Err(node.failed(&format!("unexpected second line from serve: {line:?}"))),
        }
    }

    async fn spawn_reading(
        mut command: Command,
        log: &Path,
        sip_line: bool,
    ) -> Result<(Node, Option<String>), BenchError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| BenchError::io(format!("opening {}", log.display()), e))?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(file))
            .spawn()
            .map_err(|e| BenchError::io("starting serve", e))?;
        let stdout = child.stdout.take();
        let mut node = Node {
            pid: child.id().unwrap_or(0),
            child: Some(child),
            base: String::new(),
            log: log.to_path_buf(),
        };
        let Some(stdout) = stdout else {
            return Err(node.failed("serve has no stdout"));
        };
        let mut lines = BufReader::new(stdout).lines();
        let first = match tokio::time::timeout(START_TIMEOUT, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => return Err(node.failed("serve exited before listening")),
            Ok(Err(e)) => return Err(node.failed(&format!("reading serve's stdout: {e}"))),
            Err(_) => return Err(node.failed("serve did not print its listening line")),
        };
        let Some(address) = first.strip_prefix("callhook listening on ") else {
            return Err(node.failed(&format!("unexpected first line from serve: {first:?}")));
        };
        node.base = address.trim_end_matches('/').to_string();
        let second = match sip_line {
            true => tokio::time::timeout(START_TIMEOUT, lines.next_line())
                .await
                .ok()
                .and_then(Result::ok)
                .flatten(),
            false => None,
        };
        // Keep draining stdout so the pipe never fills.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok((node, second))
    }

    /// `http://127.0.0.1:PORT` of this `serve`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends SIGTERM (once it runs; a no-op after it exited).
    pub async fn signal(&self) {
        if self.child.is_some() {
            terminate(self.pid).await;
        }
    }

    /// Waits for the exit after [`Node::signal`], killing it after a deadline.
    pub async fn wait(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
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

    /// The end of what `serve` wrote on stderr.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// A setup error carrying the end of the serve log.
    fn failed(&self, why: &str) -> BenchError {
        BenchError::Setup(format!("{why}\n--- serve log ---\n{}", self.log_tail()))
    }

    /// SIGTERM without waiting (the first half of a drop, so several nodes stop together).
    pub fn signal_now(&self) {
        if self.child.is_some() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Not on the normal path (that is `signal` and `wait`): an error, Ctrl-C or a panic.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status();
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.start_kill();
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
