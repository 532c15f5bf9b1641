//! The platform under test: one or more real `callhook serve` children ([`Node`]s) on a fresh
//! database ([`StoreChoice`]: a SQLite file in a temporary directory, or a database of its own
//! on a PostgreSQL server, [`ScratchDatabase`]), plus the setup the bench needs on it (tokens
//! through `callhook token create`, webhooks through the first node's VIS API) and a look at its
//! delivery counters (`GET /metrics` of every node).
//!
//! The children get default settings: every `CALLHOOK_*` variable is removed from their
//! environment, so only the arguments the bench passes count. [`Platform::halt`] stops them with
//! SIGTERM and [`Platform::resume`] starts them again on the same database. [`Platform::stop`]
//! sends SIGTERM and waits, then drops the PostgreSQL database; if the bench ends any other way
//! (an error, Ctrl-C, a panic), dropping the `Platform` does the same, and either way the
//! temporary directory (the logs, the SQLite file) is removed.

use super::BenchError;
use super::node::Node;
use super::scratch_db::ScratchDatabase;
use super::store::StoreChoice;
use reqwest::Client;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Serialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::process::Command;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The VIS base path.
const VIS: &str = "/t/vbc.prod/vis/v1";

/// Webhooks created at once by [`Platform::create_webhooks`].
const CREATE_CONCURRENCY: usize = 32;

/// The database the nodes share.
enum Database {
    Sqlite(PathBuf),
    /// With its size once the nodes had set it up (the schema of a fresh database, some MB).
    Postgres(ScratchDatabase, Option<u64>),
}

/// The running `serve` nodes, their database and their temporary directory.
pub struct Platform {
    exe: PathBuf,
    extra: Vec<String>,
    dir: PathBuf,
    /// Stopped (on drop too) before the database is dropped: declared first.
    nodes: Vec<Node>,
    count: u32,
    db: Option<Database>,
}

/// How a start on an existing database went.
#[derive(Debug, Clone, Copy)]
pub struct Resumed {
    /// When the new processes were spawned.
    pub spawned: Instant,
    /// From the spawn to the last node's listening line.
    pub listening_in: Duration,
}

/// `callhook_deliveries_total` by outcome, as `serve` counted them (since it started), and
/// `callhook_delivery_queue_depth`. With several nodes: the counts summed over them, the queue
/// depth (the shared database's) as the first node reports it.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryCounters {
    pub delivered: u64,
    pub retried: u64,
    pub failed: u64,
    pub skipped: u64,
    pub queue_depth: u64,
}

/// A database's size: its main file(s), and its write-ahead log where it has one of its own
/// (SQLite; PostgreSQL's log is the whole server's, so `None`).
pub type DbBytes = (u64, Option<u64>);

impl Platform {
    /// Creates a fresh database for `store`, starts its nodes (`exe serve --listen
    /// 127.0.0.1:0 --db <it> <extra>`) and waits for their listening lines.
    pub async fn start(
        exe: &Path,
        extra: &[String],
        store: &StoreChoice,
    ) -> Result<Platform, BenchError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("callhook-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| BenchError::io(format!("creating {}", dir.display()), e))?;
        let mut platform = Platform {
            exe: exe.to_path_buf(),
            extra: extra.to_vec(),
            db: Some(Database::Sqlite(dir.join("bench.db"))),
            dir,
            nodes: Vec::new(),
            count: store.nodes(),
        };
        if let StoreChoice::Postgres { server, .. } = store {
            platform.db = Some(Database::Postgres(
                ScratchDatabase::create(server).await?,
                None,
            ));
        }
        platform.spawn().await?;
        if let Some(Database::Postgres(db, empty)) = &mut platform.db {
            *empty = db.size().await;
        }
        Ok(platform)
    }

    /// Stops every node with SIGTERM and waits for them to exit, keeping the database; returns
    /// how long that took. [`Platform::resume`] starts them again.
    pub async fn halt(&mut self) -> Duration {
        let stopping = Instant::now();
        self.terminate_and_wait().await;
        stopping.elapsed()
    }

    /// Starts the nodes again on the same database, with the same arguments (on new ports).
    pub async fn resume(&mut self) -> Result<Resumed, BenchError> {
        let spawned = Instant::now();
        self.spawn().await?;
        Ok(Resumed {
            spawned,
            listening_in: spawned.elapsed(),
        })
    }

    /// Spawns the nodes on the database, one after another, each up to its listening line.
    async fn spawn(&mut self) -> Result<(), BenchError> {
        for i in 0..self.count {
            let mut command = self.command();
            command
                .arg("serve")
                .arg("--listen")
                .arg("127.0.0.1:0")
                .arg("--db")
                .arg(self.db_arg())
                .args(&self.extra);
            let node = Node::spawn(command, &self.dir.join(format!("serve-{i}.log"))).await?;
            tracing::info!(
                node = i,
                url = node.base_url(),
                pid = node.pid(),
                "serve started"
            );
            self.nodes.push(node);
        }
        Ok(())
    }

    /// What `--db` gets: the SQLite file or the PostgreSQL database's URL.
    fn db_arg(&self) -> OsString {
        match &self.db {
            Some(Database::Sqlite(path)) => path.clone().into_os_string(),
            Some(Database::Postgres(db, _)) => db.url().as_str().into(),
            None => OsString::new(),
        }
    }

    /// `http://127.0.0.1:PORT` of the first node (where the bench creates webhooks).
    pub fn base_url(&self) -> &str {
        self.nodes.first().map_or("", Node::base_url)
    }

    /// `http://127.0.0.1:PORT` of every node, in order.
    pub fn base_urls(&self) -> Vec<&str> {
        self.nodes.iter().map(Node::base_url).collect()
    }

    /// The nodes' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(Node::pid).collect()
    }

    /// Runs `callhook token create --db <db> <args>` and returns the printed token.
    pub async fn create_token(&self, args: &[&str]) -> Result<String, BenchError> {
        let output = self
            .command()
            .args(["token", "create", "--db"])
            .arg(self.db_arg())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| BenchError::io("running token create", e))?;
        let token = String::from_utf8_lossy(&output.stdout).trim().to_string();
        if !output.status.success() || token.is_empty() {
            return Err(BenchError::Setup(format!(
                "token create {} failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(token)
    }

    /// Creates one webhook per URL (metadata policy NONE) for the user of `token`, a few at a
    /// time, through the first node's VIS API.
    pub async fn create_webhooks(
        &self,
        client: &Client,
        token: &str,
        urls: impl IntoIterator<Item = String>,
    ) -> Result<(), BenchError> {
        let endpoint: Arc<str> = format!("{}{VIS}/self/webhooks", self.base_url()).into();
        let token: Arc<str> = token.into();
        let slots = Arc::new(Semaphore::new(CREATE_CONCURRENCY));
        let mut tasks = JoinSet::new();
        for url in urls {
            let permit = slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| BenchError::Setup("webhook creation was cancelled".into()))?;
            let (client, endpoint, token) = (client.clone(), endpoint.clone(), token.clone());
            tasks.spawn(async move {
                let created = create_webhook(&client, &endpoint, &token, &url).await;
                drop(permit);
                created
            });
            // Fail early rather than after queueing every request.
            while let Some(done) = tasks.try_join_next() {
                done.map_err(|e| BenchError::Setup(format!("creating a webhook: {e}")))??;
            }
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| BenchError::Setup(format!("creating a webhook: {e}")))??;
        }
        Ok(())
    }

    /// The database's bytes: the SQLite file and its write-ahead log (0 when there is none), or
    /// what PostgreSQL's `pg_database_size` grew by since the nodes set up the fresh database
    /// (its schema alone is some MB; no log of its own).
    pub async fn db_bytes(&self) -> Option<DbBytes> {
        match self.db.as_ref()? {
            Database::Sqlite(db) => {
                let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
                let mut wal = db.clone().into_os_string();
                wal.push("-wal");
                Some((size(db)?, Some(size(Path::new(&wal)).unwrap_or(0))))
            }
            Database::Postgres(db, empty) => {
                Some((db.size().await?.saturating_sub((*empty)?), None))
            }
        }
    }

    /// Reads `callhook_deliveries_total` and the queue depth from every node's `GET /metrics`.
    pub async fn delivery_counters(&self, client: &Client) -> Result<DeliveryCounters, BenchError> {
        let mut each = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let text = metrics_text(client, node.base_url()).await?;
            each.push(parse_counters(&text));
        }
        Ok(combine_counters(&each))
    }

    /// Sends SIGTERM to every node, waits for the exits (killing any after a deadline), drops
    /// the PostgreSQL database and removes the temporary directory. Returns how long the
    /// shutdown of the nodes took.
    pub async fn stop(mut self) -> Result<Duration, BenchError> {
        let started = Instant::now();
        self.terminate_and_wait().await;
        let took = started.elapsed();
        if let Some(Database::Postgres(db, _)) = self.db.take()
            && let Err(e) = db.drop_now().await
        {
            tracing::warn!(error = %e, "could not drop the bench database");
        }
        self.remove_dir();
        Ok(took)
    }

    /// SIGTERM to every node, then wait for each (so they stop together).
    async fn terminate_and_wait(&mut self) {
        for node in &self.nodes {
            node.signal().await;
        }
        for node in &mut self.nodes {
            node.wait().await;
        }
        self.nodes.clear();
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.exe);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("CALLHOOK_") {
                command.env_remove(name);
            }
        }
        command.kill_on_drop(true);
        command
    }

    fn remove_dir(&self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove the bench directory");
        }
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        // Not on the normal path (that is `stop`): an error, Ctrl-C or a panic got here. The
        // nodes first (each drop waits for its exit), then the database.
        for node in &self.nodes {
            node.signal_now();
        }
        self.nodes.clear();
        self.db = None;
        if self.dir.exists() {
            self.remove_dir();
        }
    }
}

/// `POST {endpoint}` with a webhook for `url`: 201 expected.
async fn create_webhook(
    client: &Client,
    endpoint: &str,
    token: &str,
    url: &str,
) -> Result<(), BenchError> {
    let body = serde_json::json!({"url": url, "metadataPolicy": "NONE"}).to_string();
    let response = client
        .post(endpoint)
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| BenchError::http("creating a webhook", e))?;
    let status = response.status();
    if status.as_u16() != 201 {
        let text = response.text().await.unwrap_or_default();
        return Err(BenchError::Setup(format!(
            "creating a webhook answered {status}: {text}"
        )));
    }
    Ok(())
}

/// Picks `callhook_deliveries_total{outcome="..."} N` and `callhook_delivery_queue_depth N` out
/// of Prometheus text.
fn parse_counters(text: &str) -> DeliveryCounters {
    let mut counters = DeliveryCounters::default();
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("callhook_delivery_queue_depth ") {
            counters.queue_depth = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
            continue;
        }
        let Some(rest) = line.strip_prefix("callhook_deliveries_total{outcome=\"") else {
            continue;
        };
        let Some((outcome, value)) = rest.split_once("\"}") else {
            continue;
        };
        let value = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
        match outcome {
            "delivered" => counters.delivered = value,
            "retried" => counters.retried = value,
            "failed" => counters.failed = value,
            "skipped" => counters.skipped = value,
            _ => {}
        }
    }
    counters
}

/// Several nodes' counters as one: the counts summed, the queue depth (the shared database's,
/// which every node sees whole) the first node's.
fn combine_counters(each: &[DeliveryCounters]) -> DeliveryCounters {
    let mut all = DeliveryCounters {
        queue_depth: each.first().map_or(0, |c| c.queue_depth),
        ..DeliveryCounters::default()
    };
    for c in each {
        all.delivered += c.delivered;
        all.retried += c.retried;
        all.failed += c.failed;
        all.skipped += c.skipped;
    }
    all
}

/// The Prometheus text of `GET {base}/metrics`.
pub async fn metrics_text(client: &Client, base: &str) -> Result<String, BenchError> {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| BenchError::http("reading /metrics", e))?
        .text()
        .await
        .map_err(|e| BenchError::http("reading /metrics", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_counters_are_read_from_prometheus_text() {
        let text = "# HELP callhook_deliveries_total Delivery attempts\n\
            # TYPE callhook_deliveries_total counter\n\
            callhook_deliveries_total{outcome=\"delivered\"} 3000\n\
            callhook_deliveries_total{outcome=\"retried\"} 2\n\
            callhook_delivery_queue_depth 17\n";
        let c = parse_counters(text);
        assert_eq!(
            (c.delivered, c.retried, c.failed, c.skipped, c.queue_depth),
            (3000, 2, 0, 0, 17)
        );
    }

    #[test]
    fn counters_of_several_nodes_add_up_but_the_queue_is_counted_once() {
        let node = |delivered, failed, queue_depth| DeliveryCounters {
            delivered,
            failed,
            queue_depth,
            ..DeliveryCounters::default()
        };
        let c = combine_counters(&[node(100, 1, 7), node(250, 0, 6), node(50, 2, 7)]);
        assert_eq!((c.delivered, c.failed, c.queue_depth), (400, 3, 7));
        assert_eq!(combine_counters(&[]).queue_depth, 0);
    }
}
