//! Values the contract tests build (timestamps, owners, webhooks, call reports, tokens, claims)
//! and the few store calls most tests repeat, each failing with a message naming what broke.
//!
//! May depend on: the `callhook::store` trait and `callhook::domain` types. Every instant is an
//! explicit `Timestamp`, so nothing reads the clock or sleeps.

use callhook::domain::call::{Applied, Call};
use callhook::domain::identity::{Owner, Role, hash_token};
use callhook::domain::report::CallReport;
use callhook::domain::webhook::{MetadataPolicy, SigningAlgo, Statistics, Webhook, WebhookSpec};
use callhook::domain::{CallState, Direction, Timestamp};
use callhook::store::{
    ApplyOutcome, AttemptEnd, Created, DeliveryJob, Failure, Finished, NewToken, Store,
};
use std::collections::HashSet;
use std::sync::Arc;

/// An instant, in epoch milliseconds.
pub(crate) fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms).expect("a timestamp between 1970 and 9999")
}

/// Later than any instant a test uses: webhooks made by [`webhook`] expire and are purged then.
pub(crate) const FAR: i64 = 1_000_000_000;

pub(crate) fn owner(account_id: &str, user_id: &str) -> Owner {
    Owner {
        account_id: account_id.to_string(),
        user_id: user_id.to_string(),
    }
}

/// The owner most tests use, and a second user of the same account.
pub(crate) fn ann() -> Owner {
    owner("acc1", "ann")
}
pub(crate) fn bob() -> Owner {
    owner("acc1", "bob")
}

/// A live, unsigned webhook of `owner` created at 0 that neither expires nor is purged in a test.
pub(crate) fn webhook(owner: &Owner, id: &str) -> Webhook {
    Webhook {
        id: id.to_string(),
        account_id: owner.account_id.clone(),
        user_id: owner.user_id.clone(),
        spec: WebhookSpec {
            url: format!("http://127.0.0.1:9/{id}"),
            events: vec!["CALL".to_string()],
            signing_algo: SigningAlgo::None,
            signing_key: None,
            metadata_policy: MetadataPolicy::Header,
        },
        expire_at: at(FAR),
        created_at: at(0),
        created_by: owner.user_id.clone(),
        renewed_at: None,
        renewed_by: None,
        purge_at: at(2 * FAR),
        statistics: Statistics::default(),
    }
}

/// Stores `w`, which must be created.
pub(crate) async fn create(store: &Arc<dyn Store>, w: &Webhook) {
    let created = store
        .create_webhook(w, None)
        .await
        .unwrap_or_else(|e| panic!("create webhook {}: {e}", w.id));
    assert_eq!(created, Created::Created, "create webhook {}", w.id);
}

/// Creates the live webhook `id` of `owner` (see [`webhook`]).
pub(crate) async fn hook(store: &Arc<dyn Store>, owner: &Owner, id: &str) -> Webhook {
    let w = webhook(owner, id);
    create(store, &w).await;
    w
}

/// The webhook `id` of `owner`, which must exist.
pub(crate) async fn get(store: &Arc<dyn Store>, owner: &Owner, id: &str) -> Webhook {
    store
        .get_webhook(owner, id)
        .await
        .unwrap_or_else(|e| panic!("get webhook {id}: {e}"))
        .unwrap_or_else(|| panic!("webhook {id} should exist"))
}

pub(crate) async fn stats(store: &Arc<dyn Store>, owner: &Owner, id: &str) -> Statistics {
    get(store, owner, id).await.statistics
}

/// A report of call `external_id` of `owner` (inbound, from `+15550001`) entering `state` at `ms`.
pub(crate) fn report(owner: &Owner, external_id: &str, state: CallState, ms: i64) -> CallReport {
    CallReport {
        external_id: external_id.to_string(),
        account_id: owner.account_id.clone(),
        user_id: owner.user_id.clone(),
        direction: Direction::Inbound,
        phone_number: "+15550001".to_string(),
        caller_id: None,
        state,
        internal: false,
        ucp_type: "VBS".to_string(),
        at: Some(at(ms)),
    }
}

/// Applies `report`, which must be accepted, at `now_ms`.
pub(crate) async fn apply(
    store: &Arc<dyn Store>,
    report: &CallReport,
    now_ms: i64,
) -> ApplyOutcome {
    store
        .apply_call_report(report, at(now_ms))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "apply {} {:?}: {e}",
                report.external_id,
                report.state.as_str()
            )
        })
}

/// Reports that call `external_id` of `owner` enters `state` at `ms` (also the store's `now`),
/// and returns the call as changed.
pub(crate) async fn event(
    store: &Arc<dyn Store>,
    owner: &Owner,
    external_id: &str,
    state: CallState,
    ms: i64,
) -> Call {
    match apply(store, &report(owner, external_id, state, ms), ms)
        .await
        .applied
    {
        Applied::Changed(call) => call,
        Applied::Repeated(call) => panic!("{external_id} {state:?} was a repeat: {call:?}"),
    }
}

/// A `user` token for `owner`, created at `created_ms`, with no expiry and no profile; its
/// secret is `secret`.
pub(crate) fn user_token(id: &str, secret: &str, owner: &Owner, created_ms: i64) -> NewToken {
    NewToken {
        id: id.to_string(),
        hash: hash_token(secret),
        role: Role::User,
        account_id: Some(owner.account_id.clone()),
        user_id: Some(owner.user_id.clone()),
        name: None,
        created_at: at(created_ms),
        expires_at: None,
        profile: None,
    }
}

/// What a driver asks for: the deliveries it may send at `now`, at most `limit`, leased until
/// `lease_until`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Claim {
    pub now: Timestamp,
    pub lease_until: Timestamp,
    pub limit: usize,
}

/// Everything sendable at `now_ms`, leased until `lease_ms`.
pub(crate) fn claim(now_ms: i64, lease_ms: i64) -> Claim {
    Claim {
        now: at(now_ms),
        lease_until: at(lease_ms),
        limit: 100,
    }
}

/// The oldest sendable delivery at `now_ms`, leased for a second.
pub(crate) fn claim_one(now_ms: i64) -> Claim {
    Claim {
        limit: 1,
        ..claim(now_ms, now_ms + 1_000)
    }
}

/// A process driving queues as the delivery engine does, reduced to what the contract needs: it
/// finds the queues to drive, reads each in order, sends the first pending delivery of each call
/// once it is due, unless that call has one in flight (or its webhook is paused and it was never
/// tried: the circuit breaker), oldest (due, seq) first, and records outcomes. What is in
/// flight lives in the driver, as it does in the engine: a new driver (a restarted process) knows
/// nothing of it.
pub(crate) struct Driver {
    store: Arc<dyn Store>,
    in_flight: HashSet<i64>,
}

impl Driver {
    pub(crate) fn new(store: &Arc<dyn Store>) -> Driver {
        Driver {
            store: store.clone(),
            in_flight: HashSet::new(),
        }
    }

    /// Starts what may be sent per `c` and returns the jobs.
    pub(crate) async fn take(&mut self, c: Claim) -> Vec<DeliveryJob> {
        let store = &self.store;
        let found = store.find_queues(c.now).await.expect("find queues");
        let driven = store.drive(found, c.now).await.expect("drive");
        let mut sendable = Vec::new();
        for webhook in driven {
            let page = store
                .load_queue(&webhook, 10_000, Vec::new(), c.now)
                .await
                .unwrap_or_else(|e| panic!("load the queue of {webhook}: {e}"));
            let Some(page) = page else { continue };
            let mut calls = HashSet::new();
            for delivery in page.deliveries {
                let head = calls.insert(delivery.call_seq);
                let held = page.paused && delivery.attempts <= delivery.replayed_after;
                let due = delivery.due <= c.now && !held;
                if head && !self.in_flight.contains(&delivery.seq) && due {
                    sendable.push((page.target.clone(), delivery));
                }
            }
        }
        sendable.sort_by_key(|(_, d)| (d.due, d.seq));
        sendable.truncate(c.limit);
        let seqs = sendable.iter().map(|(_, d)| d.seq).collect();
        let started = store
            .advance(Vec::new(), seqs, c.lease_until)
            .await
            .unwrap_or_else(|e| panic!("start attempts: {e}"))
            .started;
        let mut jobs = Vec::new();
        for (target, delivery) in &sendable {
            if let Some(s) = started.iter().find(|s| s.seq == delivery.seq) {
                self.in_flight.insert(delivery.seq);
                jobs.push(DeliveryJob::new(target, delivery, *s));
            }
        }
        jobs
    }

    /// Records how attempts ended; returns how many deliveries were skipped as a result.
    pub(crate) async fn finish_all(&mut self, finished: Vec<Finished>) -> u64 {
        for f in &finished {
            self.in_flight.remove(&f.job.seq);
        }
        self.store
            .advance(finished, Vec::new(), at(0))
            .await
            .unwrap_or_else(|e| panic!("record outcomes: {e}"))
            .skipped
    }

    /// Records how one attempt ended, at `ms`; returns how many deliveries were skipped.
    pub(crate) async fn finish(&mut self, job: &DeliveryJob, end: AttemptEnd, ms: i64) -> u64 {
        let finished = Finished {
            job: job.clone(),
            end,
            at: at(ms),
        };
        self.finish_all(vec![finished]).await
    }
}

/// What a job carries, readably: `(webhook id, call externalId, state)`.
pub(crate) fn what(job: &DeliveryJob) -> (String, String, String) {
    let event: serde_json::Value = serde_json::from_str(&job.event)
        .unwrap_or_else(|e| panic!("job {} carries no JSON event ({e}): {}", job.id, job.event));
    let field = |name: &str| {
        event
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("the event has no string {name}: {}", job.event))
            .to_string()
    };
    (job.webhook_id.clone(), field("externalId"), field("state"))
}

/// [`what`] for each job, in claim order.
pub(crate) fn whats(jobs: &[DeliveryJob]) -> Vec<(String, String, String)> {
    jobs.iter().map(what).collect()
}

/// `(webhook, externalId, state)` as owned strings, to compare with [`what`].
pub(crate) fn job(webhook: &str, external_id: &str, state: &str) -> (String, String, String) {
    (
        webhook.to_string(),
        external_id.to_string(),
        state.to_string(),
    )
}

/// The one job of `jobs` for `webhook`, which must be there exactly once.
pub(crate) fn only_for(jobs: &[DeliveryJob], webhook: &str) -> DeliveryJob {
    let mine: Vec<&DeliveryJob> = jobs.iter().filter(|j| j.webhook_id == webhook).collect();
    assert_eq!(mine.len(), 1, "jobs for {webhook}: {:?}", whats(jobs));
    mine[0].clone()
}

/// A final failure as the sender reports an HTTP 500.
pub(crate) fn http_500() -> Failure {
    Failure {
        code: "500 INTERNAL_SERVER_ERROR".to_string(),
        message: "HTTP/1.1 500 Internal Server Error: down for maintenance".to_string(),
    }
}

pub(crate) fn retry_at(ms: i64) -> AttemptEnd {
    AttemptEnd::Retry { at: at(ms) }
}
