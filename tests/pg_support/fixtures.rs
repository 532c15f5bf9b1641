//! Values the PostgreSQL store tests build and read: one owner's webhooks and call reports,
//! claims, outcomes, and the fields of a delivered event.

use callhook::domain::Timestamp;
use callhook::domain::call::{CallState, Direction};
use callhook::domain::identity::Owner;
use callhook::domain::report::CallReport;
use callhook::domain::webhook::{MetadataPolicy, SigningAlgo, Statistics, Webhook, WebhookSpec};
use callhook::store::{AttemptEnd, DeliveryJob, Finished, QueuePage, Store};
use std::time::Duration;

pub fn owner() -> Owner {
    Owner {
        account_id: "acc".into(),
        user_id: "u1".into(),
    }
}

pub fn ms(t: Timestamp, delta: i64) -> Timestamp {
    Timestamp::from_millis(t.millis() + delta).expect("in range")
}

pub fn webhook(id: &str, now: Timestamp, purge_in_ms: i64) -> Webhook {
    let o = owner();
    Webhook {
        id: id.into(),
        account_id: o.account_id,
        user_id: o.user_id.clone(),
        spec: WebhookSpec {
            url: "http://127.0.0.1:9/hook".into(),
            events: vec!["CALL".into()],
            signing_algo: SigningAlgo::HmacSha256,
            signing_key: Some("key".into()),
            metadata_policy: MetadataPolicy::Header,
        },
        expire_at: ms(now, purge_in_ms.min(86_400_000)),
        created_at: now,
        created_by: o.user_id,
        renewed_at: None,
        renewed_by: None,
        purge_at: ms(now, purge_in_ms),
        statistics: Statistics::default(),
    }
}

pub fn report(external_id: &str, state: CallState) -> CallReport {
    CallReport {
        external_id: external_id.into(),
        account_id: "acc".into(),
        user_id: "u1".into(),
        direction: Direction::Inbound,
        phone_number: "+15550100".into(),
        caller_id: None,
        state,
        internal: false,
        ucp_type: "VBS".into(),
        at: None,
    }
}

/// How long the drive of a test node lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(60);

/// Makes `store` a live node that drives `webhook`'s queue, and reads the queue; panics when
/// another node drives it.
pub async fn drive_and_load(store: &impl Store, webhook: &str) -> QueuePage {
    store.keep_driving(LEASE).await.expect("keep driving");
    let driven = store
        .drive(vec![webhook.to_string()], Timestamp::now())
        .await
        .expect("drive");
    assert_eq!(driven, [webhook], "this node drives {webhook}");
    store
        .load_queue(webhook, 1_000, vec![], Timestamp::now())
        .await
        .expect("load")
        .expect("a live webhook")
}

/// Starts the attempts of `page`'s deliveries at `seqs` positions and returns their jobs (those
/// the store started).
pub async fn start(store: &impl Store, page: &QueuePage, positions: &[usize]) -> Vec<DeliveryJob> {
    let chosen: Vec<_> = positions.iter().map(|i| &page.deliveries[*i]).collect();
    let advanced = store
        .advance(
            vec![],
            chosen.iter().map(|d| d.seq).collect(),
            ms(Timestamp::now(), 60_000),
        )
        .await
        .expect("start");
    chosen
        .into_iter()
        .filter_map(|d| {
            let s = advanced.started.iter().find(|s| s.seq == d.seq)?;
            Some(DeliveryJob::new(&page.target, d, *s))
        })
        .collect()
}

pub fn delivered(job: &DeliveryJob) -> Finished {
    Finished {
        job: job.clone(),
        end: AttemptEnd::Delivered,
        at: Timestamp::now(),
    }
}

/// The `state` of a delivery's event.
pub fn state_of(job: &DeliveryJob) -> String {
    let event: serde_json::Value = serde_json::from_str(&job.event).expect("event JSON");
    event["state"].as_str().expect("state").to_string()
}

pub fn external_id_of(job: &DeliveryJob) -> String {
    let event: serde_json::Value = serde_json::from_str(&job.event).expect("event JSON");
    event["externalId"]
        .as_str()
        .expect("externalId")
        .to_string()
}
