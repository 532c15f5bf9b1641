//! The receiver examples in `examples/receivers/` (`verify.py` and `verify.js`, standard library
//! only), run as real processes: against real deliveries from a real `callhook serve` under both
//! metadata policies that carry a signature, with the right and with a wrong key; against requests
//! this test signs itself; and against the CONTRACT.md test vector (their `--selftest`).
//!
//! A missing `python3` or `node` fails the test when `CI=true`, and skips it with a note otherwise.

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::*;

/// The webhooks' signing key: non-ASCII, so the UTF-8 keying is exercised.
const KEY: &str = "s3cr€t";
/// A key an example is started with to see deliveries fail: the same text without the `€`.
const WRONG_KEY: &str = "s3cret";
/// A caller name with a quote, a backslash, non-ASCII and a non-BMP character.
const CALLER: &str = "Zoë \"Q\" O'Brien \\ 東京 📞";
/// How long an example may take to print its listening line.
const EXAMPLE_START: Duration = Duration::from_secs(15);
/// How long deliveries may take to reach an example.
const DELIVERY: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug)]
enum Lang {
    Python,
    Node,
}

impl Lang {
    fn program(self) -> &'static str {
        match self {
            Lang::Python => "python3",
            Lang::Node => "node",
        }
    }

    fn script(self) -> PathBuf {
        let file = match self {
            Lang::Python => "verify.py",
            Lang::Node => "verify.js",
        };
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("examples/receivers")
            .join(file)
    }

    /// Whether the runtime is installed. When it is not: a failure under `CI=true` (CI must
    /// test the examples), a printed note and a skip elsewhere.
    fn available(self) -> bool {
        let found = Command::new(self.program())
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if found {
            return true;
        }
        let why = format!(
            "`{}` is not installed (or `{} --version` fails), so {} cannot be tested",
            self.program(),
            self.program(),
            self.script().display()
        );
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "{why}; CI=true, so this is a failure: install {} in CI",
                self.program()
            );
        }
        eprintln!("SKIPPED: {why} (this would fail under CI=true)");
        false
    }
}

/// A running example receiver; `Drop` kills and reaps it.
struct Example {
    lang: Lang,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    url: String,
}

impl Example {
    /// Starts `verify.py|js --port 0 --key KEY` and reads its listening line.
    fn start(lang: Lang, key: &str) -> Example {
        let mut child = Command::new(lang.program())
            .arg(lang.script())
            .args(["--port", "0", "--key", key])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("spawn {} {}: {e}", lang.program(), lang.script().display())
            });
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err_text = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&err_text);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let mut example = Example {
            lang,
            child,
            lines,
            seen: Vec::new(),
            stderr: err_text,
            url: String::new(),
        };
        let first = example.next_line("the listening line", EXAMPLE_START);
        let port = first
            .strip_prefix("listening on http://127.0.0.1:")
            .and_then(|rest| rest.strip_suffix("/webhook"))
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0);
        match port {
            Some(port) => example.url = format!("http://127.0.0.1:{port}/webhook"),
            None => example.fail(&format!(
                "first line is not `listening on http://127.0.0.1:PORT/webhook`: {first:?}"
            )),
        }
        example
    }

    /// The next stdout line, waiting at most `timeout`.
    fn next_line(&mut self, what: &str, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(e) => self.fail(&format!(
                "no stdout line within {timeout:?} ({e}) for: {what}"
            )),
        }
    }

    /// Waits until the example has printed `verified STATE ID` for every (state, id) in
    /// `expected` (repeats, as at-least-once delivery allows, are fine); fails at once on any
    /// other line.
    fn expect_verified(&mut self, expected: &[(String, String)], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut missing: Vec<String> = expected
            .iter()
            .map(|(state, id)| format!("verified {state} {id}"))
            .collect();
        while !missing.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.next_line(&format!("{missing:?}"), left);
            if !line.starts_with("verified ") {
                self.fail(&format!(
                    "unexpected line {line:?} while waiting for {missing:?}"
                ));
            }
            missing.retain(|m| *m != line);
        }
    }

    /// Waits for a line starting with `prefix`, failing on a `verified` line before it.
    fn expect_prefix(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.next_line(&format!("a line starting with {prefix:?}"), left);
            if line.starts_with(prefix) {
                return line;
            }
            if line.starts_with("verified") {
                self.fail(&format!("{line:?} where {prefix:?} was expected"));
            }
        }
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!(
            "{} {}: {why}\n--- its stdout ---\n{}\n--- its stderr ---\n{}",
            self.lang.program(),
            self.lang.script().display(),
            self.seen.join("\n"),
            self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
        );
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lowercase hex HMAC-SHA256 (RFC 2104) of `text` keyed with the UTF-8 bytes of `key`, written
/// out here on plain SHA-256 so that it shares no code with callhook's signer.
fn hmac_hex(key: &str, text: &str) -> String {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key.as_bytes()));
    } else {
        block[..key.len()].copy_from_slice(key.as_bytes());
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(text.as_bytes())
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    hex::encode(outer)
}

/// The webhook create body for `url` under `policy`, signed with `KEY`.
fn signed_webhook(url: &str, policy: &str) -> Value {
    json!({
        "url": url,
        "events": ["CALL"],
        "signingAlgo": "HMAC_SHA256",
        "signingKey": KEY,
        "metadataPolicy": policy,
    })
}

/// Reports `steps` (state, ms after T0) of one call of user a1/u1 whose caller is `CALLER`;
/// returns the (state, call id) pairs reported.
async fn call(
    server: &Server,
    ingest: &str,
    ext: &str,
    direction: &str,
    steps: &[(&str, i64)],
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (state, ms) in steps {
        let body = with(
            with(
                report("a1", "u1", ext, direction, state),
                "callerId",
                json!(CALLER),
            ),
            "at",
            json!(rfc3339(T0 + ms)),
        );
        let event = server.ingest_ok(ingest, &body).await;
        assert_eq!(
            event["callerId"], CALLER,
            "the event keeps the caller name: {event}"
        );
        out.push((state.to_string(), id_of(&event)));
    }
    out
}

/// `python3 verify.py --selftest` / `node verify.js --selftest` pass on the CONTRACT.md vector.
fn self_test_passes(lang: Lang) {
    if !lang.available() {
        return;
    }
    let out = Command::new(lang.program())
        .arg(lang.script())
        .arg("--selftest")
        .stdin(Stdio::null())
        .output()
        .expect("run the self-test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim() == "selftest ok",
        "{} --selftest: {}\nstdout: {stdout}\nstderr: {}",
        lang.script().display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Real deliveries from `callhook serve`, one example per policy (HEADER, BODY): each verifies
/// every event of two calls.
async fn verifies_real_deliveries(lang: Lang) {
    if !lang.available() {
        return;
    }
    let server = Server::start();
    let ingest = server.ingest_token();
    let user = server.user_token("a1", "u1");
    let mut header = Example::start(lang, KEY);
    let mut body = Example::start(lang, KEY);
    for (example, policy) in [(&header, "HEADER"), (&body, "BODY")] {
        let hook = server
            .create_webhook(&user, &signed_webhook(&example.url, policy))
            .await;
        assert_eq!(
            hook["signingKey"], KEY,
            "the key is stored as given: {hook}"
        );
    }

    let mut expected = call(
        &server,
        &ingest,
        "sig-answered",
        "OUTBOUND",
        &[("RINGING", 0), ("ACTIVE", 5_000), ("ANSWERED", 65_000)],
    )
    .await;
    expected.extend(
        call(
            &server,
            &ingest,
            "sig-missed",
            "INBOUND",
            &[("RINGING", 1_000), ("MISSED", 21_000)],
        )
        .await,
    );

    header.expect_verified(&expected, DELIVERY);
    body.expect_verified(&expected, DELIVERY);
}

/// An example holding a different key than the webhook rejects a real delivery: it prints
/// `INVALID signature (mismatch)` and answers 401, which callhook records as the failure.
async fn rejects_a_wrong_key(lang: Lang) {
    if !lang.available() {
        return;
    }
    let server = Server::start_with(&["--retries", "1", "--retry-interval", "100ms"]);
    let ingest = server.ingest_token();
    let user = server.user_token("a1", "u1");
    let mut examples = Vec::new();
    for policy in ["HEADER", "BODY"] {
        let example = Example::start(lang, WRONG_KEY);
        let hook = server
            .create_webhook(&user, &signed_webhook(&example.url, policy))
            .await;
        examples.push((example, policy, id_of(&hook)));
    }

    let ringing = call(&server, &ingest, "sig-wrong", "INBOUND", &[("RINGING", 0)]).await;
    let call_id = &ringing[0].1;

    for (example, policy, hook_id) in &mut examples {
        let line = example.expect_prefix("INVALID", DELIVERY);
        assert_eq!(
            line,
            format!("INVALID signature (mismatch) RINGING {call_id}"),
            "{policy}: {lang:?} example with the wrong key"
        );
        let path = vis(&format!("/self/webhooks/{hook_id}"));
        let stats = eventually(
            &format!("{policy} webhook {hook_id} marked failed after the 401s"),
            DELIVERY,
            || async {
                let hook = server.get_json(&path, &user).await;
                let stats = hook["statistics"].clone();
                (stats["failed"] == true).then_some(stats)
            },
        )
        .await;
        assert_eq!(
            stats["lastHttpErrorCode"], "401 UNAUTHORIZED",
            "{policy}: the example answered 401: {stats}"
        );
        assert_eq!(stats["totalSuccesses"], 0, "{policy}: {stats}");
    }
}

/// Requests signed by this test (not by callhook), posted straight to the example: the example
/// re-canonicalises the event (keys reordered, whitespace, escapes), takes the signature from
/// the header or from `metadata`, and answers 401 to a tampered event, a wrong key or no
/// signature.
async fn answers_only_valid_signatures(lang: Lang) {
    if !lang.available() {
        return;
    }
    let mut example = Example::start(lang, KEY);
    // The canonical text, written out by hand: sorted keys, compact, non-ASCII as UTF-8, only
    // `"`, `\` and control characters escaped.
    let canonical = concat!(
        r#"{"accountId":"a1","callerId":"Zoë \"Q\" O'Brien \\ 東京 📞\t\u0001 & < / \u2028","#,
        r#""direction":"INBOUND","duration":0,"externalId":"x-1","id":"call-1","internal":false,"#,
        r#""phoneNumber":"+14155550100","startTime":"2024-05-01T10:00:00.000+0000","#,
        r#""state":"RINGING","type":"CALL","ucpType":"VBS","userId":"u1"}"#
    )
    .replace(r"\u2028", "\u{2028}");
    let event: Value = serde_json::from_str(&canonical).expect("canonical text is JSON");
    let good = hmac_hex(KEY, &canonical);
    // The same event with its keys in reverse order, pretty-printed.
    let map = event.as_object().expect("object");
    let reversed = format!(
        "{{\n  {}\n}}",
        map.iter()
            .rev()
            .map(|(k, v)| format!("{} : {}", json!(k), v))
            .collect::<Vec<_>>()
            .join(",\n  ")
    );
    // reqwest is built without a default TLS crypto provider (callhook installs ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let cases: Vec<(&str, Option<String>, String, u16, String)> = vec![
        (
            "signature in X-VON-Signature, event reordered",
            Some(good.clone()),
            format!("{{\"event\": {reversed}}}"),
            200,
            "verified RINGING call-1".into(),
        ),
        (
            "signature in metadata (BODY policy)",
            None,
            format!(
                "{{\"metadata\": {{\"attempt\": 1, \"signature\": \"{good}\"}}, \"event\": {reversed}}}"
            ),
            200,
            "verified RINGING call-1".into(),
        ),
        (
            "signed with the key without its €",
            Some(hmac_hex(WRONG_KEY, &canonical)),
            format!("{{\"event\": {canonical}}}"),
            401,
            "INVALID signature (mismatch) RINGING call-1".into(),
        ),
        (
            "event changed after signing",
            Some(good.clone()),
            format!(
                "{{\"event\": {}}}",
                canonical.replace("\"RINGING\"", "\"MISSED\"")
            ),
            401,
            "INVALID signature (mismatch) MISSED call-1".into(),
        ),
        (
            "no signature at all (metadataPolicy NONE)",
            None,
            format!("{{\"event\": {canonical}}}"),
            401,
            "INVALID signature (missing) RINGING call-1".into(),
        ),
    ];
    for (what, header, body, status, line) in cases {
        let mut req = client
            .post(&example.url)
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(sig) = header {
            req = req.header("X-VON-Signature", sig);
        }
        let resp = req.send().await.expect("POST to the example");
        assert_eq!(resp.status().as_u16(), status, "{lang:?} example, {what}");
        let printed = example.next_line(what, DELIVERY);
        assert_eq!(printed, line, "{lang:?} example, {what}");
    }
}

/// CONTRACT.md's test vector, for this file's own HMAC.
#[test]
fn the_tests_hmac_reproduces_the_contract_vector() {
    let canonical = concat!(
        r#"{"accountId":"376","answerTime":"2018-02-15T18:59:03.496+0000","direction":"OUTBOUND","#,
        r#""duration":2950,"endTime":"2018-02-15T18:59:06.446+0000","#,
        r#""externalId":"callhalf-60227142553:0","id":"5a85d86f253bcd10897f3189","#,
        r#""startTime":"2018-02-15T18:58:56.194+0000","state":"ANSWERED","type":"CALL","userId":"24785"}"#
    );
    assert_eq!(
        hmac_hex("mysecretkey", canonical),
        "95aafd08cb72b1f9216ccd002b8917b04e41ecb19276ae759241fdc0cbb53fb5"
    );
    // A key longer than SHA-256's 64-byte block is hashed first (value from Python's hmac).
    assert_eq!(
        hmac_hex(&"k€".repeat(40), "callhook"),
        "a0bb6b2cac5794699b50f7f45e1fb72efac68efd95ebc3ca117e1a20d41d9f69"
    );
}

#[test]
fn python_self_test_checks_the_contract_vector() {
    self_test_passes(Lang::Python);
}

#[test]
fn node_self_test_checks_the_contract_vector() {
    self_test_passes(Lang::Node);
}

#[tokio::test]
async fn python_answers_200_only_to_a_valid_signature() {
    answers_only_valid_signatures(Lang::Python).await;
}

#[tokio::test]
async fn node_answers_200_only_to_a_valid_signature() {
    answers_only_valid_signatures(Lang::Node).await;
}

#[tokio::test]
async fn python_verifies_real_deliveries_under_header_and_body() {
    verifies_real_deliveries(Lang::Python).await;
}

#[tokio::test]
async fn node_verifies_real_deliveries_under_header_and_body() {
    verifies_real_deliveries(Lang::Node).await;
}

#[tokio::test]
async fn python_rejects_deliveries_signed_with_another_key() {
    rejects_a_wrong_key(Lang::Python).await;
}

#[tokio::test]
async fn node_rejects_deliveries_signed_with_another_key() {
    rejects_a_wrong_key(Lang::Node).await;
}
