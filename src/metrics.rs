//! Prometheus metrics: what the delivery engine, the API's rate limit and the SIP observer count,
//! and what `GET /metrics` serves.
//!
//! May depend on: prometheus-client only. The engine and the API record into it; the API encodes it.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// How an attempt ended, as counted in `callhook_deliveries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The delivery succeeded.
    Delivered,
    /// The attempt failed and will be retried.
    Retried,
    /// The delivery failed for good.
    Failed,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// The registry and the handles to its metrics.
pub struct Metrics {
    registry: Registry,
    deliveries: Family<OutcomeLabels, Counter>,
    attempt_seconds: Histogram,
    queue_depth: Gauge,
    oldest_pending_seconds: Gauge<f64, AtomicU64>,
    rate_limited: Counter,
    sip_messages: Family<ResultLabels, Counter>,
    sip_calls: Family<ResultLabels, Counter>,
    sip_reports: Family<ResultLabels, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("callhook");
        let deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "deliveries",
            "Delivery attempts by outcome (delivered, retried, failed, skipped)",
            deliveries.clone(),
        );
        // 0.5 ms to about 16 s.
        let attempt_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "delivery_attempt_duration_seconds",
            "Time from sending a delivery to its answer (or failure)",
            attempt_seconds.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "delivery_queue_depth",
            "Deliveries waiting to be sent or retried",
            queue_depth.clone(),
        );
        let oldest_pending_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "delivery_oldest_pending_age_seconds",
            "Age of the oldest delivery still waiting",
            oldest_pending_seconds.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "rate_limited_requests",
            "Requests refused with 429 by the per-token rate limit",
            rate_limited.clone(),
        );
        let sip_messages = Family::<ResultLabels, Counter>::default();
        registry.register(
            "sip_messages",
            "SIP messages the proxy received, by what became of them (received, forwarded, \
             answered, dropped, malformed)",
            sip_messages.clone(),
        );
        let sip_calls = Family::<ResultLabels, Counter>::default();
        registry.register(
            "sip_calls",
            "New SIP calls (dialogs) seen: followed, unknown_parties (relayed, no event) or \
             refused_full (503: too many calls followed at once)",
            sip_calls.clone(),
        );
        let sip_reports = Family::<ResultLabels, Counter>::default();
        registry.register(
            "sip_reports",
            "Call state reports derived from SIP, by outcome (applied, refused, failed)",
            sip_reports.clone(),
        );
        Metrics {
            registry,
            sip_messages,
            sip_calls,
            sip_reports,
            deliveries,
            attempt_seconds,
            queue_depth,
            oldest_pending_seconds,
            rate_limited,
        }
    }

    /// Counts one attempt and its duration.
    pub fn attempt(&self, outcome: Outcome, took: Duration) {
        let label = match outcome {
            Outcome::Delivered => "delivered",
            Outcome::Retried => "retried",
            Outcome::Failed => "failed",
        };
        self.count(label, 1);
        self.attempt_seconds.observe(took.as_secs_f64());
    }

    /// Counts deliveries skipped because their webhook was failed or expired.
    pub fn skipped(&self, n: u64) {
        self.count("skipped", n);
    }

    /// Counts one request refused by the per-token rate limit.
    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// Counts one SIP message by what became of it.
    pub fn sip_message(&self, result: &'static str) {
        self.sip_messages
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Counts one new SIP call by whether it is followed.
    pub fn sip_call(&self, result: &'static str) {
        self.sip_calls.get_or_create(&ResultLabels { result }).inc();
    }

    /// Counts one report derived from SIP by its outcome.
    pub fn sip_report(&self, result: &'static str) {
        self.sip_reports
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    fn count(&self, outcome: &str, n: u64) {
        self.deliveries
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc_by(n);
    }

    /// The Prometheus text exposition, with the queue gauges set from `pending` and `oldest_age`.
    pub fn render(&self, pending: u64, oldest_age: Option<Duration>) -> String {
        self.queue_depth.set(pending as i64);
        self.oldest_pending_seconds
            .set(oldest_age.map_or(0.0, |d| d.as_secs_f64()));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_by_outcome_and_queue_gauges() {
        let m = Metrics::new();
        m.attempt(Outcome::Delivered, Duration::from_millis(3));
        m.attempt(Outcome::Delivered, Duration::from_millis(4));
        m.attempt(Outcome::Retried, Duration::from_millis(5));
        m.rate_limited();
        let text = m.render(7, Some(Duration::from_secs(2)));
        assert!(
            text.contains("callhook_deliveries_total{outcome=\"delivered\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("callhook_deliveries_total{outcome=\"retried\"} 1"),
            "{text}"
        );
        assert!(text.contains("callhook_delivery_queue_depth 7"), "{text}");
        assert!(
            text.contains("callhook_rate_limited_requests_total 1"),
            "{text}"
        );
        assert!(
            text.contains("callhook_delivery_oldest_pending_age_seconds 2"),
            "{text}"
        );
        assert!(
            text.contains("callhook_delivery_attempt_duration_seconds_count 3"),
            "{text}"
        );
    }
}
