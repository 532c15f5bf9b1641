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
    serve_pids: Vec<String>,
    serve: Option<f64>,
    bench: Option<f64>,
}

impl CpuMark {
    /// Reads the counters now; `serve_pids` are the `serve` nodes taking part (none for the
    /// baseline), whose CPU is summed.
    pub fn now(serve_pids: &[u32]) -> CpuMark {
        let serve_pids: Vec<String> = serve_pids.iter().map(u32::to_string).collect();
        CpuMark {
            at: Instant::now(),
            serve: summed_cpu_seconds(&serve_pids),
            bench: cpu_seconds("self"),
            serve_pids,
        }
    }

    /// What was used since this mark.
    pub fn used(&self) -> CpuUse {
        let serve = summed_cpu_seconds(&self.serve_pids);
        CpuUse {
            wall_seconds: self.at.elapsed().as_secs_f64(),
            serve_seconds: serve.zip(self.serve).map(|(b, a)| b - a),
            bench_seconds: cpu_seconds("self").zip(self.bench).map(|(b, a)| b - a),
        }
    }
}

/// CPU seconds of all of `pids` together: `None` when there are none or one cannot be read.
fn summed_cpu_seconds(pids: &[String]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|p| cpu_seconds(p)).sum()
}

/// The largest peak RSS among `pids` (the biggest node), `None` when none can be read.
pub fn largest_peak_rss_bytes(pids: &[u32]) -> Option<u64> {
    pids.iter()
        .filter_map(|p| peak_rss_bytes(&p.to_string()))
        .max()
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

    #[test]
    fn serve_cpu_is_summed_over_the_nodes_and_absent_without_any() {
        if cfg!(target_os = "linux") {
            let me = std::process::id();
            let one = summed_cpu_seconds(&[me.to_string()]).expect("readable");
            let two = summed_cpu_seconds(&[me.to_string(), me.to_string()]).expect("readable");
            assert!(two >= 2.0 * one, "{two} < 2 x {one}");
            assert_eq!(summed_cpu_seconds(&[]), None);
            assert!(largest_peak_rss_bytes(&[me]).is_some());
        }
    }
}
