//! Webhook creation in SQLite: the per-user cap is counted and the row inserted in one write, on
//! the single writer connection, so concurrent creates cannot pass the cap together.

use crate::domain::webhook::Webhook;
use crate::store::Created;
use rusqlite::{Connection, params};

/// How many webhooks an owner has (purged ones are deleted rows, so they never count). Answered
/// from the `webhooks_owner` index alone.
const COUNT_OWNED: &str = "SELECT COUNT(*) FROM webhooks WHERE account_id = ?1 AND user_id = ?2";

/// Inserts `w` unless its owner already has `max_per_user` webhooks.
pub(super) fn insert(
    c: &Connection,
    w: &Webhook,
    max_per_user: Option<u32>,
) -> rusqlite::Result<Created> {
    if let Some(max) = max_per_user {
        let existing: i64 = c
            .prepare_cached(COUNT_OWNED)?
            .query_row(params![w.account_id, w.user_id], |r| r.get(0))?;
        if existing >= i64::from(max) {
            return Ok(Created::AtCap(existing as u64));
        }
    }
    c.execute(
        "INSERT INTO webhooks (id, account_id, user_id, url, events, signing_algo, signing_key, \
         metadata_policy, expire_at, created_at, created_by, purge_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            w.id,
            w.account_id,
            w.user_id,
            w.spec.url,
            w.spec.events.join(","),
            w.spec.signing_algo.as_str(),
            w.spec.signing_key,
            w.spec.metadata_policy.as_str(),
            w.expire_at.millis(),
            w.created_at.millis(),
            w.created_by,
            w.purge_at.millis()
        ],
    )?;
    Ok(Created::Created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_a_users_webhooks_reads_only_the_owner_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {COUNT_OWNED}"))
            .unwrap()
            .query_map(params!["a", "u"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            plan,
            ["SEARCH webhooks USING COVERING INDEX webhooks_owner (account_id=? AND user_id=?)"]
        );
    }
}
