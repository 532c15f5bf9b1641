//! Timestamps: milliseconds since the Unix epoch, and the two wire formats VIS uses
//! (`2020-06-23T11:06:21.038Z` for webhooks, `2018-02-15T18:59:03.496+0000` for call events).

use chrono::{DateTime, Datelike, Timelike, Utc};
use std::time::Duration;

/// A point in time, in milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Earliest and latest instants callhook accepts (years 1970 to 9999), so every value formats.
const MIN_MILLIS: i64 = 0;
const MAX_MILLIS: i64 = 253_402_300_799_999;

impl Timestamp {
    /// The latest instant callhook represents (the end of year 9999).
    pub const LATEST: Timestamp = Timestamp(MAX_MILLIS);

    /// The current time. Read the clock at the edge and pass the value in.
    pub fn now() -> Self {
        Timestamp(Utc::now().timestamp_millis())
    }

    /// A timestamp from epoch milliseconds, if it lies in the supported range.
    pub fn from_millis(ms: i64) -> Option<Self> {
        (MIN_MILLIS..=MAX_MILLIS)
            .contains(&ms)
            .then_some(Timestamp(ms))
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    /// This instant moved forward by `d`, saturating at the latest supported instant.
    pub fn plus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(ms).min(MAX_MILLIS))
    }

    /// Milliseconds from `earlier` to `self` (never negative).
    pub fn since(self, earlier: Timestamp) -> i64 {
        (self.0 - earlier.0).max(0)
    }

    fn datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0).unwrap_or_default()
    }

    /// Webhook format: `2020-06-23T11:06:21.038Z`.
    pub fn webhook_format(self) -> String {
        self.format_with_zone("Z")
    }

    /// Call event format: `2018-02-15T18:59:03.496+0000`.
    pub fn event_format(self) -> String {
        self.format_with_zone("+0000")
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmm` and `zone`, formatted directly: chrono's `strftime` parses its
    /// pattern on every call, and every event carries three of these.
    fn format_with_zone(self, zone: &str) -> String {
        let t = self.datetime();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{zone}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.timestamp_subsec_millis()
        )
    }

    /// Parses RFC 3339 (`2024-05-01T10:00:00Z`, `...+02:00`) or the VIS event form
    /// (`2018-02-15T18:59:03.496+0000`).
    pub fn parse(text: &str) -> Option<Self> {
        let parsed = DateTime::parse_from_rfc3339(text)
            .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
            .ok()?;
        Self::from_millis(parsed.timestamp_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_the_vis_examples() {
        let t = Timestamp::parse("2018-02-15T18:59:03.496+0000").unwrap();
        assert_eq!(t.event_format(), "2018-02-15T18:59:03.496+0000");
        assert_eq!(t.webhook_format(), "2018-02-15T18:59:03.496Z");
    }

    #[test]
    fn parses_rfc3339_with_offsets() {
        let t = Timestamp::parse("2024-05-01T12:00:00+02:00").unwrap();
        assert_eq!(t.webhook_format(), "2024-05-01T10:00:00.000Z");
        assert!(Timestamp::parse("yesterday").is_none());
        assert!(Timestamp::parse("1969-12-31T23:59:59Z").is_none());
    }

    #[test]
    fn plus_saturates_instead_of_overflowing() {
        let t = Timestamp::from_millis(MAX_MILLIS - 1).unwrap();
        assert_eq!(t.plus(Duration::from_secs(10)).millis(), MAX_MILLIS);
    }
}
