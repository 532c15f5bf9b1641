//! Delivery signatures, shared by the sender (the delivery engine) and the receiver (`listen`):
//! lowercase hex HMAC-SHA256, keyed with the UTF-8 bytes of the webhook's `signingKey`, over the
//! `event` object serialised as compact JSON with its keys sorted and absent fields left out.
//! No timestamp, and `metadata` is not covered, exactly as VIS signs.
//!
//! Pure: depends on serde_json, hmac and sha2 only.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The canonical form of an event: compact JSON, object keys sorted at every depth, `null` members
/// left out (an absent field and a `null` one sign the same).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, _)| k)
                .collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn mac(key: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length")
}

/// The signature of an already canonical event text.
pub fn sign_canonical(key: &str, canonical_event: &str) -> String {
    let mut m = mac(key);
    m.update(canonical_event.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// The signature of an event object.
pub fn sign(key: &str, event: &Value) -> String {
    sign_canonical(key, &canonical_json(event))
}

/// Whether `signature` (hex, any case) is the signature of `event` under `key`. Compares in
/// constant time.
pub fn verify(key: &str, event: &Value, signature: &str) -> bool {
    let Ok(expected) = hex::decode(signature.trim()) else {
        return false;
    };
    let mut m = mac(key);
    m.update(canonical_json(event).as_bytes());
    m.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The published test vector (CONTRACT.md).
    const VECTOR_EVENT: &str = r#"{"accountId":"376","answerTime":"2018-02-15T18:59:03.496+0000","direction":"OUTBOUND","duration":2950,"endTime":"2018-02-15T18:59:06.446+0000","externalId":"callhalf-60227142553:0","id":"5a85d86f253bcd10897f3189","startTime":"2018-02-15T18:58:56.194+0000","state":"ANSWERED","type":"CALL","userId":"24785"}"#;
    const VECTOR_SIGNATURE: &str =
        "95aafd08cb72b1f9216ccd002b8917b04e41ecb19276ae759241fdc0cbb53fb5";

    #[test]
    fn the_published_test_vector_verifies() {
        assert_eq!(
            sign_canonical("mysecretkey", VECTOR_EVENT),
            VECTOR_SIGNATURE
        );
        let event: Value = serde_json::from_str(VECTOR_EVENT).unwrap();
        assert_eq!(sign("mysecretkey", &event), VECTOR_SIGNATURE);
        assert!(verify("mysecretkey", &event, VECTOR_SIGNATURE));
        assert!(verify(
            "mysecretkey",
            &event,
            &VECTOR_SIGNATURE.to_uppercase()
        ));
        assert!(!verify("mysecretkey2", &event, VECTOR_SIGNATURE));
        assert!(!verify("mysecretkey", &event, "not hex"));
    }

    #[test]
    fn canonical_form_sorts_keys_at_every_depth_and_drops_nulls() {
        let v = json!({"b": 1, "a": {"d": [3, {"z": 1, "y": null}], "c": "é\"x"}, "n": null});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":"é\"x","d":[3,{"z":1}]},"b":1}"#
        );
    }

    /// Found by the canonical_signing fuzz target: without exact float parsing, a receiver re-parsing
    /// the canonical text read some numbers one bit off and signed different text.
    #[test]
    fn the_canonical_form_of_any_number_reads_back_to_itself() {
        let text =
            r#"[-9223373206854775808,1.844675407370955e19,0.1,-0,5e-324,1.7976931348623157e308]"#;
        let canonical = canonical_json(&serde_json::from_str(text).unwrap());
        let again = canonical_json(&serde_json::from_str(&canonical).unwrap());
        assert_eq!(again, canonical);
    }

    #[test]
    fn any_change_to_the_event_breaks_the_signature() {
        let event: Value = serde_json::from_str(VECTOR_EVENT).unwrap();
        let mut tampered = event.clone();
        tampered["duration"] = json!(2951);
        assert!(!verify("mysecretkey", &tampered, VECTOR_SIGNATURE));
    }
}
