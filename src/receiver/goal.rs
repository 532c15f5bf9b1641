//! The verdict of a run with `--count N` and `--expect STATES`, over the calls a
//! [`Tracker`] has seen:
//!
//! - while listening ([`Goal::progress`]): a call that leaves the expected sequence misses the
//!   goal at once; `--count` reached ends the run (every call must then be complete);
//!   `--expect` alone ends it as soon as every call seen is complete;
//! - when listening stops for another reason ([`Goal::at_stop`]: a timeout, a signal): a goal
//!   not reached by then is missed; without a goal that is success.
//!
//! Pure. Part of the receiver, so it never touches the store.

use super::track::{Call, Tracker};

/// What the run waits for. Neither set: no goal, listen until stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Goal {
    /// Stop after this many events.
    pub count: Option<u64>,
    /// Every call seen must go through exactly these states.
    pub expect: Option<Vec<String>>,
}

/// Where the goal stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Not decided yet: keep listening.
    Open,
    /// Reached (or there was no goal); the text says what was achieved, empty without a goal.
    Reached(String),
    /// Missed: one line per call at fault (may be empty), and a summary.
    Missed {
        details: Vec<String>,
        summary: String,
    },
}

impl Goal {
    pub fn is_set(&self) -> bool {
        self.count.is_some() || self.expect.is_some()
    }

    /// Where the goal stands after the events so far, while still listening.
    pub fn progress(&self, seen: &Tracker) -> Progress {
        if !self.is_set() {
            return Progress::Open;
        }
        if let Some(expect) = &self.expect {
            let strays: Vec<String> = seen
                .calls()
                .iter()
                .filter(|c| !expect.starts_with(&c.states))
                .map(|c| describe(c, expect))
                .collect();
            if !strays.is_empty() {
                return self.missed(seen, strays, "");
            }
        }
        match (self.count, &self.expect) {
            (Some(n), _) if seen.events() >= n => {
                let events = if n == 1 { "event" } else { "events" };
                self.complete(seen, &format!("got {n} {events}"))
            }
            (None, Some(_)) if !seen.calls().is_empty() && self.incomplete(seen).is_empty() => {
                self.complete(seen, "")
            }
            _ => Progress::Open,
        }
    }

    /// The verdict when listening stops before the goal decided itself (`why`: "timed out
    /// after 10s", "stopped by a signal").
    pub fn at_stop(&self, seen: &Tracker, why: &str) -> Progress {
        if !self.is_set() {
            return Progress::Reached(String::new());
        }
        match self.progress(seen) {
            Progress::Open => {}
            decided => return decided,
        }
        let details = self.incomplete(seen);
        let summary = match self.count {
            Some(n) => format!("{why} with {} of {n} events", seen.events()),
            None if seen.calls().is_empty() => format!("{why} before any call arrived"),
            None => return self.missed(seen, details, &format!("{why}: ")),
        };
        Progress::Missed { details, summary }
    }

    /// With `--count` reached (`achieved`) or `--expect` complete: success when every call went
    /// through the whole expected sequence.
    fn complete(&self, seen: &Tracker, achieved: &str) -> Progress {
        let Some(expect) = &self.expect else {
            return Progress::Reached(achieved.to_string());
        };
        if seen.calls().is_empty() {
            return Progress::Missed {
                details: Vec::new(),
                summary: format!("{achieved} but none belonged to a call"),
            };
        }
        let incomplete = self.incomplete(seen);
        if !incomplete.is_empty() {
            return self.missed(seen, incomplete, "");
        }
        let calls = match seen.calls().len() {
            1 => "1 call".to_string(),
            n => format!("{n} calls"),
        };
        let text = format!("{calls} went through {}", expect.join(","));
        Progress::Reached(if achieved.is_empty() {
            text
        } else {
            format!("{achieved}; {text}")
        })
    }

    fn missed(&self, seen: &Tracker, details: Vec<String>, prefix: &str) -> Progress {
        let expect = self.expect.as_deref().unwrap_or_default();
        Progress::Missed {
            summary: format!(
                "{prefix}{} of {} calls did not go through {}",
                details.len(),
                seen.calls().len(),
                expect.join(",")
            ),
            details,
        }
    }

    /// One line per call that has not gone through the whole expected sequence.
    fn incomplete(&self, seen: &Tracker) -> Vec<String> {
        let Some(expect) = &self.expect else {
            return Vec::new();
        };
        seen.calls()
            .iter()
            .filter(|c| c.states != *expect)
            .map(|c| describe(c, expect))
            .collect()
    }
}

/// `call X went RINGING,MISSED; expected ...` or `call X stopped at RINGING; expected ...`.
fn describe(call: &Call, expect: &[String]) -> String {
    let verb = if expect.starts_with(&call.states) {
        "stopped at"
    } else {
        "went"
    };
    format!(
        "call {} {verb} {}; expected {}",
        call.id,
        call.states.join(","),
        expect.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seen(events: &[(&str, &str)]) -> Tracker {
        let mut t = Tracker::default();
        for (id, state) in events {
            t.record(&json!({"id": id, "state": state}));
        }
        t
    }

    fn goal(count: Option<u64>, expect: &str) -> Goal {
        Goal {
            count,
            expect: (!expect.is_empty()).then(|| expect.split(',').map(str::to_string).collect()),
        }
    }

    fn details(p: Progress) -> Vec<String> {
        match p {
            Progress::Missed { details, .. } => details,
            other => panic!("expected a miss, got {other:?}"),
        }
    }

    #[test]
    fn count_alone_is_reached_at_n_events() {
        let g = goal(Some(2), "");
        assert_eq!(g.progress(&seen(&[("a", "RINGING")])), Progress::Open);
        let two = seen(&[("a", "RINGING"), ("b", "RINGING")]);
        assert_eq!(g.progress(&two), Progress::Reached("got 2 events".into()));
    }

    #[test]
    fn a_call_that_leaves_the_expected_sequence_misses_at_once() {
        let g = goal(Some(6), "RINGING,ACTIVE,ANSWERED");
        assert_eq!(g.progress(&seen(&[("a", "RINGING")])), Progress::Open);
        assert_eq!(
            details(g.progress(&seen(&[("a", "RINGING"), ("a", "MISSED")]))),
            ["call a went RINGING,MISSED; expected RINGING,ACTIVE,ANSWERED"]
        );
    }

    #[test]
    fn expect_alone_is_reached_when_every_call_is_complete() {
        let g = goal(None, "RINGING,MISSED");
        let partial = seen(&[("a", "RINGING"), ("b", "RINGING"), ("a", "MISSED")]);
        assert_eq!(g.progress(&partial), Progress::Open);
        let all = seen(&[
            ("a", "RINGING"),
            ("b", "RINGING"),
            ("a", "MISSED"),
            ("b", "MISSED"),
        ]);
        assert_eq!(
            g.progress(&all),
            Progress::Reached("2 calls went through RINGING,MISSED".into())
        );
    }

    #[test]
    fn count_reached_with_an_incomplete_call_misses() {
        let g = goal(Some(2), "RINGING,ACTIVE,ANSWERED");
        assert_eq!(
            details(g.progress(&seen(&[("a", "RINGING"), ("a", "ACTIVE")]))),
            ["call a stopped at RINGING,ACTIVE; expected RINGING,ACTIVE,ANSWERED"]
        );
    }

    #[test]
    fn stopping_early_misses_a_set_goal_and_is_fine_without_one() {
        match goal(Some(1), "").at_stop(&seen(&[]), "timed out after 1s") {
            Progress::Missed { summary, .. } => {
                assert_eq!(summary, "timed out after 1s with 0 of 1 events")
            }
            other => panic!("{other:?}"),
        }
        let free = goal(None, "");
        assert_eq!(
            free.at_stop(&seen(&[]), "stopped"),
            Progress::Reached(String::new())
        );
        assert!(matches!(
            goal(None, "RINGING").at_stop(&seen(&[]), "stopped"),
            Progress::Missed { .. }
        ));
    }
}
