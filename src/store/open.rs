//! Choosing and opening a backend from the `--db` setting: a `postgres://` (or `postgresql://`)
//! URL opens PostgreSQL, anything else is a SQLite file path (an optional `sqlite://` prefix is
//! removed).
//!
//! May depend on: the backends in this module's parent.

use super::Store;
use super::postgres::{PgOpenError, PgStore, redact_url};
use super::sqlite::{OpenError, SqliteStore, schema};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl Database {
    pub fn parse(setting: &str) -> Database {
        let lower = setting.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return Database::Postgres(setting.to_string());
        }
        let path = setting.strip_prefix("sqlite://").unwrap_or(setting);
        Database::Sqlite(PathBuf::from(path))
    }

    /// For logs and messages: a URL without its password.
    pub fn shown(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => redact_url(url),
        }
    }
}

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenAnyError {
    #[error(transparent)]
    Sqlite(#[from] OpenError),
    #[error(transparent)]
    Postgres(#[from] PgOpenError),
    #[error("opening the database was interrupted: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// An open store, and what only its backend can do.
pub enum Opened {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

impl Opened {
    pub async fn open(db: &Database) -> Result<Opened, OpenAnyError> {
        Ok(match db {
            Database::Sqlite(path) => {
                let path = path.clone();
                let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path)).await??;
                Opened::Sqlite(Arc::new(store))
            }
            Database::Postgres(url) => Opened::Postgres(Arc::new(PgStore::connect(url).await?)),
        })
    }

    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Opened::Sqlite(s) => s.clone(),
            Opened::Postgres(s) => s.clone(),
        }
    }

    /// Hands what other processes announce about queues (PostgreSQL's `LISTEN`) to this
    /// process's engine, through the store's news, until `shutdown`. One SQLite file serves one
    /// process, whose own writes make the news: returns at once.
    pub async fn forward_wakeups(&self, shutdown: CancellationToken) {
        if let Opened::Postgres(pg) = self {
            pg.forward_wakeups(shutdown).await;
        }
    }
}

/// Applies the migrations of `db`'s backend; returns the schema version it is at.
pub async fn migrate(db: &Database) -> Result<i64, OpenAnyError> {
    match db {
        Database::Sqlite(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || SqliteStore::open(&path)).await??;
            Ok(schema::VERSION)
        }
        Database::Postgres(url) => Ok(super::postgres::migrate(url).await?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_picks_the_backend() {
        assert_eq!(
            Database::parse("postgres://u@h/db"),
            Database::Postgres("postgres://u@h/db".into())
        );
        assert_eq!(
            Database::parse("PostgreSQL://h/db"),
            Database::Postgres("PostgreSQL://h/db".into())
        );
        assert_eq!(
            Database::parse("callhook.db"),
            Database::Sqlite("callhook.db".into())
        );
        assert_eq!(
            Database::parse("sqlite:///var/lib/callhook.db"),
            Database::Sqlite("/var/lib/callhook.db".into())
        );
    }

    #[test]
    fn a_password_is_never_shown() {
        let shown = Database::parse("postgres://me:s3cret@db:5432/calls").shown();
        assert_eq!(shown, "postgres://me@db:5432/calls");
        assert!(
            !Database::parse("postgres://me:%zz@db/calls")
                .shown()
                .contains("zz")
        );
    }
}
