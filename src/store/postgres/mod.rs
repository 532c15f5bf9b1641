//! The PostgreSQL backend: one database shared by several callhook nodes, through a connection
//! pool per node. Each write is one transaction, retried on serialization failures and
//! deadlocks; what the nodes coordinate (row locks, leases, once-per-cluster jobs, wake-ups) is
//! explained where it happens: [`calls`], [`deliveries`], [`webhooks`], [`cluster`].
//!
//! Behaves as the SQLite backend does, method by method, except where several processes sharing
//! the store call for something else: each webhook's queue is driven by one node at a time
//! ([`drivers`]), the background jobs run on one node at a time, and the circuit breaker writes held rows (see
//! [`deliveries`]).
//!
//! May depend on: `domain`, the `store` trait and types.

mod calls;
mod cluster;
mod deliveries;
mod drivers;
mod errors;
mod identity;
mod ingest;
mod queueing;
mod rows;
pub mod schema;
mod tokens;
mod webhooks;

use super::queue::NewsFeed;
use super::{
    Advanced, ApplyError, ApplyOutcome, Backlog, CallFilter, CallPage, Created, Finished, NewToken,
    QueueNews, QueuePage, Replay, Store, StoreError, TokenInfo,
};
use crate::domain::Timestamp;
use crate::domain::call::Call;
use crate::domain::identity::{AccountProfile, Owner, Principal, UserProfile};
use crate::domain::report::CallReport;
use crate::domain::webhook::Webhook;
use async_trait::async_trait;
use errors::classify;
pub use errors::redact_url;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub use cluster::WAKE_CHANNEL;

/// Connections per node.
const MAX_CONNECTIONS: u32 = 16;
/// Connections per node for the delivery engine's bookkeeping (attempts started and ended),
/// committed without waiting for the flush to disk: losing the last of them in a crash of the
/// database server only means a delivery is sent again.
const BOOKKEEPING_CONNECTIONS: u32 = 4;
/// How long a request waits for a free connection before the store reports itself unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Times a transaction runs again after a serialization failure or a deadlock.
const RETRIES: u32 = 3;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum PgOpenError {
    /// `url` is shown without its password.
    #[error("cannot connect to {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error(transparent)]
    Migration(#[from] schema::MigrationError),
}

/// The PostgreSQL implementation of [`Store`]. Clones share one pool.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// For the delivery engine's bookkeeping (`synchronous_commit` off).
    bookkeeping: PgPool,
    /// This process, as a node that drives queues (a fresh id per start).
    node: Arc<str>,
    /// News of queues for this node's engine.
    news: Arc<NewsFeed>,
    /// Applies call reports, several per transaction.
    ingest: Arc<ingest::Writer>,
    /// Makes the delivery engine's writes ([`Store::advance`]) one after the other, in the order
    /// they were made (a fair lock).
    advancing: Arc<tokio::sync::Mutex<()>>,
    /// How to connect, for the wake-up listener's own connection.
    options: PgConnectOptions,
    /// The database URL without its password, for log lines.
    shown: Arc<str>,
    /// Whether this node runs the background jobs.
    leadership: Arc<cluster::Leadership>,
    /// Sends the wake-ups to the other nodes.
    announcer: Arc<cluster::Announcer>,
    /// The tokens this node authenticated lately.
    tokens: Arc<tokens::TokenCache>,
}

/// Connects to the database at `url` on a connection of its own (so that a failure says why,
/// rather than that a pool timed out) and brings its schema up to [`schema::VERSION`]. Returns
/// how to connect again, the URL as it may be shown, and the version.
async fn connect_and_migrate(url: &str) -> Result<(PgConnectOptions, String, i64), PgOpenError> {
    let shown = redact_url(url);
    let cannot_connect = |source| PgOpenError::Connect {
        url: shown.clone(),
        source,
    };
    // Custom plans always, made with the tables' sizes at the time: a generic plan is made once
    // per connection, early, when the tables are nearly empty, and kept; on a young database
    // (one whose statistics autovacuum has not gathered yet) that froze scans of every call and
    // every delivery into statements run for each report.
    let options = PgConnectOptions::from_str(url)
        .map_err(cannot_connect)?
        .options([("plan_cache_mode", "force_custom_plan")]);
    let mut conn = sqlx::PgConnection::connect_with(&options)
        .await
        .map_err(cannot_connect)?;
    let version = schema::migrate(&mut conn).await;
    // Closing politely is a courtesy; the migration's outcome is what counts.
    let _ = conn.close().await;
    Ok((options, shown, version?))
}

/// Brings the schema of the database at `url` up to [`schema::VERSION`] and returns the
/// version (for `callhook migrate`). Safe to run while nodes start: migrations run once.
pub async fn migrate(url: &str) -> Result<i64, PgOpenError> {
    connect_and_migrate(url)
        .await
        .map(|(_, _, version)| version)
}

impl PgStore {
    /// Brings the schema of the database at `url` up to date and opens a pool of connections to
    /// it ([`MAX_CONNECTIONS`]; a request waits at most [`ACQUIRE_TIMEOUT`] for one).
    pub async fn connect(url: &str) -> Result<PgStore, PgOpenError> {
        let (options, shown, _) = connect_and_migrate(url).await?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options.clone());
        let bookkeeping = PgPoolOptions::new()
            .max_connections(BOOKKEEPING_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options.clone().options([("synchronous_commit", "off")]));
        let node: Arc<str> = uuid::Uuid::now_v7().to_string().into();
        Ok(PgStore {
            ingest: Arc::new(ingest::Writer::start(pool.clone(), node.clone())),
            pool,
            bookkeeping,
            node,
            advancing: Arc::default(),
            news: Arc::default(),
            options,
            shown: shown.into(),
            leadership: Arc::default(),
            announcer: Arc::default(),
            tokens: Arc::default(),
        })
    }
}

/// Runs `$body` in a transaction on the pool `$pool`, with `$c` bound to the transaction's
/// `&mut PgConnection`; `$body` may use `?` on sqlx errors. The whole transaction runs again,
/// up to [`RETRIES`] times, when it fails with a serialization failure or a deadlock (another
/// node won a race); other errors are classified into [`StoreError`].
macro_rules! transaction {
    ($pool:expr, |$c:ident| $body:expr) => {{
        let mut retries = 0;
        loop {
            let attempt: Result<_, sqlx::Error> = async {
                let mut tx = $pool.begin().await?;
                let $c: &mut sqlx::PgConnection = &mut tx;
                let value = $body;
                tx.commit().await?;
                Ok(value)
            }
            .await;
            match attempt {
                Err(e) if retries < RETRIES && errors::is_retryable(&e) => {
                    retries += 1;
                    tracing::debug!(error = %e, retries, "transaction lost a race; running it again");
                }
                other => break other.map_err(classify),
            }
        }
    }};
}

impl PgStore {
    /// This process's id as a node that drives queues (`webhooks.driver`).
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// Tells whichever node drives `webhook_id`'s queue (this one too) that it changed.
    fn changed(&self, webhook_id: &str) {
        self.news.changed(webhook_id);
        self.announcer
            .announce(&self.pool, &self.node, &[webhook_id.to_string()]);
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(classify)
    }

    async fn create_token(&self, token: NewToken) -> Result<TokenInfo, StoreError> {
        transaction!(self.pool, |c| identity::create_token(c, &token).await?)
    }

    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        identity::list_tokens(&self.pool).await.map_err(classify)
    }

    async fn revoke_token(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let revoked = transaction!(self.pool, |c| identity::revoke_token(c, id, now).await?)?;
        if revoked {
            self.tokens.forget();
        }
        Ok(revoked)
    }

    async fn authenticate(
        &self,
        hash: [u8; 32],
        now: Timestamp,
    ) -> Result<Option<Principal>, StoreError> {
        if let Some(principal) = self.tokens.get(&hash, now) {
            return Ok(Some(principal));
        }
        let found = identity::authenticate(&self.pool, hash, now)
            .await
            .map_err(classify)?;
        Ok(found.map(|(principal, expires_at)| {
            self.tokens.put(hash, principal.clone(), expires_at);
            principal
        }))
    }

    async fn user_profile(&self, owner: &Owner) -> Result<Option<UserProfile>, StoreError> {
        identity::user_profile(&self.pool, owner)
            .await
            .map_err(classify)
    }

    async fn account_profile(
        &self,
        account_id: &str,
    ) -> Result<Option<AccountProfile>, StoreError> {
        identity::account_profile(&self.pool, account_id)
            .await
            .map_err(classify)
    }

    async fn user_by_number(
        &self,
        account_id: &str,
        number: &str,
    ) -> Result<Option<Owner>, StoreError> {
        identity::user_by_number(&self.pool, account_id, number)
            .await
            .map_err(classify)
    }

    async fn create_webhook(
        &self,
        webhook: &Webhook,
        max_per_user: Option<u32>,
    ) -> Result<Created, StoreError> {
        transaction!(self.pool, |c| webhooks::insert(c, webhook, max_per_user)
            .await?)
    }

    async fn list_webhooks(&self, owner: &Owner) -> Result<Vec<Webhook>, StoreError> {
        webhooks::list(&self.pool, owner).await.map_err(classify)
    }

    async fn get_webhook(&self, owner: &Owner, id: &str) -> Result<Option<Webhook>, StoreError> {
        webhooks::get(&self.pool, owner, id).await.map_err(classify)
    }

    async fn delete_webhook(&self, owner: &Owner, id: &str) -> Result<bool, StoreError> {
        let deleted = transaction!(self.pool, |c| webhooks::delete(c, owner, id).await?)?;
        if deleted {
            self.changed(id);
        }
        Ok(deleted)
    }

    async fn renew_webhook(
        &self,
        owner: &Owner,
        id: &str,
        now: Timestamp,
        expire_at: Timestamp,
        purge_at: Timestamp,
    ) -> Result<Option<Webhook>, StoreError> {
        let renewed = transaction!(self.pool, |c| webhooks::renew(
            c, owner, id, now, expire_at, purge_at
        )
        .await?)?;
        // Its skipped deliveries may be replayed, its held ones resumed: tell its driver.
        if renewed.is_some() {
            self.changed(id);
        }
        Ok(renewed)
    }

    async fn purge_webhooks(&self, now: Timestamp) -> Result<u64, StoreError> {
        transaction!(self.pool, |c| webhooks::purge(c, now).await?)
    }

    async fn next_purge_at(&self) -> Result<Option<Timestamp>, StoreError> {
        webhooks::next_purge_at(&self.pool).await.map_err(classify)
    }

    async fn apply_call_report(
        &self,
        report: &CallReport,
        now: Timestamp,
    ) -> Result<ApplyOutcome, ApplyError> {
        let (outcome, queued) = self.ingest.apply(report, now).await?;
        // After the commit: this node's engine may send them now; other nodes are told.
        self.news.send(QueueNews::Fresh(queued.fresh));
        self.announcer
            .announce(&self.pool, &self.node, &queued.announce);
        Ok(outcome)
    }

    async fn list_calls(&self, owner: &Owner, page: &CallPage) -> Result<Vec<Call>, StoreError> {
        let (where_sql, mut args) = calls::filter_sql(owner, &page.filter);
        let size = i64::try_from(page.size).unwrap_or(i64::MAX);
        let offset = i64::try_from(page.page.saturating_mul(page.size)).unwrap_or(i64::MAX);
        args.extend([calls::Arg::Int(size), calls::Arg::Int(offset)]);
        let direction = if page.descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {} FROM calls WHERE {where_sql} ORDER BY {}, seq {direction} LIMIT ${} OFFSET ${}",
            rows::CALL_COLUMNS,
            calls::sort_expr(page.sort, page.descending),
            args.len() - 1,
            args.len()
        );
        calls::bind_all(sqlx::query(&sql), &args)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?
            .iter()
            .map(|r| rows::call(r).map(|(_, call)| call).map_err(classify))
            .collect()
    }

    async fn count_calls(&self, owner: &Owner, filter: &CallFilter) -> Result<u64, StoreError> {
        let (where_sql, args) = calls::filter_sql(owner, filter);
        let sql = format!("SELECT COUNT(*) FROM calls WHERE {where_sql}");
        let n: i64 = calls::bind_all(sqlx::query(&sql), &args)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| sqlx::Row::try_get(&r, 0))
            .map_err(classify)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn get_call(&self, owner: &Owner, id: &str) -> Result<Option<Call>, StoreError> {
        sqlx::query(&format!(
            "SELECT {} FROM calls WHERE id = $1 AND account_id = $2 AND user_id = $3",
            rows::CALL_COLUMNS
        ))
        .bind(id)
        .bind(&owner.account_id)
        .bind(&owner.user_id)
        .fetch_optional(&self.pool)
        .await
        .and_then(|r| r.as_ref().map(rows::call).transpose())
        .map(|found| found.map(|(_, call)| call))
        .map_err(classify)
    }

    async fn release_deliveries(&self, seqs: Vec<i64>) -> Result<u64, StoreError> {
        transaction!(self.pool, |c| deliveries::release(c, &seqs).await?)
    }

    fn queue_news(&self) -> mpsc::UnboundedReceiver<QueueNews> {
        self.news.subscribe()
    }

    async fn find_queues(&self, _now: Timestamp) -> Result<Vec<String>, StoreError> {
        deliveries::find(&self.pool, &self.node)
            .await
            .map_err(classify)
    }

    async fn drive(
        &self,
        webhooks: Vec<String>,
        _now: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        if webhooks.is_empty() {
            return Ok(webhooks);
        }
        transaction!(self.pool, |c| drivers::drive(c, &self.node, &webhooks)
            .await?)
    }

    async fn keep_driving(&self, lease: Duration) -> Result<(), StoreError> {
        drivers::keep_driving(&self.pool, &self.node, lease)
            .await
            .map_err(classify)
    }

    async fn stop_driving(&self) -> Result<(), StoreError> {
        transaction!(self.pool, |c| drivers::stop_driving(c, &self.node).await?)?;
        self.announcer.announce_everything(&self.pool, &self.node);
        Ok(())
    }

    async fn load_queue(
        &self,
        webhook_id: &str,
        limit: usize,
        skip: Vec<i64>,
        now: Timestamp,
    ) -> Result<Option<QueuePage>, StoreError> {
        deliveries::load(&self.pool, webhook_id, limit, &skip, now)
            .await
            .map_err(classify)
    }

    async fn advance(
        &self,
        finished: Vec<Finished>,
        start: Vec<i64>,
        lease_until: Timestamp,
    ) -> Result<Advanced, StoreError> {
        let _in_order = self.advancing.lock().await;
        let quick = deliveries::advance_successes(
            &self.bookkeeping,
            &self.node,
            &finished,
            &start,
            lease_until,
        );
        if let Some(advanced) = quick.await.map_err(classify)? {
            return Ok(advanced);
        }
        transaction!(self.bookkeeping, |c| deliveries::advance(
            c,
            &self.node,
            &finished,
            &start,
            lease_until
        )
        .await?)
    }

    /// One node of those sharing the database at a time (an advisory lock, see
    /// [`cluster::Leadership`]).
    async fn leads_housekeeping(&self) -> Result<bool, StoreError> {
        self.leadership.lead(&self.options).await.map_err(classify)
    }

    async fn skip_undeliverable(&self, now: Timestamp) -> Result<u64, StoreError> {
        transaction!(self.pool, |c| deliveries::skip_undeliverable(c, now)
            .await?)
    }

    async fn replay_skipped(
        &self,
        owner: &Owner,
        webhook_id: &str,
        since: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Replay, StoreError> {
        let replay = transaction!(self.pool, |c| deliveries::replay(
            c,
            &owner.account_id,
            &owner.user_id,
            webhook_id,
            since,
            now
        )
        .await?)?;
        if matches!(replay, Replay::Queued(n) if n > 0) {
            self.changed(webhook_id);
        }
        Ok(replay)
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        deliveries::backlog(&self.pool).await.map_err(classify)
    }
}
