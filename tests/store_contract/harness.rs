//! The backends the contract runs on, and how each test gets a fresh, empty store.
//!
//! SQLite: always, a new database file in a temporary directory. PostgreSQL: whenever the admin
//! URL in `CALLHOOK_TEST_PG` (default [`DEFAULT_ADMIN_URL`]) answers, a new database
//! `callhook_c_<uuid>` per test, dropped `WITH (FORCE)` afterwards by a guard, also when the test
//! panics. An unreachable PostgreSQL is reported and skipped, except under `CI=true`, where it
//! fails the test: CI must run the contract on both backends.
//!
//! May depend on: the `callhook::store` API, sqlx (only to create and drop the scratch databases).

use callhook::store::{SqliteStore, Store};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The environment variable naming the PostgreSQL server's admin URL.
pub(crate) const ADMIN_URL_VAR: &str = "CALLHOOK_TEST_PG";
/// Where PostgreSQL listens on the CI machine (trust auth).
pub(crate) const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// How long PostgreSQL may take to accept a connection before it counts as not reachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Runs `test` on a fresh PostgreSQL database, or reports that PostgreSQL is not reachable.
pub(crate) async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let admin = std::env::var(ADMIN_URL_VAR).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_string());
    let mut conn = match connect(&admin).await {
        Ok(conn) => conn,
        Err(why) if under_ci() => panic!(
            "PostgreSQL is not reachable at {} ({why}), and CI=true: the store contract must run \
             on PostgreSQL in CI (set {ADMIN_URL_VAR} to its admin URL)",
            redacted(&admin)
        ),
        Err(why) => {
            println!(
                "skipped on PostgreSQL: not reachable at {} ({why})",
                redacted(&admin)
            );
            return;
        }
    };
    let database = ScratchDatabase::create(&mut conn, &admin).await;
    // Best effort: the guard opens its own connection to drop the database.
    let _ = conn.close().await;
    let store = open_postgres(&database.url).await;
    test(store).await;
    drop(database);
}

// MERGE: replace this body with `Arc::new(callhook::store::PgStore::connect(url).await.unwrap())`
// once the PostgreSQL backend is merged. Reached only when PostgreSQL is reachable.
async fn open_postgres(url: &str) -> Arc<dyn Store> {
    let _ = url;
    panic!("PgStore not merged yet");
}

/// Is this a CI run, where every backend must be tested?
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// A connection to `url`, or why there is none (refused, timed out, bad URL, auth).
async fn connect(url: &str) -> Result<PgConnection, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(url)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
    }
}

/// `url` with its password, if any, hidden: URLs are printed.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<an unparsable URL>".to_string(),
    }
}

/// A database made for one test; dropped (with any connections left to it) when this is dropped.
struct ScratchDatabase {
    admin: String,
    name: String,
    /// The URL the store under test connects to: the admin URL with this database.
    url: String,
}

impl ScratchDatabase {
    async fn create(admin_conn: &mut PgConnection, admin: &str) -> ScratchDatabase {
        let name = format!("callhook_c_{}", uuid::Uuid::new_v4().simple());
        let mut url = url::Url::parse(admin)
            .unwrap_or_else(|e| panic!("{ADMIN_URL_VAR} is not a URL ({e}): {}", redacted(admin)));
        url.set_path(&format!("/{name}"));
        sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut *admin_conn)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "create the scratch database {name} at {}: {e}",
                    redacted(admin)
                )
            });
        ScratchDatabase {
            admin: admin.to_string(),
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for ScratchDatabase {
    /// Drops the database on a thread of its own with its own runtime: `Drop` cannot await, and
    /// this also runs while a failed test unwinds.
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut conn = connect(&admin).await?;
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = conn.close().await;
                Ok(())
            })
        })
        .join()
        .unwrap_or_else(|_| Err("the thread dropping it panicked".to_string()));
        if let Err(why) = dropped {
            eprintln!(
                "could not drop the scratch database {} ({why}); drop it by hand",
                self.name
            );
        }
    }
}
