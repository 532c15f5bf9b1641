//! How webhooks look on a terminal: the `list` table and the `get` details. Pure text.

use crate::client::{Statistics, Webhook};
use chrono::{DateTime, Utc};

/// Longest URL shown in the table before it is cut.
const URL_WIDTH: usize = 60;
/// Longest last error shown in the table before it is cut.
const ERROR_WIDTH: usize = 40;
/// Longest last error shown by `get`.
const DETAIL_ERROR_WIDTH: usize = 300;

/// The `list` table, one row per webhook, columns sized to fit.
pub fn table(hooks: &[Webhook]) -> String {
    table_at(hooks, Utc::now())
}

fn table_at(hooks: &[Webhook], now: DateTime<Utc>) -> String {
    const HEADER: [&str; 9] = [
        "ID",
        "URL",
        "STATUS",
        "FAILED",
        "ATTEMPTS",
        "SUCCESSES",
        "FAILURES",
        "LAST ERROR",
        "EXPIRES",
    ];
    // Counts are right-aligned.
    const NUMERIC: [bool; 9] = [false, false, false, false, true, true, true, false, false];
    let rows: Vec<[String; 9]> = hooks
        .iter()
        .map(|w| {
            let s = &w.statistics;
            [
                w.id.clone(),
                cut(&w.url, URL_WIDTH),
                w.status.clone().unwrap_or_else(|| "-".into()),
                if s.failed { "yes" } else { "no" }.into(),
                count(s.total_attempts),
                count(s.total_successes),
                count(s.total_failures),
                cut(&last_error(s), ERROR_WIDTH),
                expires(w, now),
            ]
        })
        .collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = HEADER.map(String::from);
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| match NUMERIC[i] {
                true => format!("{cell:>width$}", width = widths[i]),
                false => format!("{cell:<width$}", width = widths[i]),
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `get`, `create` and `renew`: every field on its own line (the signing key is not shown; use
/// `--json` to see it).
pub fn details(w: &Webhook) -> String {
    details_at(w, Utc::now())
}

fn details_at(w: &Webhook, now: DateTime<Utc>) -> String {
    let s = &w.statistics;
    let mut lines: Vec<(&str, String)> = vec![
        ("id", w.id.clone()),
        ("url", w.url.clone()),
        (
            "status",
            format!(
                "{}{}",
                w.status.as_deref().unwrap_or("-"),
                if s.failed {
                    ", failed (gets nothing until renewed or re-created)"
                } else {
                    ""
                }
            ),
        ),
        (
            "events",
            w.events.as_ref().map(|e| e.join(", ")).unwrap_or_default(),
        ),
        (
            "signing",
            match (&w.signing_algo, &w.signing_key) {
                (Some(algo), Some(key)) if !key.is_empty() => format!("{algo} (key set)"),
                (Some(algo), _) => algo.clone(),
                (None, _) => "-".into(),
            },
        ),
        (
            "metadata",
            w.metadata_policy.clone().unwrap_or_else(|| "-".into()),
        ),
        ("created", at_by(&w.created_at, &w.created_by)),
    ];
    if w.renewed_at.is_some() {
        lines.push(("renewed", at_by(&w.renewed_at, &w.renewed_by)));
    }
    lines.push(("expires", expires(w, now)));
    if let Some(purge) = &w.purge_at {
        lines.push(("purged", purge.clone()));
    }
    lines.push((
        "deliveries",
        format!(
            "{} attempts, {} successes, {} failures",
            count(s.total_attempts),
            count(s.total_successes),
            count(s.total_failures)
        ),
    ));
    for (label, value) in [
        ("last success", &s.last_success),
        ("last failure", &s.last_failure),
        ("last code", &s.last_http_error_code),
    ] {
        if let Some(v) = value {
            lines.push((label, v.clone()));
        }
    }
    if let Some(message) = &s.last_error_message {
        lines.push(("last error", cut(message, DETAIL_ERROR_WIDTH)));
    }
    lines
        .into_iter()
        .map(|(label, value)| format!("  {label:<12} {value}\n"))
        .collect()
}

/// The last error in one short line: for an HTTP answer the message (the status line and the
/// start of the body), for other failures the code (`CONNECTION_REFUSED`), else `-`.
fn last_error(s: &Statistics) -> String {
    let code = s.last_http_error_code.as_deref().filter(|c| !c.is_empty());
    let message = s
        .last_error_message
        .as_deref()
        .filter(|m| !m.trim().is_empty());
    let http = code.is_some_and(|c| c.starts_with(|ch: char| ch.is_ascii_digit()));
    match (code, message) {
        (Some(code), _) if !http => code,
        (_, Some(message)) => message,
        (Some(code), None) => code,
        (None, None) => "-",
    }
    .to_string()
}

/// `expireAt`, marked when it has passed.
fn expires(w: &Webhook, now: DateTime<Utc>) -> String {
    match &w.expire_at {
        None => "-".into(),
        Some(at) => match DateTime::parse_from_rfc3339(at) {
            Ok(t) if t < now => format!("{at} (expired)"),
            _ => at.clone(),
        },
    }
}

fn at_by(at: &Option<String>, by: &Option<String>) -> String {
    match (at, by) {
        (Some(at), Some(by)) => format!("{at} by {by}"),
        (Some(at), None) => at.clone(),
        (None, _) => "-".into(),
    }
}

fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "-".into(), |n| n.to_string())
}

/// `text` on one line, cut to `max` characters with `...` when longer.
pub fn cut(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let keep: String = line.chars().take(max.saturating_sub(3)).collect();
    format!("{}...", keep.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_hook() -> Webhook {
        serde_json::from_value(serde_json::json!({
            "id": "9d603613-f908-4da7-b145-4a6ee1ce53e3", "url": "https://example.ngrok.io/webhook",
            "status": "ACTIVE", "events": ["CALL"], "signingAlgo": "HMAC_SHA256", "signingKey": "string",
            "metadataPolicy": "NONE", "expireAt": "2020-06-21T11:06:21.038Z",
            "createdAt": "2020-06-11T11:06:21.038Z", "createdBy": "24785",
            "statistics": {"totalAttempts": 8, "totalSuccesses": 5, "totalFailures": 3, "failed": true,
              "lastHttpErrorCode": "500 INTERNAL_SERVER_ERROR",
              "lastErrorMessage": "500 INTERNAL SERVER ERROR: [<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01 Transitional//EN\"\n \"http://www.w3.org/TR/html4/loose.dtd\">... (19777 bytes)]"}
        }))
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2020-06-23T12:00:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn the_table_has_every_column_and_cuts_the_last_error_on_one_line() {
        let text = table_at(&[failed_hook()], now());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for column in [
            "ID",
            "URL",
            "STATUS",
            "FAILED",
            "ATTEMPTS",
            "SUCCESSES",
            "FAILURES",
            "LAST ERROR",
            "EXPIRES",
        ] {
            assert!(lines[0].contains(column), "{column} missing: {text}");
        }
        let row = lines[1];
        assert!(
            row.starts_with(
                "9d603613-f908-4da7-b145-4a6ee1ce53e3  https://example.ngrok.io/webhook"
            )
        );
        assert!(row.contains("  yes  "), "{row}");
        assert!(
            row.contains("500 INTERNAL SERVER ERROR: [<!DOCTYPE..."),
            "{row}"
        );
        assert!(row.ends_with("2020-06-21T11:06:21.038Z (expired)"), "{row}");
    }

    #[test]
    fn details_show_the_settings_but_not_the_signing_key() {
        let text = details_at(&failed_hook(), now());
        assert!(text.contains("HMAC_SHA256 (key set)"), "{text}");
        assert!(!text.contains("string"), "{text}");
        assert!(
            text.contains("8 attempts, 5 successes, 3 failures"),
            "{text}"
        );
        assert!(text.contains("ACTIVE, failed"), "{text}");
    }

    #[test]
    fn a_failure_without_an_http_answer_shows_its_code() {
        let mut s = failed_hook().statistics;
        s.last_http_error_code = Some("CONNECTION_REFUSED".into());
        s.last_error_message = Some("connection refused: error sending request".into());
        assert_eq!(last_error(&s), "CONNECTION_REFUSED");
        s.last_http_error_code = None;
        assert_eq!(last_error(&s), "connection refused: error sending request");
        assert_eq!(last_error(&Statistics::default()), "-");
    }

    #[test]
    fn cut_keeps_short_text_and_marks_long_text() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("a\nb", 10), "a b");
        assert_eq!(cut("0123456789abc", 10), "0123456...");
        assert_eq!(cut("ééééééééééé", 5), "éé...");
    }
}
