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
type Job = Box<dyn FnOnce(&Connection) -> Reply + Send>;

/// Most operations committed together.
const MAX_BATCH: usize = 512;

pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
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
        op: impl FnOnce(&Connection) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply_to, reply) = tokio::sync::oneshot::channel::<Result<R, E>>();
        let job: Job = Box::new(move |conn| {
            let result = in_savepoint(conn, op);
            Box::new(move |commit_error| {
                let result = match (result, commit_error) {
                    (Ok(_), Some(e)) => Err(E::from(classify(e))),
                    (result, _) => result,
                };
                let _ = reply_to.send(result);
            })
        });
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
    conn.execute_batch("SAVEPOINT op")
        .map_err(|e| E::from(classify(&e)))?;
    let result = op(conn);
    let end = if result.is_ok() {
        "RELEASE op"
    } else {
        "ROLLBACK TO op; RELEASE op"
    };
    match (result, conn.execute_batch(end)) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(e)) => Err(E::from(classify(&e))),
        (Err(e), _) => Err(e),
    }
}

fn run(conn: Connection, queue: mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Without an outer transaction each savepoint commits on its own, which is still atomic.
        let grouped = conn.execute_batch("BEGIN IMMEDIATE").is_ok();
        let replies: Vec<Reply> = batch.into_iter().map(|job| job(&conn)).collect();
        let commit_error = if grouped {
            conn.execute_batch("COMMIT").err()
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
