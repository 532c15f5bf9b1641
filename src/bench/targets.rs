//! Issue 5's targets (and issue 6's for the faults scenario), judged on a finished [`Report`], and the ratios to the baseline that the
//! figures carry. Figures, not timed tests: a missed target never fails the run.

use super::figures::Latency;
use super::report::Report;
use serde::Serialize;

/// Sustained end-to-end throughput, as a share of the baseline...
pub const THROUGHPUT_SHARE: f64 = 0.5;
/// ...and in events/s.
pub const THROUGHPUT_EVENTS: f64 = 20_000.0;
/// The latency targets hold at this rate...
pub const LATENCY_RATE: f64 = 1_000.0;
/// ...p50 under this many ms...
pub const P50_MS: f64 = 2.0;
/// ...and p99 under this many.
pub const P99_MS: f64 = 5.0;
/// The largest population's throughput at least this share of the smallest's.
pub const POPULATION_SHARE: f64 = 0.9;
/// Peak RSS of `serve` at the largest population, in bytes (100 MB).
pub const PEAK_RSS_BYTES: u64 = 100_000_000;
/// Restart: listening, and delivering again, within this many seconds.
pub const RESTART_SECONDS: f64 = 1.0;
/// Faults: the healthy webhooks' p99 next to dead endpoints at most this many times their p99
/// alone.
pub const FAULTS_P99_RATIO: f64 = 2.0;

/// One target and how this run did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub scenario: &'static str,
    /// What is measured.
    pub figure: String,
    /// The bar, in words.
    pub target: String,
    /// This run's value, in words.
    pub value: String,
    pub met: bool,
}

/// Fills every `ratio*` field from the baseline (when it ran) and within the population sweep.
pub fn fill_ratios(report: &mut Report) {
    if let Some(population) = &mut report.population {
        let first = population
            .levels
            .first()
            .map(|l| l.throughput.events_per_second);
        for level in &mut population.levels {
            level.ratio_to_first = first
                .filter(|f| *f > 0.0)
                .map(|f| level.throughput.events_per_second / f);
        }
    }
    let Some(baseline) = report.baseline.clone() else {
        return;
    };
    let base = baseline.throughput.events_per_second;
    let ratio = |x: f64| (base > 0.0).then(|| x / base);
    let latency_ratio = |l: &mut Latency| {
        l.ratio_to_baseline = baseline
            .latency
            .iter()
            .find(|b| (b.rate - l.rate).abs() < 0.5)
            .and_then(|b| l.delivery_ms.over(&b.delivery_ms));
    };
    if let Some(t) = &mut report.throughput {
        t.throughput.ratio_to_baseline = ratio(t.throughput.events_per_second);
    }
    if let Some(l) = &mut report.latency {
        l.sweep.iter_mut().for_each(latency_ratio);
    }
    if let Some(f) = &mut report.fanout {
        for level in &mut f.levels {
            level.throughput.ratio_to_baseline = ratio(level.throughput.deliveries_per_second);
            latency_ratio(&mut level.latency);
        }
    }
    if let Some(p) = &mut report.population {
        for level in &mut p.levels {
            level.throughput.ratio_to_baseline = ratio(level.throughput.events_per_second);
        }
    }
    if let Some(b) = &mut report.backlog {
        b.ratio_to_baseline = ratio(b.drain_per_second);
    }
    if let Some(r) = &mut report.restart {
        r.ratio_to_baseline = ratio(r.drain_per_second);
    }
}

/// The targets this run's scenarios can judge.
pub fn judge(report: &Report) -> Vec<Target> {
    let mut out = Vec::new();
    if let Some(t) = &report.throughput {
        let eps = t.throughput.events_per_second;
        if let Some(r) = t.throughput.ratio_to_baseline {
            out.push(Target {
                scenario: "throughput",
                figure: "end-to-end events/s over the baseline's".into(),
                target: format!(">= {:.0}%", THROUGHPUT_SHARE * 100.0),
                value: format!("{:.0}%", r * 100.0),
                met: r >= THROUGHPUT_SHARE,
            });
        }
        out.push(Target {
            scenario: "throughput",
            figure: "end-to-end events/s".into(),
            target: format!(">= {}", thousands(THROUGHPUT_EVENTS)),
            value: thousands(eps),
            met: eps >= THROUGHPUT_EVENTS,
        });
    }
    if let Some(l) = report
        .latency
        .as_ref()
        .and_then(|l| l.sweep.iter().find(|s| (s.rate - LATENCY_RATE).abs() < 0.5))
    {
        let rate = thousands(LATENCY_RATE);
        for (name, value, bar) in [
            ("p50", l.delivery_ms.p50, P50_MS),
            ("p99", l.delivery_ms.p99, P99_MS),
        ] {
            out.push(Target {
                scenario: "latency",
                figure: format!("{name} at {rate}/s, 202 -> receiver"),
                target: format!("< {bar} ms"),
                value: format!("{value:.2} ms"),
                met: value < bar,
            });
        }
    }
    if let Some(p) = &report.population
        && let (Some(first), Some(last)) = (p.levels.first(), p.levels.last())
        && p.levels.len() > 1
    {
        let r = last.ratio_to_first.unwrap_or(0.0);
        out.push(Target {
            scenario: "population",
            figure: format!(
                "events/s at {} webhooks over at {}",
                thousands(last.webhooks as f64),
                thousands(first.webhooks as f64)
            ),
            target: format!(">= {:.0}%", POPULATION_SHARE * 100.0),
            value: format!("{:.0}%", r * 100.0),
            met: r >= POPULATION_SHARE,
        });
        if let Some(rss) = last.peak_rss_bytes {
            out.push(Target {
                scenario: "population",
                figure: format!(
                    "serve peak RSS at {} webhooks",
                    thousands(last.webhooks as f64)
                ),
                target: format!("< {} MB", PEAK_RSS_BYTES / 1_000_000),
                value: megabytes(rss),
                met: rss < PEAK_RSS_BYTES,
            });
        }
    }
    if let Some(r) = &report.restart {
        let pending = thousands(r.pending as f64);
        out.push(Target {
            scenario: "restart",
            figure: format!("{pending} pending, spawn -> listening"),
            target: format!("< {RESTART_SECONDS} s"),
            value: format!("{:.3} s", r.listening_seconds),
            met: r.listening_seconds < RESTART_SECONDS,
        });
        let first = r.first_delivery_seconds;
        out.push(Target {
            scenario: "restart",
            figure: format!("{pending} pending, spawn -> first delivery"),
            target: format!("< {RESTART_SECONDS} s"),
            value: first.map_or("none".into(), |s| format!("{s:.3} s")),
            met: first.is_some_and(|s| s < RESTART_SECONDS),
        });
    }
    if let Some(sip) = &report.sip {
        use super::sip::{TARGET_ADDED_P99_MS, TARGET_RATE};
        let best = sip
            .steps
            .iter()
            .filter(|s| s.clean())
            .map(|s| s.rate)
            .fold(0.0, f64::max);
        out.push(Target {
            scenario: "sip",
            figure: "call setups/s through the proxy without a SIPp failure (issue 8)".into(),
            target: format!(">= {}", thousands(TARGET_RATE)),
            value: thousands(best),
            met: best >= TARGET_RATE,
        });
        if let Some(step) = sip.steps.iter().find(|s| s.rate == TARGET_RATE) {
            let added = step.added_p99_ms.unwrap_or(f64::INFINITY);
            out.push(Target {
                scenario: "sip",
                figure: format!(
                    "added INVITE->200 p99 at {}/s (issue 8)",
                    thousands(TARGET_RATE)
                ),
                target: format!("< {TARGET_ADDED_P99_MS} ms"),
                value: format!("{added:.3} ms"),
                met: added < TARGET_ADDED_P99_MS,
            });
        }
    }
    if let Some(f) = &report.faults {
        let x = f.p99_ratio.unwrap_or(f64::INFINITY);
        out.push(Target {
            scenario: "faults",
            figure: format!(
                "healthy p99 next to {} dead endpoints over alone (issue 6)",
                f.dead_endpoints
            ),
            target: format!("<= {FAULTS_P99_RATIO}x"),
            value: format!("{x:.2}x"),
            met: x <= FAULTS_P99_RATIO,
        });
    }
    out
}

/// `12,345`.
pub fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `26.3 MB` (decimal megabytes, as the RSS target is stated).
pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_grouped_by_thousands() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(megabytes(26_300_000), "26.3 MB");
    }
}
