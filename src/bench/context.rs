//! Where and how a run happened: the machine (CPUs, model, memory, load at the start, since
//! these machines are shared) and the settings it used, both echoed in the report.

use super::Settings;
use serde::Serialize;

/// The settings the run used.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsEcho {
    pub quick: bool,
    /// `SQLite` or `PostgreSQL` (the server's URL is not echoed: it may hold a password).
    pub store: &'static str,
    /// `serve` nodes per scenario.
    pub nodes: u32,
    pub scenarios: Vec<&'static str>,
    pub events: u64,
    pub concurrency: usize,
    pub users: u32,
    pub rates: Vec<f64>,
    pub step_seconds: f64,
    pub fanouts: Vec<u32>,
    pub populations: Vec<u64>,
    pub backlog_events: u64,
    pub restart_events: u64,
    pub restart_pending: u64,
    pub serve_args: Vec<String>,
}

impl From<&Settings> for SettingsEcho {
    fn from(s: &Settings) -> SettingsEcho {
        SettingsEcho {
            quick: s.quick,
            store: s.store.name(),
            nodes: s.store.nodes(),
            scenarios: s.scenarios.iter().map(|s| s.name()).collect(),
            events: s.events,
            concurrency: s.concurrency,
            users: s.users,
            rates: s.rates.clone(),
            step_seconds: s.step.as_secs_f64(),
            fanouts: s.fanouts.clone(),
            populations: s.populations.clone(),
            backlog_events: s.backlog_events,
            restart_events: s.restart_events,
            restart_pending: s.restart_pending,
            serve_args: s.serve_args.clone(),
        }
    }
}

/// The machine the run happened on.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    pub cpus: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// The 1-minute load average when the run began: other work on a shared machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_average: Option<f64>,
}

impl Machine {
    pub fn this() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: cpuinfo
                .lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string()),
            memory_bytes: meminfo
                .lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .map(|kib| kib * 1024),
            load_average: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|l| l.split_whitespace().next()?.parse().ok()),
        }
    }
}
