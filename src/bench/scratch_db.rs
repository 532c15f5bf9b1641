//! A session's own PostgreSQL database: `CREATE DATABASE callhook_bench_<uuid>` on the server of
//! `--db-server`, its size, and `DROP DATABASE ... WITH (FORCE)` when the session ends
//! ([`ScratchDatabase::drop_now`]) or, on any other way out (an error, a panic), when the value
//! is dropped. Depends on `sqlx` and [`super::store`] only.

use super::BenchError;
use super::store::{database_url, shown};
use sqlx::Connection;
use url::Url;

/// A database created for one session; gone once this is.
pub struct ScratchDatabase {
    server: Url,
    name: String,
    url: Url,
    dropped: bool,
}

impl ScratchDatabase {
    /// Creates a fresh database on `server`.
    pub async fn create(server: &Url) -> Result<ScratchDatabase, BenchError> {
        let name = format!("callhook_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin(server).await?;
        let created = sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
        created.map_err(|e| {
            BenchError::Setup(format!(
                "creating database {name} on {}: {e}",
                shown(server)
            ))
        })?;
        tracing::info!(database = %name, "bench database created");
        Ok(ScratchDatabase {
            url: database_url(server, &name),
            server: server.clone(),
            name,
            dropped: false,
        })
    }

    /// The URL `serve --db` and `token create --db` get.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// `pg_database_size` of the database now (`None` when it cannot be read).
    pub async fn size(&self) -> Option<u64> {
        let mut conn = sqlx::PgConnection::connect(self.url.as_str()).await.ok()?;
        let size: Option<i64> = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&mut conn)
            .await
            .ok();
        let _ = conn.close().await;
        size.and_then(|s| u64::try_from(s).ok())
    }

    /// Drops the database (with any connection still open to it).
    pub async fn drop_now(mut self) -> Result<(), BenchError> {
        self.dropped = true;
        drop_database(&self.server, &self.name).await
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Not on the normal path (that is `drop_now`). Drop may run inside the bench's runtime,
        // which cannot be blocked on: a thread with a runtime of its own.
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| BenchError::io("starting a runtime to drop the database", e))?;
            runtime.block_on(drop_database(&server, &name))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(database = %self.name, error = %e, "could not drop the bench database")
            }
            Err(_) => tracing::warn!(database = %self.name, "dropping the bench database panicked"),
        }
    }
}

async fn admin(server: &Url) -> Result<sqlx::PgConnection, BenchError> {
    sqlx::PgConnection::connect(server.as_str())
        .await
        .map_err(|e| BenchError::Setup(format!("connecting to {}: {e}", shown(server))))
}

async fn drop_database(server: &Url, name: &str) -> Result<(), BenchError> {
    let mut conn = admin(server).await?;
    let dropped = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    dropped.map_err(|e| BenchError::Setup(format!("dropping database {name}: {e}")))?;
    tracing::info!(database = %name, "bench database dropped");
    Ok(())
}
