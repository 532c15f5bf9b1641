//! The SQLite schema, as numbered migrations. `PRAGMA user_version` records how many have been
//! applied; each runs in its own transaction. A database from a newer callhook is refused.

use rusqlite::Connection;

/// Migration `i` moves the schema from version `i` to `i + 1`. Append only; never edit one that
/// has shipped.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    org         TEXT,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE users (
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    id              TEXT NOT NULL,
    first_name      TEXT,
    last_name       TEXT,
    email           TEXT,
    contact_number  TEXT,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (account_id, id)
) WITHOUT ROWID;

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    hash        BLOB NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('user', 'ingest')),
    account_id  TEXT,
    user_id     TEXT,
    name        TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
);

CREATE TABLE webhooks (
    seq                   INTEGER PRIMARY KEY,
    id                    TEXT NOT NULL UNIQUE,
    account_id            TEXT NOT NULL,
    user_id               TEXT NOT NULL,
    url                   TEXT NOT NULL,
    events                TEXT NOT NULL,
    signing_algo          TEXT NOT NULL,
    signing_key           TEXT,
    metadata_policy       TEXT NOT NULL,
    expire_at             INTEGER NOT NULL,
    created_at            INTEGER NOT NULL,
    created_by            TEXT NOT NULL,
    renewed_at            INTEGER,
    renewed_by            TEXT,
    purge_at              INTEGER NOT NULL,
    total_attempts        INTEGER NOT NULL DEFAULT 0,
    total_successes       INTEGER NOT NULL DEFAULT 0,
    total_failures        INTEGER NOT NULL DEFAULT 0,
    failed                INTEGER NOT NULL DEFAULT 0,
    last_success          INTEGER,
    last_failure          INTEGER,
    last_http_error_code  TEXT,
    last_error_message    TEXT
);
CREATE INDEX webhooks_owner ON webhooks (account_id, user_id, seq);
CREATE INDEX webhooks_purge ON webhooks (purge_at);

CREATE TABLE calls (
    seq           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    account_id    TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    direction     TEXT NOT NULL,
    phone_number  TEXT NOT NULL,
    caller_id     TEXT,
    internal      INTEGER NOT NULL,
    ucp_type      TEXT NOT NULL,
    state         TEXT NOT NULL,
    start_time    INTEGER NOT NULL,
    answer_time   INTEGER,
    end_time      INTEGER,
    duration      INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (account_id, external_id)
);
CREATE INDEX calls_owner ON calls (account_id, user_id, updated_at);

-- One row per state change: the event exactly as webhooks receive it.
CREATE TABLE call_events (
    seq       INTEGER PRIMARY KEY,
    call_seq  INTEGER NOT NULL REFERENCES calls(seq),
    state     TEXT NOT NULL,
    at        INTEGER NOT NULL,
    body      TEXT NOT NULL
);
CREATE INDEX call_events_call ON call_events (call_seq, seq);

-- The outbox: one row per (event, webhook), written in the event's transaction.
CREATE TABLE deliveries (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    webhook_id   TEXT NOT NULL,
    event_seq    INTEGER NOT NULL REFERENCES call_events(seq),
    call_seq     INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'skipped')),
    attempt      INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL,
    lease_until  INTEGER,
    created_at   INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (status, next_at);
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, call_seq, seq);
"#,
    // Replays keep counting attempts; the retry budget starts again after `replayed_after` attempts.
    r#"
ALTER TABLE deliveries ADD COLUMN replayed_after INTEGER NOT NULL DEFAULT 0;
"#,
    // A failed attempt pauses its webhook (`paused_until`: the retry of the attempt that probes it)
    // until a delivery succeeds: its other pending deliveries are held meanwhile (found through
    // the partial index), and so are those queued meanwhile.
    r#"
ALTER TABLE webhooks ADD COLUMN paused_until INTEGER;
CREATE INDEX deliveries_pending_by_webhook ON deliveries (webhook_id, next_at) WHERE status = 'pending';
"#,
    // While a webhook is paused, events write no delivery row for it: `held_after` is the last
    // event seq whose rows exist; the rows of the later events of its user are written when it
    // resumes (pending) or fails (skipped). NULL when not paused.
    r#"
ALTER TABLE webhooks ADD COLUMN held_after INTEGER;
"#,
    // Each webhook's queue: the delivery engine reads a webhook's pending deliveries in order, a
    // page at a time, instead of claiming from one global due order. Retention: ended calls by
    // age, and the deliveries of an event (deleting an event checks that none refers to it).
    r#"
CREATE INDEX deliveries_queue ON deliveries (webhook_id, seq) WHERE status = 'pending';
DROP INDEX deliveries_due;
CREATE INDEX calls_ended ON calls (updated_at)
    WHERE state IN ('ANSWERED', 'CANCELLED', 'REJECTED', 'MISSED');
CREATE INDEX deliveries_event ON deliveries (event_seq);
"#,
    // Fewer indexes for every delivery to write: the pending deliveries of a (webhook, call), for
    // the one before a new delivery, and the skipped ones of a webhook, for a replay, in place of
    // an index of every delivery; and none by time any more (a pause no longer rewrites them).
    r#"
DROP INDEX deliveries_pending_by_webhook;
DROP INDEX deliveries_webhook;
CREATE INDEX deliveries_pending_by_call ON deliveries (webhook_id, call_seq, seq)
    WHERE status = 'pending';
CREATE INDEX deliveries_skipped ON deliveries (webhook_id) WHERE status = 'skipped';
"#,
];

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "the database has schema version {found}, newer than this callhook understands ({known}); \
         upgrade callhook or use another --db"
    )]
    TooNew { found: i64, known: i64 },
    #[error("migrating the database schema failed: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// Brings the schema up to [`VERSION`].
pub fn migrate(conn: &mut Connection) -> Result<(), MigrationError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > VERSION {
        return Err(MigrationError::TooNew {
            found,
            known: VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now > index as i64 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_a_fresh_database_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, VERSION);
    }

    #[test]
    fn refuses_a_database_from_a_newer_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(
            err.to_string().contains("newer than this callhook"),
            "{err}"
        );
    }
}
