//! Delivery test support: a server with short delivery settings, webhook bodies, waiting on a
//! webhook's statistics, the at-least-once check on what arrived, an independent signature check (our own canonical JSON and HMAC, not
//! callhook's), the replay route and the Prometheus text of `/metrics`.

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Request, Resp, SEED_BODY, Server, eventually, id_of, summary, vis};

/// How long a delivery that should happen may take to arrive (generous: parallel test runs on a
/// small machine).
pub const ARRIVAL: Duration = Duration::from_secs(10);

/// The delivery settings tests run with unless they say otherwise: quick retries, timeouts short
/// enough for failure tests, long enough that a healthy local receiver never hits them.
pub const QUICK: [(&str, &str); 4] = [
    ("--retries", "2"),
    ("--retry-interval", "100ms"),
    ("--response-timeout", "2s"),
    ("--connect-timeout", "2s"),
];

/// The `QUICK` settings with `overrides` replacing (or adding to) them.
pub fn delivery_args(overrides: &[(&str, &str)]) -> Vec<String> {
    let mut pairs: Vec<(String, String)> = QUICK
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in overrides {
        match pairs.iter_mut().find(|(pk, _)| pk == k) {
            Some(pair) => pair.1 = v.to_string(),
            None => pairs.push((k.to_string(), v.to_string())),
        }
    }
    pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()
}

/// A server with the `QUICK` delivery settings plus `overrides`.
pub fn delivery_server(overrides: &[(&str, &str)]) -> Server {
    let args = delivery_args(overrides);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_with(&refs)
}

/// A user token for `owner`, an ingest token, and a webhook of `owner` to `url` (HEADER metadata,
/// unsigned): `(user token, ingest token, webhook id)`.
pub async fn subscribe_to(
    server: &Server,
    owner: (&str, &str),
    url: &str,
) -> (String, String, String) {
    let user = server.user_token(owner.0, owner.1);
    let ingest = server.ingest_token();
    let id = create_hook(server, &user, &hook(url, "HEADER", None)).await;
    (user, ingest, id)
}

/// A create body for `url` with this metadata policy and (optional) signing key.
pub fn hook(url: &str, policy: &str, key: Option<&str>) -> Value {
    let mut body = json!({"url": url, "events": ["CALL"], "metadataPolicy": policy});
    if let Some(key) = key {
        body["signingAlgo"] = json!("HMAC_SHA256");
        body["signingKey"] = json!(key);
    }
    body
}

/// The seed's create body (HMAC_SHA256, key "string", policy NONE) pointing at `url`.
pub fn seed_hook(url: &str) -> Value {
    let mut body: Value = serde_json::from_str(SEED_BODY).expect("seed body is JSON");
    body["url"] = json!(url);
    body
}

/// `vis("/self/webhooks/{id}")`.
pub fn webhook_path(id: &str) -> String {
    vis(&format!("/self/webhooks/{id}"))
}

/// The `id` of a webhook.
pub fn wid(webhook: &Value) -> String {
    webhook["id"]
        .as_str()
        .unwrap_or_else(|| panic!("webhook without a string id: {webhook}"))
        .to_string()
}

/// Creates a webhook (201) from `body`; returns its id.
pub async fn create_hook(server: &Server, token: &str, body: &Value) -> String {
    wid(&server.create_webhook(token, body).await)
}

/// GET the webhook (200).
pub async fn get_hook(server: &Server, token: &str, id: &str) -> Value {
    server.get_json(&webhook_path(id), token).await
}

/// Polls the webhook until `done(webhook)`; returns it. Statistics are recorded after the
/// receiver answers, so a test that saw the request still waits for the count.
pub async fn wait_for_hook(
    server: &Server,
    token: &str,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    eventually(what, ARRIVAL, || async {
        let w = get_hook(server, token, id).await;
        done(&w).then_some(w)
    })
    .await
}

/// Waits until the webhook is `failed`; returns it.
pub async fn wait_until_failed(server: &Server, token: &str, id: &str) -> Value {
    wait_for_hook(server, token, id, "statistics.failed = true", |w| {
        w["statistics"]["failed"] == json!(true)
    })
    .await
}

/// Waits until the webhook counts `n` successes; returns it.
pub async fn wait_for_successes(server: &Server, token: &str, id: &str, n: u64) -> Value {
    wait_for_hook(
        server,
        token,
        id,
        &format!("statistics.totalSuccesses = {n}"),
        |w| w["statistics"]["totalSuccesses"].as_u64() >= Some(n),
    )
    .await
}

/// Asserts the statistics of a webhook whose one delivery failed for good.
pub fn assert_failed_once(webhook: &Value, code: &str) {
    let s = &webhook["statistics"];
    assert_eq!(s["totalAttempts"], json!(1), "totalAttempts: {webhook}");
    assert_eq!(s["totalSuccesses"], json!(0), "totalSuccesses: {webhook}");
    assert_eq!(s["totalFailures"], json!(1), "totalFailures: {webhook}");
    assert_eq!(s["failed"], json!(true), "failed: {webhook}");
    assert_eq!(
        webhook["status"],
        json!("ACTIVE"),
        "failure is not a status: {webhook}"
    );
    super::parse_webhook_time(
        s["lastFailure"]
            .as_str()
            .unwrap_or_else(|| panic!("lastFailure must be set: {webhook}")),
    );
    assert!(s.get("lastSuccess").is_none(), "no success yet: {webhook}");
    assert_eq!(
        s["lastHttpErrorCode"],
        json!(code),
        "lastHttpErrorCode: {webhook}"
    );
    assert!(
        s["lastErrorMessage"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "lastErrorMessage must be a non-empty string: {webhook}"
    );
}

// ---- signatures, computed here and not by callhook ----

/// `v` as compact JSON with every object's keys sorted (byte order), recursively: the canonical
/// form the contract signs, written independently of callhook's serialiser.
pub fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical_json(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", inner.join(","))
        }
        scalar => scalar.to_string(),
    }
}

/// Lowercase hex HMAC-SHA256 of `msg` keyed with `key`.
pub fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(msg);
    hex::encode(mac.finalize().into_bytes())
}

/// The signature a receiver expects for `event` under `key`.
pub fn expected_signature(key: &str, event: &Value) -> String {
    hmac_sha256_hex(key.as_bytes(), canonical_json(event).as_bytes())
}

// ---- callhook's replay extension ----

/// `POST /callhook/v1/webhooks/{id}/replay[?since=...]`.
pub async fn replay(server: &Server, token: &str, id: &str, since: Option<&str>) -> Resp {
    let mut path = format!("/callhook/v1/webhooks/{id}/replay");
    if let Some(since) = since {
        path.push_str(&format!("?since={since}"));
    }
    server.req("POST", &path).bearer(token).send().await
}

// ---- /metrics ----

/// `GET /metrics` without a token; asserts 200 and a Prometheus/OpenMetrics text type.
pub async fn metrics(server: &Server) -> String {
    let resp = server.get_anon("/metrics").await;
    resp.expect(200);
    let ct = resp.content_type.clone().unwrap_or_default();
    assert!(
        ct.starts_with("text/plain") || ct.starts_with("application/openmetrics-text"),
        "/metrics must be Prometheus text, got Content-Type {ct:?}"
    );
    resp.text
}

/// Waits until `/metrics` shows `name{labels} == value`; returns the text.
pub async fn wait_for_metric(
    server: &Server,
    name: &str,
    labels: &[(&str, &str)],
    value: f64,
) -> String {
    eventually(&format!("{name}{labels:?} = {value}"), ARRIVAL, || async {
        let text = metrics(server).await;
        (metric(&text, name, labels) == Some(value)).then_some(text)
    })
    .await
}

/// Waits until `/metrics` shows `name{labels} >= min`; returns the text.
pub async fn wait_for_metric_at_least(
    server: &Server,
    name: &str,
    labels: &[(&str, &str)],
    min: f64,
) -> String {
    eventually(&format!("{name}{labels:?} >= {min}"), ARRIVAL, || async {
        let text = metrics(server).await;
        metric(&text, name, labels)
            .is_some_and(|v| v >= min)
            .then_some(text)
    })
    .await
}

/// The value of the sample `name{labels...}` (other labels allowed) in Prometheus text.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if series_name != name {
                return None;
            }
            let wanted = labels.iter().all(|(k, v)| {
                rest.split(',')
                    .any(|kv| kv.trim() == format!("{k}=\"{v}\""))
            });
            if !wanted {
                return None;
            }
            value.trim().parse::<f64>().ok()
        })
}

/// Whether any sample or metadata line names the metric family `name`.
pub fn has_metric(text: &str, name: &str) -> bool {
    text.lines().any(|l| {
        let l = l
            .trim_start_matches("# TYPE ")
            .trim_start_matches("# HELP ");
        l.starts_with(name)
    })
}

/// Asserts the at-least-once rules on what arrived: every sent event is there; per call, the
/// first arrivals are in order; a repeat has the deliveryId of its first arrival and a higher
/// attempt than the one before it.
pub fn assert_all_arrived_in_order(reqs: &[Request], sent: &BTreeMap<String, Vec<Value>>) {
    let mut first: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut by_delivery: BTreeMap<String, (Value, u32)> = BTreeMap::new();
    for r in reqs {
        let e = r.event();
        match by_delivery.get_mut(&r.delivery_id()) {
            Some((event, attempt)) => {
                assert_eq!(*event, e, "one deliveryId, one event:\n{}", summary(reqs));
                assert!(
                    r.attempt() > *attempt,
                    "a repeat has a higher attempt:\n{}",
                    summary(reqs)
                );
                *attempt = r.attempt();
            }
            None => {
                by_delivery.insert(r.delivery_id(), (e.clone(), r.attempt()));
                first.entry(id_of(&e)).or_default().push(e);
            }
        }
    }
    assert_eq!(
        &first,
        sent,
        "each call's events, in order:\n{}",
        summary(reqs)
    );
}
