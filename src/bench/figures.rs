//! The figures a phase yields, computed from its timings ([`Driven`]), its verification
//! ([`PhaseCheck`]) and what it cost ([`CpuUse`]); and a scenario's [`Resources`].

use super::load::Driven;
use super::platform::{DbBytes, DeliveryCounters};
use super::resources::CpuUse;
use super::tally::TallyTotals;
use super::verify::PhaseCheck;
use serde::Serialize;
use std::time::Duration;

/// A closed-loop phase: events/s from the first report sent to the last delivery received.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throughput {
    /// Reports accepted.
    pub events: u64,
    /// Deliveries received (reports times webhooks per user).
    pub deliveries: u64,
    pub seconds: f64,
    pub events_per_second: f64,
    pub deliveries_per_second: f64,
    /// Reports accepted per second, from the first sent to the last answer (ingestion alone).
    pub accepted_per_second: f64,
    /// `eventsPerSecond` (for fan-out: `deliveriesPerSecond`) over the baseline's events/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_baseline: Option<f64>,
    pub cpu: CpuUse,
}

impl Throughput {
    pub fn measure(driven: &Driven, check: &PhaseCheck, cpu: CpuUse) -> Throughput {
        let events = driven.accepted();
        let last = check
            .last_arrival
            .unwrap_or(driven.finished)
            .max(driven.finished);
        let seconds = last.duration_since(driven.started).as_secs_f64();
        let ingest_seconds = driven.finished.duration_since(driven.started).as_secs_f64();
        Throughput {
            events,
            deliveries: check.delivered,
            seconds,
            events_per_second: per_second(events, seconds),
            deliveries_per_second: per_second(check.delivered, seconds),
            accepted_per_second: per_second(events, ingest_seconds),
            ratio_to_baseline: None,
            cpu,
        }
    }
}

/// An open-loop phase at a fixed rate.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    /// The rate asked for, reports per second.
    pub rate: f64,
    /// Reports accepted.
    pub events: u64,
    pub seconds: f64,
    /// Per delivery: from ingestion accepted (the 202 read) to the receiver got it; for the
    /// baseline, from the request sent to the receiver got it.
    pub delivery_ms: Percentiles,
    /// From the report sent to its answer read.
    pub ingest_ms: Percentiles,
    /// How late reports were sent after their scheduled time (the generator keeping up).
    pub start_lag_ms: Percentiles,
    /// `deliveryMs` over the baseline's at the same rate, percentile by percentile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_baseline: Option<Ratios>,
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
            events: driven.accepted(),
            seconds: driven.finished.duration_since(driven.started).as_secs_f64(),
            delivery_ms: Percentiles::of_micros(check.latencies_us.clone()),
            ingest_ms: Percentiles::of_micros(ingest),
            start_lag_ms: Percentiles::of_micros(lags),
            ratio_to_baseline: None,
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

    /// Each percentile over `base`'s (absent where `base` is zero).
    pub fn over(&self, base: &Percentiles) -> Option<Ratios> {
        let r = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        Some(Ratios {
            p50: r(self.p50, base.p50)?,
            p95: r(self.p95, base.p95)?,
            p99: r(self.p99, base.p99)?,
            max: r(self.max, base.max)?,
        })
    }
}

/// Percentiles divided by the baseline's.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ratios {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// What a scenario's `serve` used.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// Reports accepted in the measured phases.
    pub events: u64,
    /// CPU seconds of `serve` over the measured phases (setup such as creating webhooks is not
    /// counted), and per 1,000 of their reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serve_cpu_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serve_cpu_seconds_per_1000_events: Option<f64>,
    /// The same for the bench process (load generator and receiver).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bench_cpu_seconds_per_1000_events: Option<f64>,
    /// `VmHWM` of `serve` when the scenario ended (after a restart: of the new process).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// Reports in the database (every phase).
    pub stored_events: u64,
    /// The database file plus its write-ahead log when the scenario ended (PostgreSQL: what
    /// `pg_database_size` grew by since the nodes set the fresh database up; the server's log
    /// not included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_bytes: Option<u64>,
    /// Of those, the write-ahead log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_bytes_per_event: Option<f64>,
    /// `serve`'s own counters (since its last start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_counters: Option<DeliveryCounters>,
    /// From SIGTERM to exit at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_seconds: Option<f64>,
}

impl Resources {
    pub fn new(
        totals: TallyTotals,
        stored_events: u64,
        peak_rss_bytes: Option<u64>,
        db_and_wal_bytes: Option<DbBytes>,
        delivery_counters: Option<DeliveryCounters>,
        shutdown: Option<Duration>,
    ) -> Resources {
        let per_1000 = |s: Option<f64>| {
            s.filter(|_| totals.events > 0)
                .map(|s| s * 1000.0 / totals.events as f64)
        };
        let db_bytes = db_and_wal_bytes.map(|(db, wal)| db + wal.unwrap_or(0));
        Resources {
            events: totals.events,
            serve_cpu_seconds: totals.serve_cpu,
            serve_cpu_seconds_per_1000_events: per_1000(totals.serve_cpu),
            bench_cpu_seconds_per_1000_events: per_1000(totals.bench_cpu),
            peak_rss_bytes,
            stored_events,
            db_bytes,
            wal_bytes: db_and_wal_bytes.and_then(|(_, wal)| wal),
            db_bytes_per_event: db_bytes
                .filter(|_| stored_events > 0)
                .map(|b| b as f64 / stored_events as f64),
            delivery_counters,
            shutdown_seconds: shutdown.map(|d| d.as_secs_f64()),
        }
    }
}

pub fn per_second(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let p = Percentiles::of_micros((1..=100).map(|i| i * 1000).collect());
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(Percentiles::of_micros(Vec::new()).p99, 0.0);
    }

    #[test]
    fn ratios_divide_each_percentile_and_skip_an_empty_base() {
        let a = Percentiles {
            samples: 1,
            p50: 2.0,
            p95: 4.0,
            p99: 6.0,
            max: 8.0,
        };
        let b = Percentiles {
            samples: 1,
            p50: 1.0,
            p95: 2.0,
            p99: 3.0,
            max: 4.0,
        };
        let r = a.over(&b).expect("ratios");
        assert_eq!((r.p50, r.p95, r.p99, r.max), (2.0, 2.0, 2.0, 2.0));
        assert!(a.over(&Percentiles::default()).is_none());
    }
}
