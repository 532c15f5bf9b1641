//! The backends the contract runs on, and how each test gets a fresh, empty store.
//!
//! SQLite: always, a new database file in a temporary directory. PostgreSQL: whenever the admin
//! URL in `CALLHOOK_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`) answers, a new
//! database per test (`tests/pg_support`), dropped `WITH (FORCE)` afterwards by a guard, also when
//! the test panics. An unreachable PostgreSQL is reported and skipped, except under `CI=true`, where it
//! fails the test: CI must run the contract on both backends.
//!
//! May depend on: the `callhook::store` API, sqlx (only to create and drop the scratch databases).

#[path = "../pg_support/mod.rs"]
#[allow(dead_code)]
mod pg_scratch;

use callhook::store::{SqliteStore, Store};
use pg_scratch::TestDb;
use std::future::Future;
use std::sync::Arc;

/// Runs `test` on a fresh SQLite store.
pub(crate) async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("create a temporary directory for the database");
    let path = dir.path().join("contract.db");
    let store = SqliteStore::open(&path)
        .unwrap_or_else(|e| panic!("open a SQLite store at {}: {e}", path.display()));
    test(Arc::new(store)).await;
}

/// Runs `test` on a fresh PostgreSQL database (the same scratch databases as the other
/// PostgreSQL tests), or reports that PostgreSQL is not reachable (a failure under `CI=true`).
pub(crate) async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(database) = TestDb::create().await else {
        return;
    };
    test(Arc::new(database.store().await)).await;
    drop(database);
}
