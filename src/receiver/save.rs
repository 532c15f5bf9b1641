//! `--save FILE`: every delivery appended as one JSON line, whatever was answered:
//!
//! ```json
//! {"receivedAt":"2026-11-27T10:00:01.234Z","method":"POST","path":"/webhook",
//!  "headers":{"content-type":"application/json","x-von-signature":"95aa..."},
//!  "body":{"event":{...}},"verified":true,"status":200}
//! ```
//!
//! `body` is the parsed JSON when the body was JSON, else the raw text; `verified` is `true` or
//! `false` with a signing key and `null` without. The file is opened (created if needed) for
//! appending before the receiver starts, so an unwritable path fails at once; each line is written
//! with a single `write` and flushed, so a `tail -f` sees whole lines.
//!
//! Part of the receiver, so it never touches the store.

use super::print;
use axum::http::HeaderMap;
use serde_json::{Map, Value};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The save file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the save file {}: {source}", path.display())]
pub struct SaveError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// An open save file.
#[derive(Debug)]
pub struct SaveFile {
    path: PathBuf,
    file: File,
}

/// One delivery as it is saved.
#[derive(Debug)]
pub struct Record<'a> {
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub method: &'a str,
    /// Path and query as requested.
    pub target: &'a str,
    pub headers: &'a HeaderMap,
    pub raw_body: &'a [u8],
    /// Whether the body parsed as JSON.
    pub json_body: bool,
    pub verified: Option<bool>,
    /// The status the delivery was answered with.
    pub status: u16,
}

impl SaveFile {
    /// Opens `path` for appending, creating it if needed.
    pub fn open(path: &Path) -> Result<SaveFile, SaveError> {
        let fail = |source| SaveError {
            path: path.to_path_buf(),
            source,
        };
        if path.is_dir() {
            return Err(fail(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "it is a directory",
            )));
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(fail)?;
        Ok(SaveFile {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` as one line.
    pub fn append(&mut self, record: &Record<'_>) -> std::io::Result<()> {
        let mut line = to_line(record);
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.flush()
    }
}

/// The JSON line of a record, keys in the documented order. A JSON body is embedded as it was
/// received (compacted, key order and number forms kept), not re-serialised.
pub fn to_line(record: &Record<'_>) -> String {
    let mut headers = Map::new();
    for (name, value) in record.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(Value::String(earlier)) => {
                earlier.push_str(", ");
                earlier.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_string(), Value::String(value));
            }
        }
    }
    let text = String::from_utf8_lossy(record.raw_body);
    let body = if record.json_body {
        print::json_line(&text)
    } else {
        Value::String(text.into_owned()).to_string()
    };
    let received_at = record.received_at.format("%Y-%m-%dT%H:%M:%S%.3fZ");
    format!(
        "{{\"receivedAt\":\"{received_at}\",\"method\":{},\"path\":{},\"headers\":{},\"body\":{body},\"verified\":{},\"status\":{}}}",
        Value::from(record.method),
        Value::from(record.target),
        Value::Object(headers),
        Value::from(record.verified),
        record.status,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use chrono::TimeZone;

    #[test]
    fn a_record_keeps_headers_body_and_verification() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.append("x-extra", HeaderValue::from_static("a"));
        headers.append("x-extra", HeaderValue::from_static("b"));
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 11, 27, 10, 0, 1)
            .unwrap();
        let record = Record {
            received_at: at,
            method: "POST",
            target: "/webhook",
            headers: &headers,
            raw_body: b"{\n \"event\": {\"state\": \"RINGING\", \"id\": \"c\"}}",
            json_body: true,
            verified: Some(true),
            status: 200,
        };
        assert_eq!(
            to_line(&record),
            r#"{"receivedAt":"2026-11-27T10:00:01.000Z","method":"POST","path":"/webhook","headers":{"content-type":"application/json","x-extra":"a, b"},"body":{"event":{"state":"RINGING","id":"c"}},"verified":true,"status":200}"#
        );
        let text = Record {
            json_body: false,
            raw_body: b"not json",
            verified: None,
            ..record
        };
        let v: Value = serde_json::from_str(&to_line(&text)).unwrap();
        assert_eq!(v["body"], Value::from("not json"));
        assert_eq!(v["verified"], Value::Null);
    }

    #[test]
    fn an_unwritable_path_fails_with_the_path_and_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        let err = SaveFile::open(&dir.path().join("missing/deliveries.jsonl")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("missing/deliveries.jsonl"), "{text}");
        assert!(SaveFile::open(dir.path()).is_err());
        let ok = dir.path().join("deliveries.jsonl");
        let mut file = SaveFile::open(&ok).unwrap();
        let headers = HeaderMap::new();
        file.append(&Record {
            received_at: chrono::Utc::now(),
            method: "POST",
            target: "/webhook",
            headers: &headers,
            raw_body: b"x",
            json_body: false,
            verified: None,
            status: 400,
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&ok).unwrap().lines().count(), 1);
    }
}
