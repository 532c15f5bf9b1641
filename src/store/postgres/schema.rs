//! The PostgreSQL schema, as numbered migrations. The one row of `callhook_schema` records how
//! many have been applied; each runs in its own transaction under a cluster-wide advisory lock,
//! so nodes starting at once migrate once. A database from a newer callhook is refused.
//!
//! The tables and columns are those of the SQLite schema at its version 6
//! (`store::sqlite::schema`), with PostgreSQL types: identity columns for `seq`, BIGINT epoch
//! milliseconds for timestamps (the same `Timestamp::millis()` values), BOOLEAN flags, BYTEA for
//! the token hash; and what only several nodes need: which node drives each webhook's queue
//! (`webhooks.driver`) and which nodes are alive (`callhook_nodes`).

use sqlx::{Connection, PgConnection};

/// Migration `i` moves the schema from version `i` to `i + 1`. Append only; never edit one that
/// has shipped.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    org         TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    id              TEXT NOT NULL,
    first_name      TEXT,
    last_name       TEXT,
    email           TEXT,
    contact_number  TEXT,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    hash        BYTEA NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('user', 'ingest')),
    account_id  TEXT,
    user_id     TEXT,
    name        TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);

CREATE TABLE webhooks (
    seq                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                    TEXT NOT NULL UNIQUE,
    account_id            TEXT NOT NULL,
    user_id               TEXT NOT NULL,
    url                   TEXT NOT NULL,
    events                TEXT NOT NULL,
    signing_algo          TEXT NOT NULL,
    signing_key           TEXT,
    metadata_policy       TEXT NOT NULL,
    expire_at             BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    created_by            TEXT NOT NULL,
    renewed_at            BIGINT,
    renewed_by            TEXT,
    purge_at              BIGINT NOT NULL,
    total_attempts        BIGINT NOT NULL DEFAULT 0,
    total_successes       BIGINT NOT NULL DEFAULT 0,
    total_failures        BIGINT NOT NULL DEFAULT 0,
    failed                BOOLEAN NOT NULL DEFAULT FALSE,
    last_success          BIGINT,
    last_failure          BIGINT,
    last_http_error_code  TEXT,
    last_error_message    TEXT,
    -- The circuit breaker: set while the webhook is paused after a failed attempt.
    paused_until          BIGINT,
    -- Kept for parity with the SQLite schema; this backend leaves it NULL (see deliveries.rs).
    held_after            BIGINT
);
CREATE INDEX webhooks_owner ON webhooks (account_id, user_id, seq);
CREATE INDEX webhooks_purge ON webhooks (purge_at);

CREATE TABLE calls (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    account_id    TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    direction     TEXT NOT NULL,
    phone_number  TEXT NOT NULL,
    caller_id     TEXT,
    internal      BOOLEAN NOT NULL,
    ucp_type      TEXT NOT NULL,
    state         TEXT NOT NULL,
    start_time    BIGINT NOT NULL,
    answer_time   BIGINT,
    end_time      BIGINT,
    duration      BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (account_id, external_id)
);
CREATE INDEX calls_owner ON calls (account_id, user_id, updated_at);

-- One row per state change: the event exactly as webhooks receive it.
CREATE TABLE call_events (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_seq  BIGINT NOT NULL REFERENCES calls(seq),
    state     TEXT NOT NULL,
    at        BIGINT NOT NULL,
    body      TEXT NOT NULL
);
CREATE INDEX call_events_call ON call_events (call_seq, seq);

-- The outbox: one row per (event, webhook), written in the event's transaction.
CREATE TABLE deliveries (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    webhook_id      TEXT NOT NULL,
    event_seq       BIGINT NOT NULL REFERENCES call_events(seq),
    call_seq        BIGINT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'skipped')),
    attempt         INTEGER NOT NULL DEFAULT 0,
    next_at         BIGINT NOT NULL,
    lease_until     BIGINT,
    created_at      BIGINT NOT NULL,
    -- Replays keep counting attempts; the retry budget starts again after this many.
    replayed_after  INTEGER NOT NULL DEFAULT 0
);
-- The claim's order is (next_at, seq): with seq in the index, a claim reads the first due rows
-- in order instead of sorting every due row (SQLite's index carries the rowid for free).
CREATE INDEX deliveries_due ON deliveries (status, next_at, seq);
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, call_seq, seq);
CREATE INDEX deliveries_pending_by_webhook ON deliveries (webhook_id, next_at) WHERE status = 'pending';
-- The claim's per-call order check (an earlier pending delivery of the same webhook and call?):
-- an exact probe. Without it, on a young table whose statistics are not in yet, the planner
-- probed by webhook alone and filtered, reading every pending row of the webhook per candidate.
CREATE INDEX deliveries_pending_by_call ON deliveries (webhook_id, call_seq, seq) WHERE status = 'pending';
"#,
    // Each webhook's queue is driven by one node at a time (`webhooks.driver`, a node of
    // `callhook_nodes` while its `alive_until` has not passed), which reads the webhook's pending
    // deliveries in order, a page at a time, instead of claiming from one global due order.
    // Retention: ended calls by age, and the deliveries of an event (deleting an event checks
    // that none refers to it).
    r#"
CREATE INDEX deliveries_queue ON deliveries (webhook_id, seq) WHERE status = 'pending';
DROP INDEX deliveries_due;
CREATE INDEX calls_ended ON calls (updated_at)
    WHERE state IN ('ANSWERED', 'CANCELLED', 'REJECTED', 'MISSED');
CREATE INDEX deliveries_event ON deliveries (event_seq);
ALTER TABLE webhooks ADD COLUMN driver TEXT;
CREATE TABLE callhook_nodes (
    id           TEXT PRIMARY KEY,
    alive_until  BIGINT NOT NULL
);
"#,
    // Fewer indexes for every delivery to write: the skipped deliveries of a webhook (for a
    // replay) in place of an index of every delivery, and none by time any more (a pause no
    // longer rewrites them). Room in each page for a delivery's next version, so that starting
    // an attempt (which changes no indexed column) is a heap-only update. And no foreign keys
    // (below).
    r#"
DROP INDEX deliveries_pending_by_webhook;
DROP INDEX deliveries_webhook;
CREATE INDEX deliveries_skipped ON deliveries (webhook_id) WHERE status = 'skipped';
ALTER TABLE deliveries SET (fillfactor = 70);
-- No foreign keys between calls, events and deliveries: each check ran a plan saved per
-- connection, chosen while the tables were empty (a scan of every call per event once they were
-- not), and the store only ever writes these rows together with what they refer to, in one
-- transaction, and deletes them in the other order.
ALTER TABLE call_events DROP CONSTRAINT call_events_call_seq_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_event_seq_fkey;
"#,
];

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock every migration transaction holds ("callhook" in ASCII). Outside the
/// 32-bit range of the per-owner `hashtext` locks of webhook creation, so the two never meet.
const MIGRATION_LOCK: i64 = 0x6361_6c6c_686f_6f6b;

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "the database has schema version {found}, newer than this callhook understands ({known}); \
         upgrade callhook or use another --db"
    )]
    TooNew { found: i64, known: i64 },
    #[error("migrating the database schema failed: {0}")]
    Sql(#[from] sqlx::Error),
}

/// Brings the schema up to [`VERSION`] and returns it. Each step re-reads the version under the
/// lock, so a node that waited for another one's migration finds it done and moves on.
pub async fn migrate(conn: &mut PgConnection) -> Result<i64, MigrationError> {
    loop {
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        // Without the notice PostgreSQL sends when the table exists (logged on every start).
        sqlx::raw_sql("SET LOCAL client_min_messages = warning")
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql("CREATE TABLE IF NOT EXISTS callhook_schema (version BIGINT NOT NULL)")
            .execute(&mut *tx)
            .await?;
        let found: Option<i64> = sqlx::query_scalar("SELECT version FROM callhook_schema")
            .fetch_optional(&mut *tx)
            .await?;
        let found = match found {
            Some(found) => found,
            None => {
                sqlx::query("INSERT INTO callhook_schema (version) VALUES (0)")
                    .execute(&mut *tx)
                    .await?;
                0
            }
        };
        if found > VERSION {
            return Err(MigrationError::TooNew {
                found,
                known: VERSION,
            });
        }
        let Some(sql) = usize::try_from(found).ok().and_then(|i| MIGRATIONS.get(i)) else {
            tx.commit().await?;
            return Ok(found);
        };
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("UPDATE callhook_schema SET version = $1")
            .bind(found + 1)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
}
