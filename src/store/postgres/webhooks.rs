//! Webhooks in PostgreSQL: creation under the per-user cap, reads, deletion, renewal and purging.
//!
//! Several nodes may create webhooks for one user at once. The count and the insert run under a
//! transaction-scoped advisory lock on the owner (`hashtext(account_id || '/' || user_id)`), so
//! two creates cannot both see room under the cap and both insert.

use super::rows::{self, WEBHOOK_COLUMNS};
use crate::domain::Timestamp;
use crate::domain::identity::Owner;
use crate::domain::webhook::Webhook;
use crate::store::Created;
use sqlx::{PgConnection, PgExecutor, PgPool};

/// Inserts `w` unless its owner already has `max_per_user` webhooks.
pub(super) async fn insert(
    c: &mut PgConnection,
    w: &Webhook,
    max_per_user: Option<u32>,
) -> Result<Created, sqlx::Error> {
    if let Some(max) = max_per_user {
        // Held until commit: a concurrent create for the same owner waits here and then counts
        // this one's row.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1 || '/' || $2))")
            .bind(&w.account_id)
            .bind(&w.user_id)
            .execute(&mut *c)
            .await?;
        let existing: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhooks WHERE account_id = $1 AND user_id = $2",
        )
        .bind(&w.account_id)
        .bind(&w.user_id)
        .fetch_one(&mut *c)
        .await?;
        if existing >= i64::from(max) {
            return Ok(Created::AtCap(existing as u64));
        }
    }
    sqlx::query(
        "INSERT INTO webhooks (id, account_id, user_id, url, events, signing_algo, signing_key, \
         metadata_policy, expire_at, created_at, created_by, purge_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&w.id)
    .bind(&w.account_id)
    .bind(&w.user_id)
    .bind(&w.spec.url)
    .bind(w.spec.events.join(","))
    .bind(w.spec.signing_algo.as_str())
    .bind(&w.spec.signing_key)
    .bind(w.spec.metadata_policy.as_str())
    .bind(w.expire_at.millis())
    .bind(w.created_at.millis())
    .bind(&w.created_by)
    .bind(w.purge_at.millis())
    .execute(&mut *c)
    .await?;
    Ok(Created::Created)
}

pub(super) async fn list(pool: &PgPool, owner: &Owner) -> Result<Vec<Webhook>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE account_id = $1 AND user_id = $2 ORDER BY seq"
    ))
    .bind(&owner.account_id)
    .bind(&owner.user_id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(rows::webhook)
    .collect()
}

pub(super) async fn get(
    c: impl PgExecutor<'_>,
    owner: &Owner,
    id: &str,
) -> Result<Option<Webhook>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 AND account_id = $2 AND user_id = $3"
    ))
    .bind(id)
    .bind(&owner.account_id)
    .bind(&owner.user_id)
    .fetch_optional(c)
    .await?
    .as_ref()
    .map(rows::webhook)
    .transpose()
}

/// Deletes the webhook and its pending deliveries; `false` when the owner has no such webhook.
pub(super) async fn delete(
    c: &mut PgConnection,
    owner: &Owner,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND account_id = $2 AND user_id = $3")
        .bind(id)
        .bind(&owner.account_id)
        .bind(&owner.user_id)
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 1 {
        sqlx::query("DELETE FROM deliveries WHERE webhook_id = $1 AND status = 'pending'")
            .bind(id)
            .execute(&mut *c)
            .await?;
    }
    Ok(n == 1)
}

/// Moves `expireAt`/`purgeAt`, sets `renewedAt`/`renewedBy`, clears `failed`. A renewed webhook
/// may have deliveries to take again: the caller wakes the nodes after the commit.
pub(super) async fn renew(
    c: &mut PgConnection,
    owner: &Owner,
    id: &str,
    now: Timestamp,
    expire_at: Timestamp,
    purge_at: Timestamp,
) -> Result<Option<Webhook>, sqlx::Error> {
    sqlx::query(
        "UPDATE webhooks SET expire_at = $4, purge_at = $5, renewed_at = $6, renewed_by = $3, \
         failed = FALSE WHERE id = $1 AND account_id = $2 AND user_id = $3",
    )
    .bind(id)
    .bind(&owner.account_id)
    .bind(&owner.user_id)
    .bind(expire_at.millis())
    .bind(purge_at.millis())
    .bind(now.millis())
    .execute(&mut *c)
    .await?;
    get(c, owner, id).await
}

/// Deletes webhooks whose `purgeAt` has passed, with their pending deliveries. (Only the node that
/// leads housekeeping calls it: see `cluster::Leadership`.)
pub(super) async fn purge(c: &mut PgConnection, now: Timestamp) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "DELETE FROM deliveries WHERE status = 'pending' AND webhook_id = ANY(ARRAY( \
         SELECT id FROM webhooks WHERE purge_at <= $1))",
    )
    .bind(now.millis())
    .execute(&mut *c)
    .await?;
    let n = sqlx::query("DELETE FROM webhooks WHERE purge_at <= $1")
        .bind(now.millis())
        .execute(&mut *c)
        .await?
        .rows_affected();
    Ok(n)
}

pub(super) async fn next_purge_at(pool: &PgPool) -> Result<Option<Timestamp>, sqlx::Error> {
    let ms: Option<i64> = sqlx::query_scalar("SELECT MIN(purge_at) FROM webhooks")
        .fetch_one(pool)
        .await?;
    ms.map(|ms| rows::to_ts("purge_at", ms)).transpose()
}
