//! The bench's figures: how they are computed from a phase's timings and its verification, the
//! JSON document (`--json`), and the table printed on stdout.

use super::Phase;
use super::load::{Driven, Step};
use super::platform::DeliveryCounters;
use super::resources::CpuUse;
use super::verify::{Checked, PhaseCheck};
use serde::Serialize;
use std::collections::BTreeMap;

/// Issue 3's bar: sustained end-to-end events/s with SQLite durability.
pub const TARGET_EVENTS_PER_SECOND: f64 = 5_000.0;
/// Issue 3's bar: p99 from ingestion accepted to receiver, at this rate...
pub const TARGET_P99_RATE: f64 = 1_000.0;
/// ...under this many milliseconds.
pub const TARGET_P99_MS: f64 = 20.0;

/// Everything one run measured and checked. Serialised as the `--json` document.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub callhook_version: &'static str,
    /// `release` or `debug` (debug figures are not representative).
    pub build: &'static str,
    /// No event lost, repeated, reordered or refused, in any phase.
    pub passed: bool,
    /// Why the run failed, one sentence each (empty when it passed).
    pub failures: Vec<String>,
    pub settings: SettingsEcho,
    pub machine: Machine,
    /// The ceiling: the same load straight to the receiver, no platform.
    pub baseline: Throughput,
    /// Whole calls ingested as fast as they are accepted, until the last delivery arrived.
    pub throughput: Throughput,
    /// Whole calls ingested at a fixed rate (open loop).
    pub latency: Latency,
    pub verification: Verification,
    pub serve: ServeFigures,
}

/// The settings the run used.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsEcho {
    pub quick: bool,
    pub events: u64,
    pub concurrency: usize,
    pub users: u32,
    pub webhooks_per_user: u32,
    pub rate: f64,
    pub latency_seconds: f64,
    pub serve_args: Vec<String>,
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

/// A closed-loop phase: events/s from the first report sent to the last delivery received.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throughput {
    /// Reports accepted.
    pub events: u64,
    pub seconds: f64,
    pub events_per_second: f64,
    /// Reports accepted per second, from the first sent to the last answer (ingestion alone).
    pub accepted_per_second: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_baseline: Option<f64>,
    pub cpu: CpuUse,
}

impl Throughput {
    pub fn measure(driven: &Driven, check: &PhaseCheck, cpu: CpuUse) -> Throughput {
        let events = accepted(driven);
        let last = check
            .last_arrival
            .unwrap_or(driven.finished)
            .max(driven.finished);
        let seconds = last.duration_since(driven.started).as_secs_f64();
        let ingest_seconds = driven.finished.duration_since(driven.started).as_secs_f64();
        Throughput {
            events,
            seconds,
            events_per_second: per_second(events, seconds),
            accepted_per_second: per_second(events, ingest_seconds),
            ratio_to_baseline: None,
            cpu,
        }
    }
}

/// The open-loop phase at a fixed rate.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    /// The rate asked for, reports per second.
    pub rate: f64,
    /// Reports accepted.
    pub events: u64,
    pub seconds: f64,
    /// From ingestion accepted (the 202 read) to the receiver got it.
    pub delivery_ms: Percentiles,
    /// From the report sent to its 202 read.
    pub ingest_ms: Percentiles,
    /// How late reports were sent after their scheduled time (the generator keeping up).
    pub start_lag_ms: Percentiles,
    pub cpu: CpuUse,
}

impl Latency {
    pub fn measure(rate: f64, driven: &Driven, check: &PhaseCheck, cpu: CpuUse) -> Latency {
        let ingest: Vec<u64> = driven
            .outcomes
            .iter()
            .flat_map(|o| o.sent.iter().zip(&o.accepted))
            .filter_map(|(s, a)| Some(a.as_ref()?.duration_since(*s.as_ref()?).as_micros() as u64))
            .collect();
        let lags: Vec<u64> = driven
            .outcomes
            .iter()
            .map(|o| o.start_lag.as_micros() as u64)
            .collect();
        Latency {
            rate,
            events: accepted(driven),
            seconds: driven.finished.duration_since(driven.started).as_secs_f64(),
            delivery_ms: Percentiles::of_micros(check.latencies_us.clone()),
            ingest_ms: Percentiles::of_micros(ingest),
            start_lag_ms: Percentiles::of_micros(lags),
            cpu,
        }
    }
}

/// Percentiles in milliseconds (nearest rank); all zero for no samples.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub samples: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn of_micros(mut samples: Vec<u64>) -> Percentiles {
        samples.sort_unstable();
        let at = |p: f64| {
            if samples.is_empty() {
                return 0.0;
            }
            let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1] as f64 / 1000.0
        };
        Percentiles {
            samples: samples.len(),
            p50: at(50.0),
            p95: at(95.0),
            p99: at(99.0),
            max: at(100.0),
        }
    }
}

/// The verification of every phase.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// Sums over the platform phases (throughput and latency).
    pub expected: u64,
    pub delivered: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub order_violations: u64,
    pub ingest_errors: u64,
    /// Arrivals matching no accepted report, in any phase.
    pub unexpected: u64,
    /// Arrivals without a readable `event.id` and `event.state`.
    pub malformed: u64,
    pub phases: BTreeMap<Phase, PhaseCheck>,
}

impl Verification {
    pub fn from_check(checked: &Checked, malformed: u64) -> Verification {
        let phases: BTreeMap<Phase, PhaseCheck> = checked
            .phases
            .iter()
            .map(|(p, c)| (*p, c.clone()))
            .collect();
        let platform = || {
            phases
                .iter()
                .filter(|(p, _)| **p != Phase::Baseline)
                .map(|(_, c)| c)
        };
        Verification {
            expected: platform().map(|c| c.expected).sum(),
            delivered: platform().map(|c| c.delivered).sum(),
            missing: platform().map(|c| c.missing).sum(),
            duplicates: platform().map(|c| c.duplicates).sum(),
            order_violations: platform().map(|c| c.order_violations).sum(),
            ingest_errors: platform().map(|c| c.ingest_errors).sum(),
            unexpected: checked.unexpected,
            malformed,
            phases,
        }
    }

    /// One sentence per thing that went wrong.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (phase, c) in &self.phases {
            let name = phase.name();
            for (n, what) in [
                (c.missing, "deliveries missing"),
                (c.duplicates, "duplicate deliveries"),
                (c.order_violations, "deliveries out of call order"),
                (c.ingest_errors, "calls stopped by an ingestion error"),
            ] {
                if n > 0 {
                    out.push(format!("{name}: {n} {what}"));
                }
            }
            if let Some(sample) = c.error_samples.first() {
                out.push(format!("{name}: first ingestion error: {sample}"));
            }
        }
        if self.unexpected > 0 {
            out.push(format!("{} unexpected deliveries", self.unexpected));
        }
        if self.malformed > 0 {
            out.push(format!("{} deliveries without an event", self.malformed));
        }
        out
    }
}

/// What `serve` itself reported.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServeFigures {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_counters: Option<DeliveryCounters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// From SIGTERM to exit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_seconds: Option<f64>,
}

/// Reports accepted in a driver run.
fn accepted(driven: &Driven) -> u64 {
    driven
        .outcomes
        .iter()
        .map(|o| {
            Step::ALL
                .iter()
                .filter(|s| o.accepted[s.index()].is_some())
                .count() as u64
        })
        .sum()
}

fn per_second(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}
