//! What a run did: per call, what the server accepted; over the run, calls and events by user and
//! by the state each call was left in, errors, and ingestion latency percentiles. Both the JSON
//! form (`--json`) and the text table are built here, from the plan and the driver's results.
//!
//! Pure: no I/O, no clock.

use super::people;
use super::plan::Plan;
use crate::domain::CallState;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// How many error messages the summary keeps (the count covers them all).
const ERROR_SAMPLES: usize = 5;

/// What the server made of one planned call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallResult {
    /// The planned call's number.
    pub number: u32,
    /// Reports answered 202 (each one an event).
    pub accepted: u32,
    /// The state of the last accepted report: where the call was left on the server.
    pub reached: Option<CallState>,
    /// Why the call stopped before its last report.
    pub error: Option<String>,
    /// From sending each answered report to reading its answer.
    pub latencies: Vec<Duration>,
}

/// Ingestion latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// One user's share of the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSummary {
    pub user_id: String,
    pub account_id: String,
    /// Calls the server holds for this user (their first report was accepted).
    pub calls: u32,
    /// Reports accepted for this user: events sent to its webhooks.
    pub events: u64,
    /// Calls by the state they were left in.
    pub by_state: BTreeMap<&'static str, u32>,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub seed: u64,
    pub plan_hash: String,
    /// The run tag in every external id (`sim-{run}-{n}`).
    pub run: String,
    pub planned: u32,
    pub accounts: u32,
    /// Calls the server holds (their first report was accepted).
    pub calls: u32,
    /// Calls that reached their final state.
    pub completed: u32,
    /// Reports accepted (202): one event each.
    pub events: u64,
    /// Calls by the state they were left in (every final state is listed, even at 0).
    pub by_state: BTreeMap<&'static str, u32>,
    /// Completed answered calls that were put on hold at least once.
    pub held: u32,
    /// Completed answered calls that were transferred (went through DETACHED).
    pub transferred: u32,
    /// Calls stopped by a refused report or a failed request.
    pub errors: u32,
    /// The first few error messages.
    pub error_samples: Vec<String>,
    pub latency_ms: Latency,
    pub elapsed_ms: u64,
    pub users: Vec<UserSummary>,
}

const FINAL: [CallState; 4] = [
    CallState::Answered,
    CallState::Missed,
    CallState::Rejected,
    CallState::Cancelled,
];

fn empty_states() -> BTreeMap<&'static str, u32> {
    FINAL.iter().map(|s| (s.as_str(), 0)).collect()
}

impl Summary {
    /// Adds up `results` (any order, at most one per planned call) against `plan`.
    pub fn new(plan: &Plan, run: &str, results: &[CallResult], elapsed: Duration) -> Summary {
        let mut users: Vec<UserSummary> = (1..=plan.settings.users)
            .map(|k| UserSummary {
                user_id: people::user_id(k),
                account_id: people::account_id(people::account_of(k, plan.settings.accounts)),
                calls: 0,
                events: 0,
                by_state: empty_states(),
            })
            .collect();
        let mut summary = Summary {
            seed: plan.settings.seed,
            plan_hash: plan.hash(),
            run: run.to_string(),
            planned: plan.settings.calls,
            accounts: plan.settings.accounts,
            calls: 0,
            completed: 0,
            events: 0,
            by_state: empty_states(),
            held: 0,
            transferred: 0,
            errors: 0,
            error_samples: Vec::new(),
            latency_ms: Latency::default(),
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            users: Vec::new(),
        };
        let mut latencies = Vec::new();
        for result in results {
            let index = (result.number as usize).checked_sub(1);
            let Some(call) = index.and_then(|i| plan.calls.get(i)) else {
                continue;
            };
            latencies.extend_from_slice(&result.latencies);
            if let Some(error) = &result.error {
                summary.errors += 1;
                if summary.error_samples.len() < ERROR_SAMPLES {
                    summary.error_samples.push(error.clone());
                }
            }
            let user = &mut users[call.user as usize - 1];
            user.events += u64::from(result.accepted);
            summary.events += u64::from(result.accepted);
            let Some(reached) = result.reached else {
                continue;
            };
            user.calls += 1;
            summary.calls += 1;
            *user.by_state.entry(reached.as_str()).or_default() += 1;
            *summary.by_state.entry(reached.as_str()).or_default() += 1;
            if result.accepted as usize == call.steps.len() && reached == call.final_state() {
                summary.completed += 1;
                summary.held += u32::from(call.holds > 0);
                summary.transferred += u32::from(call.transferred);
            }
        }
        latencies.sort_unstable();
        summary.latency_ms = Latency {
            p50: percentile_ms(&latencies, 50.0),
            p99: percentile_ms(&latencies, 99.0),
            max: percentile_ms(&latencies, 100.0),
        };
        summary.users = users;
        summary
    }

    /// The summary as a text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let seconds = self.elapsed_ms as f64 / 1_000.0;
        let _ = writeln!(
            out,
            "simulated {} calls ({} completed), {} events in {seconds:.1}s",
            self.calls, self.completed, self.events
        );
        let _ = writeln!(
            out,
            "seed {}  plan {}  run {} (external ids sim-{}-1 ..)",
            self.seed, self.plan_hash, self.run, self.run
        );
        for state in FINAL {
            let n = self.by_state.get(state.as_str()).copied().unwrap_or(0);
            let extra = if state == CallState::Answered {
                format!("  ({} held, {} transferred)", self.held, self.transferred)
            } else {
                String::new()
            };
            let _ = writeln!(out, "  {:<12}{n:>7}{extra}", state.as_str());
        }
        for (state, n) in &self.by_state {
            if !FINAL.iter().any(|f| f.as_str() == *state) && *n > 0 {
                let _ = writeln!(out, "  {state:<12}{n:>7}  (left unfinished)");
            }
        }
        let _ = writeln!(out, "  {:<12}{:>7}", "errors", self.errors);
        for sample in &self.error_samples {
            let _ = writeln!(out, "    {sample}");
        }
        let l = self.latency_ms;
        let _ = writeln!(
            out,
            "ingestion latency  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            l.p50, l.p99, l.max
        );
        let (k, a) = (self.users.len(), self.accounts);
        let _ = match a {
            1 => writeln!(out, "users user-1 .. user-{k}, all in acct-1"),
            _ => writeln!(
                out,
                "users user-1 .. user-{k} in accounts acct-1 .. acct-{a} (user-k is in \
                 acct-((k-1) mod {a} + 1))"
            ),
        };
        out
    }
}

/// The nearest-rank percentile `p` (0 to 100) of sorted durations, in milliseconds.
fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let d = sorted[rank.clamp(1, sorted.len()) - 1];
    (d.as_secs_f64() * 1_000_000.0).round() / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::plan::PlanSettings;

    fn plan() -> Plan {
        Plan::generate(PlanSettings {
            calls: 40,
            rate: 10.0,
            users: 3,
            accounts: 2,
            seed: 5,
        })
    }

    fn finished(plan: &Plan) -> Vec<CallResult> {
        plan.calls
            .iter()
            .map(|c| CallResult {
                number: c.number,
                accepted: c.steps.len() as u32,
                reached: Some(c.final_state()),
                error: None,
                latencies: vec![Duration::from_millis(u64::from(c.number)); c.steps.len()],
            })
            .collect()
    }

    #[test]
    fn a_clean_run_counts_every_call_and_event_per_user() {
        let plan = plan();
        let s = Summary::new(&plan, "r1", &finished(&plan), Duration::from_secs(2));
        assert_eq!((s.calls, s.completed, s.errors), (40, 40, 0));
        assert_eq!(s.events, plan.reports() as u64);
        assert_eq!(s.users.iter().map(|u| u.calls).sum::<u32>(), 40);
        assert_eq!(s.users.iter().map(|u| u.events).sum::<u64>(), s.events);
        assert_eq!(s.by_state.values().sum::<u32>(), 40);
        assert_eq!(
            s.users
                .iter()
                .map(|u| u.account_id.as_str())
                .collect::<Vec<_>>(),
            ["acct-1", "acct-2", "acct-1"]
        );
        assert_eq!(s.latency_ms.max, 40.0);
    }

    #[test]
    fn a_refused_report_leaves_the_call_where_the_server_has_it() {
        let plan = plan();
        let mut results = finished(&plan);
        results[0] = CallResult {
            number: 1,
            accepted: 1,
            reached: Some(plan.calls[0].steps[0].state),
            error: Some("409 ILLEGAL_TRANSITION".into()),
            latencies: vec![],
        };
        let s = Summary::new(&plan, "r1", &results, Duration::ZERO);
        assert_eq!((s.calls, s.completed, s.errors), (40, 39, 1));
        assert_eq!(s.error_samples, ["409 ILLEGAL_TRANSITION"]);
        assert!(s.table().contains("left unfinished"));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&d, 50.0), 50.0);
        assert_eq!(percentile_ms(&d, 99.0), 99.0);
        assert_eq!(percentile_ms(&[], 99.0), 0.0);
    }
}
