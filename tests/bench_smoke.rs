//! `callhook bench --quick` as CI runs it: the real binary, a real `serve` child, real HTTP. It
//! asserts correctness only (nothing lost, repeated or reordered; everything cleaned up), never
//! speed: the figures of a debug build on a shared machine mean nothing.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_callhook");

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

#[test]
fn quick_bench_delivers_every_event_exactly_once_in_call_order_and_cleans_up() {
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

    let v = &report["verification"];
    assert!(
        count(v, "expected") > 0,
        "the platform phases checked nothing: {v:#}"
    );
    assert_eq!(count(v, "delivered"), count(v, "expected"), "{v:#}");
    for zero in [
        "missing",
        "duplicates",
        "orderViolations",
        "ingestErrors",
        "unexpected",
        "malformed",
    ] {
        assert_eq!(count(v, zero), 0, "{zero}: {v:#}");
    }
    // Each phase was verified on its own, and each sent something.
    for phase in ["baseline", "throughput", "latency"] {
        let p = &v["phases"][phase];
        assert!(count(p, "expected") > 0, "{phase} checked nothing: {v:#}");
        assert_eq!(
            count(p, "delivered"),
            count(p, "expected"),
            "{phase}: {p:#}"
        );
        assert_eq!(count(p, "missing"), 0, "{phase}: {p:#}");
        assert_eq!(count(p, "duplicates"), 0, "{phase}: {p:#}");
        assert_eq!(count(p, "orderViolations"), 0, "{phase}: {p:#}");
    }
    // The throughput phase ingested whole calls: the events asked for, rounded up to calls.
    assert_eq!(count(&report["throughput"], "events") % 3, 0, "{report:#}");
    assert!(count(&report["throughput"], "events") >= count(&report["settings"], "events"));
    // serve's own counters agree: nothing retried or failed.
    let serve = &report["serve"]["deliveryCounters"];
    assert_eq!(count(serve, "delivered"), count(v, "expected"), "{serve:#}");
    assert_eq!(count(serve, "failed"), 0, "{serve:#}");

    // serve was stopped and its temporary directory (database, log) removed.
    assert!(report["serve"]["shutdownSeconds"].is_number(), "{report:#}");
    let left: Vec<_> = std::fs::read_dir(dir.path().join("tmp"))
        .expect("read TMPDIR")
        .map(|e| e.expect("dir entry").file_name())
        .collect();
    assert!(left.is_empty(), "the bench left {left:?} in its TMPDIR");
}
