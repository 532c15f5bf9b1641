//! Support for the tests of the PostgreSQL store: a scratch database per test, and
//! [`fixtures`].
//!
//! `TestDb::create()` connects to `CALLHOOK_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and creates `callhook_t_<uuid>`; its `Drop` drops
//! it `WITH (FORCE)`, closing any connection a test left open. Without a reachable server it
//! prints "skipped: PostgreSQL not reachable at ..." and gives `None`, except under `CI=true`,
//! where it panics: CI must run these tests.

pub mod fixtures;

use callhook::store::PgStore;
use sqlx::Connection;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database of the test's own, dropped (with any connection still open) when this is.
pub struct TestDb {
    admin: String,
    name: String,
    /// The scratch database's URL.
    pub url: String,
}

impl TestDb {
    /// `None` (after saying so) when PostgreSQL is not reachable and this is not CI.
    pub async fn create() -> Option<TestDb> {
        let admin = std::env::var("CALLHOOK_TEST_PG").unwrap_or_else(|_| DEFAULT_URL.into());
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(conn) => conn,
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!(
                    "PostgreSQL not reachable at {} under CI=true: {e}",
                    shown(&admin)
                )
            }
            Err(e) => {
                println!(
                    "skipped: PostgreSQL not reachable at {}: {e}",
                    shown(&admin)
                );
                return None;
            }
        };
        let name = format!("callhook_t_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create a scratch database");
        let _ = conn.close().await;
        let mut url = url::Url::parse(&admin).expect("CALLHOOK_TEST_PG is a URL");
        url.set_path(&format!("/{name}"));
        Some(TestDb {
            admin,
            name,
            url: url.to_string(),
        })
    }

    pub async fn store(&self) -> PgStore {
        PgStore::connect(&self.url).await.expect("connect")
    }

    pub async fn conn(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url)
            .await
            .expect("connect")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map(drop)
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop scratch database {}: {dropped:?}", self.name);
        }
    }
}

/// A URL without its password, to print.
fn shown(url: &str) -> String {
    url::Url::parse(url).map_or_else(
        |_| "(CALLHOOK_TEST_PG)".into(),
        |mut u| {
            let _ = u.set_password(None);
            u.to_string()
        },
    )
}
