//! How call events enter the platform: [`CallSink`] is the one path every source takes (the
//! ingestion API, the simulated telephony), so every change goes through the same state machine,
//! outbox and delivery; [`sim`] is the built-in simulated telephony behind the VIS call-control
//! routes.
//!
//! May depend on: `domain`, `metrics`, the `store::Store` trait.

pub mod sim;

use crate::domain::Timestamp;
use crate::domain::report::CallReport;
use crate::metrics::Metrics;
use crate::store::{ApplyError, ApplyOutcome, Store};
use std::sync::Arc;

/// Applies call reports (the store hands the deliveries they queue to the delivery engine).
#[derive(Clone)]
pub struct CallSink {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl CallSink {
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> CallSink {
        CallSink { store, metrics }
    }

    /// Applies one report (state machine, event, outbox: one transaction).
    pub async fn report(&self, report: &CallReport) -> Result<ApplyOutcome, ApplyError> {
        let outcome = self
            .store
            .apply_call_report(report, Timestamp::now())
            .await?;
        self.metrics.skipped(outcome.skipped as u64);
        Ok(outcome)
    }
}
