//! The SIPp scenario pairs in `sipp/`, caller straight to callee (no proxy), through
//! `callhook::bench::sipp`: every flow completes on both sides (the callee checks the CANCEL's
//! and the non-2xx ACK's branch and the re-INVITEs' SDP), each refusal code arrives as asked,
//! and the bench flow's INVITE-to-200 times are measured. One test runs every flow again
//! through `callhook serve --sip` (SIPp's -rsa), the record-routing proxy they are written for.
//!
//! Without `sipp` on the PATH the tests say they were skipped, except under `CI=true`, where
//! they fail.

use callhook::bench::sipp::{self, Flow, SippRun, Uas};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

/// False (after saying so) when SIPp is missing and this is not CI.
fn sipp_present() -> bool {
    if sipp::available() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "sipp is not on the PATH under CI=true (Debian/Ubuntu: apt-get install sip-tester)"
    );
    println!("skipped: sipp not on the PATH (Debian/Ubuntu: apt-get install sip-tester)");
    false
}

/// One call of `flow` straight from caller to callee; both sides' outcomes, checked.
fn one_direct_call(flow: Flow, keys: &[(&str, &str)]) -> (SippRun, SippRun) {
    one_call(flow, None, keys)
}

/// One call of `flow`, through `proxy` when given; both sides' outcomes, checked.
fn one_call(flow: Flow, proxy: Option<SocketAddr>, keys: &[(&str, &str)]) -> (SippRun, SippRun) {
    let uas = Uas::start(flow, keys, Some(1)).expect("start the callee");
    let uac = sipp::run_uac(flow, uas.addr(), proxy, keys, 1, 10.0, TIMEOUT)
        .and_then(|run| run.all_succeeded(1))
        .unwrap_or_else(|e| panic!("{flow} caller: {e}"));
    let uas = uas
        .finish(TIMEOUT)
        .and_then(|run| run.all_succeeded(1))
        .unwrap_or_else(|e| panic!("{flow} callee: {e}"));
    (uac, uas)
}

#[test]
fn an_answered_call_completes_on_both_sides() {
    if !sipp_present() {
        return;
    }
    let (uac, _) = one_direct_call(
        Flow::Answer,
        &[("hold_ms", "50"), ("caller", "1001"), ("service", "2001")],
    );
    assert_eq!(uac.invite_to_200_us.len(), 1, "one INVITE answered");
}

#[test]
fn a_cancelled_call_completes_with_the_invites_branch() {
    if !sipp_present() {
        return;
    }
    let (uac, _) = one_direct_call(Flow::Cancel, &[]);
    assert!(
        uac.invite_to_200_us.is_empty(),
        "a cancelled INVITE has no 200"
    );
}

#[test]
fn each_refusal_code_reaches_the_caller_and_is_acknowledged() {
    if !sipp_present() {
        return;
    }
    for (code, reason) in [
        ("486", "Busy Here"),
        ("603", "Decline"),
        ("480", "Temporarily Unavailable"),
        ("408", "Request Timeout"),
    ] {
        one_direct_call(Flow::Refuse, &[("code", code), ("reason", reason)]);
    }
}

#[test]
fn a_refusal_other_than_the_one_expected_fails_the_call_and_says_why() {
    if !sipp_present() {
        return;
    }
    let uas = Uas::start(
        Flow::Refuse,
        &[("code", "603"), ("reason", "Decline")],
        None,
    )
    .expect("start the callee");
    let run = sipp::run_uac(
        Flow::Refuse,
        uas.addr(),
        None,
        &[("code", "486")],
        1,
        10.0,
        TIMEOUT,
    )
    .expect("the caller runs");
    assert_eq!((run.successful, run.failed), (0, 1));
    let error = run.all_succeeded(1).unwrap_err().to_string();
    assert!(error.contains("SIP/2.0 603/486"), "{error}");
}

#[test]
fn a_call_put_on_hold_and_taken_off_completes_on_both_sides() {
    if !sipp_present() {
        return;
    }
    one_direct_call(Flow::Hold, &[("hold_ms", "50")]);
}

#[test]
fn the_bench_flow_at_200_calls_a_second_for_2_seconds_measures_every_answer() {
    if !sipp_present() {
        return;
    }
    let calls = 400;
    let uas = Uas::start(Flow::Bench, &[], Some(calls)).expect("start the callee");
    let uac = sipp::run_uac(Flow::Bench, uas.addr(), None, &[], calls, 200.0, TIMEOUT)
        .and_then(|run| run.all_succeeded(calls))
        .unwrap_or_else(|e| panic!("bench caller: {e}"));
    uas.finish(TIMEOUT)
        .and_then(|run| run.all_succeeded(calls))
        .unwrap_or_else(|e| panic!("bench callee: {e}"));
    let samples = &uac.invite_to_200_us;
    assert_eq!(samples.len() as u64, calls, "a sample per call");
    let p50 = sipp::percentile(samples, 50.0).unwrap_or_default();
    let p99 = sipp::percentile(samples, 99.0).unwrap_or_default();
    println!("bench flow direct, {calls} calls at 200/s: INVITE->200 p50 {p50} us, p99 {p99} us");
    assert!(p50 <= p99);
}

#[test]
fn a_callee_that_never_answers_fails_the_callers_calls_within_the_timeout() {
    if !sipp_present() {
        return;
    }
    // A bound socket that reads nothing: every INVITE goes unanswered.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let target = silent.local_addr().expect("addr");
    let run =
        sipp::run_uac(Flow::Answer, target, None, &[], 1, 10.0, TIMEOUT).expect("the caller runs");
    assert_eq!((run.successful, run.failed), (0, 1));
    assert!(!run.errors.is_empty(), "the error log says why");
}

/// `callhook serve --sip 127.0.0.1:0` on a fresh database, killed when dropped.
struct Proxy {
    child: Child,
    sip: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Proxy {
    fn start() -> Proxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(env!("CARGO_BIN_EXE_callhook"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CALLHOOK_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0", "--sip", "127.0.0.1:0"])
            .args(["--log", "error", "--db"])
            .arg(dir.path().join("callhook.db"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start callhook serve");
        let stdout = child.stdout.take().expect("serve's stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the start lines, then drains stdout so serve never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("callhook relaying SIP on udp://") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let mut proxy = Proxy {
            child,
            sip: SocketAddr::from(([127, 0, 0, 1], 0)),
            _dir: dir,
        };
        let addr = rx
            .recv_timeout(TIMEOUT)
            .expect("serve prints the address it relays SIP on");
        proxy.sip = addr.parse().expect("a socket address");
        proxy
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn every_flow_completes_through_the_record_routing_proxy() {
    if !sipp_present() {
        return;
    }
    let proxy = Proxy::start();
    let mut cases: Vec<(Flow, Vec<(&str, &str)>)> = vec![
        (Flow::Answer, vec![("hold_ms", "50")]),
        (Flow::Cancel, vec![]),
        (Flow::Hold, vec![("hold_ms", "50")]),
        (Flow::Bench, vec![]),
    ];
    for (code, reason) in [("486", "Busy Here"), ("408", "Request Timeout")] {
        cases.push((Flow::Refuse, vec![("code", code), ("reason", reason)]));
    }
    for (flow, keys) in &cases {
        one_call(*flow, Some(proxy.sip), keys);
    }
}
