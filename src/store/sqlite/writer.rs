//! The single SQLite writer: one thread owns the write connection and commits whatever operations
//! are waiting in one transaction (group commit), each inside its own savepoint so that one
//! operation's failure never affects its neighbours. Callers get their result only after the
//! commit, so an answered write is a durable write.

use super::errors::classify;
use crate::store::StoreError;
use rusqlite::Connection;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Called after the batch's commit with its failure, if any.
type Reply = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;
/// Runs one operation inside the batch's transaction and returns how to answer its caller.
struct Job {
    /// Must be on disk before its caller hears back (see [`Durability`]).
    synced: bool,
    run: Box<dyn FnOnce(&Connection) -> Reply + Send>,
}

/// How durable a write must be when its caller hears back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durability {
    /// Synced to disk (`synchronous = FULL`): survives a power loss. Call events, tokens,
    /// webhooks.
    Synced,
    /// Written to the WAL but synced only by the next synced commit (`synchronous = NORMAL`):
    /// survives a crash of the process, and a power loss can only undo it back to a state that
    /// is redone safely (a lease or an outcome lost means a delivery is sent again, at least once).
    Lazy,
}

/// Most operations committed together.
const MAX_BATCH: usize = 512;

pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread on `conn`. SQLite's automatic WAL checkpoints run on it, at
    /// commit: a checkpoint on another connection cannot rewind the WAL while this one keeps
    /// writing, and the WAL then grows without bound (seen in the bench: 13 GB).
    pub(super) fn start(conn: Connection) -> std::io::Result<Writer> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("callhook-sqlite-writer".into())
            .spawn(move || run(conn, queue))?;
        Ok(Writer {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `op` in the next batch and waits for the batch's commit.
    pub(super) async fn write<R, E>(
        &self,
        durability: Durability,
        op: impl FnOnce(&Connection) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply_to, reply) = tokio::sync::oneshot::channel::<Result<R, E>>();
        let run = Box::new(move |conn: &Connection| -> Reply {
            let result = in_savepoint(conn, op);
            Box::new(move |commit_error| {
                let result = match (result, commit_error) {
                    (Ok(_), Some(e)) => Err(E::from(classify(e))),
                    (result, _) => result,
                };
                let _ = reply_to.send(result);
            })
        });
        let job = Job {
            synced: durability == Durability::Synced,
            run,
        };
        let closed = || E::from(StoreError::Unavailable("the store is shut down".into()));
        self.jobs
            .as_ref()
            .ok_or_else(closed)?
            .send(job)
            .map_err(|_| closed())?;
        reply.await.map_err(|_| closed())?
    }
}

impl Drop for Writer {
    /// Lets the writer finish what is queued, then waits for its thread.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn in_savepoint<R, E: From<StoreError>>(
    conn: &Connection,
    op: impl FnOnce(&Connection) -> Result<R, E>,
) -> Result<R, E> {
    exec_cached(conn, "SAVEPOINT op").map_err(|e| E::from(classify(&e)))?;
    let result = op(conn);
    let end = if result.is_ok() {
        exec_cached(conn, "RELEASE op")
    } else {
        exec_cached(conn, "ROLLBACK TO op").and_then(|()| exec_cached(conn, "RELEASE op"))
    };
    match (result, end) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(e)) => Err(E::from(classify(&e))),
        (Err(e), _) => Err(e),
    }
}

/// Runs a parameterless statement through the statement cache: the writer runs these for every
/// operation, and parsing them each time showed in profiles.
fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn run(conn: Connection, queue: mpsc::Receiver<Job>) {
    let mut synced = true;
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // One synced job makes the whole batch synced; it also syncs lazy batches before it.
        let wanted = batch.iter().any(|job| job.synced);
        if wanted != synced {
            let mode = if wanted { "FULL" } else { "NORMAL" };
            match conn.pragma_update(None, "synchronous", mode) {
                Ok(()) => synced = wanted,
                Err(e) => tracing::error!(error = %e, mode, "cannot switch PRAGMA synchronous"),
            }
        }
        // Without an outer transaction each savepoint commits on its own, which is still atomic.
        let grouped = exec_cached(&conn, "BEGIN IMMEDIATE").is_ok();
        let replies: Vec<Reply> = batch.into_iter().map(|job| (job.run)(&conn)).collect();
        let commit_error = if grouped {
            exec_cached(&conn, "COMMIT").err()
        } else {
            None
        };
        if let Some(e) = &commit_error {
            tracing::error!(error = %e, "committing a batch of writes failed; rolled back");
            let _ = conn.execute_batch("ROLLBACK");
        }
        for reply in replies {
            reply(commit_error.as_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> (Writer, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("w.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER NOT NULL)")
            .unwrap();
        (Writer::start(conn).unwrap(), dir)
    }

    fn insert(v: i64) -> impl FnOnce(&Connection) -> Result<i64, StoreError> + Send {
        move |c| {
            c.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
            Ok(c.query_row("SELECT COUNT(*) FROM t WHERE v = ?1", [v], |r| r.get(0))?)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_operation_rolls_back_alone_and_its_batch_mates_commit() {
        let (w, _dir) = writer();
        let w = std::sync::Arc::new(w);
        let mut tasks = Vec::new();
        for v in 0..50i64 {
            let w = w.clone();
            let durability = if v % 2 == 0 {
                Durability::Synced
            } else {
                Durability::Lazy
            };
            tasks.push(tokio::spawn(async move {
                if v % 10 == 3 {
                    w.write(
                        durability,
                        move |c: &Connection| -> Result<(), StoreError> {
                            c.execute("INSERT INTO t (v) VALUES (?1)", [1000 + v])?;
                            Err(StoreError::Internal("refused on purpose".into()))
                        },
                    )
                    .await
                    .map(|_| 0)
                } else {
                    w.write(durability, insert(v)).await
                }
            }));
        }
        let mut failed = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(n) => assert_eq!(n, 1),
                Err(_) => failed += 1,
            }
        }
        assert_eq!(failed, 5);
        let count: i64 = w
            .write(
                Durability::Synced,
                |c: &Connection| -> Result<i64, StoreError> {
                    Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)
                },
            )
            .await
            .unwrap();
        assert_eq!(count, 45, "the refused operations left nothing behind");
    }
}
