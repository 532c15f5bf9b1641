//! The human-readable form of a [`Report`]: a section per scenario that ran, one row per figure
//! with its ratio to the baseline where that means something (for latencies, each percentile over
//! the baseline's at the same rate), then each scenario's resources and verification, and issue
//! 5's targets with met or MISSED.

use super::context::SettingsEcho;
use super::figures::{Latency, Percentiles, Ratios, Resources, Throughput};
use super::report::Report;
use super::resources::CpuUse;
use super::store::{StoreChoice, describe};
use super::targets::{megabytes, thousands};

/// A section heading, or a row: figure, value, ratio to the baseline.
enum Row {
    Heading(String),
    Figure(String, String, String),
}

#[derive(Default)]
struct Rows(Vec<Row>);

impl Rows {
    fn heading(&mut self, text: String) {
        self.0.push(Row::Heading(text));
    }

    fn add(&mut self, figure: String, value: String, ratio: String) {
        self.0
            .push(Row::Figure(format!("  {figure}"), value, ratio));
    }

    fn info(&mut self, figure: &str, value: String) {
        self.add(figure.to_string(), value, String::new());
    }

    fn latency(&mut self, name: &str, l: &Latency) {
        let ratio = l
            .ratio_to_baseline
            .as_ref()
            .map_or(String::new(), four_ratios);
        self.add(
            format!("{name} p50/p95/p99/max"),
            four(&l.delivery_ms),
            ratio,
        );
    }

    fn throughput(&mut self, name: String, t: &Throughput, per_second: f64) {
        self.add(name, rate(per_second), ratio(t.ratio_to_baseline));
    }
}

impl Report {
    /// The table printed on stdout.
    pub fn table(&self) -> String {
        let mut r = Rows::default();
        if let Some(b) = &self.baseline {
            r.heading(
                "baseline: straight to the receiver, no platform (ms: sent -> received)".into(),
            );
            let t = &b.throughput;
            r.throughput("requests/s, closed loop".into(), t, t.events_per_second);
            r.info("CPU of the bench (cores)", cores(&t.cpu).1);
            for l in &b.latency {
                r.latency(&format!("{}/s", thousands(l.rate)), l);
            }
        }
        if let Some(t) = &self.throughput {
            let tp = &t.throughput;
            r.heading("throughput: whole calls, closed loop, one webhook per user".into());
            r.throughput(
                "events/s, first sent -> last delivered".into(),
                tp,
                tp.events_per_second,
            );
            r.info("ingestion alone: accepted/s", rate(tp.accepted_per_second));
            r.info("CPU of serve / bench (cores)", cpu_pair(&tp.cpu));
        }
        if let Some(l) = &self.latency {
            r.heading(
                "latency: open loop (ms: 202 read -> received; ingestion: sent -> 202)".into(),
            );
            for s in &l.sweep {
                let at = format!("{}/s", thousands(s.rate));
                r.latency(&at, s);
                r.info(&format!("{at} ingestion p50/p99"), pair(&s.ingest_ms));
                let lag = format!("{:.2} ms, {}", s.start_lag_ms.p99, cpu_pair(&s.cpu));
                r.info(&format!("{at} sender lag p99, CPU serve/bench"), lag);
            }
        }
        if let Some(f) = &self.fanout {
            let (users, at) = f
                .levels
                .first()
                .map_or((0, 0.0), |l| (l.users, l.latency.rate));
            r.heading(format!(
                "fanout: webhooks per user, {users} users (ms: at {} deliveries/s)",
                thousands(at)
            ));
            for l in &f.levels {
                let (n, t) = (l.webhooks_per_user, &l.throughput);
                r.throughput(
                    format!("x{n} deliveries/s, closed loop"),
                    t,
                    t.deliveries_per_second,
                );
                r.latency(&format!("x{n}"), &l.latency);
            }
        }
        if let Some(p) = &self.population {
            r.heading("population: registered webhooks, one matching each event".into());
            for l in &p.levels {
                let (n, t) = (thousands(l.webhooks as f64), &l.throughput);
                r.throughput(
                    format!("{n}: events/s, closed loop"),
                    t,
                    t.events_per_second,
                );
                let share = l
                    .ratio_to_first
                    .map_or("-".into(), |x| format!("{:.0}%", x * 100.0));
                r.info(&format!("{n}: share of the first level"), share);
                let setup = format!("{:.1} s, {}", l.setup_seconds, rss(l.peak_rss_bytes));
                r.info(&format!("{n}: registering them, peak RSS"), setup);
            }
        }
        if let Some(b) = &self.backlog {
            r.heading(format!(
                "backlog: {} events queued while the receiver answers 503",
                thousands(b.events as f64)
            ));
            r.info(
                "ingested while down: accepted/s",
                rate(b.accepted_per_second),
            );
            let queued = format!(
                "{} / {}",
                thousands(b.queued as f64),
                thousands(b.refused_attempts as f64)
            );
            r.info("queued at the end / 503s answered", queued);
            r.add(
                "drain: deliveries/s".into(),
                rate(b.drain_per_second),
                ratio(b.ratio_to_baseline),
            );
            r.info("drain: time to empty", format!("{:.2} s", b.drain_seconds));
        }
        if let Some(s) = &self.restart {
            r.heading(format!(
                "restart: {} events stored, {} deliveries pending",
                thousands(s.stored_events as f64),
                thousands(s.pending as f64)
            ));
            r.info("storing them: accepted/s", rate(s.fill_per_second));
            let mb = |b: Option<u64>| b.map_or("-".into(), megabytes);
            let files = format!("{} + {}", mb(s.db_bytes_at_stop), mb(s.wal_bytes_at_stop));
            r.info("database + WAL at SIGTERM", files);
            r.info("SIGTERM -> exit", format!("{:.3} s", s.stop_seconds));
            r.info("WAL after exit", mb(s.wal_bytes_after_stop));
            r.info(
                "spawn -> listening",
                format!("{:.3} s", s.listening_seconds),
            );
            let first = s
                .first_delivery_seconds
                .map_or("none".into(), |x| format!("{x:.3} s"));
            r.info("spawn -> first delivery", first);
            r.info(
                "spawn -> all pending delivered",
                format!("{:.2} s", s.drain_seconds),
            );
            r.add(
                "drain: deliveries/s".into(),
                rate(s.drain_per_second),
                ratio(s.ratio_to_baseline),
            );
        }
        if let Some(f) = &self.faults {
            r.heading(format!(
                "faults: healthy webhooks alone, then next to {} dead endpoints (ms: at {}/s)",
                f.dead_endpoints,
                thousands(f.alone.rate)
            ));
            r.latency("alone", &f.alone);
            r.latency(
                &format!("next to {} dead", f.dead_endpoints),
                &f.next_to_dead,
            );
            let x = f.p99_ratio.map_or("-".into(), |x| format!("{x:.2}"));
            r.info("p99 next to them over p99 alone", x);
        }
        if let Some(sip) = &self.sip {
            r.heading(
                "sip: SIPp calls straight / through serve --sip (ms: INVITE sent -> 200 taken in)"
                    .into(),
            );
            let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
            for s in &sip.steps {
                let at = format!("{}/s", thousands(s.rate));
                for (how, f) in [("straight", &s.direct), ("proxied", &s.proxied)] {
                    r.info(
                        &format!("{at} {how}: ok/failed, p50/p99/max"),
                        format!(
                            "{}/{}, {} / {} / {}",
                            f.successful,
                            f.failed,
                            ms(f.p50_ms),
                            ms(f.p99_ms),
                            ms(f.max_ms)
                        ),
                    );
                }
                r.info(
                    &format!("{at} added p50/p99"),
                    format!("{} / {}", ms(s.added_p50_ms), ms(s.added_p99_ms)),
                );
            }
            r.info(
                "call reports applied/expected, refused",
                format!(
                    "{}/{}, {} (waited {:.1} s)",
                    sip.reports_applied,
                    sip.reports_expected,
                    sip.reports_refused,
                    sip.reports_wait_seconds
                ),
            );
        }
        let resources = self.resources();
        if !resources.is_empty() {
            r.heading(resources_heading(&self.settings));
            for (name, res) in resources {
                r.info(name, resource_line(res));
            }
        }
        r.heading(
            "verification: expected / delivered / missing / duplicates / out of order".into(),
        );
        for (scenario, v) in self.verifications() {
            let t = &v.totals;
            let odd = t.ingest_errors + t.unexpected + t.malformed;
            let extra = if odd > 0 {
                format!(" (+{odd} errors or unexpected)")
            } else {
                String::new()
            };
            let counts = format!(
                "{} / {} / {} / {} / {}{extra}",
                t.expected, t.delivered, t.missing, t.duplicates, t.order_violations
            );
            r.info(scenario.name(), counts);
        }
        render(&r.0, self)
    }

    fn resources(&self) -> Vec<(&'static str, &Resources)> {
        let all = [
            ("throughput", self.throughput.as_ref().map(|s| &s.resources)),
            ("latency", self.latency.as_ref().map(|s| &s.resources)),
            ("fanout", self.fanout.as_ref().map(|s| &s.resources)),
            ("population", self.population.as_ref().map(|s| &s.resources)),
            ("backlog", self.backlog.as_ref().map(|s| &s.resources)),
            ("restart", self.restart.as_ref().map(|s| &s.resources)),
            ("faults", self.faults.as_ref().map(|s| &s.resources)),
        ];
        all.into_iter()
            .filter_map(|(name, r)| Some((name, r?)))
            .collect()
    }
}

fn render(rows: &[Row], report: &Report) -> String {
    let header = ("figure", "value", "vs baseline");
    let (mut w0, mut w1, mut w2) = (header.0.len(), header.1.len(), header.2.len());
    for row in rows {
        if let Row::Figure(f, v, r) = row {
            w0 = w0.max(f.chars().count());
            w1 = w1.max(v.chars().count());
            w2 = w2.max(r.chars().count());
        }
    }
    let m = &report.machine;
    let mut out = format!(
        "callhook bench {} ({} build) on {} CPUs{}{}; {}\n",
        report.callhook_version,
        report.build,
        m.cpus,
        m.cpu_model
            .as_ref()
            .map_or(String::new(), |c| format!(", {c}")),
        m.load_average.map_or(String::new(), |l| format!(
            ", load average {l:.2} at the start"
        )),
        describe(report.settings.store, report.settings.nodes)
    );
    out.push_str(&format!(
        "{:<w0$}  {:>w1$}  {:>w2$}\n",
        header.0, header.1, header.2
    ));
    for row in rows {
        match row {
            Row::Heading(text) => out.push_str(text),
            Row::Figure(f, v, r) => {
                out.push_str(format!("{f:<w0$}  {v:>w1$}  {r:>w2$}").trim_end());
            }
        }
        out.push('\n');
    }
    if !report.targets.is_empty() {
        out.push_str("targets of issues 5 and 6 (figures: a missed one does not fail the run)\n");
        for t in &report.targets {
            let verdict = if t.met { "met" } else { "MISSED" };
            out.push_str(&format!(
                "  {verdict:<6}  {}: {}: {} (target {})\n",
                t.scenario, t.figure, t.value, t.target
            ));
        }
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

/// The heading of the resources rows; with PostgreSQL and several nodes it says what the
/// figures cover.
fn resources_heading(settings: &SettingsEcho) -> String {
    let mut heading =
        String::from("serve: peak RSS / CPU s per 1,000 events / database bytes per event");
    if settings.nodes > 1 {
        heading.push_str(&format!(
            " (RSS: the largest of {} nodes; CPU: all of them)",
            settings.nodes
        ));
    }
    if settings.store != StoreChoice::Sqlite.name() {
        heading.push_str("; database: pg_database_size growth, no WAL");
    }
    heading
}

/// `12,345/s`.
fn rate(per_second: f64) -> String {
    format!("{}/s", thousands(per_second))
}

fn ratio(r: Option<f64>) -> String {
    r.map_or(String::new(), |r| format!("{r:.2}"))
}

fn four(p: &Percentiles) -> String {
    format!("{:.2} / {:.2} / {:.2} / {:.2}", p.p50, p.p95, p.p99, p.max)
}

fn four_ratios(r: &Ratios) -> String {
    format!("{:.1} / {:.1} / {:.1} / {:.1}", r.p50, r.p95, r.p99, r.max)
}

fn pair(p: &Percentiles) -> String {
    format!("{:.2} / {:.2}", p.p50, p.p99)
}

fn rss(bytes: Option<u64>) -> String {
    bytes.map_or("-".into(), megabytes)
}

fn resource_line(r: &Resources) -> String {
    let cpu = r
        .serve_cpu_seconds_per_1000_events
        .map_or("-".into(), |c| format!("{c:.3} s"));
    let db = r
        .db_bytes_per_event
        .map_or("-".into(), |b| format!("{} B", thousands(b)));
    let wal = match (r.wal_bytes, r.db_bytes) {
        (Some(wal), Some(all)) if all > 0 => {
            format!(" ({:.0}% WAL)", 100.0 * wal as f64 / all as f64)
        }
        _ => String::new(),
    };
    format!("{} / {cpu} / {db}{wal}", rss(r.peak_rss_bytes))
}

/// `serve / bench` cores, `-` where unknown.
fn cpu_pair(cpu: &CpuUse) -> String {
    let (s, b) = cores(cpu);
    format!("{s} / {b}")
}

fn cores(cpu: &CpuUse) -> (String, String) {
    let show = |c: Option<f64>| c.map_or("-".to_string(), |c| format!("{c:.2}"));
    (show(cpu.serve_cores()), show(cpu.bench_cores()))
}
