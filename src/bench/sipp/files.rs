//! One SIPp process's files: its temporary directory, the scenario written there, the
//! command line every run shares, and what SIPp wrote back (counts, error log, stderr).
//!
//! May depend on: std, the parent module's constants and [`parse`](super::parse).

use super::{ERROR_LOG_LIMIT, LOOPBACK, SippRun, parse};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// One SIPp process's temporary directory: its scenario file and what it writes. Removed when
/// dropped.
pub(super) struct Files {
    dir: PathBuf,
    scenario: PathBuf,
    stats: PathBuf,
    errors: PathBuf,
    stderr: PathBuf,
    /// The `-trace_shortmsg` log, for the callers that ask for it.
    pub(super) messages: PathBuf,
}

impl Files {
    pub(super) fn new(role: &str, scenario: &str) -> io::Result<Files> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "callhook-sipp-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let files = Files {
            scenario: dir.join(format!("{role}.xml")),
            stats: dir.join("stats.csv"),
            errors: dir.join("errors.log"),
            stderr: dir.join("stderr.log"),
            messages: dir.join("messages.log"),
            dir,
        };
        std::fs::write(&files.scenario, scenario)?;
        Ok(files)
    }

    /// `sipp` with the options every run shares: the scenario, the local address, no
    /// keyboard, the control socket on loopback, the error log and the statistics file; run
    /// in this directory (where SIPp puts any file not named here).
    pub(super) fn command(&self, port: u16) -> Command {
        let mut command = Command::new("sipp");
        command
            .current_dir(&self.dir)
            .arg("-sf")
            .arg(&self.scenario)
            .arg("-i")
            .arg(LOOPBACK.to_string())
            .arg("-p")
            .arg(port.to_string())
            .args(["-nostdin", "-ci"])
            .arg(LOOPBACK.to_string())
            .arg("-trace_err")
            .arg("-error_file")
            .arg(&self.errors)
            .arg("-trace_stat")
            .arg("-stf")
            .arg(&self.stats)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        match std::fs::File::create(&self.stderr) {
            Ok(file) => command.stderr(file),
            Err(_) => command.stderr(Stdio::null()),
        };
        command
    }

    /// What a finished process did: SIPp exits 0 when every call succeeded, 1 when some
    /// failed; anything else is a run that did not happen (bad scenario, fatal error).
    pub(super) fn outcome(&self, who: &str, status: ExitStatus) -> io::Result<SippRun> {
        if !matches!(status.code(), Some(0 | 1)) {
            return Err(self.failure(&format!("{who} exited ({status})")));
        }
        let stats = std::fs::read_to_string(&self.stats)
            .map_err(|e| self.failure(&format!("{who}: reading its statistics: {e}")))?;
        let (successful, failed) = parse::call_counts(&stats)
            .ok_or_else(|| self.failure(&format!("{who}: no call counts in its statistics")))?;
        Ok(SippRun {
            successful,
            failed,
            invite_to_200_us: Vec::new(),
            errors: self.error_text(),
        })
    }

    /// An error carrying what SIPp said: its error log and its stderr.
    pub(super) fn failure(&self, what: &str) -> io::Error {
        io::Error::other(format!("{what}; sipp said:\n{}", self.error_text()))
    }

    pub(super) fn error_text(&self) -> String {
        let mut text = String::new();
        for path in [&self.errors, &self.stderr] {
            text.push_str(read_start(path).trim_end());
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
        }
        text
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The first [`ERROR_LOG_LIMIT`] bytes of a file (cut at a character boundary), or nothing.
fn read_start(path: &Path) -> String {
    let mut text = std::fs::read_to_string(path).unwrap_or_default();
    if text.len() > ERROR_LOG_LIMIT {
        let mut end = ERROR_LOG_LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("\n[...]");
    }
    text
}
