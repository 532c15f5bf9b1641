//! Where the `serve` nodes under test keep their data ([`StoreChoice`]): a fresh SQLite file
//! with one node (the default), or a fresh database on a PostgreSQL server shared by one or more
//! nodes (`--db-server`, `--nodes`). Also what each choice allows: the scenarios PostgreSQL mode
//! runs, and the checks on the flags. Pure: the database itself is [`super::scratch_db`]'s.

use super::Scenario;
use url::Url;

/// The most `serve` nodes one session starts.
pub const MAX_NODES: u32 = 16;

/// The scenarios that run against PostgreSQL (the others measure SQLite's files, its restart
/// or its single node).
pub const POSTGRES_SCENARIOS: [Scenario; 3] =
    [Scenario::Baseline, Scenario::Throughput, Scenario::Latency];

/// The store every session of a run gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// A fresh SQLite file in a temporary directory, one `serve`.
    Sqlite,
    /// A fresh database on this PostgreSQL server per session, `nodes` `serve`s on it.
    Postgres { server: Url, nodes: u32 },
}

impl StoreChoice {
    /// Checks `--db-server` and `--nodes` together.
    pub fn from_flags(db_server: Option<&str>, nodes: u32) -> Result<StoreChoice, String> {
        if nodes == 0 || nodes > MAX_NODES {
            return Err(format!("--nodes must be 1 to {MAX_NODES}, not {nodes}"));
        }
        let Some(server) = db_server else {
            if nodes > 1 {
                return Err(format!(
                    "--nodes {nodes} needs --db-server: several nodes share one PostgreSQL \
                     database, while the SQLite store runs a single node"
                ));
            }
            return Ok(StoreChoice::Sqlite);
        };
        let server = Url::parse(server).map_err(|e| {
            format!("--db-server is not a URL ({e}); e.g. postgres://postgres@127.0.0.1:5432/test")
        })?;
        if !matches!(server.scheme(), "postgres" | "postgresql") {
            return Err(format!(
                "--db-server must be a postgres:// URL, not a {}: URL",
                server.scheme()
            ));
        }
        if server.host_str().is_none_or(str::is_empty) {
            return Err("--db-server names no host".into());
        }
        Ok(StoreChoice::Postgres { server, nodes })
    }

    /// `serve` processes per session.
    pub fn nodes(&self) -> u32 {
        match self {
            StoreChoice::Sqlite => 1,
            StoreChoice::Postgres { nodes, .. } => *nodes,
        }
    }

    /// `SQLite` or `PostgreSQL`.
    pub fn name(&self) -> &'static str {
        match self {
            StoreChoice::Sqlite => "SQLite",
            StoreChoice::Postgres { .. } => "PostgreSQL",
        }
    }

    /// The scenarios to run: those asked for (all when none), sorted, once each; with PostgreSQL
    /// only [`POSTGRES_SCENARIOS`], and asking for another is an error naming them.
    pub fn scenarios(&self, asked: &[Scenario]) -> Result<Vec<Scenario>, String> {
        let allowed: &[Scenario] = match self {
            StoreChoice::Sqlite => &Scenario::ALL,
            StoreChoice::Postgres { .. } => &POSTGRES_SCENARIOS,
        };
        let mut scenarios = if asked.is_empty() {
            allowed.to_vec()
        } else {
            asked.to_vec()
        };
        scenarios.sort_unstable();
        scenarios.dedup();
        let refused: Vec<&str> = scenarios
            .iter()
            .filter(|s| !allowed.contains(s))
            .map(|s| s.name())
            .collect();
        if !refused.is_empty() {
            let names: Vec<&str> = allowed.iter().map(|s| s.name()).collect();
            return Err(format!(
                "with --db-server only the scenarios {} run; not {}",
                names.join(", "),
                refused.join(", ")
            ));
        }
        Ok(scenarios)
    }
}

/// `store: PostgreSQL, 3 nodes` (`store: SQLite` for the single SQLite node), as the report's
/// header says it; from the names [`StoreChoice::name`] gives.
pub fn describe(store: &str, nodes: u32) -> String {
    match nodes {
        1 if store == StoreChoice::Sqlite.name() => format!("store: {store}"),
        1 => format!("store: {store}, 1 node"),
        n => format!("store: {store}, {n} nodes"),
    }
}

/// The URL of database `name` on the server of `server` (same user, host, port and options).
pub fn database_url(server: &Url, name: &str) -> Url {
    let mut url = server.clone();
    url.set_path(&format!("/{name}"));
    url
}

/// `server` without its password, to show in messages.
pub fn shown(server: &Url) -> String {
    let mut url = server.clone();
    let _ = url.set_password(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";

    #[test]
    fn several_nodes_without_a_database_server_are_refused() {
        let e = StoreChoice::from_flags(None, 2).expect_err("refused");
        assert!(e.contains("--nodes 2 needs --db-server"), "{e}");
    }

    #[test]
    fn no_server_and_one_node_is_sqlite() {
        assert_eq!(StoreChoice::from_flags(None, 1), Ok(StoreChoice::Sqlite));
    }

    #[test]
    fn a_server_url_gives_postgres_with_its_nodes() {
        let store = StoreChoice::from_flags(Some(SERVER), 3).expect("accepted");
        assert_eq!(store.nodes(), 3);
        assert_eq!(
            describe(store.name(), store.nodes()),
            "store: PostgreSQL, 3 nodes"
        );
        assert_eq!(describe("PostgreSQL", 1), "store: PostgreSQL, 1 node");
        assert_eq!(describe("SQLite", 1), "store: SQLite");
    }

    #[test]
    fn bad_servers_and_node_counts_are_refused_with_the_reason() {
        let cases = [
            (Some("not a url"), 1, "not a URL"),
            (
                Some("mysql://root@localhost/x"),
                1,
                "must be a postgres:// URL",
            ),
            (Some(SERVER), 0, "--nodes must be 1 to 16"),
            (Some(SERVER), 17, "--nodes must be 1 to 16"),
        ];
        for (server, nodes, why) in cases {
            let e = StoreChoice::from_flags(server, nodes).expect_err("refused");
            assert!(e.contains(why), "{server:?} {nodes}: {e}");
        }
    }

    #[test]
    fn postgres_mode_runs_baseline_throughput_and_latency_by_default() {
        let store = StoreChoice::from_flags(Some(SERVER), 1).expect("accepted");
        assert_eq!(
            store.scenarios(&[]),
            Ok(vec![
                Scenario::Baseline,
                Scenario::Throughput,
                Scenario::Latency
            ])
        );
        assert_eq!(
            store.scenarios(&[Scenario::Latency, Scenario::Baseline, Scenario::Latency]),
            Ok(vec![Scenario::Baseline, Scenario::Latency])
        );
    }

    #[test]
    fn postgres_mode_refuses_other_scenarios_naming_the_allowed_ones() {
        let store = StoreChoice::from_flags(Some(SERVER), 2).expect("accepted");
        let e = store
            .scenarios(&[Scenario::Throughput, Scenario::Restart, Scenario::Fanout])
            .expect_err("refused");
        assert!(e.contains("baseline, throughput, latency"), "{e}");
        assert!(e.contains("not fanout, restart"), "{e}");
    }

    #[test]
    fn sqlite_runs_every_scenario_by_default() {
        assert_eq!(
            StoreChoice::Sqlite.scenarios(&[]),
            Ok(Scenario::ALL.to_vec())
        );
    }

    #[test]
    fn the_session_database_replaces_the_path_and_keeps_the_rest() {
        let server =
            Url::parse("postgres://u:secret@db.example:6543/test?sslmode=disable").expect("URL");
        let url = database_url(&server, "callhook_bench_ab12");
        assert_eq!(
            url.as_str(),
            "postgres://u:secret@db.example:6543/callhook_bench_ab12?sslmode=disable"
        );
        assert_eq!(
            shown(&server),
            "postgres://u@db.example:6543/test?sslmode=disable"
        );
    }
}
