//! What `listen` keeps about the calls it has seen: each call's states in arrival order, the
//! number of events, and the running tally (calls seen, ringing now, active now).
//!
//! Only events the receiver accepted (answered 2xx) are recorded here. A delivery that repeats a
//! call's latest state is a redelivery (the state machine never emits the same state twice in a
//! row), so it is neither counted again nor added to the call's sequence.
//!
//! Pure: no I/O, no clock. Part of the receiver, so it never touches the store; it reads state
//! names with [`crate::domain::CallState`].

use crate::domain::CallState;
use serde_json::Value;
use std::collections::HashMap;

/// Calls seen so far and how many are ringing or active right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub calls: usize,
    /// Latest state INITIALIZING or RINGING.
    pub ringing: usize,
    /// Latest state any other non-final state (ACTIVE, HELD, REMOTE_HELD, DETACHED).
    pub active: usize,
}

/// What recording one accepted event found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The event repeats its call's latest state: a redelivery, not counted.
    pub repeat: bool,
    pub tally: Tally,
}

/// One call: its id and the states it went through, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub id: String,
    pub states: Vec<String>,
}

/// The calls seen, in the order they were first seen.
#[derive(Debug, Default)]
pub struct Tracker {
    calls: Vec<Call>,
    index: HashMap<String, usize>,
    events: u64,
}

impl Tracker {
    /// Events counted so far (accepted, redeliveries left out).
    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    pub fn tally(&self) -> Tally {
        let mut tally = Tally {
            calls: self.calls.len(),
            ..Tally::default()
        };
        for call in &self.calls {
            match call.states.last().and_then(|s| CallState::parse(s)) {
                Some(CallState::Initializing | CallState::Ringing) => tally.ringing += 1,
                Some(state) if !state.is_final() => tally.active += 1,
                _ => {}
            }
        }
        tally
    }

    /// Records an accepted event (`body.event`). An event without an `id` counts but belongs to
    /// no call.
    pub fn record(&mut self, event: &Value) -> Recorded {
        let state = event
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let repeat = match event.get("id").and_then(id_text) {
            Some(id) => match self.index.get(&id) {
                Some(&i) if self.calls[i].states.last() == Some(&state) => true,
                Some(&i) => {
                    self.calls[i].states.push(state);
                    false
                }
                None => {
                    self.index.insert(id.clone(), self.calls.len());
                    self.calls.push(Call {
                        id,
                        states: vec![state],
                    });
                    false
                }
            },
            None => false,
        };
        if !repeat {
            self.events += 1;
        }
        Recorded {
            repeat,
            tally: self.tally(),
        }
    }
}

/// Call ids are strings on the wire; numbers are accepted as text too.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(id: &str, state: &str) -> Value {
        json!({"id": id, "state": state})
    }

    #[test]
    fn the_tally_follows_each_calls_latest_state() {
        let mut t = Tracker::default();
        t.record(&ev("a", "RINGING"));
        t.record(&ev("b", "RINGING"));
        let r = t.record(&ev("a", "ACTIVE"));
        assert_eq!(
            r.tally,
            Tally {
                calls: 2,
                ringing: 1,
                active: 1
            }
        );
        t.record(&ev("b", "MISSED"));
        t.record(&ev("a", "HELD"));
        assert_eq!(
            t.tally(),
            Tally {
                calls: 2,
                ringing: 0,
                active: 1
            }
        );
    }

    #[test]
    fn a_redelivery_of_the_latest_state_is_not_counted_again() {
        let mut t = Tracker::default();
        assert!(!t.record(&ev("a", "RINGING")).repeat);
        assert!(t.record(&ev("a", "RINGING")).repeat);
        assert_eq!(t.events(), 1);
        assert!(!t.record(&ev("a", "ACTIVE")).repeat);
        assert_eq!(t.events(), 2);
        assert_eq!(t.calls()[0].states, ["RINGING", "ACTIVE"]);
    }

    #[test]
    fn an_event_without_an_id_counts_but_belongs_to_no_call() {
        let mut t = Tracker::default();
        t.record(&json!({"state": "RINGING"}));
        assert_eq!((t.events(), t.calls().len()), (1, 0));
    }
}
