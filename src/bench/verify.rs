//! Verification: what was accepted (the ledger) against what the receiver got (the arrivals).
//! Every accepted report must arrive exactly once at every webhook of its user, and the reports
//! of one call must arrive at a webhook in the order they were made. Each scenario keeps its own
//! ledger; a phase is named by a label (`latency 1,000/s`). Pure: no I/O, no clock.

use super::load::{CallOutcome, Step};
use super::receiver::Arrival;
use serde::Serialize;
use std::collections::HashMap;
use std::ops::Range;
use std::time::Instant;

/// Where a delivery's latency is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// The report was sent (the baseline, where sending it is delivering it).
    Sent,
    /// The report's answer was read (the platform: from the 202 on).
    Accepted,
}

/// Ingestion errors kept verbatim per phase (the rest are only counted).
const KEPT_ERRORS: usize = 5;

/// One call whose reports were (at least partly) accepted.
struct Expected {
    /// Index into `Ledger::phases`.
    phase: usize,
    webhooks: Range<u32>,
    /// Per accepted report, the instant its latency counts from (`None`: not accepted).
    accepted: [Option<Instant>; 3],
    /// Index of this call's first slot (one per webhook) in the per-check arrays.
    first_slot: usize,
}

/// Everything the bench expects to arrive.
#[derive(Default)]
pub struct Ledger {
    by_id: HashMap<Box<str>, usize>,
    calls: Vec<Expected>,
    slots: usize,
    /// Phase labels in the order they were first used.
    phases: Vec<String>,
    /// Per phase index: ingestion errors counted, and the first few kept.
    errors: HashMap<usize, (u64, Vec<String>)>,
}

/// How one phase's deliveries went.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseCheck {
    pub phase: String,
    /// Deliveries that should arrive: accepted reports times webhooks of the call's user.
    pub expected: u64,
    /// Of those, how many arrived (counted once each).
    pub delivered: u64,
    pub missing: u64,
    /// Arrivals beyond the first of the same report at the same webhook.
    pub duplicates: u64,
    /// Arrivals of a report after a later report of the same call at the same webhook.
    pub order_violations: u64,
    /// Reports the load generator could not get accepted (transport error or unexpected answer).
    pub ingest_errors: u64,
    /// The first few of those errors, verbatim.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<String>,
    /// Per delivered report: from its acceptance to its first arrival, in microseconds (0 when
    /// it arrived before the acceptance was read).
    #[serde(skip)]
    pub latencies_us: Vec<u64>,
    /// The first and the last first-arrival of the phase.
    #[serde(skip)]
    pub first_arrival: Option<Instant>,
    #[serde(skip)]
    pub last_arrival: Option<Instant>,
}

impl PhaseCheck {
    /// Nothing lost, repeated, reordered or refused.
    pub fn clean(&self) -> bool {
        self.missing == 0
            && self.duplicates == 0
            && self.order_violations == 0
            && self.ingest_errors == 0
    }
}

/// The whole check.
#[derive(Debug, Default)]
pub struct Checked {
    /// One per phase, in the order the phases were first used.
    pub phases: Vec<PhaseCheck>,
    /// Arrivals matching no accepted report (unknown id, webhook or state).
    pub unexpected: u64,
}

impl Checked {
    /// The check of the phase labelled `phase`.
    pub fn phase(&self, phase: &str) -> Option<&PhaseCheck> {
        self.phases.iter().find(|p| p.phase == phase)
    }
}

impl Ledger {
    /// Records a driven call: each accepted report is expected once at each of `webhooks`, its
    /// latency counted from `since`.
    pub fn add(&mut self, phase: &str, outcome: &CallOutcome, webhooks: Range<u32>, since: Since) {
        let index = self.phase_index(phase);
        if let Some(error) = &outcome.error {
            let (count, kept) = self.errors.entry(index).or_default();
            *count += 1;
            if kept.len() < KEPT_ERRORS {
                kept.push(error.clone());
            }
        }
        if let Some(id) = &outcome.id {
            let mut reference = outcome.accepted;
            if since == Since::Sent {
                for (r, sent) in reference.iter_mut().zip(outcome.sent) {
                    *r = r.and(sent);
                }
            }
            self.expect(phase, id.clone(), webhooks, reference);
        }
    }

    /// Expects each report with a reference time once at each of `webhooks`.
    pub fn expect(
        &mut self,
        phase: &str,
        id: Box<str>,
        webhooks: Range<u32>,
        accepted: [Option<Instant>; 3],
    ) {
        let phase = self.phase_index(phase);
        let first_slot = self.slots;
        self.slots += webhooks.len();
        self.by_id.insert(id, self.calls.len());
        self.calls.push(Expected {
            phase,
            webhooks,
            accepted,
            first_slot,
        });
    }

    /// Deliveries expected in `phase`.
    pub fn expected(&self, phase: &str) -> u64 {
        let Some(index) = self.phases.iter().position(|p| p == phase) else {
            return 0;
        };
        self.calls
            .iter()
            .filter(|c| c.phase == index)
            .map(|c| (c.accepted.iter().flatten().count() * c.webhooks.len()) as u64)
            .sum()
    }

    fn phase_index(&mut self, phase: &str) -> usize {
        match self.phases.iter().position(|p| p == phase) {
            Some(i) => i,
            None => {
                self.phases.push(phase.to_string());
                self.phases.len() - 1
            }
        }
    }

    /// Matches `arrivals` (in arrival order) against the ledger.
    pub fn check(&self, arrivals: &[Arrival]) -> Checked {
        let mut checked = Checked {
            phases: self
                .phases
                .iter()
                .map(|p| PhaseCheck {
                    phase: p.clone(),
                    ..PhaseCheck::default()
                })
                .collect(),
            unexpected: 0,
        };
        for (phase, (count, kept)) in &self.errors {
            let p = &mut checked.phases[*phase];
            p.ingest_errors = *count;
            p.error_samples = kept.clone();
        }
        for call in &self.calls {
            checked.phases[call.phase].expected +=
                (call.accepted.iter().flatten().count() * call.webhooks.len()) as u64;
        }
        // Per (call, webhook): arrivals of each step, and the latest step that arrived.
        let mut seen = vec![[0u32; 3]; self.slots];
        let mut latest: Vec<Option<Step>> = vec![None; self.slots];
        for arrival in arrivals {
            let Some(call) = self.by_id.get(&arrival.id).map(|&i| &self.calls[i]) else {
                checked.unexpected += 1;
                continue;
            };
            let (Some(step), true) = (arrival.step, call.webhooks.contains(&arrival.webhook))
            else {
                checked.unexpected += 1;
                continue;
            };
            let Some(accepted) = call.accepted[step.index()] else {
                checked.unexpected += 1;
                continue;
            };
            let phase = &mut checked.phases[call.phase];
            let slot = call.first_slot + (arrival.webhook - call.webhooks.start) as usize;
            seen[slot][step.index()] += 1;
            if seen[slot][step.index()] > 1 {
                phase.duplicates += 1;
                continue;
            }
            phase.delivered += 1;
            if latest[slot].is_some_and(|l| l > step) {
                phase.order_violations += 1;
            }
            latest[slot] = latest[slot].max(Some(step));
            let latency = arrival.at.saturating_duration_since(accepted);
            phase.latencies_us.push(latency.as_micros() as u64);
            phase.first_arrival = phase.first_arrival.or(Some(arrival.at));
            phase.last_arrival = phase.last_arrival.max(Some(arrival.at));
        }
        for phase in &mut checked.phases {
            phase.missing = phase.expected - phase.delivered;
        }
        checked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn arrival(webhook: u32, id: &str, step: Step, at: Instant) -> Arrival {
        Arrival {
            webhook,
            id: id.into(),
            step: Some(step),
            at,
        }
    }

    fn whole_call(t: Instant) -> [Option<Instant>; 3] {
        [Some(t), Some(t), Some(t)]
    }

    #[test]
    fn a_complete_ordered_run_is_clean() {
        let t = Instant::now();
        let mut ledger = Ledger::default();
        ledger.expect("throughput", "c1".into(), 0..2, whole_call(t));
        let mut arrivals = Vec::new();
        for step in Step::ALL {
            for w in 0..2 {
                arrivals.push(arrival(w, "c1", step, t + Duration::from_millis(3)));
            }
        }
        let checked = ledger.check(&arrivals);
        let p = checked.phase("throughput").expect("checked");
        assert_eq!((p.expected, p.delivered), (6, 6));
        assert!(p.clean(), "{p:?}");
        assert_eq!(checked.unexpected, 0);
        assert!(p.latencies_us.iter().all(|&l| l == 3000));
    }

    #[test]
    fn lost_repeated_and_reordered_deliveries_are_each_counted() {
        let t = Instant::now();
        let mut ledger = Ledger::default();
        ledger.expect("latency", "c1".into(), 0..1, whole_call(t));
        ledger.expect("latency", "c2".into(), 1..2, whole_call(t));
        let arrivals = [
            // c1: ANSWERED overtakes ACTIVE, RINGING twice.
            arrival(0, "c1", Step::Ringing, t),
            arrival(0, "c1", Step::Answered, t),
            arrival(0, "c1", Step::Active, t),
            arrival(0, "c1", Step::Ringing, t),
            // c2: ANSWERED never arrives; one arrival goes to a webhook of another user.
            arrival(1, "c2", Step::Ringing, t),
            arrival(1, "c2", Step::Active, t),
            arrival(0, "c2", Step::Active, t),
            arrival(1, "nobody", Step::Ringing, t),
        ];
        let checked = ledger.check(&arrivals);
        let p = checked.phase("latency").expect("checked");
        assert_eq!(p.expected, 6);
        assert_eq!(p.delivered, 5);
        assert_eq!(p.missing, 1);
        assert_eq!(p.duplicates, 1);
        assert_eq!(p.order_violations, 1);
        assert_eq!(checked.unexpected, 2);
        assert!(!p.clean());
    }

    #[test]
    fn a_delivery_before_the_acceptance_counts_as_zero_latency() {
        let t = Instant::now();
        let mut ledger = Ledger::default();
        let later = t + Duration::from_millis(5);
        ledger.expect("latency", "c".into(), 0..1, [Some(later), None, None]);
        let checked = ledger.check(&[arrival(0, "c", Step::Ringing, t)]);
        assert_eq!(checked.phases[0].latencies_us, vec![0]);
    }

    #[test]
    fn a_report_that_was_never_accepted_is_neither_expected_nor_welcome() {
        let t = Instant::now();
        let mut ledger = Ledger::default();
        let outcome = CallOutcome {
            user: 0,
            id: Some("c".into()),
            sent: [Some(t), Some(t), None],
            accepted: [Some(t), None, None],
            start_lag: Duration::ZERO,
            error: Some("ACTIVE answered 503".into()),
        };
        ledger.add("throughput", &outcome, 0..1, Since::Accepted);
        let checked = ledger.check(&[
            arrival(0, "c", Step::Ringing, t),
            arrival(0, "c", Step::Active, t),
        ]);
        let p = checked.phase("throughput").expect("checked");
        assert_eq!((p.expected, p.delivered, p.ingest_errors), (1, 1, 1));
        assert_eq!(p.error_samples, vec!["ACTIVE answered 503".to_string()]);
        assert_eq!(checked.unexpected, 1);
        assert!(!p.clean());
    }

    #[test]
    fn baseline_latency_counts_from_the_report_sent() {
        let t = Instant::now();
        let mut ledger = Ledger::default();
        let outcome = CallOutcome {
            user: 0,
            id: Some("b".into()),
            sent: [Some(t), None, None],
            accepted: [Some(t + Duration::from_millis(9)), None, None],
            start_lag: Duration::ZERO,
            error: None,
        };
        ledger.add("baseline", &outcome, 0..1, Since::Sent);
        let at = t + Duration::from_millis(2);
        let checked = ledger.check(&[arrival(0, "b", Step::Ringing, at)]);
        assert_eq!(checked.phases[0].latencies_us, vec![2000]);
        assert_eq!(checked.phases[0].expected, 1);
    }
}
