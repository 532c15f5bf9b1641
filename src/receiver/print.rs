//! How `listen` shows what it receives: one compact JSON line per event (`--format json`), or one
//! readable line per event with the running tally (`--format text`), coloured with plain ANSI
//! codes only when asked (the CLI asks when stdout is a terminal and `NO_COLOR` is unset).
//!
//! Pure formatting: the caller writes the lines. Part of the receiver, so it never touches the
//! store.

use super::track::Tally;
use chrono::{DateTime, Local};
use serde_json::Value;

/// The output format of accepted events on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One readable line per event, with the running tally.
    Text,
    /// One compact JSON line per event: the received body.
    Json,
}

/// One received event as the text format shows it.
#[derive(Debug, Clone, Copy)]
pub struct EventLine<'a> {
    /// When the delivery arrived.
    pub at: DateTime<Local>,
    /// `body.event`.
    pub event: &'a Value,
    /// The status the delivery was answered with.
    pub status: u16,
    /// A redelivery of the call's latest state.
    pub repeat: bool,
    pub tally: Tally,
}

/// The received body (already known to be valid JSON) as one compact line: the whitespace
/// between tokens is dropped and everything else is kept byte for byte (key order, number
/// forms, escapes), so the line is exactly what was sent, minus formatting.
pub fn json_line(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in raw.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

const RESET: &str = "\x1b[0m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";

/// `time  STATE  DIRECTION  number  caller  call-id  | tally`, e.g.
/// `10:00:01.234  RINGING      INBOUND   +14155550100  Bob  5a85d8…  | 1 call, 1 ringing, 0 active`.
pub fn text_line(line: &EventLine<'_>, colour: bool) -> String {
    let field = |name: &str| -> String {
        match line.event.get(name) {
            Some(Value::String(s)) if !s.is_empty() => one_line(s),
            Some(Value::Number(n)) => n.to_string(),
            _ => "-".to_string(),
        }
    };
    let state = field("state");
    let paint = |code: &str, text: String| -> String {
        if colour && !code.is_empty() {
            format!("{code}{text}{RESET}")
        } else {
            text
        }
    };
    let mut out = String::new();
    out.push_str(&paint(DIM, line.at.format("%H:%M:%S%.3f").to_string()));
    out.push_str("  ");
    out.push_str(&paint(state_colour(&state), format!("{state:<12}")));
    out.push_str(&format!(
        " {:<9} {:<16}",
        field("direction"),
        field("phoneNumber")
    ));
    if let Some(caller) = line.event.get("callerId").and_then(Value::as_str) {
        out.push_str(&format!(" {}", truncate(&one_line(caller), 24)));
    }
    out.push_str(&format!("  {}", field("id")));
    if line.repeat {
        out.push_str(&paint(DIM, "  (redelivery)".to_string()));
    }
    if !(200..300).contains(&line.status) {
        out.push_str(&paint(
            RED,
            format!("  answered {}, not counted", line.status),
        ));
    }
    out.push_str(&paint(DIM, format!("  | {}", tally_text(line.tally))));
    out
}

/// `2 calls, 1 ringing, 1 active`.
pub fn tally_text(tally: Tally) -> String {
    let calls = if tally.calls == 1 { "call" } else { "calls" };
    format!(
        "{} {calls}, {} ringing, {} active",
        tally.calls, tally.ringing, tally.active
    )
}

/// A line for stderr: `callhook listen: TEXT`.
pub fn notice(text: &str) -> String {
    format!("callhook listen: {text}")
}

fn state_colour(state: &str) -> &'static str {
    match state {
        "INITIALIZING" | "RINGING" => "\x1b[1;33m",
        "ACTIVE" => "\x1b[1;32m",
        "HELD" | "REMOTE_HELD" | "DETACHED" => "\x1b[1;36m",
        "ANSWERED" => "\x1b[1;34m",
        "MISSED" | "REJECTED" | "CANCELLED" => "\x1b[1;31m",
        _ => "",
    }
}

/// Control characters (a newline in a caller name, an escape sequence) would break the one-line
/// promise or the terminal: they are shown as `?`.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn line(event: &Value, status: u16) -> EventLine<'_> {
        EventLine {
            at: Local.with_ymd_and_hms(2026, 11, 27, 10, 0, 1).unwrap(),
            event,
            status,
            repeat: false,
            tally: Tally {
                calls: 1,
                ringing: 1,
                active: 0,
            },
        }
    }

    #[test]
    fn a_text_line_names_time_state_direction_number_and_call() {
        let event = json!({"id": "c-1", "state": "RINGING", "direction": "INBOUND",
                           "phoneNumber": "+14155550100", "callerId": "Bob\nX"});
        let text = text_line(&line(&event, 200), false);
        assert_eq!(
            text,
            "10:00:01.000  RINGING      INBOUND   +14155550100     Bob?X  c-1  | 1 call, 1 ringing, 0 active"
        );
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn colour_is_only_added_when_asked_and_failures_say_so() {
        let event = json!({"id": "c-1", "state": "MISSED"});
        let plain = text_line(&line(&event, 500), false);
        assert!(plain.contains("answered 500, not counted"), "{plain}");
        let coloured = text_line(&line(&event, 200), true);
        assert!(coloured.contains("\x1b[1;31mMISSED"), "{coloured}");
    }

    #[test]
    fn json_lines_are_compact_and_otherwise_byte_for_byte() {
        let raw = "{\n \"event\": {\"state\": \"RINGING\",\t\"id\": \"c \\\" d\", \"n\": 1.0e2,\r\n \"e\": \"\\u00e9\"}\n}";
        assert_eq!(
            json_line(raw),
            r#"{"event":{"state":"RINGING","id":"c \" d","n":1.0e2,"e":"\u00e9"}}"#
        );
    }
}
