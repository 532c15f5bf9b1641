//! Which node drives each webhook's queue. A node is alive while its row in `callhook_nodes` says
//! so (`alive_until`, on the database's clock, moved forward by [`keep_driving`]); a webhook's
//! queue is driven by the node named in `webhooks.driver` while that node is alive. A node takes
//! over a webhook whose driver is gone or dead ([`drive`]), and gives up all of its own when it
//! stops cleanly ([`stop_driving`]).
//!
//! Why this is safe: a node starts attempts only on webhooks it drives (checked in the same
//! statement that starts them), and only while its last `keep_driving` is younger than its lease
//! minus the longest attempt (its engine's duty). So by the time another node sees it dead, every
//! attempt it made has ended, and the new driver's first attempts cannot overtake them.

use sqlx::{PgConnection, PgPool, Row};
use std::time::Duration;

/// The database's clock, in epoch milliseconds: every node judges liveness by the same clock.
macro_rules! db_now {
    () => {
        "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint"
    };
}
const DB_NOW: &str = db_now!();

/// SQL: webhook `w`'s driver is a live node.
pub(super) const ALIVE: &str = concat!(
    "(w.driver IS NOT NULL AND EXISTS (SELECT 1 FROM callhook_nodes n ",
    "WHERE n.id = w.driver AND n.alive_until > ",
    db_now!(),
    "))"
);

/// How long a node's row is kept after it died, for the record; then it is deleted.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Who drives a webhook's queue, as seen from one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Driver {
    Me,
    /// Another live node.
    Other,
    /// No node, or a dead one.
    Nobody,
}

impl Driver {
    /// From the code queries compute: 0 this node, 1 another live node, else nobody.
    pub(super) fn from_code(code: i32) -> Driver {
        match code {
            0 => Driver::Me,
            1 => Driver::Other,
            _ => Driver::Nobody,
        }
    }
}

/// Records that `node` is alive for `lease` from now (on the database's clock), and forgets
/// nodes long dead.
pub(super) async fn keep_driving(
    pool: &PgPool,
    node: &str,
    lease: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO callhook_nodes (id, alive_until) VALUES ($1, {DB_NOW} + $2) \
         ON CONFLICT (id) DO UPDATE SET alive_until = EXCLUDED.alive_until"
    ))
    .bind(node)
    .bind(millis(lease))
    .execute(pool)
    .await?;
    sqlx::query(&format!(
        "DELETE FROM callhook_nodes WHERE alive_until < {DB_NOW} - $1"
    ))
    .bind(millis(FORGET_AFTER))
    .execute(pool)
    .await?;
    Ok(())
}

/// Of `webhooks`, takes over those nobody alive drives and returns every one `node` drives now.
pub(super) async fn drive(
    c: &mut PgConnection,
    node: &str,
    webhooks: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT w.id, w.driver = $2 AS mine, {ALIVE} AS alive FROM webhooks w \
         WHERE w.id = ANY($1) ORDER BY w.id FOR UPDATE"
    ))
    .bind(webhooks)
    .bind(node)
    .fetch_all(&mut *c)
    .await?;
    let mut driven = Vec::new();
    let mut taken = Vec::new();
    for r in &rows {
        let id: String = r.try_get("id")?;
        let mine: Option<bool> = r.try_get("mine")?;
        let alive: bool = r.try_get("alive")?;
        if mine == Some(true) {
            driven.push(id);
        } else if !alive {
            taken.push(id);
        }
    }
    if !taken.is_empty() {
        sqlx::query("UPDATE webhooks SET driver = $2 WHERE id = ANY($1)")
            .bind(&taken)
            .bind(node)
            .execute(&mut *c)
            .await?;
        driven.extend(taken);
    }
    Ok(driven)
}

/// Gives up every webhook `node` drives and marks it dead.
pub(super) async fn stop_driving(c: &mut PgConnection, node: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE webhooks SET driver = NULL WHERE driver = $1")
        .bind(node)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM callhook_nodes WHERE id = $1")
        .bind(node)
        .execute(&mut *c)
        .await?;
    Ok(())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
