//! The call event as VIS delivers it and as the read routes return it: one snapshot of a call.
//! Keys are in alphabetical order (as real deliveries show), so the serialised event is already the
//! canonical form the signature covers.

use super::call::{Call, CallState, Direction};
use serde::Serialize;

/// The wire form of a call event. Absent values are left out, never `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Event)]
pub struct CallEvent {
    /// The account of the user the call belongs to.
    pub account_id: String,
    /// When the call was answered (`2018-02-15T18:59:03.496+0000`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_time: Option<String>,
    /// The remote party's name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_id: Option<String>,
    pub direction: Direction,
    /// Milliseconds from answer to end; 0 until the call ends answered.
    pub duration: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// The telephony provider's id for the call.
    pub external_id: String,
    /// The call's id: the same in every event of one call.
    pub id: String,
    /// Both parties are inside the account.
    pub internal: bool,
    /// The remote party's number.
    pub phone_number: String,
    pub start_time: String,
    pub state: CallState,
    /// Always `CALL`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub ucp_type: String,
    pub user_id: String,
}

impl From<&Call> for CallEvent {
    fn from(call: &Call) -> Self {
        CallEvent {
            account_id: call.account_id.clone(),
            answer_time: call.answer_time.map(|t| t.event_format()),
            caller_id: call.caller_id.clone(),
            direction: call.direction,
            duration: call.duration,
            end_time: call.end_time.map(|t| t.event_format()),
            external_id: call.external_id.clone(),
            id: call.id.clone(),
            internal: call.internal,
            phone_number: call.phone_number.clone(),
            start_time: call.start_time.event_format(),
            state: call.state,
            kind: "CALL",
            ucp_type: call.ucp_type.clone(),
            user_id: call.user_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;

    #[test]
    fn serialises_with_sorted_keys_and_no_nulls() {
        let call = Call {
            id: "5a85d86f253bcd10897f3189".into(),
            external_id: "callhalf-60227142553:0".into(),
            account_id: "376".into(),
            user_id: "24785".into(),
            direction: Direction::Outbound,
            phone_number: "15551234567".into(),
            caller_id: None,
            internal: false,
            ucp_type: "VBS".into(),
            state: CallState::Ringing,
            start_time: Timestamp::parse("2018-02-15T18:58:56.194+0000").unwrap(),
            answer_time: None,
            end_time: None,
            duration: 0,
            updated_at: Timestamp::parse("2018-02-15T18:58:56.194+0000").unwrap(),
        };
        let json = serde_json::to_string(&CallEvent::from(&call)).unwrap();
        assert_eq!(
            json,
            r#"{"accountId":"376","direction":"OUTBOUND","duration":0,"externalId":"callhalf-60227142553:0","id":"5a85d86f253bcd10897f3189","internal":false,"phoneNumber":"15551234567","startTime":"2018-02-15T18:58:56.194+0000","state":"RINGING","type":"CALL","ucpType":"VBS","userId":"24785"}"#
        );
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            serde_json::to_string(&value).unwrap(),
            json,
            "key order is canonical"
        );
    }
}
