//! The sip scenario (issue 8): SIPp callers place the shortest answered call (INVITE, 180, 200,
//! ACK, BYE, 200; [`Flow::Bench`]) at rising rates, each rate first straight to a SIPp callee and
//! then through `serve --sip` in front of the same callee, in the same run. Both parties are in
//! the `--sip-users` file, so every call also makes eight call reports (four states, two sides),
//! which the scenario waits for at the end: all must be applied, none refused.
//!
//! The figures: at each rate, calls completed and failed by SIPp, and the time from sending the
//! INVITE to taking in its 200 (SIPp's message log, microseconds) with and without the proxy; the
//! added p99 is the difference. The targets: 1,000 call setups/s through the proxy without a SIPp
//! failure, and under 1 ms added p99 at that rate.
//!
//! Skipped (with a warning) when `sipp` is not installed. SQLite only (it measures one proxy).

use super::BenchError;
use super::node::Node;
use super::platform::metrics_text;
use super::report::{SipFigures, SipScenario, SipStep};
use super::session::Rig;
use super::sipp::{self, Flow, SippRun, Uas, percentile};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Call rates of a full run, and of a quick one.
pub const RATES: [f64; 5] = [250.0, 500.0, 1000.0, 1500.0, 2000.0];
pub const QUICK_RATES: [f64; 1] = [100.0];
/// The rate the targets are judged at.
pub const TARGET_RATE: f64 = 1000.0;
/// Added INVITE->200 p99 allowed at [`TARGET_RATE`], in ms.
pub const TARGET_ADDED_P99_MS: f64 = 1.0;
/// Reports each call makes: INITIALIZING, RINGING, ACTIVE, ANSWERED for each of two users.
const REPORTS_PER_CALL: u64 = 8;

const USERS: &str = "[[users]]\nextension = \"alice\"\naccount = \"1\"\nuser = \"alice\"\n\
                     [[users]]\nextension = \"bob\"\naccount = \"1\"\nuser = \"bob\"\n";

pub async fn run(rig: &Rig<'_>) -> Result<Option<SipScenario>, BenchError> {
    if !sipp::available() {
        tracing::warn!("sip scenario skipped: sipp is not installed (apt-get install sip-tester)");
        return Ok(None);
    }
    let dir = std::env::temp_dir().join(format!("callhook-bench-sip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| BenchError::io("creating the sip bench dir", e))?;
    let result = measure(rig, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result.map(Some)
}

async fn measure(rig: &Rig<'_>, dir: &std::path::Path) -> Result<SipScenario, BenchError> {
    let settings = rig.settings;
    let users = dir.join("users.toml");
    std::fs::write(&users, USERS).map_err(|e| BenchError::io("writing the users file", e))?;
    let mut command = tokio::process::Command::new(&settings.exe);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CALLHOOK_") {
            command.env_remove(name);
        }
    }
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--sip",
            "127.0.0.1:0",
            "--db",
        ])
        .arg(dir.join("callhook.db"))
        .arg("--sip-users")
        .arg(&users)
        .args(&settings.serve_args)
        .kill_on_drop(true);
    let (mut node, proxy) = Node::spawn_sip(command, &dir.join("serve.log")).await?;
    let uas = blocking(|| Uas::start(Flow::Bench, &[], None)).await?;
    let callee = uas.addr();
    let rates: &[f64] = if settings.quick { &QUICK_RATES } else { &RATES };
    let mut steps = Vec::new();
    let mut proxied_calls = 0;
    for &rate in rates {
        let calls = ((rate * settings.step.as_secs_f64()).ceil() as u64).max(1);
        tracing::info!(rate, calls, "sip: straight to the callee");
        let direct = place(callee, None, calls, rate).await?;
        tracing::info!(rate, calls, "sip: through the proxy");
        let through = place(callee, Some(proxy), calls, rate).await?;
        proxied_calls += calls;
        steps.push(SipStep::new(
            rate,
            calls,
            figures(&direct),
            figures(&through),
        ));
    }
    drop(uas);
    let expected = proxied_calls * REPORTS_PER_CALL;
    let started = Instant::now();
    let (applied, refused) =
        wait_for_reports(rig, node.base_url(), expected, settings.stall_timeout).await?;
    node.signal().await;
    node.wait().await;
    Ok(SipScenario {
        steps,
        reports_expected: expected,
        reports_applied: applied,
        reports_refused: refused,
        reports_wait_seconds: started.elapsed().as_secs_f64(),
    })
}

/// One SIPp caller run of `calls` calls at `rate`, straight or through `proxy`.
async fn place(
    callee: SocketAddr,
    proxy: Option<SocketAddr>,
    calls: u64,
    rate: f64,
) -> Result<SippRun, BenchError> {
    let timeout = Duration::from_secs_f64(calls as f64 / rate + 60.0);
    blocking(move || sipp::run_uac(Flow::Bench, callee, proxy, &[], calls, rate, timeout)).await
}

fn figures(run: &SippRun) -> SipFigures {
    let ms = |q: f64| percentile(&run.invite_to_200_us, q).map(|us| us as f64 / 1000.0);
    SipFigures {
        successful: run.successful,
        failed: run.failed,
        samples: run.invite_to_200_us.len() as u64,
        p50_ms: ms(50.0),
        p99_ms: ms(99.0),
        max_ms: ms(100.0),
    }
}

/// Polls `/metrics` until the reports derived from SIP are all applied (or nothing moved for
/// `stall`): `(applied, refused)`.
async fn wait_for_reports(
    rig: &Rig<'_>,
    base: &str,
    expected: u64,
    stall: Duration,
) -> Result<(u64, u64), BenchError> {
    let mut last = (0, 0);
    let mut moved = Instant::now();
    loop {
        let text = metrics_text(&rig.client, base).await?;
        let count = |result: &str| {
            let prefix = format!("callhook_sip_reports_total{{result=\"{result}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix)?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let now = (count("applied"), count("refused") + count("failed"));
        if now.0 + now.1 >= expected {
            return Ok(now);
        }
        if now != last {
            last = now;
            moved = Instant::now();
        } else if moved.elapsed() > stall {
            return Ok(now);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, BenchError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BenchError::Setup(format!("sipp runner panicked: {e}")))?
        .map_err(|e| BenchError::io("running sipp", e))
}
