//! One scenario's books ([`Tally`]): its ledger of what was accepted, the phases it measured and
//! what they cost. A phase is: take a [`Mark`], drive the load, then [`Tally::settle`]: record
//! what was accepted, wait for its deliveries, and measure ([`Measured`]).

use super::load::{self, Driven, Sink};
use super::report::Verification;
use super::resources::{CpuMark, CpuUse};
use super::session::{Group, Rig};
use super::verify::{Ledger, PhaseCheck, Since};
use std::sync::Arc;
use std::time::Duration;

/// How long after a scenario the receiver keeps listening for late repeats.
const SETTLE: Duration = Duration::from_millis(250);
/// In open-loop phases, the time between the reports of one call.
const STEP_SPACING: Duration = Duration::from_millis(100);

/// Where a phase started: CPU counters and deliveries received so far.
pub struct Mark {
    cpu: CpuMark,
    pub received: usize,
}

impl Mark {
    /// CPU used since the mark.
    pub fn cpu_used(&self) -> CpuUse {
        self.cpu.used()
    }
}

/// A phase's load, what it cost and how its deliveries went.
pub struct Measured {
    pub driven: Driven,
    pub cpu: CpuUse,
    pub check: PhaseCheck,
}

/// One scenario's books: what it expects, and what its phases cost.
pub struct Tally<'r> {
    pub rig: &'r Rig<'r>,
    ledger: Ledger,
    since: Since,
    /// The receiver's count and malformed count when the scenario began.
    first_arrival: usize,
    malformed_before: u64,
    events: u64,
    serve_cpu: Option<f64>,
    bench_cpu: Option<f64>,
}

impl<'r> Tally<'r> {
    pub fn new(rig: &'r Rig<'r>, since: Since) -> Tally<'r> {
        Tally {
            rig,
            ledger: Ledger::default(),
            since,
            first_arrival: rig.receiver.count(),
            malformed_before: rig.receiver.malformed(),
            events: 0,
            serve_cpu: Some(0.0),
            bench_cpu: Some(0.0),
        }
    }

    /// A mark for a phase of the `serve` nodes `serve_pids` (none for the baseline).
    pub fn mark(&self, serve_pids: &[u32]) -> Mark {
        Mark {
            cpu: CpuMark::now(serve_pids),
            received: self.rig.receiver.count(),
        }
    }

    /// Records what `driven` got accepted; returns the deliveries that makes.
    pub fn record(&mut self, label: &str, group: &Group, driven: &Driven) -> u64 {
        let before = self.ledger.expected(label);
        for outcome in &driven.outcomes {
            let webhooks = group.webhooks_of(outcome.user);
            self.ledger.add(label, outcome, webhooks, self.since);
        }
        self.ledger.expected(label) - before
    }

    /// Waits until the receiver has had `expected` more deliveries than at `from` (or nothing
    /// arrived for the stall timeout), and checks what arrived since then for `label`.
    pub async fn await_deliveries(&self, label: &str, from: usize, expected: u64) -> PhaseCheck {
        let receiver = &self.rig.receiver;
        let stall = self.rig.settings.stall_timeout;
        let mut target = from + expected as usize;
        let mut complete = receiver.wait_for(target, stall).await;
        // Repeats count towards the target too: go on while something is still missing.
        let mut check = self.check_since(label, from);
        while complete && check.missing > 0 {
            target = receiver.count() + check.missing as usize;
            complete = receiver.wait_for(target, stall).await;
            check = self.check_since(label, from);
        }
        if check.missing > 0 {
            tracing::warn!(
                phase = label,
                expected,
                missing = check.missing,
                "gave up waiting for deliveries"
            );
        }
        check
    }

    fn check_since(&self, label: &str, from: usize) -> PhaseCheck {
        let arrivals = self.rig.receiver.arrivals_since(from);
        let checked = self.ledger.check(&arrivals);
        checked.phase(label).cloned().unwrap_or_default()
    }

    /// Counts a phase's events and CPU towards the scenario's resources.
    pub fn charge(&mut self, events: u64, cpu: &CpuUse) {
        self.events += events;
        self.serve_cpu = self.serve_cpu.zip(cpu.serve_seconds).map(|(a, b)| a + b);
        self.bench_cpu = self.bench_cpu.zip(cpu.bench_seconds).map(|(a, b)| a + b);
    }

    /// Record, wait, measure: the end of an ordinary phase.
    pub async fn settle(
        &mut self,
        label: &str,
        group: &Group,
        driven: Driven,
        mark: Mark,
    ) -> Measured {
        let expected = self.record(label, group, &driven);
        let check = self.await_deliveries(label, mark.received, expected).await;
        let cpu = mark.cpu.used();
        self.charge(driven.accepted(), &cpu);
        Measured { driven, cpu, check }
    }

    /// Drives `calls` whole calls closed-loop into `sink` and settles the phase.
    pub async fn closed(
        &mut self,
        label: &str,
        group: &Group,
        sink: Arc<Sink>,
        calls: u32,
        pids: &[u32],
    ) -> Measured {
        let mark = self.mark(pids);
        let settings = self.rig.settings;
        let driven =
            load::closed_loop(&self.rig.client, sink, label, calls, settings.concurrency).await;
        self.settle(label, group, driven, mark).await
    }

    /// Drives `calls` whole calls open-loop at `rate` reports/s into `sink` and settles the phase.
    pub async fn open(
        &mut self,
        label: &str,
        group: &Group,
        sink: Arc<Sink>,
        calls: u32,
        rate: f64,
        pids: &[u32],
    ) -> Measured {
        let mark = self.mark(pids);
        let driven =
            load::open_loop(&self.rig.client, sink, label, calls, rate, STEP_SPACING).await;
        self.settle(label, group, driven, mark).await
    }

    /// The final check of everything the scenario sent; lets the receiver forget its arrivals.
    pub async fn verify(self) -> (Verification, TallyTotals) {
        tokio::time::sleep(SETTLE).await;
        let receiver = &self.rig.receiver;
        let arrivals = receiver.arrivals_since(self.first_arrival);
        let checked = self.ledger.check(&arrivals);
        let malformed = receiver.malformed() - self.malformed_before;
        receiver.forget_before(self.first_arrival + arrivals.len());
        let totals = TallyTotals {
            events: self.events,
            serve_cpu: self.serve_cpu,
            bench_cpu: self.bench_cpu,
        };
        (Verification::from_check(&checked, malformed), totals)
    }
}

/// What a scenario's measured phases added up to.
pub struct TallyTotals {
    pub events: u64,
    pub serve_cpu: Option<f64>,
    pub bench_cpu: Option<f64>,
}
