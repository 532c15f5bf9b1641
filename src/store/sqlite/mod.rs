//! The embedded SQLite backend: one file in WAL mode, a group-committing writer thread
//! ([`writer`]) and a small pool of reader connections.

mod calls;
mod deliveries;
mod errors;
mod held;
mod rows;
pub mod schema;
mod webhooks;
mod writer;

use super::queue::NewsFeed;
use super::{
    Advanced, ApplyError, ApplyOutcome, Backlog, CallFilter, CallPage, Created, Finished, NewToken,
    QueueNews, QueuePage, Replay, Store, StoreError, TokenInfo,
};
use crate::domain::Timestamp;
use crate::domain::call::{self, Applied, Call};
use crate::domain::identity::{AccountProfile, Owner, Principal, Role, UserProfile};
use crate::domain::report::CallReport;
use crate::domain::webhook::Webhook;
use async_trait::async_trait;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;
use writer::{Durability, Writer};

/// Pragmas for every connection. `synchronous = FULL`: a write is on disk before it is answered.
const PRAGMAS: &str =
    "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;";
const READERS: u32 = 4;

/// Settings for every connection: the pragmas, and the query planner stability guarantee. Without
/// it a statement whose `LIMIT` is a parameter (the claim) is re-prepared whenever the value
/// changes, which showed as a sixth of the writer's time in profiles.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(PRAGMAS)?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open database {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Migration(#[from] schema::MigrationError),
    #[error("cannot open database {path}: {source}")]
    Pool { path: String, source: r2d2::Error },
    #[error("cannot start the database writer: {0}")]
    Thread(#[from] std::io::Error),
}

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    writer: Writer,
    readers: r2d2::Pool<SqliteConnectionManager>,
    news: NewsFeed,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, OpenError> {
        let shown = path.display().to_string();
        let sqlite = |source| OpenError::Sqlite {
            path: shown.clone(),
            source,
        };
        let mut conn = Connection::open(path).map_err(sqlite)?;
        configure(&conn).map_err(sqlite)?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .map_err(sqlite)?;
        schema::migrate(&mut conn)?;
        let manager = SqliteConnectionManager::file(path).with_init(|c| configure(c));
        let readers = r2d2::Pool::builder()
            .max_size(READERS)
            .min_idle(Some(1))
            .build(manager)
            .map_err(|source| OpenError::Pool {
                path: shown.clone(),
                source,
            })?;
        Ok(SqliteStore {
            writer: Writer::start(conn)?,
            readers,
            news: NewsFeed::default(),
        })
    }

    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool
                .get()
                .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
            f(&conn).map_err(StoreError::from)
        })
        .await
        .map_err(|e| StoreError::Internal(Box::new(e)))?
    }

    /// A write that is on disk when it returns.
    async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.writer
            .write(Durability::Synced, move |conn| {
                f(conn).map_err(StoreError::from)
            })
            .await
    }

    /// A write of delivery bookkeeping (leases, outcomes): safe to lose on a power cut, since
    /// losing it only means a delivery is sent again.
    async fn write_lazy<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.writer
            .write(Durability::Lazy, move |conn| {
                f(conn).map_err(StoreError::from)
            })
            .await
    }
}

fn token_info(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenInfo> {
    let role: String = row.get(1)?;
    Ok(TokenInfo {
        id: row.get(0)?,
        role: Role::parse(&role).unwrap_or(Role::User),
        account_id: row.get(2)?,
        user_id: row.get(3)?,
        name: row.get(4)?,
        created_at: row.get(5)?,
        expires_at: row.get(6)?,
        revoked_at: row.get(7)?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    async fn create_token(&self, token: NewToken) -> Result<TokenInfo, StoreError> {
        self.write(move |c| {
            if let Some(p) = &token.profile {
                let now = token.created_at.millis();
                c.execute(
                    "INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (id) DO UPDATE SET name = COALESCE(excluded.name, accounts.name)",
                    params![p.account_id, p.account_name, now],
                )?;
                c.execute(
                    "INSERT INTO users (account_id, id, first_name, last_name, email, contact_number, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (account_id, id) DO UPDATE SET \
                     first_name = COALESCE(excluded.first_name, users.first_name), \
                     last_name = COALESCE(excluded.last_name, users.last_name), \
                     email = COALESCE(excluded.email, users.email), \
                     contact_number = COALESCE(excluded.contact_number, users.contact_number)",
                    params![p.account_id, p.user_id, p.first_name, p.last_name, p.email, p.contact_number, now],
                )?;
            }
            c.execute(
                "INSERT INTO tokens (id, hash, role, account_id, user_id, name, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    token.id,
                    token.hash.as_slice(),
                    token.role.as_str(),
                    token.account_id,
                    token.user_id,
                    token.name,
                    token.created_at.millis(),
                    token.expires_at.map(Timestamp::millis)
                ],
            )?;
            Ok(TokenInfo {
                id: token.id,
                role: token.role,
                account_id: token.account_id,
                user_id: token.user_id,
                name: token.name,
                created_at: token.created_at,
                expires_at: token.expires_at,
                revoked_at: None,
            })
        })
        .await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        self.read(|c| {
            c.prepare(
                "SELECT id, role, account_id, user_id, name, created_at, expires_at, revoked_at \
                 FROM tokens ORDER BY created_at, id",
            )?
            .query_map([], token_info)?
            .collect()
        })
        .await
    }

    async fn revoke_token(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(move |c| {
            let n = c.execute(
                "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, now.millis()],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn authenticate(
        &self,
        hash: [u8; 32],
        now: Timestamp,
    ) -> Result<Option<Principal>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT id, role, account_id, user_id FROM tokens WHERE hash = ?1 \
                 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)",
            )?
            .query_row(params![hash.as_slice(), now.millis()], |r| {
                let role: String = r.get(1)?;
                Ok(Role::parse(&role).map(|role| Principal {
                    token_id: r.get(0).unwrap_or_default(),
                    role,
                    account_id: r.get(2).unwrap_or_default(),
                    user_id: r.get(3).unwrap_or_default(),
                }))
            })
            .optional()
            .map(Option::flatten)
        })
        .await
    }

    async fn user_profile(&self, owner: &Owner) -> Result<Option<UserProfile>, StoreError> {
        let owner = owner.clone();
        self.read(move |c| {
            c.query_row(
                "SELECT u.first_name, u.last_name, u.email, u.contact_number, a.name FROM users u \
                 JOIN accounts a ON a.id = u.account_id WHERE u.account_id = ?1 AND u.id = ?2",
                params![owner.account_id, owner.user_id],
                |r| {
                    Ok(UserProfile {
                        account_id: owner.account_id.clone(),
                        user_id: owner.user_id.clone(),
                        first_name: r.get(0)?,
                        last_name: r.get(1)?,
                        email: r.get(2)?,
                        contact_number: r.get(3)?,
                        account_name: r.get(4)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn account_profile(
        &self,
        account_id: &str,
    ) -> Result<Option<AccountProfile>, StoreError> {
        let account_id = account_id.to_string();
        self.read(move |c| {
            c.query_row(
                "SELECT name, org FROM accounts WHERE id = ?1",
                [&account_id],
                |r| {
                    Ok(AccountProfile {
                        account_id: account_id.clone(),
                        name: r.get(0)?,
                        org: r.get(1)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn user_by_number(
        &self,
        account_id: &str,
        number: &str,
    ) -> Result<Option<Owner>, StoreError> {
        let (account_id, number) = (account_id.to_string(), number.to_string());
        self.read(move |c| {
            c.query_row(
                "SELECT id FROM users WHERE account_id = ?1 AND contact_number = ?2 ORDER BY id LIMIT 1",
                params![account_id, number],
                |r| {
                    Ok(Owner {
                        account_id: account_id.clone(),
                        user_id: r.get(0)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn create_webhook(
        &self,
        w: &Webhook,
        max_per_user: Option<u32>,
    ) -> Result<Created, StoreError> {
        let w = w.clone();
        self.write(move |c| webhooks::insert(c, &w, max_per_user))
            .await
    }

    async fn list_webhooks(&self, owner: &Owner) -> Result<Vec<Webhook>, StoreError> {
        let owner = owner.clone();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {} FROM webhooks WHERE account_id = ?1 AND user_id = ?2 ORDER BY seq",
                rows::WEBHOOK_COLUMNS
            ))?
            .query_map(params![owner.account_id, owner.user_id], rows::webhook)?
            .collect()
        })
        .await
    }

    async fn get_webhook(&self, owner: &Owner, id: &str) -> Result<Option<Webhook>, StoreError> {
        let (owner, id) = (owner.clone(), id.to_string());
        self.read(move |c| select_webhook(c, &owner, &id)).await
    }

    async fn delete_webhook(&self, owner: &Owner, id: &str) -> Result<bool, StoreError> {
        let (owner, webhook) = (owner.clone(), id.to_string());
        let deleted = self
            .write(move |c| {
                let id = webhook;
                let n = c.execute(
                    "DELETE FROM webhooks WHERE id = ?1 AND account_id = ?2 AND user_id = ?3",
                    params![id, owner.account_id, owner.user_id],
                )?;
                if n == 1 {
                    c.execute(
                        "DELETE FROM deliveries WHERE webhook_id = ?1 AND status = 'pending'",
                        [&id],
                    )?;
                }
                Ok(n == 1)
            })
            .await?;
        if deleted {
            self.news.changed(id);
        }
        Ok(deleted)
    }

    async fn renew_webhook(
        &self,
        owner: &Owner,
        id: &str,
        now: Timestamp,
        expire_at: Timestamp,
        purge_at: Timestamp,
    ) -> Result<Option<Webhook>, StoreError> {
        let (owner, webhook) = (owner.clone(), id.to_string());
        let renewed = self
            .write(move |c| {
                let id = webhook;
                c.execute(
                    "UPDATE webhooks SET expire_at = ?4, purge_at = ?5, renewed_at = ?6, renewed_by = ?3, failed = 0 \
                     WHERE id = ?1 AND account_id = ?2 AND user_id = ?3",
                    params![id, owner.account_id, owner.user_id, expire_at.millis(), purge_at.millis(), now.millis()],
                )?;
                select_webhook(c, &owner, &id)
            })
            .await?;
        if renewed.is_some() {
            self.news.changed(id);
        }
        Ok(renewed)
    }

    async fn purge_webhooks(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM deliveries WHERE status = 'pending' AND webhook_id IN \
                 (SELECT id FROM webhooks WHERE purge_at <= ?1)",
                [now.millis()],
            )?;
            let n = c.execute("DELETE FROM webhooks WHERE purge_at <= ?1", [now.millis()])?;
            Ok(n as u64)
        })
        .await
    }

    async fn next_purge_at(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|c| c.query_row("SELECT MIN(purge_at) FROM webhooks", [], |r| r.get(0)))
            .await
    }

    async fn apply_call_report(
        &self,
        report: &CallReport,
        now: Timestamp,
    ) -> Result<ApplyOutcome, ApplyError> {
        let report = report.clone();
        let (outcome, fresh) = self
            .writer
            .write(Durability::Synced, move |c| {
                let existing = c
                    .prepare_cached(&format!(
                        "SELECT {} FROM calls WHERE account_id = ?1 AND external_id = ?2",
                        rows::CALL_COLUMNS
                    ))
                    .and_then(|mut s| {
                        s.query_row(params![report.account_id, report.external_id], rows::call)
                            .optional()
                    })
                    .map_err(StoreError::from)?;
                let (seq, current) = existing.unzip();
                let applied = call::apply(
                    current.as_ref(),
                    &report,
                    || uuid::Uuid::now_v7().to_string(),
                    now,
                )?;
                let (deliveries, skipped, fresh) = match &applied {
                    Applied::Repeated(_) => (0, 0, Vec::new()),
                    Applied::Changed(next) => {
                        calls::record_change(c, seq, next, now).map_err(StoreError::from)?
                    }
                };
                let outcome = ApplyOutcome {
                    applied,
                    deliveries,
                    skipped,
                };
                Ok::<_, ApplyError>((outcome, fresh))
            })
            .await?;
        // After the commit: the engine may send them now.
        self.news.send(QueueNews::Fresh(fresh));
        Ok(outcome)
    }

    async fn list_calls(&self, owner: &Owner, page: &CallPage) -> Result<Vec<Call>, StoreError> {
        let (where_sql, mut args) = calls::filter_sql(owner, &page.filter);
        let direction = if page.descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {} FROM calls WHERE {where_sql} ORDER BY {} {direction}, seq {direction} LIMIT ? OFFSET ?",
            rows::CALL_COLUMNS,
            super::sql::sort_column(page.sort).0
        );
        let size = i64::try_from(page.size).unwrap_or(i64::MAX);
        let offset = i64::try_from(page.page.saturating_mul(page.size)).unwrap_or(i64::MAX);
        args.extend([Value::from(size), Value::from(offset)]);
        self.read(move |c| {
            c.prepare_cached(&sql)?
                .query_map(rusqlite::params_from_iter(args), rows::call)?
                .map(|r| r.map(|(_, call)| call))
                .collect()
        })
        .await
    }

    async fn count_calls(&self, owner: &Owner, filter: &CallFilter) -> Result<u64, StoreError> {
        let (where_sql, args) = calls::filter_sql(owner, filter);
        let sql = format!("SELECT COUNT(*) FROM calls WHERE {where_sql}");
        self.read(move |c| {
            c.prepare_cached(&sql)?
                .query_row(rusqlite::params_from_iter(args), |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
        })
        .await
    }

    async fn get_call(&self, owner: &Owner, id: &str) -> Result<Option<Call>, StoreError> {
        let (owner, id) = (owner.clone(), id.to_string());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {} FROM calls WHERE id = ?1 AND account_id = ?2 AND user_id = ?3",
                rows::CALL_COLUMNS
            ))?
            .query_row(params![id, owner.account_id, owner.user_id], rows::call)
            .optional()
            .map(|found| found.map(|(_, call)| call))
        })
        .await
    }

    async fn release_deliveries(&self, seqs: Vec<i64>) -> Result<u64, StoreError> {
        self.write_lazy(move |c| deliveries::release(c, &seqs))
            .await
    }

    fn queue_news(&self) -> mpsc::UnboundedReceiver<QueueNews> {
        self.news.subscribe()
    }

    async fn find_queues(&self, _now: Timestamp) -> Result<Vec<String>, StoreError> {
        self.read(deliveries::find).await
    }

    /// One process owns the file: it drives every queue.
    async fn drive(
        &self,
        webhooks: Vec<String>,
        _now: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        Ok(webhooks)
    }

    async fn keep_driving(&self, _lease: Duration) -> Result<(), StoreError> {
        Ok(())
    }

    async fn stop_driving(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn load_queue(
        &self,
        webhook_id: &str,
        limit: usize,
        skip: Vec<i64>,
        now: Timestamp,
    ) -> Result<Option<QueuePage>, StoreError> {
        let webhook_id = webhook_id.to_string();
        self.read(move |c| deliveries::load(c, &webhook_id, limit, &skip, now))
            .await
    }

    async fn advance(
        &self,
        finished: Vec<Finished>,
        start: Vec<i64>,
        lease_until: Timestamp,
    ) -> Result<Advanced, StoreError> {
        self.write_lazy(move |c| deliveries::advance(c, &finished, &start, lease_until))
            .await
    }

    async fn skip_undeliverable(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.write_lazy(move |c| deliveries::skip_undeliverable(c, now))
            .await
    }

    async fn replay_skipped(
        &self,
        owner: &Owner,
        webhook_id: &str,
        since: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Replay, StoreError> {
        let (owner, webhook) = (owner.clone(), webhook_id.to_string());
        let replay = self
            .write(move |c| {
                deliveries::replay(c, &owner.account_id, &owner.user_id, &webhook, since, now)
            })
            .await?;
        if matches!(replay, Replay::Queued(n) if n > 0) {
            self.news.changed(webhook_id);
        }
        Ok(replay)
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        self.read(held::backlog).await
    }
}

fn select_webhook(c: &Connection, owner: &Owner, id: &str) -> rusqlite::Result<Option<Webhook>> {
    c.prepare_cached(&format!(
        "SELECT {} FROM webhooks WHERE id = ?1 AND account_id = ?2 AND user_id = ?3",
        rows::WEBHOOK_COLUMNS
    ))?
    .query_row(params![id, owner.account_id, owner.user_id], rows::webhook)
    .optional()
}
