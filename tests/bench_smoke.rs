//! `callhook bench --quick` as CI runs it: the real binary, real `serve` children, real HTTP,
//! every scenario. It asserts correctness only (nothing lost, repeated or reordered in any
//! scenario; everything cleaned up), never speed: the figures of a debug build on a shared
//! machine mean nothing.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_callhook");

/// Every scenario, as the JSON report names its section.
const SCENARIOS: [&str; 8] = [
    "baseline",
    "throughput",
    "latency",
    "fanout",
    "population",
    "backlog",
    "restart",
    "faults",
];

/// Runs `callhook bench --quick --json <dir>/bench.json` with `TMPDIR=<dir>/tmp`, so that
/// whatever the bench leaves behind in its temporary directory shows up there.
fn run_quick_bench(dir: &Path) -> (Output, Value) {
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).expect("create TMPDIR");
    let json = dir.join("bench.json");
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CALLHOOK_") {
            command.env_remove(name);
        }
    }
    let output = command
        .args(["bench", "--quick", "--json"])
        .arg(&json)
        .env("TMPDIR", &tmp)
        .output()
        .expect("run callhook bench");
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let report = serde_json::from_str(&text).expect("the JSON report parses");
    (output, report)
}

/// `object[key]` as a count, failing loudly when it is absent or not a number (so a renamed or
/// dropped field can never make an assertion pass by comparing nothing).
fn count(object: &Value, key: &str) -> u64 {
    object[key]
        .as_u64()
        .unwrap_or_else(|| panic!("`{key}` is not a count in {object:#}"))
}

/// Asserts that a verification (a scenario's, or one phase's) checked something and found every
/// delivery exactly once and in call order.
fn assert_clean(v: &Value, what: &str) {
    assert!(count(v, "expected") > 0, "{what} checked nothing: {v:#}");
    assert_eq!(count(v, "delivered"), count(v, "expected"), "{what}: {v:#}");
    for zero in ["missing", "duplicates", "orderViolations", "ingestErrors"] {
        assert_eq!(count(v, zero), 0, "{what}: {zero}: {v:#}");
    }
}

#[test]
fn quick_bench_delivers_every_event_exactly_once_in_call_order_in_every_scenario_and_cleans_up() {
    let dir = tempfile::tempdir().expect("create temp dir");

    let (output, report) = run_quick_bench(dir.path());

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["passed"], Value::Bool(true), "{report:#}");
    assert!(stdout.contains("RESULT: PASSED"), "{stdout}");

    // The platform scenarios together, then each scenario and each of its phases on its own.
    let totals = &report["verification"];
    assert_clean(totals, "all platform scenarios");
    assert_eq!(count(totals, "unexpected"), 0, "{totals:#}");
    assert_eq!(count(totals, "malformed"), 0, "{totals:#}");
    for scenario in SCENARIOS {
        let v = &report[scenario]["verification"];
        assert_clean(v, scenario);
        assert_eq!(count(v, "unexpected"), 0, "{scenario}: {v:#}");
        let phases = v["phases"]
            .as_array()
            .unwrap_or_else(|| panic!("{scenario} has no phases: {v:#}"));
        assert!(!phases.is_empty(), "{scenario} has no phases");
        for phase in phases {
            assert_clean(phase, &format!("{scenario}, {}", phase["phase"]));
        }
    }

    // The SIP scenario (SIPp is installed wherever .ci/run ran): every call through the proxy
    // completed, and every call report it made was applied.
    if report.get("sip").is_some() {
        let sip = &report["sip"];
        assert!(count(sip, "reportsExpected") > 0, "{sip:#}");
        assert_eq!(
            count(sip, "reportsApplied"),
            count(sip, "reportsExpected"),
            "{sip:#}"
        );
        assert_eq!(count(sip, "reportsRefused"), 0, "{sip:#}");
        for step in sip["steps"].as_array().expect("sip steps") {
            assert_eq!(count(&step["proxied"], "failed"), 0, "{step:#}");
            assert_eq!(
                count(&step["proxied"], "successful"),
                count(step, "calls"),
                "{step:#}"
            );
        }
    } else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no sip section under CI"
        );
    }

    // Every platform scenario's serve counted what the receiver got, retried only where the
    // receiver was down, failed nothing, and was stopped. (The faults scenario's dead endpoints
    // keep deliveries retrying past its end, so its serve never has an empty queue to count.)
    for scenario in SCENARIOS[1..].iter().filter(|s| **s != "faults") {
        let resources = &report[scenario]["resources"];
        let counters = &resources["deliveryCounters"];
        assert_eq!(count(counters, "failed"), 0, "{scenario}: {counters:#}");
        if !["backlog", "restart"].contains(scenario) {
            let expected = count(&report[scenario]["verification"], "expected");
            assert_eq!(
                count(counters, "delivered"),
                expected,
                "{scenario}: {counters:#}"
            );
            assert_eq!(count(counters, "retried"), 0, "{scenario}: {counters:#}");
        }
        assert!(
            resources["shutdownSeconds"].is_number(),
            "{scenario}: {resources:#}"
        );
    }
    // The backlog was really queued behind a receiver answering 503, and restart really had
    // pending deliveries when serve was stopped.
    assert!(
        count(&report["backlog"], "refusedAttempts") > 0,
        "{report:#}"
    );
    assert!(count(&report["restart"], "pending") > 0, "{report:#}");
    // The faults scenario measured both phases and compared them.
    let faults = &report["faults"];
    assert_eq!(faults["deadEndpoints"], 100, "{faults:#}");
    assert!(faults["p99Ratio"].is_number(), "{faults:#}");

    // The latency plot was written next to the JSON, as a PNG.
    let png = std::fs::read(dir.path().join("bench-latency.png")).expect("the latency plot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");

    // Every serve's temporary directory (database, log) was removed.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("tmp"))
        .expect("read TMPDIR")
        .map(|e| e.expect("dir entry").file_name())
        .collect();
    assert!(left.is_empty(), "the bench left {left:?} in its TMPDIR");
}

#[test]
fn an_unknown_scenario_is_refused_before_anything_runs() {
    let output = Command::new(BIN)
        .args(["bench", "--quick", "--scenario", "throughput,warp-speed"])
        .output()
        .expect("run callhook bench");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("warp-speed"), "{stderr}");
}

#[test]
fn several_nodes_without_a_database_server_are_refused_before_anything_runs() {
    let output = Command::new(BIN)
        .args(["bench", "--quick", "--nodes", "2"])
        .env_remove("CALLHOOK_BENCH_DB_SERVER")
        .output()
        .expect("run callhook bench");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--nodes 2 needs --db-server"), "{stderr}");
}

#[test]
fn the_postgres_mode_refuses_the_scenarios_it_cannot_run_naming_those_it_can() {
    // Refused before any connection: no PostgreSQL server is needed (none listens on port 1).
    let output = Command::new(BIN)
        .args([
            "bench",
            "--quick",
            "--db-server",
            "postgres://postgres@127.0.0.1:1/test",
        ])
        .args(["--scenario", "latency,restart"])
        .output()
        .expect("run callhook bench");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("only the scenarios baseline, throughput, latency run; not restart"),
        "{stderr}"
    );
}
