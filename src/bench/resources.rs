//! What a process used, read from Linux's `/proc`: CPU seconds (user + system, all threads) and
//! peak resident memory. Elsewhere every reading is `None` and the figures are left out.

use serde::Serialize;
use std::time::Instant;

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, 100 on every Linux the bench targets).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds used so far by `pid` (or `"self"`).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime), counted from 1 over the whole line.
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / TICKS_PER_SECOND)
}

/// Peak resident set size of `pid` (or `"self"`) in bytes (`VmHWM`).
pub fn peak_rss_bytes(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU use of `serve` and of the bench process itself (load generator and receiver) over a phase.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuUse {
    pub wall_seconds: f64,
    /// CPU seconds of the `serve` process (absent for the baseline, which has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serve_seconds: Option<f64>,
    /// CPU seconds of the bench process: load generator and receiver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bench_seconds: Option<f64>,
}

impl CpuUse {
    /// Average cores busy in `serve` over the phase.
    pub fn serve_cores(&self) -> Option<f64> {
        self.serve_seconds.map(|s| s / self.wall_seconds.max(1e-9))
    }

    /// Average cores busy in the bench process over the phase.
    pub fn bench_cores(&self) -> Option<f64> {
        self.bench_seconds.map(|s| s / self.wall_seconds.max(1e-9))
    }
}

/// A CPU reading at the start of a phase.
pub struct CpuMark {
    at: Instant,
    serve_pid: Option<String>,
    serve: Option<f64>,
    bench: Option<f64>,
}

impl CpuMark {
    /// Reads the counters now; `serve_pid` is `None` when no `serve` takes part.
    pub fn now(serve_pid: Option<u32>) -> CpuMark {
        let serve_pid = serve_pid.map(|p| p.to_string());
        CpuMark {
            at: Instant::now(),
            serve: serve_pid.as_deref().and_then(cpu_seconds),
            bench: cpu_seconds("self"),
            serve_pid,
        }
    }

    /// What was used since this mark.
    pub fn used(&self) -> CpuUse {
        let serve = self.serve_pid.as_deref().and_then(cpu_seconds);
        CpuUse {
            wall_seconds: self.at.elapsed().as_secs_f64(),
            serve_seconds: serve.zip(self.serve).map(|(b, a)| b - a),
            bench_seconds: cpu_seconds("self").zip(self.bench).map(|(b, a)| b - a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_cpu_time_and_a_peak_rss_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(cpu_seconds("self").is_some());
            assert!(peak_rss_bytes("self").is_some_and(|b| b > 0));
        }
    }
}
