//! `callhook demo` runs to completion unattended: the platform, a receiver, the seed's webhook and
//! four simulated calls whose events all arrive, in order, before it prints the by-hand commands.

mod support;

use std::process::{Command, Stdio};
use support::BIN;

/// The states of each call, in the order the receiver printed them.
fn states_per_call(stdout: &str) -> Vec<Vec<String>> {
    let mut calls: Vec<(String, Vec<String>)> = Vec::new();
    for line in stdout.lines().filter(|l| l.contains(" | ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (state, id) = (
            words[1].to_string(),
            words[words.iter().position(|w| *w == "|").unwrap() - 1],
        );
        match calls.iter_mut().find(|(c, _)| c == id) {
            Some((_, states)) => states.push(state),
            None => calls.push((id.to_string(), vec![state])),
        }
    }
    calls.into_iter().map(|(_, states)| states).collect()
}

#[test]
fn demo_runs_unattended_and_shows_every_event_in_order() {
    // Arrange
    let tmp = tempfile::tempdir().unwrap();

    // Act
    let out = Command::new(BIN)
        .arg("demo")
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .output()
        .expect("run callhook demo");

    // Assert
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed\n{stdout}\n{stderr}");
    assert_eq!(
        states_per_call(&stdout),
        [
            vec![
                "INITIALIZING",
                "RINGING",
                "ACTIVE",
                "HELD",
                "ACTIVE",
                "ANSWERED"
            ],
            vec!["RINGING", "ACTIVE", "ANSWERED"],
            vec!["RINGING", "MISSED"],
            vec!["INITIALIZING", "RINGING", "CANCELLED"],
        ],
        "\n{stdout}"
    );
    assert!(
        stdout.contains("callhook webhooks create --url"),
        "by-hand commands: {stdout}"
    );
    assert!(
        !stdout.contains('\u{1b}'),
        "no colours when stdout is not a terminal"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "the demo removed its temporary database: {left:?}"
    );
}
