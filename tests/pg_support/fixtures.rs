//! Values the PostgreSQL store tests build and read: one owner's webhooks and call reports,
//! claims, outcomes, and the fields of a delivered event.

use callhook::domain::Timestamp;
use callhook::domain::call::{CallState, Direction};
use callhook::domain::identity::Owner;
use callhook::domain::report::CallReport;
use callhook::domain::webhook::{MetadataPolicy, SigningAlgo, Statistics, Webhook, WebhookSpec};
use callhook::store::{AttemptEnd, Claim, DeliveryJob, Finished};
use std::collections::HashMap;

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

pub fn claim_at(now: Timestamp, lease_ms: i64, limit: usize) -> Claim {
    Claim {
        now,
        lease_until: ms(now, lease_ms),
        limit,
        room: HashMap::new(),
        fresh_room: 1_000,
    }
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
