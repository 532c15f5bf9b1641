//! Storage: the one [`Store`] trait, with use-case methods rather than table CRUD, and its
//! backends: SQLite (one process, one file) and PostgreSQL (several nodes, one database), which
//! the API layer never tells apart; [`open`] picks one from the `--db` setting.
//!
//! May depend on: `domain`. Never on `api` or `cli`.
//! Contract every backend keeps: applying a call report, writing its event and the deliveries it
//! causes is one transaction; every method either fully happens or not at all.
pub mod open;
pub mod postgres;
pub mod queue;
mod sql;
pub mod sqlite;

use crate::domain::Timestamp;
use crate::domain::call::{Applied, Call, CallState, Direction, TransitionError};
use crate::domain::identity::{AccountProfile, Owner, Principal, Role, UserProfile};
use crate::domain::report::CallReport;
use crate::domain::webhook::{MetadataPolicy, Webhook};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub use open::{Database, Opened};
pub use postgres::PgStore;
pub use queue::{Advanced, Fresh, QueueNews, QueuePage, Queued, Started, Target};
pub use sqlite::SqliteStore;

/// A storage failure. Client mistakes never show up here.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage cannot take writes or reads right now (disk full, read-only, locked, I/O):
    /// worth retrying later.
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else: a bug or a corrupt database.
    #[error("storage failure: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Why a call report was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Refused(#[from] TransitionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The result of applying a call report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub applied: Applied,
    /// Deliveries queued for this event (one per live webhook of the call's user).
    pub deliveries: usize,
    /// Deliveries recorded as skipped (webhooks of the user that are failed or expired).
    pub skipped: usize,
}

/// A token to store. The secret itself is never stored, only its hash.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: String,
    pub hash: [u8; 32],
    pub role: Role,
    pub account_id: Option<String>,
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    /// For tokens naming a user: the profile to create or fill in (only given values overwrite).
    pub profile: Option<UserProfile>,
}

/// A stored token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub role: Role,
    pub account_id: Option<String>,
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// Which calls a query is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    /// Only calls that are not in a final state.
    pub active_only: bool,
    /// Empty means any.
    pub directions: Vec<Direction>,
    /// Empty means any.
    pub states: Vec<CallState>,
    /// The latest state change happened at or after this instant.
    pub from: Option<Timestamp>,
    /// The latest state change happened before this instant.
    pub to: Option<Timestamp>,
}

/// Sort keys for call listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    StartTime,
    AnswerTime,
    EndTime,
    Duration,
    State,
    Direction,
    PhoneNumber,
    ExternalId,
    Id,
}

impl SortKey {
    pub const NAMES: &'static str =
        "startTime, answerTime, endTime, duration, state, direction, phoneNumber, externalId, id";

    pub fn parse(s: &str) -> Option<SortKey> {
        Some(match s {
            "startTime" => SortKey::StartTime,
            "answerTime" => SortKey::AnswerTime,
            "endTime" => SortKey::EndTime,
            "duration" => SortKey::Duration,
            "state" => SortKey::State,
            "direction" => SortKey::Direction,
            "phoneNumber" => SortKey::PhoneNumber,
            "externalId" => SortKey::ExternalId,
            "id" => SortKey::Id,
            _ => return None,
        })
    }
}

/// One page of a call listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallPage {
    pub filter: CallFilter,
    pub sort: SortKey,
    pub descending: bool,
    /// Page number, from 0.
    pub page: u64,
    /// Calls per page.
    pub size: u64,
}

/// One attempt of a delivery: everything the sender needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryJob {
    /// Row number, to record the outcome.
    pub seq: i64,
    /// The `deliveryId`: the same on every attempt.
    pub id: String,
    pub webhook_id: String,
    pub url: String,
    /// The key to sign with, when the delivery must be signed (`HMAC_SHA256` and a non-empty key).
    pub signing_key: Option<String>,
    pub metadata_policy: MetadataPolicy,
    /// This attempt's number, from 1; it keeps counting across replays.
    pub attempt: u32,
    /// Attempts made before the delivery was last replayed: the retry budget counts from there.
    pub replayed_after: u32,
    /// The event, as canonical JSON.
    pub event: Arc<str>,
}

impl DeliveryJob {
    /// The job of attempt `started` of `delivery` to `target`.
    pub fn new(target: &Target, delivery: &Queued, started: Started) -> DeliveryJob {
        DeliveryJob {
            seq: delivery.seq,
            id: delivery.id.clone(),
            webhook_id: target.webhook_id.clone(),
            url: target.url.clone(),
            signing_key: target.signing_key.clone(),
            metadata_policy: target.metadata_policy,
            attempt: started.attempt,
            replayed_after: delivery.replayed_after,
            event: delivery.event.clone(),
        }
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `500 INTERNAL_SERVER_ERROR`, or a code such as `CONNECTION_REFUSED`.
    pub code: String,
    /// Status line and start of the body, or what went wrong.
    pub message: String,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptEnd {
    /// 2xx: the delivery is done and counts as one success.
    Delivered,
    /// Failed, to be tried again at `at`.
    Retry { at: Timestamp },
    /// Failed for the last time: counts as one failure and marks the webhook failed.
    Failed(Failure),
}

/// An attempt that ended: which, how and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub job: DeliveryJob,
    pub end: AttemptEnd,
    pub at: Timestamp,
}

/// The result of a replay request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    NoSuchWebhook,
    /// The webhook is failed or expired: renew it first.
    NotLive,
    /// This many skipped deliveries were queued again.
    Queued(u64),
}

/// The result of a webhook creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Created,
    /// The owner already has this many webhooks, the cap: nothing was stored.
    AtCap(u64),
}

/// How much is waiting to be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    /// Deliveries waiting to be sent, those held while their webhook is paused included.
    pub pending: u64,
    /// When the oldest pending delivery was queued.
    pub oldest: Option<Timestamp>,
}

/// Everything callhook keeps. Implementations must be safe to share between tasks.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Succeeds while the store answers.
    async fn ping(&self) -> Result<(), StoreError>;

    // Tokens and identities.
    /// Stores a token and creates (or fills in) the user and account it names.
    async fn create_token(&self, token: NewToken) -> Result<TokenInfo, StoreError>;
    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError>;
    /// Revokes a token; `false` when there is no such (unrevoked) token.
    async fn revoke_token(&self, id: &str, now: Timestamp) -> Result<bool, StoreError>;
    /// The principal of a live (not revoked, not expired) token with this hash.
    async fn authenticate(
        &self,
        hash: [u8; 32],
        now: Timestamp,
    ) -> Result<Option<Principal>, StoreError>;
    async fn user_profile(&self, owner: &Owner) -> Result<Option<UserProfile>, StoreError>;
    async fn account_profile(&self, account_id: &str)
    -> Result<Option<AccountProfile>, StoreError>;
    /// The user of `account_id` whose contact number is `number`.
    async fn user_by_number(
        &self,
        account_id: &str,
        number: &str,
    ) -> Result<Option<Owner>, StoreError>;

    // Webhooks.
    /// Stores a new webhook unless its owner already has `max_per_user` webhooks (counted in the
    /// same write, so concurrent creates cannot pass the cap); `None`: no cap.
    async fn create_webhook(
        &self,
        webhook: &Webhook,
        max_per_user: Option<u32>,
    ) -> Result<Created, StoreError>;
    async fn list_webhooks(&self, owner: &Owner) -> Result<Vec<Webhook>, StoreError>;
    async fn get_webhook(&self, owner: &Owner, id: &str) -> Result<Option<Webhook>, StoreError>;
    /// `false` when the owner has no such webhook.
    async fn delete_webhook(&self, owner: &Owner, id: &str) -> Result<bool, StoreError>;
    /// Moves `expireAt`/`purgeAt`, sets `renewedAt`/`renewedBy`, clears `failed`.
    async fn renew_webhook(
        &self,
        owner: &Owner,
        id: &str,
        now: Timestamp,
        expire_at: Timestamp,
        purge_at: Timestamp,
    ) -> Result<Option<Webhook>, StoreError>;
    /// Deletes webhooks whose `purgeAt` has passed; returns how many.
    async fn purge_webhooks(&self, now: Timestamp) -> Result<u64, StoreError>;
    /// The earliest `purgeAt` of any webhook.
    async fn next_purge_at(&self) -> Result<Option<Timestamp>, StoreError>;

    // Calls.
    /// Applies a state-change report: in one transaction, updates the call, records the event and
    /// queues one delivery per live webhook of the call's user. A refused report changes nothing.
    async fn apply_call_report(
        &self,
        report: &CallReport,
        now: Timestamp,
    ) -> Result<ApplyOutcome, ApplyError>;
    async fn list_calls(&self, owner: &Owner, page: &CallPage) -> Result<Vec<Call>, StoreError>;
    async fn count_calls(&self, owner: &Owner, filter: &CallFilter) -> Result<u64, StoreError>;
    async fn get_call(&self, owner: &Owner, id: &str) -> Result<Option<Call>, StoreError>;

    // Deliveries: the outbox, as one queue per webhook (see [`queue`]).
    /// The news of this process's queues ([`QueueNews`]), for its delivery engine.
    fn queue_news(&self) -> mpsc::UnboundedReceiver<QueueNews>;
    /// Webhooks with pending deliveries that this process drives, or may take over because no
    /// live process drives them.
    async fn find_queues(&self, now: Timestamp) -> Result<Vec<String>, StoreError>;
    /// Of these webhooks, those whose queue this process drives from now on. A store one
    /// process owns gives it every webhook; on a shared database a webhook is driven by one
    /// process at a time, until it stops driving or stops keeping its drive alive.
    async fn drive(&self, webhooks: Vec<String>, now: Timestamp)
    -> Result<Vec<String>, StoreError>;
    /// Keeps this process's drive alive for `lease` from now; a process that cannot must stop
    /// starting attempts before `lease` runs out, since another may take its queues over then.
    async fn keep_driving(&self, lease: Duration) -> Result<(), StoreError>;
    /// Gives up every queue this process drives, so that others take them over at once.
    async fn stop_driving(&self) -> Result<(), StoreError>;
    /// The first `limit` pending deliveries of a webhook's queue, in order, leaving out those in
    /// `skip` (already known to the caller), with where they go; `None` when the webhook is gone,
    /// failed or expired (nothing of it may be sent).
    async fn load_queue(
        &self,
        webhook_id: &str,
        limit: usize,
        skip: Vec<i64>,
        now: Timestamp,
    ) -> Result<Option<QueuePage>, StoreError>;
    /// In one write: records how attempts ended, with the webhook statistics that follow, then
    /// starts attempts of the deliveries `start` (by `seq`): each counts one attempt and is
    /// leased until `lease_until`. Only the attempts returned may be made. Calls are written in
    /// the order they are made (a call is made when its future is first polled), so that a
    /// caller may have the next on its way before the last is done.
    async fn advance(
        &self,
        finished: Vec<Finished>,
        start: Vec<i64>,
        lease_until: Timestamp,
    ) -> Result<Advanced, StoreError>;
    /// Releases the leases of these deliveries (by `seq`), if still pending: this process gives
    /// them up (a shutdown deadline). Returns how many.
    async fn release_deliveries(&self, seqs: Vec<i64>) -> Result<u64, StoreError>;
    /// Whether this process should run the background jobs (purging webhooks, skipping
    /// undeliverable deliveries): on a database several processes share, true in one of them at a
    /// time, and taken over by another when that one dies. A store one process owns leads always.
    async fn leads_housekeeping(&self) -> Result<bool, StoreError> {
        Ok(true)
    }
    /// Marks pending deliveries of failed or expired webhooks as skipped; returns how many.
    async fn skip_undeliverable(&self, now: Timestamp) -> Result<u64, StoreError>;
    /// Queues the skipped deliveries of a live webhook again (those whose event happened at or
    /// after `since`, if given).
    async fn replay_skipped(
        &self,
        owner: &Owner,
        webhook_id: &str,
        since: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Replay, StoreError>;
    async fn backlog(&self) -> Result<Backlog, StoreError>;
}
