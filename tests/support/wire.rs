//! The wire formats the contract fixes: timestamp shapes, object key order, no `null`s.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Parses an event timestamp, asserting the exact `2018-02-15T18:59:03.496+0000` format.
pub fn parse_event_time(s: &str) -> DateTime<Utc> {
    assert!(
        matches_shape(s, "dddd-dd-ddTdd:dd:dd.ddd+0000"),
        "event time must look like 2018-02-15T18:59:03.496+0000, got {s:?}"
    );
    let naive = NaiveDateTime::parse_from_str(&s[..23], "%Y-%m-%dT%H:%M:%S%.3f")
        .unwrap_or_else(|e| panic!("bad event time {s:?}: {e}"));
    Utc.from_utc_datetime(&naive)
}

/// Parses a webhook timestamp, asserting the exact `2020-06-23T11:06:21.038Z` format.
pub fn parse_webhook_time(s: &str) -> DateTime<Utc> {
    assert!(
        matches_shape(s, "dddd-dd-ddTdd:dd:dd.dddZ"),
        "webhook time must look like 2020-06-23T11:06:21.038Z, got {s:?}"
    );
    let naive = NaiveDateTime::parse_from_str(&s[..23], "%Y-%m-%dT%H:%M:%S%.3f")
        .unwrap_or_else(|e| panic!("bad webhook time {s:?}: {e}"));
    Utc.from_utc_datetime(&naive)
}

/// `d` in the shape matches an ASCII digit, anything else matches itself.
pub fn matches_shape(s: &str, shape: &str) -> bool {
    s.len() == shape.len()
        && s.chars().zip(shape.chars()).all(|(c, p)| match p {
            'd' => c.is_ascii_digit(),
            _ => c == p,
        })
}

/// Asserts that no value anywhere in `v` is `null` (absent fields are left out).
pub fn assert_no_nulls(v: &Value, context: &str) {
    match v {
        Value::Null => panic!("null value in {context}"),
        Value::Array(items) => items.iter().for_each(|i| assert_no_nulls(i, context)),
        Value::Object(map) => map.values().for_each(|i| assert_no_nulls(i, context)),
        _ => {}
    }
}

/// JSON kept with object keys in document order (serde_json's `Value` sorts them).
#[derive(Debug, Clone)]
pub enum Ordered {
    Scalar,
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_none<E: de::Error>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Ordered>()? {
                    entries.push((k, v));
                }
                Ok(Ordered::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// The keys, in document order, of the object at `pointer` (JSON-pointer style: "", "/event",
/// "/0", "/0/statistics") in the JSON text.
pub fn keys(text: &str, pointer: &str) -> Vec<String> {
    let mut node: Ordered =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    for seg in pointer.split('/').filter(|s| !s.is_empty()) {
        node = match node {
            Ordered::Object(entries) => entries
                .into_iter()
                .find(|(k, _)| k == seg)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no key {seg:?} at {pointer:?} in {text}")),
            Ordered::Array(items) => {
                let i: usize = seg.parse().expect("array index");
                items
                    .into_iter()
                    .nth(i)
                    .unwrap_or_else(|| panic!("no index {i} at {pointer:?} in {text}"))
            }
            Ordered::Scalar => panic!("{pointer:?} goes through a scalar in {text}"),
        };
    }
    match node {
        Ordered::Object(entries) => entries.into_iter().map(|(k, _)| k).collect(),
        other => panic!("{pointer:?} is not an object ({other:?}) in {text}"),
    }
}

/// Asserts that `actual` keys appear in the same relative order as in `order` and that every key
/// is one of `order`.
pub fn assert_keys_follow(actual: &[String], order: &[&str], context: &str) {
    let mut last = None;
    for k in actual {
        let pos = order
            .iter()
            .position(|o| o == k)
            .unwrap_or_else(|| panic!("unexpected key {k:?} in {context}: {actual:?}"));
        if let Some(prev) = last {
            assert!(
                pos > prev,
                "key {k:?} out of order in {context}: {actual:?}, expected order {order:?}"
            );
        }
        last = Some(pos);
    }
}
