//! The call state machine: states, directions, which transitions are legal, and how a report of a
//! state change updates a call (including `startTime`, `answerTime`, `endTime` and `duration`,
//! which the platform keeps right itself).

use super::report::CallReport;
use super::time::Timestamp;
use serde::Serialize;

/// The state of a call. `ACTIVE` means talking; `ANSWERED` means an answered call that has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CallState {
    Initializing,
    Ringing,
    Active,
    Held,
    RemoteHeld,
    Detached,
    Rejected,
    Cancelled,
    Answered,
    Missed,
}

impl CallState {
    pub const ALL: [CallState; 10] = [
        CallState::Initializing,
        CallState::Ringing,
        CallState::Active,
        CallState::Held,
        CallState::RemoteHeld,
        CallState::Detached,
        CallState::Rejected,
        CallState::Cancelled,
        CallState::Answered,
        CallState::Missed,
    ];

    pub const NAMES: &'static str = "INITIALIZING, RINGING, ACTIVE, HELD, REMOTE_HELD, DETACHED, \
                                     REJECTED, CANCELLED, ANSWERED, MISSED";

    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Initializing => "INITIALIZING",
            CallState::Ringing => "RINGING",
            CallState::Active => "ACTIVE",
            CallState::Held => "HELD",
            CallState::RemoteHeld => "REMOTE_HELD",
            CallState::Detached => "DETACHED",
            CallState::Rejected => "REJECTED",
            CallState::Cancelled => "CANCELLED",
            CallState::Answered => "ANSWERED",
            CallState::Missed => "MISSED",
        }
    }

    pub fn parse(s: &str) -> Option<CallState> {
        CallState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Final states allow no further transition.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CallState::Answered | CallState::Cancelled | CallState::Rejected | CallState::Missed
        )
    }

    /// States in which the call has been answered (and so carries `answerTime`).
    pub fn is_answered(self) -> bool {
        matches!(
            self,
            CallState::Active
                | CallState::Held
                | CallState::RemoteHeld
                | CallState::Detached
                | CallState::Answered
        )
    }
}

/// Which side placed the call, seen from the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub const NAMES: &'static str = "INBOUND, OUTBOUND";

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "INBOUND",
            Direction::Outbound => "OUTBOUND",
        }
    }

    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "INBOUND" => Some(Direction::Inbound),
            "OUTBOUND" => Some(Direction::Outbound),
            _ => None,
        }
    }
}

/// Is `to` a legal next state after `from` (`None`: the call does not exist yet)?
pub fn allowed(from: Option<CallState>, to: CallState, direction: Direction) -> bool {
    use CallState::*;
    match from {
        None => matches!(to, Initializing | Ringing),
        Some(Initializing) => matches!(to, Ringing | Answered),
        Some(Ringing) => match to {
            Active | Answered => true,
            Cancelled => direction == Direction::Outbound,
            Rejected | Missed => direction == Direction::Inbound,
            _ => false,
        },
        Some(Active) => matches!(to, Answered | Held | RemoteHeld | Detached),
        Some(Held) | Some(RemoteHeld) => matches!(to, Active | Answered),
        Some(Detached) => matches!(to, Answered),
        Some(Answered) | Some(Cancelled) | Some(Rejected) | Some(Missed) => false,
    }
}

/// A call as callhook keeps it: its identity, descriptive fields and latest state with times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub id: String,
    pub external_id: String,
    pub account_id: String,
    pub user_id: String,
    pub direction: Direction,
    pub phone_number: String,
    pub caller_id: Option<String>,
    pub internal: bool,
    pub ucp_type: String,
    pub state: CallState,
    pub start_time: Timestamp,
    pub answer_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
    pub duration: i64,
    /// When the latest state change happened.
    pub updated_at: Timestamp,
}

/// Why a report was refused. Nothing changes when a report is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("illegal transition {from} -> {to} for an {direction} call", from = .from.map_or("(start)", CallState::as_str), to = .to.as_str(), direction = .direction.as_str())]
    Illegal {
        from: Option<CallState>,
        to: CallState,
        direction: Direction,
    },
    #[error("call {external_id} belongs to user {existing}, not {reported}")]
    UserMismatch {
        external_id: String,
        existing: String,
        reported: String,
    },
    #[error("call {external_id} is {existing}, not {reported}", existing = .existing.as_str(), reported = .reported.as_str())]
    DirectionMismatch {
        external_id: String,
        existing: Direction,
        reported: Direction,
    },
    #[error("at ({at}) is earlier than the call's last change ({last})", at = .at.event_format(), last = .last.event_format())]
    TimeTravel { at: Timestamp, last: Timestamp },
}

/// What applying a report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The call moved to a new state (or was created): one new event.
    Changed(Call),
    /// The report repeated the current state: nothing new.
    Repeated(Call),
}

/// Applies a state-change report to the call it names (`existing`, if the call is known).
/// `new_id` gives the id of a call seen for the first time; `now` stands in for a missing `at`.
pub fn apply(
    existing: Option<&Call>,
    report: &CallReport,
    new_id: impl FnOnce() -> String,
    now: Timestamp,
) -> Result<Applied, TransitionError> {
    let at = report.at.unwrap_or(now);
    let Some(call) = existing else {
        if !allowed(None, report.state, report.direction) {
            return Err(TransitionError::Illegal {
                from: None,
                to: report.state,
                direction: report.direction,
            });
        }
        return Ok(Applied::Changed(Call {
            id: new_id(),
            external_id: report.external_id.clone(),
            account_id: report.account_id.clone(),
            user_id: report.user_id.clone(),
            direction: report.direction,
            phone_number: report.phone_number.clone(),
            caller_id: report.caller_id.clone(),
            internal: report.internal,
            ucp_type: report.ucp_type.clone(),
            state: report.state,
            start_time: at,
            answer_time: None,
            end_time: None,
            duration: 0,
            updated_at: at,
        }));
    };
    if call.user_id != report.user_id {
        return Err(TransitionError::UserMismatch {
            external_id: call.external_id.clone(),
            existing: call.user_id.clone(),
            reported: report.user_id.clone(),
        });
    }
    if call.direction != report.direction {
        return Err(TransitionError::DirectionMismatch {
            external_id: call.external_id.clone(),
            existing: call.direction,
            reported: report.direction,
        });
    }
    if call.state == report.state {
        return Ok(Applied::Repeated(call.clone()));
    }
    if !allowed(Some(call.state), report.state, call.direction) {
        return Err(TransitionError::Illegal {
            from: Some(call.state),
            to: report.state,
            direction: call.direction,
        });
    }
    if at < call.updated_at {
        return Err(TransitionError::TimeTravel {
            at,
            last: call.updated_at,
        });
    }
    let mut next = call.clone();
    next.state = report.state;
    next.updated_at = at;
    if report.state.is_answered() && next.answer_time.is_none() {
        next.answer_time = Some(at);
    }
    if report.state.is_final() {
        next.end_time = Some(at);
        next.duration = match next.answer_time {
            Some(answered) if report.state == CallState::Answered => at.since(answered),
            _ => 0,
        };
    }
    Ok(Applied::Changed(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use CallState::*;

    fn report(state: CallState, direction: Direction, at: i64) -> CallReport {
        CallReport {
            external_id: "x1".into(),
            account_id: "376".into(),
            user_id: "24785".into(),
            direction,
            phone_number: "+15551234567".into(),
            caller_id: None,
            state,
            internal: false,
            ucp_type: "VBS".into(),
            at: Timestamp::from_millis(at),
        }
    }

    fn run(direction: Direction, steps: &[(CallState, i64)]) -> Result<Call, TransitionError> {
        let mut call: Option<Call> = None;
        for &(state, at) in steps {
            let r = report(state, direction, at);
            match apply(
                call.as_ref(),
                &r,
                || "c1".into(),
                Timestamp::from_millis(0).unwrap(),
            )? {
                Applied::Changed(c) | Applied::Repeated(c) => call = Some(c),
            }
        }
        Ok(call.unwrap())
    }

    /// The table in CONTRACT.md, row by row, for both directions.
    #[test]
    fn transition_table_matches_the_contract() {
        let expected = |from: Option<CallState>, to: CallState, dir: Direction| -> bool {
            match from {
                None => [Initializing, Ringing].contains(&to),
                Some(Initializing) => [Ringing, Answered].contains(&to),
                Some(Ringing) => {
                    [Active, Answered].contains(&to)
                        || (dir == Direction::Outbound && to == Cancelled)
                        || (dir == Direction::Inbound && [Rejected, Missed].contains(&to))
                }
                Some(Active) => [Answered, Held, RemoteHeld, Detached].contains(&to),
                Some(Held) | Some(RemoteHeld) => [Active, Answered].contains(&to),
                Some(Detached) => to == Answered,
                Some(_) => false,
            }
        };
        let mut legal = 0;
        for dir in [Direction::Inbound, Direction::Outbound] {
            for from in std::iter::once(None).chain(CallState::ALL.map(Some)) {
                for to in CallState::ALL {
                    assert_eq!(
                        allowed(from, to, dir),
                        expected(from, to, dir),
                        "{from:?} -> {to:?} ({dir:?})"
                    );
                    legal += usize::from(allowed(from, to, dir));
                }
            }
        }
        assert_eq!(legal, 2 * (2 + 2 + 2 + 4 + 2 + 2 + 1) + 2 + 1);
    }

    #[test]
    fn answered_call_keeps_its_times_and_duration() {
        let call = run(
            Direction::Inbound,
            &[
                (Ringing, 1_000),
                (Active, 6_000),
                (Held, 7_000),
                (Active, 8_000),
                (Answered, 66_000),
            ],
        )
        .unwrap();
        assert_eq!(call.start_time.millis(), 1_000);
        assert_eq!(call.answer_time.unwrap().millis(), 6_000);
        assert_eq!(call.end_time.unwrap().millis(), 66_000);
        assert_eq!(call.duration, 60_000);
    }

    #[test]
    fn missed_call_has_no_answer_time_and_no_duration() {
        let call = run(Direction::Inbound, &[(Ringing, 1_000), (Missed, 21_000)]).unwrap();
        assert_eq!(call.answer_time, None);
        assert_eq!(call.end_time.unwrap().millis(), 21_000);
        assert_eq!(call.duration, 0);
    }

    #[test]
    fn answered_without_active_gets_answer_time_equal_to_end() {
        let call = run(
            Direction::Outbound,
            &[(Initializing, 1_000), (Answered, 5_000)],
        )
        .unwrap();
        assert_eq!(call.answer_time, call.end_time);
        assert_eq!(call.duration, 0);
    }

    #[test]
    fn repeated_state_is_idempotent_and_final_states_stay_final() {
        let call = run(Direction::Inbound, &[(Ringing, 1_000), (Ringing, 2_000)]).unwrap();
        assert_eq!(call.updated_at.millis(), 1_000);
        let err = run(
            Direction::Inbound,
            &[(Ringing, 1_000), (Answered, 2_000), (Ringing, 3_000)],
        )
        .unwrap_err();
        assert!(matches!(
            err,
            TransitionError::Illegal {
                from: Some(Answered),
                to: Ringing,
                ..
            }
        ));
    }

    #[test]
    fn direction_limits_how_a_ringing_call_ends() {
        assert!(run(Direction::Outbound, &[(Ringing, 1), (Missed, 2)]).is_err());
        assert!(run(Direction::Inbound, &[(Ringing, 1), (Cancelled, 2)]).is_err());
        assert!(run(Direction::Outbound, &[(Ringing, 1), (Cancelled, 2)]).is_ok());
    }

    #[test]
    fn reports_cannot_move_time_backwards() {
        let err = run(Direction::Inbound, &[(Ringing, 5_000), (Active, 4_000)]).unwrap_err();
        assert!(matches!(err, TransitionError::TimeTravel { .. }));
    }

    #[test]
    fn user_and_direction_of_a_call_are_fixed() {
        let first = run(Direction::Inbound, &[(Ringing, 1)]).unwrap();
        let mut other_user = report(Active, Direction::Inbound, 2);
        other_user.user_id = "other".into();
        assert!(matches!(
            apply(
                Some(&first),
                &other_user,
                || unreachable!(),
                Timestamp::now()
            ),
            Err(TransitionError::UserMismatch { .. })
        ));
        let flipped = report(Active, Direction::Outbound, 2);
        assert!(matches!(
            apply(Some(&first), &flipped, || unreachable!(), Timestamp::now()),
            Err(TransitionError::DirectionMismatch { .. })
        ));
    }
}
