//! The human-readable form of a [`Report`]: one row per figure, with its ratio to the baseline
//! where that means something and the bar it is held to where there is one.

use super::report::{
    Percentiles, Report, TARGET_EVENTS_PER_SECOND, TARGET_P99_MS, TARGET_P99_RATE,
};
use super::resources::CpuUse;

/// One table row: figure, value, ratio to the baseline, target.
struct Row(String, String, String, String);

impl Report {
    /// The table printed on stdout.
    pub fn table(&self) -> String {
        let mut rows = Vec::new();
        let mut row = |figure: &str, value: String, ratio: Option<f64>, target: String| {
            let ratio = ratio.map_or(String::new(), |r| format!("{r:.2}"));
            rows.push(Row(figure.to_string(), value, ratio, target));
        };
        let b = &self.baseline;
        let t = &self.throughput;
        let l = &self.latency;
        let v = &self.verification;
        row(
            "baseline: events/s posted straight to the receiver",
            rate(b.events_per_second),
            Some(1.0),
            String::new(),
        );
        row(
            "  CPU of the bench process (cores)",
            cores(&b.cpu).1,
            None,
            String::new(),
        );
        row(
            "end to end: events/s, first ingest to last delivery",
            rate(t.events_per_second),
            t.ratio_to_baseline,
            bar(
                format!(">= {}", rate(TARGET_EVENTS_PER_SECOND)),
                t.events_per_second >= TARGET_EVENTS_PER_SECOND,
            ),
        );
        row(
            "  ingestion alone: reports accepted/s",
            rate(t.accepted_per_second),
            (b.events_per_second > 0.0).then(|| t.accepted_per_second / b.events_per_second),
            String::new(),
        );
        let (serve, bench) = cores(&t.cpu);
        row(
            "  CPU of serve / of the bench (cores)",
            format!("{serve} / {bench}"),
            None,
            String::new(),
        );
        let heading = format!(
            "latency at {} events/s, 202 read -> receiver got it",
            thousands(l.rate)
        );
        row(&heading, String::new(), None, String::new());
        let at_bar = (l.rate - TARGET_P99_RATE).abs() < f64::EPSILON;
        for (name, value) in [("p50", l.delivery_ms.p50), ("p95", l.delivery_ms.p95)] {
            row(&format!("  {name}"), ms(value), None, String::new());
        }
        let p99_target = if at_bar {
            bar(
                format!("< {TARGET_P99_MS} ms"),
                l.delivery_ms.p99 < TARGET_P99_MS,
            )
        } else {
            String::new()
        };
        row("  p99", ms(l.delivery_ms.p99), None, p99_target);
        row("  max", ms(l.delivery_ms.max), None, String::new());
        row(
            "  ingestion p50 / p99 (sent -> 202)",
            pair(&l.ingest_ms),
            None,
            String::new(),
        );
        row(
            "  generator start lag p99 / max",
            pair_max(&l.start_lag_ms),
            None,
            String::new(),
        );
        let (serve, bench) = cores(&l.cpu);
        row(
            "  CPU of serve / of the bench (cores)",
            format!("{serve} / {bench}"),
            None,
            String::new(),
        );
        row(
            "verification (end to end and latency phases)",
            String::new(),
            None,
            String::new(),
        );
        row(
            "  deliveries expected / delivered",
            format!("{} / {}", v.expected, v.delivered),
            None,
            String::new(),
        );
        row(
            "  missing / duplicates / out of order",
            format!("{} / {} / {}", v.missing, v.duplicates, v.order_violations),
            None,
            "0 / 0 / 0".into(),
        );
        row(
            "  ingestion errors / unexpected deliveries",
            format!("{} / {}", v.ingest_errors, v.unexpected + v.malformed),
            None,
            "0 / 0".into(),
        );
        if let Some(c) = &self.serve.delivery_counters {
            row(
                "  serve's counters: delivered / retried / failed",
                format!("{} / {} / {}", c.delivered, c.retried, c.failed),
                None,
                String::new(),
            );
        }
        if let Some(bytes) = self.serve.peak_rss_bytes {
            row(
                "serve peak RSS",
                format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
                None,
                String::new(),
            );
        }
        render(&rows, self)
    }
}

fn render(rows: &[Row], report: &Report) -> String {
    let header = Row(
        "figure".into(),
        "value".into(),
        "vs baseline".into(),
        "target".into(),
    );
    let width = |f: fn(&Row) -> &String| {
        rows.iter()
            .chain([&header])
            .map(|r| f(r).chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(|r| &r.0), width(|r| &r.1), width(|r| &r.2));
    let mut out = String::new();
    let m = &report.machine;
    out.push_str(&format!(
        "callhook bench {} ({} build) on {} CPUs{}{}\n",
        report.callhook_version,
        report.build,
        m.cpus,
        m.cpu_model
            .as_ref()
            .map_or(String::new(), |c| format!(", {c}")),
        m.load_average.map_or(String::new(), |l| format!(
            ", load average {l:.2} at the start"
        ))
    ));
    for r in [&header].into_iter().chain(rows) {
        let line = format!("{:<w0$}  {:>w1$}  {:>w2$}  {}", r.0, r.1, r.2, r.3);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if report.passed {
        out.push_str("RESULT: PASSED (nothing lost, repeated or reordered)\n");
    } else {
        out.push_str("RESULT: FAILED\n");
        for f in &report.failures {
            out.push_str(&format!("  - {f}\n"));
        }
    }
    out
}

/// `12,345/s`.
fn rate(per_second: f64) -> String {
    format!("{}/s", thousands(per_second))
}

/// `12,345`.
fn thousands(n: f64) -> String {
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

fn ms(value: f64) -> String {
    format!("{value:.2} ms")
}

fn pair(p: &Percentiles) -> String {
    format!("{:.2} / {:.2} ms", p.p50, p.p99)
}

fn pair_max(p: &Percentiles) -> String {
    format!("{:.2} / {:.2} ms", p.p99, p.max)
}

/// `(serve, bench)` cores, `-` where unknown.
fn cores(cpu: &CpuUse) -> (String, String) {
    let show = |c: Option<f64>| c.map_or("-".to_string(), |c| format!("{c:.2}"));
    (show(cpu.serve_cores()), show(cpu.bench_cores()))
}

fn bar(target: String, met: bool) -> String {
    format!("{target} ({})", if met { "met" } else { "MISSED" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_grouped_by_thousands() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(rate(5000.0), "5,000/s");
    }
}
