//! The `--json` document: one section per scenario that ran, the targets of issue 5, and the
//! verification of every scenario. [`Report::conclude`] fills in the ratios to the baseline and
//! the verdict once every scenario has run.

use super::Scenario;
use super::context::{Machine, SettingsEcho};
use super::figures::{Latency, Resources, Throughput};
use super::targets::{self, Target};
use super::verify::{Checked, PhaseCheck};
use serde::Serialize;

/// Everything one run measured and checked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub callhook_version: &'static str,
    /// `release` or `debug` (debug figures are not representative).
    pub build: &'static str,
    /// No event lost, repeated, reordered or refused, in any scenario.
    pub passed: bool,
    /// Why the run failed, one sentence each (empty when it passed).
    pub failures: Vec<String>,
    pub settings: SettingsEcho,
    pub machine: Machine,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput: Option<ThroughputScenario>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyScenario>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fanout: Option<Fanout>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub population: Option<Population>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backlog: Option<Backlog>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<Restart>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faults: Option<Faults>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip: Option<SipScenario>,
    /// Issue 5's (and issue 6's) targets that this run could judge.
    pub targets: Vec<Target>,
    /// Sums over every platform scenario.
    pub verification: Totals,
}

/// The ceiling: the same load straight to the receiver, no platform.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Baseline {
    pub throughput: Throughput,
    /// From the request sent to the receiver got it, at each rate of the sweep.
    pub latency: Vec<Latency>,
    pub verification: Verification,
}

/// Whole calls ingested as fast as they are accepted.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThroughputScenario {
    pub throughput: Throughput,
    pub resources: Resources,
    pub verification: Verification,
}

/// Whole calls ingested at fixed rates (open loop).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyScenario {
    pub sweep: Vec<Latency>,
    pub resources: Resources,
    pub verification: Verification,
}

/// 1, 10, 100 webhooks per user.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fanout {
    pub levels: Vec<FanoutLevel>,
    pub resources: Resources,
    pub verification: Verification,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FanoutLevel {
    pub webhooks_per_user: u32,
    pub users: u32,
    /// Closed loop; its ratio compares deliveries/s with the baseline's requests/s.
    pub throughput: Throughput,
    /// Open loop at a fixed rate of deliveries (reports/s = that rate / webhooks per user).
    pub latency: Latency,
}

/// 1,000 and 100,000 registered webhooks, one matching each event.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Population {
    pub levels: Vec<PopulationLevel>,
    pub resources: Resources,
    pub verification: Verification,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PopulationLevel {
    /// Webhooks registered in all.
    pub webhooks: u64,
    /// Of those, the ones events match (one per user the calls go to).
    pub matching: u64,
    /// Creating the webhooks added for this level, through the API.
    pub setup_seconds: f64,
    pub throughput: Throughput,
    /// `eventsPerSecond` over that of the first (smallest) level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_first: Option<f64>,
    /// `serve`'s peak RSS after this level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
}

/// Healthy webhooks at a fixed rate alone, then next to dead endpoints.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Faults {
    pub dead_endpoints: u32,
    /// The healthy webhooks' latency alone...
    pub alone: Latency,
    /// ...and next to the dead endpoints.
    pub next_to_dead: Latency,
    /// `nextToDead` p99 over `alone` p99.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ratio: Option<f64>,
    pub resources: Resources,
    pub verification: Verification,
}

/// Events queued while the receiver answered 503, then drained.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backlog {
    /// Reports accepted while the receiver was down, and how fast.
    pub events: u64,
    pub fill_seconds: f64,
    pub accepted_per_second: f64,
    /// Attempts the receiver answered 503.
    pub refused_attempts: u64,
    /// `serve`'s queue depth when the receiver came up.
    pub queued: u64,
    /// From the receiver up to the last delivery.
    pub drain_seconds: f64,
    pub drain_per_second: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_baseline: Option<f64>,
    pub resources: Resources,
    pub verification: Verification,
}

/// A database full of events and pending deliveries, stopped and started again.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Restart {
    /// Reports stored before the restart.
    pub stored_events: u64,
    /// Storing them: delivered ones (receiver up) and pending ones (receiver down).
    pub fill_seconds: f64,
    pub fill_per_second: f64,
    /// `serve`'s queue depth just before SIGTERM.
    pub pending: u64,
    /// The database file and its write-ahead log just before SIGTERM (what the next start
    /// opens, unless the shutdown checkpoints the log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_bytes_at_stop: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_bytes_at_stop: Option<u64>,
    /// The same just after the old process exited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_bytes_after_stop: Option<u64>,
    /// From SIGTERM to the old process's exit.
    pub stop_seconds: f64,
    /// From the new process spawned to its listening line.
    pub listening_seconds: f64,
    /// From the new process spawned to the first delivery received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_delivery_seconds: Option<f64>,
    /// From the new process spawned to the last pending delivery received.
    pub drain_seconds: f64,
    pub drain_per_second: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_baseline: Option<f64>,
    pub resources: Resources,
    pub verification: Verification,
}

/// One scenario's verification: sums over its phases, and each phase.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    #[serde(flatten)]
    pub totals: Totals,
    pub phases: Vec<PhaseCheck>,
}

/// Counts of what arrived against what was accepted.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub expected: u64,
    pub delivered: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub order_violations: u64,
    pub ingest_errors: u64,
    /// Arrivals matching no accepted report.
    pub unexpected: u64,
    /// Arrivals without a readable `event.id` and `event.state`.
    pub malformed: u64,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.expected += o.expected;
        self.delivered += o.delivered;
        self.missing += o.missing;
        self.duplicates += o.duplicates;
        self.order_violations += o.order_violations;
        self.ingest_errors += o.ingest_errors;
        self.unexpected += o.unexpected;
        self.malformed += o.malformed;
    }
}

impl Verification {
    pub fn from_check(checked: &Checked, malformed: u64) -> Verification {
        let mut totals = Totals {
            unexpected: checked.unexpected,
            malformed,
            ..Totals::default()
        };
        for c in &checked.phases {
            totals.expected += c.expected;
            totals.delivered += c.delivered;
            totals.missing += c.missing;
            totals.duplicates += c.duplicates;
            totals.order_violations += c.order_violations;
            totals.ingest_errors += c.ingest_errors;
        }
        Verification {
            totals,
            phases: checked.phases.clone(),
        }
    }

    /// One sentence per thing that went wrong in `scenario`.
    fn failures(&self, scenario: &str) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.phases {
            for (n, what) in [
                (c.missing, "deliveries missing"),
                (c.duplicates, "duplicate deliveries"),
                (c.order_violations, "deliveries out of call order"),
                (c.ingest_errors, "calls stopped by an ingestion error"),
            ] {
                if n > 0 {
                    out.push(format!("{scenario}, {}: {n} {what}", c.phase));
                }
            }
            if let Some(sample) = c.error_samples.first() {
                out.push(format!("{scenario}, {}: first error: {sample}", c.phase));
            }
        }
        let t = &self.totals;
        if t.unexpected > 0 {
            out.push(format!(
                "{scenario}: {} unexpected deliveries",
                t.unexpected
            ));
        }
        if t.malformed > 0 {
            out.push(format!(
                "{scenario}: {} deliveries without an event",
                t.malformed
            ));
        }
        out
    }
}

/// SIPp calls at rising rates, straight and through `serve --sip` (issue 8).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SipScenario {
    pub steps: Vec<SipStep>,
    /// Call reports the proxied calls should have made (8 per call), and what became of them.
    pub reports_expected: u64,
    pub reports_applied: u64,
    pub reports_refused: u64,
    /// From the last call to the last report applied (or the stall timeout).
    pub reports_wait_seconds: f64,
}

/// One rate: the same number of calls straight to the callee, then through the proxy.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SipStep {
    pub rate: f64,
    pub calls: u64,
    pub direct: SipFigures,
    pub proxied: SipFigures,
    /// Proxied minus direct, INVITE -> 200, in ms.
    pub added_p50_ms: Option<f64>,
    pub added_p99_ms: Option<f64>,
}

impl SipStep {
    pub fn new(rate: f64, calls: u64, direct: SipFigures, proxied: SipFigures) -> SipStep {
        let minus = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        SipStep {
            rate,
            calls,
            added_p50_ms: minus(proxied.p50_ms, direct.p50_ms),
            added_p99_ms: minus(proxied.p99_ms, direct.p99_ms),
            direct,
            proxied,
        }
    }

    /// Every call went through without a SIPp failure.
    pub fn clean(&self) -> bool {
        self.proxied.failed == 0 && self.proxied.successful == self.calls
    }
}

/// What SIPp saw in one run: calls, and INVITE -> 200 in ms.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SipFigures {
    pub successful: u64,
    pub failed: u64,
    pub samples: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl Report {
    pub fn new(machine: Machine, settings: SettingsEcho) -> Report {
        Report {
            callhook_version: env!("CARGO_PKG_VERSION"),
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            passed: false,
            failures: Vec::new(),
            settings,
            machine,
            baseline: None,
            throughput: None,
            latency: None,
            fanout: None,
            population: None,
            backlog: None,
            restart: None,
            faults: None,
            sip: None,
            targets: Vec::new(),
            verification: Totals::default(),
        }
    }

    /// Each scenario's verification, with its name.
    pub fn verifications(&self) -> Vec<(Scenario, &Verification)> {
        let all = [
            (
                Scenario::Baseline,
                self.baseline.as_ref().map(|b| &b.verification),
            ),
            (
                Scenario::Throughput,
                self.throughput.as_ref().map(|s| &s.verification),
            ),
            (
                Scenario::Latency,
                self.latency.as_ref().map(|s| &s.verification),
            ),
            (
                Scenario::Fanout,
                self.fanout.as_ref().map(|s| &s.verification),
            ),
            (
                Scenario::Population,
                self.population.as_ref().map(|s| &s.verification),
            ),
            (
                Scenario::Backlog,
                self.backlog.as_ref().map(|s| &s.verification),
            ),
            (
                Scenario::Restart,
                self.restart.as_ref().map(|s| &s.verification),
            ),
            (
                Scenario::Faults,
                self.faults.as_ref().map(|s| &s.verification),
            ),
        ];
        all.into_iter().filter_map(|(s, v)| Some((s, v?))).collect()
    }

    /// Ratios to the baseline, the verdict, the targets.
    pub fn conclude(&mut self) {
        targets::fill_ratios(self);
        let mut totals = Totals::default();
        let mut failures = Vec::new();
        for (scenario, v) in self.verifications() {
            if scenario != Scenario::Baseline {
                totals.add(&v.totals);
            }
            failures.extend(v.failures(scenario.name()));
        }
        if let Some(sip) = &self.sip
            && (sip.reports_applied != sip.reports_expected || sip.reports_refused > 0)
        {
            failures.push(format!(
                "sip: {} of {} call reports applied, {} refused or failed",
                sip.reports_applied, sip.reports_expected, sip.reports_refused
            ));
        }
        if self.verifications().is_empty() && self.sip.is_none() {
            failures.push("no scenario ran".into());
        }
        self.verification = totals;
        self.passed = failures.is_empty();
        self.failures = failures;
        self.targets = targets::judge(self);
    }
}
