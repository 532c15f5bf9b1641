//! The call plan: every call of a run, drawn from a seed before anything is sent. A call has a
//! user, a direction, a remote party, a start time (real time after the run began, a Poisson
//! process at the chosen rate) and its reports: each state with the simulated time since the
//! call's start. The same settings give the same plan, call for call; the plan does not depend on
//! `--speedup`, which only changes how fast it is played.
//!
//! Calls are drawn one after another from one generator (xoshiro256++, a fixed algorithm), so a
//! longer run begins with the calls of a shorter one.
//!
//! Pure: no I/O, no clock. [`PlannedCall::report`] builds the ingestion body of a step.

use super::mix::{self, Ending};
use super::people;
use crate::domain::{CallState, Direction, Timestamp};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::time::Duration;

/// What a plan is drawn from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanSettings {
    pub calls: u32,
    /// Calls started per second of real time, on average.
    pub rate: f64,
    pub users: u32,
    pub accounts: u32,
    pub seed: u64,
}

/// One report of a planned call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub state: CallState,
    /// Simulated time since the call's first report.
    pub after: Duration,
}

/// One call of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCall {
    /// 1-based position in the plan (calls are numbered in the order they start).
    pub number: u32,
    /// 1-based user number (`user-{user}`).
    pub user: u32,
    /// 1-based account number (`acct-{account}`).
    pub account: u32,
    pub direction: Direction,
    pub phone_number: String,
    pub caller_id: Option<String>,
    /// Real time from the run's start to this call's first report.
    pub start: Duration,
    pub steps: Vec<Step>,
    /// Answered calls: how many times the call was put on hold.
    pub holds: usize,
    /// Answered calls: the call was transferred away (DETACHED before ANSWERED).
    pub transferred: bool,
}

/// The whole plan of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub settings: PlanSettings,
    pub calls: Vec<PlannedCall>,
}

impl Plan {
    /// Draws the plan for `settings`.
    pub fn generate(settings: PlanSettings) -> Plan {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(settings.seed);
        let mut start = Duration::ZERO;
        let mut calls = Vec::with_capacity(settings.calls as usize);
        for number in 1..=settings.calls {
            if number > 1 {
                start += mix::arrival_gap(&mut rng, settings.rate);
            }
            let user = rng.random_range(1..=settings.users.max(1));
            let direction = mix::direction(&mut rng);
            let phone_number = people::phone_number(&mut rng);
            let caller_id = people::caller_name(&mut rng);
            let shape = draw_steps(&mut rng, direction);
            calls.push(PlannedCall {
                number,
                user,
                account: people::account_of(user, settings.accounts),
                direction,
                phone_number,
                caller_id,
                start,
                steps: shape.steps,
                holds: shape.holds,
                transferred: shape.transferred,
            });
        }
        Plan { settings, calls }
    }

    /// Reports in the whole plan.
    pub fn reports(&self) -> usize {
        self.calls.iter().map(|c| c.steps.len()).sum()
    }

    /// A short fingerprint of the plan (hex of SHA-256 over every call's description, first 16
    /// digits): equal plans, equal hashes. The run tag in external ids is not part of it.
    pub fn hash(&self) -> String {
        let mut text = String::new();
        for c in &self.calls {
            let _ = write!(
                text,
                "{} {} {} {} {} {:?} {}",
                c.number,
                c.user,
                c.account,
                c.direction.as_str(),
                c.phone_number,
                c.caller_id,
                c.start.as_micros()
            );
            for s in &c.steps {
                let _ = write!(text, " {}@{}", s.state.as_str(), s.after.as_millis());
            }
            text.push('\n');
        }
        hex::encode(&Sha256::digest(text.as_bytes())[..8])
    }
}

impl PlannedCall {
    pub fn user_id(&self) -> String {
        people::user_id(self.user)
    }

    pub fn account_id(&self) -> String {
        people::account_id(self.account)
    }

    /// The state the call ends in.
    pub fn final_state(&self) -> CallState {
        self.steps.last().map_or(CallState::Ringing, |s| s.state)
    }

    /// The call's external id in run `run`: `sim-{run}-{number}`.
    pub fn external_id(&self, run: &str) -> String {
        format!("sim-{run}-{}", self.number)
    }

    /// The ingestion body of step `step`, for a run tagged `run` whose timeline begins at
    /// `epoch`: the call's first report is `at` `epoch + start`, later ones add the simulated
    /// time, so the durations the platform computes are the uncompressed ones.
    pub fn report(&self, step: usize, run: &str, epoch: Timestamp) -> Value {
        let at = epoch.plus(self.start).plus(self.steps[step].after);
        let mut body = json!({
            "externalId": self.external_id(run),
            "accountId": self.account_id(),
            "userId": self.user_id(),
            "direction": self.direction.as_str(),
            "phoneNumber": self.phone_number,
            "state": self.steps[step].state.as_str(),
            "at": at.webhook_format(),
        });
        if let Some(name) = &self.caller_id {
            body["callerId"] = json!(name);
        }
        body
    }
}

/// The reports of one call, and what they add up to.
struct Shape {
    steps: Vec<Step>,
    holds: usize,
    transferred: bool,
}

/// Draws how a call of `direction` goes: its states and their simulated times.
fn draw_steps(rng: &mut Xoshiro256PlusPlus, direction: Direction) -> Shape {
    use CallState::*;
    let mut steps = Vec::with_capacity(6);
    let mut now = Duration::ZERO;
    let push = |steps: &mut Vec<Step>, state, after| steps.push(Step { state, after });
    if mix::starts_initializing(rng, direction) {
        push(&mut steps, Initializing, now);
        now += mix::SETUP.sample(rng);
    }
    push(&mut steps, Ringing, now);
    let ending = mix::ending(rng, direction);
    let (mut holds, mut transferred) = (0, false);
    match ending {
        Ending::Missed => push(&mut steps, Missed, now + mix::RING_MISSED.sample(rng)),
        Ending::Rejected => push(&mut steps, Rejected, now + mix::RING_REJECTED.sample(rng)),
        Ending::Cancelled => push(&mut steps, Cancelled, now + mix::RING_CANCELLED.sample(rng)),
        Ending::Answered => {
            now += mix::RING_ANSWERED.sample(rng);
            push(&mut steps, Active, now);
            let talk = mix::TALK.sample(rng);
            holds = mix::holds(rng);
            transferred = mix::transferred(rng);
            // Holds begin at points spread over the talk, in order; each splits it.
            let mut points: Vec<f64> = (0..holds)
                .map(|_| 0.15 + 0.70 * rng.random::<f64>())
                .collect();
            points.sort_by(f64::total_cmp);
            let mut talked = Duration::ZERO;
            for point in points {
                let until = talk.mul_f64(point).max(talked);
                now += until - talked;
                talked = until;
                let hold = if mix::remote_hold(rng) {
                    RemoteHeld
                } else {
                    Held
                };
                push(&mut steps, hold, now);
                now += mix::HOLD.sample(rng);
                push(&mut steps, Active, now);
            }
            now += talk - talked;
            if transferred {
                push(&mut steps, Detached, now);
                now += mix::DETACHED.sample(rng);
            }
            push(&mut steps, Answered, now);
        }
    }
    Shape {
        steps,
        holds,
        transferred,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::call::{Applied, allowed, apply};
    use crate::domain::report::CallReport;
    use std::collections::HashMap;

    fn settings(calls: u32, seed: u64) -> PlanSettings {
        PlanSettings {
            calls,
            rate: 5.0,
            users: 7,
            accounts: 3,
            seed,
        }
    }

    /// Plays a call's reports through the domain's own `apply`, as the server would.
    fn play(call: &PlannedCall) -> crate::domain::call::Call {
        let epoch = Timestamp::from_millis(1_714_557_600_000).unwrap();
        let mut current = None;
        for step in 0..call.steps.len() {
            let report = CallReport::try_from(&call.report(step, "t", epoch))
                .unwrap_or_else(|e| panic!("call {} step {step} invalid: {e:?}", call.number));
            match apply(current.as_ref(), &report, || "id".into(), epoch) {
                Ok(Applied::Changed(next)) => current = Some(next),
                other => panic!("call {} step {step}: {other:?}", call.number),
            }
        }
        current.expect("a call has reports")
    }

    #[test]
    fn every_planned_sequence_is_legal_for_the_state_machine() {
        let plan = Plan::generate(settings(5_000, 7));
        for call in &plan.calls {
            let mut from = None;
            for step in &call.steps {
                assert!(
                    allowed(from, step.state, call.direction),
                    "call {}: {from:?} -> {:?} ({:?})",
                    call.number,
                    step.state,
                    call.direction
                );
                from = Some(step.state);
            }
            assert!(call.final_state().is_final(), "call {} ends", call.number);
        }
    }

    #[test]
    fn reports_move_forward_in_time_and_answered_calls_get_their_talk_time() {
        let plan = Plan::generate(settings(2_000, 8));
        for call in &plan.calls {
            assert!(call.steps.windows(2).all(|w| w[0].after < w[1].after));
            let played = play(call);
            assert_eq!(played.state, call.final_state());
            if played.state == CallState::Answered {
                assert!(
                    played.duration >= 10_000,
                    "call {}: {played:?}",
                    call.number
                );
            } else {
                assert_eq!(played.duration, 0);
            }
        }
        assert!(plan.calls.windows(2).all(|w| w[0].start <= w[1].start));
    }

    #[test]
    fn the_same_seed_gives_the_same_plan_and_another_seed_another() {
        let a = Plan::generate(settings(300, 42));
        assert_eq!(a, Plan::generate(settings(300, 42)));
        assert_eq!(a.hash(), Plan::generate(settings(300, 42)).hash());
        let b = Plan::generate(settings(300, 43));
        assert_ne!(a.hash(), b.hash());
        // A longer run begins with the calls of a shorter one.
        assert_eq!(Plan::generate(settings(100, 42)).calls[..], a.calls[..100]);
    }

    #[test]
    fn the_mix_is_close_to_the_documented_shares() {
        let plan = Plan::generate(settings(20_000, 9));
        let mut ends: HashMap<CallState, f64> = HashMap::new();
        let (mut inbound, mut held, mut initializing) = (0.0, 0.0, 0.0);
        for call in &plan.calls {
            *ends.entry(call.final_state()).or_default() += 1.0;
            inbound += f64::from(u8::from(call.direction == Direction::Inbound));
            held += f64::from(u8::from(call.holds > 0));
            initializing += f64::from(u8::from(call.steps[0].state == CallState::Initializing));
        }
        let n = plan.calls.len() as f64;
        let near = |got: f64, want: f64, what: &str| {
            assert!(
                (got / n - want).abs() < 0.015,
                "{what}: {} vs {want}",
                got / n
            )
        };
        near(inbound, mix::INBOUND_SHARE, "inbound");
        let (i, o) = (mix::INBOUND_SHARE, 1.0 - mix::INBOUND_SHARE);
        let answered = i * mix::INBOUND_ANSWERED + o * mix::OUTBOUND_ANSWERED;
        near(ends[&CallState::Answered], answered, "answered");
        near(ends[&CallState::Missed], i * mix::INBOUND_MISSED, "missed");
        near(
            ends[&CallState::Cancelled],
            o * (1.0 - mix::OUTBOUND_ANSWERED),
            "cancelled",
        );
        near(held, answered * (mix::HELD_ONCE + mix::HELD_TWICE), "held");
        near(initializing, o * mix::OUTBOUND_INITIALIZING, "initializing");
    }

    #[test]
    fn users_and_accounts_stay_in_range_and_match_the_naming_rule() {
        let plan = Plan::generate(settings(1_000, 10));
        for call in &plan.calls {
            assert!((1..=7).contains(&call.user));
            assert_eq!(call.account, (call.user - 1) % 3 + 1);
        }
        let users: std::collections::HashSet<u32> = plan.calls.iter().map(|c| c.user).collect();
        assert_eq!(users.len(), 7, "every user gets calls in a long run");
    }

    #[test]
    fn first_report_is_at_the_call_start_and_names_the_run() {
        let plan = Plan::generate(settings(3, 11));
        let epoch = Timestamp::from_millis(1_000_000).unwrap();
        let call = &plan.calls[2];
        let body = call.report(0, "ab12", epoch);
        assert_eq!(body["externalId"], "sim-ab12-3");
        let at = Timestamp::parse(body["at"].as_str().unwrap()).unwrap();
        assert_eq!(at, epoch.plus(call.start));
    }
}
