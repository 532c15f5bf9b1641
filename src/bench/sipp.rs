//! SIPp (the `sipp` binary, 3.6) as the callers and callees that drive the SIP observer: the
//! integration tests and the SIP benchmark start a callee ([`Uas`]) and run callers against it
//! ([`run_uac`]), straight or through the proxy (SIPp's `-rsa`).
//!
//! The scenario files are the repository's `sipp/` directory, embedded here and written to a
//! temporary directory per run, so an installed binary needs only `sipp` on the PATH. Each
//! [`Flow`] is one caller file and one callee file; their keywords (`-s`, `-key`) are in
//! [`DEFAULT_KEYS`] and each file's header comment.
//!
//! What a run reports comes from SIPp's own files (`files`, read by `parse`): the call counts
//! from its `-trace_stat` CSV (last row), the reasons from its `-trace_err` log and stderr, and
//! the INVITE-to-200 times from its `-trace_shortmsg` log, whose timestamps have microseconds.
//! SIPp 3.6.1's `-trace_rtt` file is not used: its times are whole milliseconds, and on
//! loopback it wrote 0 for calls whose 200 came about 1.2 ms after the INVITE.
//!
//! Blocking (std processes and files): call it from a test thread or `spawn_blocking`.
//! May depend on: std only.

mod files;
mod parse;

pub use parse::percentile;

use files::Files;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// A call flow: one caller (UAC) and one callee (UAS) scenario file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// INVITE, 180, 200, ACK, `hold_ms` up, BYE, 200.
    Answer,
    /// INVITE, 180, CANCEL, 200, 487, ACK.
    Cancel,
    /// INVITE, 180, `code` `reason` (486, 603, 480 or 408), ACK.
    Refuse,
    /// Answered, then re-INVITE a=sendonly and back to a=sendrecv, then BYE.
    Hold,
    /// The fastest answered call: no pause; the caller times INVITE to 200.
    Bench,
}

impl Flow {
    pub const ALL: [Flow; 5] = [
        Flow::Answer,
        Flow::Cancel,
        Flow::Refuse,
        Flow::Hold,
        Flow::Bench,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Flow::Answer => "answer",
            Flow::Cancel => "cancel",
            Flow::Refuse => "refuse",
            Flow::Hold => "hold",
            Flow::Bench => "bench",
        }
    }

    /// The caller's scenario file.
    pub fn uac_xml(self) -> &'static str {
        match self {
            Flow::Answer => include_str!("../../sipp/uac_answer.xml"),
            Flow::Cancel => include_str!("../../sipp/uac_cancel.xml"),
            Flow::Refuse => include_str!("../../sipp/uac_refuse.xml"),
            Flow::Hold => include_str!("../../sipp/uac_hold.xml"),
            Flow::Bench => include_str!("../../sipp/uac_bench.xml"),
        }
    }

    /// The callee's scenario file.
    pub fn uas_xml(self) -> &'static str {
        match self {
            Flow::Answer => include_str!("../../sipp/uas_answer.xml"),
            Flow::Cancel => include_str!("../../sipp/uas_cancel.xml"),
            Flow::Refuse => include_str!("../../sipp/uas_refuse.xml"),
            Flow::Hold => include_str!("../../sipp/uas_hold.xml"),
            Flow::Bench => include_str!("../../sipp/uas_bench.xml"),
        }
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The keywords every run passes, overridden by the caller's `keys`. SIPp refuses a scenario
/// that uses a keyword it was not given, so each one the files use has a default here.
/// `service` is SIPp's `-s` (the callee's extension: Request-URI and To user); the others are
/// `-key NAME VALUE`: the caller's From (`caller`, `caller_name`), how long an answered call
/// stays up (`hold_ms`), and the refusal (`code`, `reason`; the caller also accepts `any`).
pub const DEFAULT_KEYS: [(&str, &str); 6] = [
    ("service", "bob"),
    ("caller", "alice"),
    ("caller_name", "Alice"),
    ("hold_ms", "1000"),
    ("code", "486"),
    ("reason", "Busy Here"),
];

/// What one SIPp process did.
#[derive(Debug, Clone, Default)]
pub struct SippRun {
    /// Calls that went through the whole scenario.
    pub successful: u64,
    /// Calls that did not (unexpected message, timeout, failed check).
    pub failed: u64,
    /// Per answered call, microseconds from sending the INVITE to taking in its 200 (caller
    /// side only; SIPp's own handling delay included, about a millisecond per step).
    pub invite_to_200_us: Vec<u64>,
    /// SIPp's error log (the start of it), empty when nothing went wrong.
    pub errors: String,
}

impl SippRun {
    /// `Ok(self)` when exactly `calls` calls succeeded; otherwise an error that says how many
    /// failed and why (SIPp's error log).
    pub fn all_succeeded(self, calls: u64) -> io::Result<SippRun> {
        if self.failed == 0 && self.successful == calls {
            return Ok(self);
        }
        Err(io::Error::other(format!(
            "{} of {calls} calls succeeded, {} failed; sipp's error log:\n{}",
            self.successful, self.failed, self.errors
        )))
    }
}

/// Is `sipp` on the PATH?
pub fn available() -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join("sipp")).is_ok_and(|m| m.is_file() && is_executable(&m))
        })
    })
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    true
}

/// The address every SIPp process binds and writes in Via and Contact.
const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// Ports tried before giving up when another process takes the chosen one first.
const PORT_TRIES: usize = 5;
/// How long a callee may take to bind its port.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a caller waits for each expected message before it fails the call.
const RECV_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a process is looked at while waiting for it.
const POLL: Duration = Duration::from_millis(5);
/// SIPp's exit status when it cannot bind its socket (-2).
const EXIT_BIND_FAILED: i32 = 254;
/// The most of an error log carried in a report.
const ERROR_LOG_LIMIT: usize = 4000;

/// A SIPp callee listening on 127.0.0.1, killed when dropped.
pub struct Uas {
    child: Option<Child>,
    addr: SocketAddr,
    flow: Flow,
    calls: Option<u64>,
    files: Files,
}

impl Uas {
    /// Starts `sipp` with `flow`'s callee file on a free UDP port of 127.0.0.1 and returns once
    /// it holds the port. With `calls`, it exits after that many calls ([`Uas::finish`]);
    /// without, it answers until dropped.
    pub fn start(flow: Flow, keys: &[(&str, &str)], calls: Option<u64>) -> io::Result<Uas> {
        let keys = key_args(keys)?;
        let files = Files::new("uas", flow.uas_xml())?;
        let mut last_error = None;
        for _ in 0..PORT_TRIES {
            let port = free_udp_port()?;
            let mut command = files.command(port);
            command.args(&keys);
            if let Some(calls) = calls {
                command.arg("-m").arg(calls.to_string());
            }
            let mut child = command.spawn().map_err(|e| spawn_error(&e))?;
            match wait_listening(&mut child, port)? {
                Listening::Yes => {
                    return Ok(Uas {
                        child: Some(child),
                        addr: SocketAddr::from((LOOPBACK, port)),
                        flow,
                        calls,
                        files,
                    });
                }
                Listening::PortTaken => last_error = Some(files.failure("port taken")),
                Listening::Exited(status) => {
                    return Err(files.failure(&format!("sipp {flow} UAS exited ({status})")));
                }
                Listening::TimedOut => {
                    kill(&mut child);
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        files.failure(&format!("sipp {flow} UAS did not bind port {port}")),
                    ));
                }
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no port tried")))
    }

    /// The address callers send to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for a callee started with `calls` to finish them and exit, and says how its calls
    /// went (the callee's checks: a CANCEL's or non-2xx ACK's branch, a re-INVITE's SDP). Kills
    /// it and fails after `timeout`.
    pub fn finish(mut self, timeout: Duration) -> io::Result<SippRun> {
        let flow = self.flow;
        if self.calls.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Uas::finish needs a callee started with a number of calls",
            ));
        }
        let Some(mut child) = self.child.take() else {
            return Err(io::Error::other("sipp UAS already stopped"));
        };
        let status = wait_or_kill(&mut child, timeout)?;
        let Some(status) = status else {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                self.files
                    .failure(&format!("sipp {flow} UAS still running after {timeout:?}")),
            ));
        };
        self.files.outcome(&format!("sipp {flow} UAS"), status)
    }
}

impl Drop for Uas {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child);
        }
    }
}

/// Runs `flow`'s caller file to completion: `calls` calls at `rate` per second from a free
/// port of 127.0.0.1 to `target` (the callee: Request-URI and To), every message sent to
/// `proxy` instead when given. Kills SIPp and fails after `timeout`. A run whose calls failed
/// is still `Ok`, with the counts and SIPp's error log: [`SippRun::all_succeeded`] turns it into
/// an error.
pub fn run_uac(
    flow: Flow,
    target: SocketAddr,
    proxy: Option<SocketAddr>,
    keys: &[(&str, &str)],
    calls: u64,
    rate: f64,
    timeout: Duration,
) -> io::Result<SippRun> {
    if calls == 0 || !rate.is_finite() || rate <= 0.0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("run_uac needs calls > 0 and a positive rate, not {calls} at {rate}/s"),
        ));
    }
    let keys = key_args(keys)?;
    let files = Files::new("uac", flow.uac_xml())?;
    for _ in 0..PORT_TRIES {
        let port = free_udp_port()?;
        let mut command = files.command(port);
        command.arg(target.to_string()).args(&keys);
        if let Some(proxy) = proxy {
            command.arg("-rsa").arg(proxy.to_string());
        }
        command
            .arg("-m")
            .arg(calls.to_string())
            .arg("-r")
            .arg(rate.to_string())
            .arg("-recv_timeout")
            .arg(RECV_TIMEOUT.as_millis().to_string())
            .arg("-trace_shortmsg")
            .arg("-shortmessage_file")
            .arg(&files.messages);
        let mut child = command.spawn().map_err(|e| spawn_error(&e))?;
        let Some(status) = wait_or_kill(&mut child, timeout)? else {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                files.failure(&format!("sipp {flow} UAC still running after {timeout:?}")),
            ));
        };
        if status.code() == Some(EXIT_BIND_FAILED) {
            continue;
        }
        let mut run = files.outcome(&format!("sipp {flow} UAC"), status)?;
        let text = std::fs::read_to_string(&files.messages).unwrap_or_default();
        run.invite_to_200_us = parse::invite_to_200_us(&text);
        return Ok(run);
    }
    Err(files.failure(&format!(
        "sipp {flow} UAC could not bind a port in {PORT_TRIES} tries"
    )))
}

/// The `-s`/`-key` arguments: [`DEFAULT_KEYS`] with `keys` in their place.
fn key_args(keys: &[(&str, &str)]) -> io::Result<Vec<OsString>> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    for (name, value) in keys {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(invalid(format!(
                "sipp keyword {name:?}: letters, digits, _ only"
            )));
        }
        if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
            return Err(invalid(format!(
                "sipp keyword {name}: the value has a line break"
            )));
        }
    }
    let mut merged: Vec<(&str, &str)> = DEFAULT_KEYS.to_vec();
    for &(name, value) in keys {
        match merged.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => merged.push((name, value)),
        }
    }
    let mut args = Vec::new();
    for (name, value) in merged {
        if name == "service" {
            args.extend(["-s".into(), value.into()]);
        } else {
            args.extend(["-key".into(), name.into(), value.into()]);
        }
    }
    Ok(args)
}

/// A UDP port of 127.0.0.1 that was free a moment ago (SIPp needs a number; when another
/// process takes it first, SIPp exits 254 and the caller tries another).
fn free_udp_port() -> io::Result<u16> {
    Ok(UdpSocket::bind((LOOPBACK, 0))?.local_addr()?.port())
}

enum Listening {
    Yes,
    PortTaken,
    Exited(ExitStatus),
    TimedOut,
}

/// Waits until `port` can no longer be bound (SIPp holds it) or the process exits.
fn wait_listening(child: &mut Child, port: u16) -> io::Result<Listening> {
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(if status.code() == Some(EXIT_BIND_FAILED) {
                Listening::PortTaken
            } else {
                Listening::Exited(status)
            });
        }
        match UdpSocket::bind((LOOPBACK, port)) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => return Ok(Listening::Yes),
            Err(e) => return Err(e),
            // Free still: SIPp has not bound it yet (or lost it to this probe: then it exits 254).
            Ok(probe) => drop(probe),
        }
        if Instant::now() >= deadline {
            return Ok(Listening::TimedOut);
        }
        std::thread::sleep(POLL);
    }
}

/// The exit status, or `None` after killing the process when `timeout` passed first.
fn wait_or_kill(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            kill(child);
            return Ok(None);
        }
        std::thread::sleep(POLL);
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn spawn_error(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("starting sipp: {e} (is SIPp installed?)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<&str> {
        args.iter().map(|a| a.to_str().unwrap_or("?")).collect()
    }

    #[test]
    fn keys_override_the_defaults_and_service_becomes_dash_s() {
        let args = key_args(&[("service", "2001"), ("code", "603"), ("extra", "x y")]).unwrap();
        let args = strings(&args);
        assert_eq!(&args[..2], ["-s", "2001"]);
        assert!(args.windows(3).any(|w| w == ["-key", "code", "603"]));
        assert!(
            args.windows(3)
                .any(|w| w == ["-key", "reason", "Busy Here"])
        );
        assert!(args.windows(3).any(|w| w == ["-key", "extra", "x y"]));
        assert_eq!(args.iter().filter(|a| **a == "code").count(), 1);
    }

    #[test]
    fn a_keyword_with_a_bad_name_or_a_line_break_is_refused() {
        for keys in [
            [("bad name", "x")],
            [("", "x")],
            [("caller", "a\r\nVia: x")],
        ] {
            let e = key_args(&keys).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn every_flow_embeds_a_caller_and_a_callee_scenario() {
        for flow in Flow::ALL {
            assert!(flow.uac_xml().contains("<scenario"), "{flow}");
            assert!(flow.uas_xml().contains("<scenario"), "{flow}");
            assert!(flow.uac_xml().contains("[caller_name]"), "{flow}");
            assert!(flow.uas_xml().contains("[last_Via:]"), "{flow}");
        }
    }

    #[test]
    fn all_succeeded_names_the_failures_and_the_log() {
        let run = SippRun {
            successful: 1,
            failed: 1,
            errors: "unexpected message 481".into(),
            ..SippRun::default()
        };
        let e = run.all_succeeded(2).unwrap_err().to_string();
        assert!(e.contains("1 of 2 calls succeeded, 1 failed"), "{e}");
        assert!(e.contains("unexpected message 481"), "{e}");
        let short = SippRun {
            successful: 1,
            ..SippRun::default()
        };
        assert!(short.all_succeeded(2).is_err());
    }
}
