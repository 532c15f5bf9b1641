//! Running the VIS client commands (`callhook webhooks ...`) as real processes against a test
//! server: base URL and token as flags or through `VIS_BASE_URL`/`VIS_TOKEN`, stdin fed or absent,
//! and the checks every run shares (a failure is one clear line; a token never appears in any
//! output).

use std::io::Write;
use std::process::{ExitStatus, Stdio};

use serde_json::Value;

use super::{Server, VIS, clean_command};

/// What a finished `callhook` process left.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts exit 0; returns self.
    pub fn ok(self) -> Run {
        assert!(self.status.success(), "expected success: {self}");
        self
    }

    /// stdout as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self}"))
    }

    /// Asserts a failure reported as one line `callhook: error: ...` on stderr (nothing else,
    /// no panic, a non-zero exit); returns that line.
    pub fn one_error_line(&self) -> String {
        assert!(!self.status.success(), "expected a failure: {self}");
        assert!(!self.stderr.contains("panicked"), "it panicked: {self}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr: {self}");
        assert!(
            lines[0].starts_with("callhook: error: "),
            "the error line must start with `callhook: error: `: {self}"
        );
        lines[0].to_string()
    }

    /// Asserts a failure whose last stderr line is `callhook: error: ...`; returns that line.
    pub fn last_error_line(&self) -> String {
        assert!(!self.status.success(), "expected a failure: {self}");
        assert!(!self.stderr.contains("panicked"), "it panicked: {self}");
        let last = self.stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("callhook: error: "),
            "the last stderr line must be the error: {self}"
        );
        last.to_string()
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`callhook {}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.status,
            self.stdout,
            self.stderr
        )
    }
}

/// `callhook ARGS` with no `CALLHOOK_*`, `VIS_*` or proxy variables inherited, `env` set, and
/// `stdin` written then closed (`None`: no stdin at all). Asserts that no string in `secrets`
/// appears in stdout or stderr.
pub fn run_cli(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>, secrets: &[&str]) -> Run {
    let mut cmd = clean_command();
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy().to_ascii_uppercase();
        if k.starts_with("VIS_") || k.ends_with("_PROXY") {
            cmd.env_remove(key);
        }
    }
    cmd.args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(match stdin {
            Some(_) => Stdio::piped(),
            None => Stdio::null(),
        });
    let mut child = cmd.spawn().expect("spawn callhook");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        // The process may exit before reading (e.g. on an error): a broken pipe is fine.
        let _ = pipe.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().expect("wait for callhook");
    let run = Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for secret in secrets {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a token was printed: {run}"
        );
    }
    run
}

/// The public-style VIS base URL of `server`: `http://127.0.0.1:PORT/t/vbc.prod/vis/v1`.
pub fn vis_base(server: &Server) -> String {
    format!("{}{VIS}", server.base())
}

/// `callhook webhooks --base-url <server> --token TOKEN ARGS`, no stdin.
pub fn webhooks_cli(server: &Server, token: &str, args: &[&str]) -> Run {
    webhooks_cli_with_stdin(server, token, args, None)
}

/// `callhook webhooks --base-url <server> --token TOKEN ARGS` with `stdin` fed.
pub fn webhooks_cli_with_stdin(
    server: &Server,
    token: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Run {
    let base = vis_base(server);
    let mut all = vec!["webhooks", "--base-url", &base, "--token", token];
    all.extend_from_slice(args);
    run_cli(&all, &[], stdin, &[token])
}
