//! A telephony source's report of a call state change, parsed and validated from the ingestion
//! body `{"externalId","accountId","userId","direction","phoneNumber","callerId"?,"state",
//! "internal"?,"ucpType"?,"at"?}`.

use super::call::{CallState, Direction};
use super::time::Timestamp;
use super::validation::{FieldError, Fields};
use serde_json::Value;

/// A validated state-change report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReport {
    pub external_id: String,
    pub account_id: String,
    pub user_id: String,
    pub direction: Direction,
    pub phone_number: String,
    pub caller_id: Option<String>,
    pub state: CallState,
    pub internal: bool,
    pub ucp_type: String,
    /// When the change happened; `None` means "now".
    pub at: Option<Timestamp>,
}

const FIELDS: [&str; 10] = [
    "externalId",
    "accountId",
    "userId",
    "direction",
    "phoneNumber",
    "callerId",
    "state",
    "internal",
    "ucpType",
    "at",
];

impl TryFrom<&Value> for CallReport {
    type Error = Vec<FieldError>;

    fn try_from(body: &Value) -> Result<Self, Self::Error> {
        let mut f = Fields::of(body)?;
        f.reject_unknown(&FIELDS);
        let external_id = f.string_or_integer("externalId", 256);
        let account_id = f.id("accountId");
        let user_id = f.id("userId");
        let direction = f.required_enum("direction", Direction::NAMES, Direction::parse);
        let phone_number = f.string("phoneNumber", 64);
        let caller_id = f.opt_string("callerId", 256);
        let state = f.required_enum("state", CallState::NAMES, CallState::parse);
        let internal = f.opt_bool("internal").unwrap_or(false);
        let ucp_type = f.opt_string("ucpType", 32).unwrap_or_else(|| "VBS".into());
        let at = parse_at(&mut f);
        f.finish()?;
        match (
            external_id,
            account_id,
            user_id,
            direction,
            phone_number,
            state,
        ) {
            (
                Some(external_id),
                Some(account_id),
                Some(user_id),
                Some(direction),
                Some(phone_number),
                Some(state),
            ) => Ok(CallReport {
                external_id,
                account_id,
                user_id,
                direction,
                phone_number,
                caller_id,
                state,
                internal,
                ucp_type,
                at,
            }),
            // Unreachable: every missing required field has already added an error.
            _ => Err(vec![FieldError::new("body", "invalid report")]),
        }
    }
}

fn parse_at(f: &mut Fields<'_>) -> Option<Timestamp> {
    const HELP: &str = "must be an RFC 3339 time (2024-05-01T10:00:00Z), the VIS form \
                        (2018-02-15T18:59:03.496+0000) or epoch milliseconds, between 1970 and 9999";
    let parsed = match f.raw("at")? {
        Value::String(s) => Timestamp::parse(s),
        Value::Number(n) => n.as_i64().and_then(Timestamp::from_millis),
        _ => None,
    };
    if parsed.is_none() {
        f.error("at", HELP);
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_full_report() {
        let body = json!({"externalId": "e1", "accountId": 376, "userId": "24785", "direction": "INBOUND",
            "phoneNumber": "+1555", "callerId": "Ann", "state": "RINGING", "internal": true,
            "ucpType": "SIP", "at": "2018-02-15T18:59:03.496+0000"});
        let r = CallReport::try_from(&body).unwrap();
        assert_eq!(r.account_id, "376");
        assert_eq!(r.state, CallState::Ringing);
        assert!(r.internal);
        assert_eq!(r.at.unwrap().event_format(), "2018-02-15T18:59:03.496+0000");
    }

    #[test]
    fn names_every_bad_field() {
        let body = json!({"externalId": "", "accountId": true, "direction": "SIDEWAYS", "phoneNumber": 5,
            "state": "RINGGING", "at": "noon", "colour": "red"});
        let errors = CallReport::try_from(&body).unwrap_err();
        let mut fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "accountId",
                "at",
                "colour",
                "direction",
                "externalId",
                "phoneNumber",
                "state",
                "userId"
            ]
        );
    }

    #[test]
    fn defaults_apply_when_optional_fields_are_absent() {
        let body = json!({"externalId": "e1", "accountId": "1", "userId": "2", "direction": "OUTBOUND",
            "phoneNumber": "+1555", "state": "INITIALIZING"});
        let r = CallReport::try_from(&body).unwrap();
        assert_eq!(
            (r.internal, r.ucp_type.as_str(), r.at, r.caller_id),
            (false, "VBS", None, None)
        );
    }
}
