//! The call observer: turns the SIP messages the proxy relays into call state reports, one call
//! per dialog and one report stream per local party (see the mapping table in the README's "Real
//! calls (SIP)" section). Pure: messages and the time come in, [`CallReport`]s go out; the
//! reports only ever take transitions the state machine allows, so retransmissions, stray and
//! out-of-order messages change nothing.
//!
//! May depend on: `domain`, `sip::facts`, `sip::users`.

use super::facts::{Address, Facts, Kind, Media, Method};
use super::users::{Party, Users};
use crate::domain::call::{CallState, Direction, allowed};
use crate::domain::report::CallReport;
use crate::domain::time::Timestamp;
use std::collections::HashMap;
use std::time::Duration;

/// The observer's timers.
#[derive(Debug, Clone)]
pub struct Timers {
    /// An answered dialog with no signalling for this long has died: its call ends (ANSWERED).
    /// A Session-Expires header (RFC 4028) replaces it for that dialog.
    pub session: Duration,
    /// A call with no final answer to its INVITE for this long ends unanswered (RFC 3261
    /// Timer C: 3 minutes).
    pub setup: Duration,
    /// How long an ended call is remembered, so its retransmissions are known as such.
    pub linger: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            session: Duration::from_secs(3600),
            setup: Duration::from_secs(180),
            linger: Duration::from_secs(32),
        }
    }
}

/// What one message meant beyond its reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// Nothing to count.
    None,
    /// A new call with at least one local party is being followed.
    NewCall,
    /// A new call between parties none of whom is a callhook user: relayed, not followed.
    Unknown,
    /// A new call with a local party, but the observer follows as many calls as it may: the
    /// proxy refuses it (503) rather than relay a call it cannot report.
    Full,
}

/// Which end of the dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Caller,
    Callee,
}

/// One local party's view of a call: the report it gets, kept at its latest state.
#[derive(Debug, Clone)]
struct Leg {
    side: Side,
    report: CallReport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Setup,
    Talking { held_by: Option<Side> },
    Ended,
}

#[derive(Debug, Clone)]
struct Track {
    caller_tag: Option<String>,
    invite_cseq: u32,
    legs: Vec<Leg>,
    phase: Phase,
    cancelled: bool,
    /// A re-INVITE waiting for its answer: its CSeq, who sent it, what its SDP asked.
    pending: Option<(u32, Side, Option<Media>)>,
    session: Duration,
    deadline: Timestamp,
}

/// The calls being followed, by SIP Call-ID.
pub struct Observer {
    users: Users,
    timers: Timers,
    max_calls: usize,
    calls: HashMap<String, Track>,
}

/// The longest `externalId`, `phoneNumber` and `callerId` a report may carry.
const MAX_EXTERNAL_ID: usize = 256;
const MAX_NUMBER: usize = 64;
const MAX_CALLER_ID: usize = 256;
/// The suffix of the caller's externalId when both parties are in one account (the account
/// keys calls by externalId).
pub const OUTBOUND_SUFFIX: &str = ";outbound";

impl Observer {
    pub fn new(users: Users, timers: Timers, max_calls: usize) -> Observer {
        Observer {
            users,
            timers,
            max_calls,
            calls: HashMap::new(),
        }
    }

    /// Calls being followed (including ended ones still remembered).
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Whether the call with this Call-ID is being followed (or, ended, still remembered).
    pub fn follows(&self, call_id: &str) -> bool {
        self.calls.contains_key(call_id)
    }

    /// Takes in one relayed message seen at `now`; appends the reports it causes to `out`.
    pub fn observe(&mut self, facts: &Facts, now: Timestamp, out: &mut Vec<CallReport>) -> Note {
        if facts.kind == Kind::Request(Method::Invite) && facts.to.tag.is_none() {
            return self.initial_invite(facts, now, out);
        }
        if let Some(track) = self.calls.get_mut(&facts.call_id) {
            track.take(facts, now, &self.timers, out);
        }
        Note::None
    }

    /// Ends the calls whose timer ran out at `now` and forgets ended calls whose linger is over.
    pub fn expire(&mut self, now: Timestamp, out: &mut Vec<CallReport>) {
        let timers = &self.timers;
        self.calls.retain(|_, track| {
            if track.deadline > now {
                return true;
            }
            match track.phase {
                Phase::Ended => return false,
                Phase::Setup => track.end_unanswered(None, now, timers, out),
                Phase::Talking { .. } => track.hang_up(now, timers, out),
            }
            true
        });
    }

    fn initial_invite(&mut self, facts: &Facts, now: Timestamp, out: &mut Vec<CallReport>) -> Note {
        if let Some(track) = self.calls.get_mut(&facts.call_id) {
            // A retransmission, or the INVITE sent again after a 401/407 challenge.
            if track.phase == Phase::Setup && facts.cseq > track.invite_cseq {
                track.invite_cseq = facts.cseq;
                track.deadline = now.plus(self.timers.setup);
            }
            return Note::None;
        }
        let caller = self
            .users
            .find(facts.from.user.as_deref(), &facts.from.host)
            .cloned();
        let callee = self
            .users
            .find(facts.to.user.as_deref(), &facts.to.host)
            .cloned();
        if caller.is_none() && callee.is_none() {
            return Note::Unknown;
        }
        if self.calls.len() >= self.max_calls {
            return Note::Full;
        }
        let internal = caller.is_some() && callee.is_some();
        let same_account =
            matches!((&caller, &callee), (Some(a), Some(b)) if a.account == b.account);
        let mut legs = Vec::with_capacity(2);
        if let Some(party) = callee {
            legs.push(leg(
                Side::Callee,
                party,
                &facts.call_id,
                &facts.from,
                internal,
                "",
            ));
        }
        if let Some(party) = caller {
            let suffix = if same_account { OUTBOUND_SUFFIX } else { "" };
            legs.push(leg(
                Side::Caller,
                party,
                &facts.call_id,
                &facts.to,
                internal,
                suffix,
            ));
        }
        let mut track = Track {
            caller_tag: facts.from.tag.clone(),
            invite_cseq: facts.cseq,
            legs,
            phase: Phase::Setup,
            cancelled: false,
            pending: None,
            session: self.timers.session,
            deadline: now.plus(self.timers.setup),
        };
        for l in &mut track.legs {
            out.push(l.report_at(now));
        }
        self.calls.insert(facts.call_id.clone(), track);
        Note::NewCall
    }
}

fn leg(
    side: Side,
    party: Party,
    call_id: &str,
    remote: &Address,
    internal: bool,
    suffix: &str,
) -> Leg {
    let budget = MAX_EXTERNAL_ID - suffix.len();
    Leg {
        side,
        report: CallReport {
            external_id: format!("{}{suffix}", clip(call_id, budget)),
            account_id: party.account,
            user_id: party.user,
            direction: match side {
                Side::Callee => Direction::Inbound,
                Side::Caller => Direction::Outbound,
            },
            phone_number: clip(remote.number(), MAX_NUMBER).to_string(),
            caller_id: remote
                .display
                .as_deref()
                .map(|d| clip(d, MAX_CALLER_ID).to_string()),
            state: CallState::Initializing,
            internal,
            ucp_type: "SIP".into(),
            at: None,
        },
    }
}

/// The longest prefix of `s` within `max` bytes that ends on a character boundary.
fn clip(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Leg {
    fn report_at(&self, at: Timestamp) -> CallReport {
        CallReport {
            at: Some(at),
            ..self.report.clone()
        }
    }

    /// Moves to `state` when the state machine allows it (else nothing happens).
    fn go(&mut self, state: CallState, at: Timestamp, out: &mut Vec<CallReport>) {
        let current = self.report.state;
        if current != state && allowed(Some(current), state, self.report.direction) {
            self.report.state = state;
            out.push(self.report_at(at));
        }
    }
}

impl Track {
    fn take(&mut self, facts: &Facts, now: Timestamp, timers: &Timers, out: &mut Vec<CallReport>) {
        if let Some(seconds) = facts.session_expires {
            // RFC 4028's smallest Session-Expires is 90 s.
            self.session = Duration::from_secs(u64::from(seconds.max(90)));
        }
        match (facts.kind, self.phase) {
            (_, Phase::Ended) => {}
            (Kind::Response(code), Phase::Setup)
                if facts.cseq_method == Method::Invite && facts.cseq == self.invite_cseq =>
            {
                match code {
                    100 => {}
                    101..=199 => {
                        self.all(CallState::Ringing, now, out);
                        self.deadline = now.plus(timers.setup);
                    }
                    200..=299 => {
                        self.all(CallState::Ringing, now, out);
                        self.all(CallState::Active, now, out);
                        self.phase = Phase::Talking { held_by: None };
                        self.deadline = now.plus(self.session);
                    }
                    // A challenge: the caller sends the INVITE again with credentials.
                    401 | 407 => {}
                    _ => self.end_unanswered(Some(code), now, timers, out),
                }
            }
            (Kind::Request(Method::Cancel), Phase::Setup) => self.cancelled = true,
            (Kind::Request(Method::Bye), Phase::Setup) => {
                self.cancelled = true;
                self.end_unanswered(None, now, timers, out);
            }
            (Kind::Request(Method::Bye), Phase::Talking { .. }) => self.hang_up(now, timers, out),
            (Kind::Request(Method::Invite), Phase::Talking { .. }) => {
                let side = if facts.from.tag == self.caller_tag {
                    Side::Caller
                } else {
                    Side::Callee
                };
                self.pending = Some((facts.cseq, side, facts.media));
                self.deadline = now.plus(self.session);
            }
            (Kind::Response(code), Phase::Talking { held_by })
                if facts.cseq_method == Method::Invite
                    && self.pending.is_some_and(|(cseq, ..)| cseq == facts.cseq)
                    && code >= 200 =>
            {
                let (_, side, media) = self.pending.take().unwrap_or((0, Side::Caller, None));
                if (200..300).contains(&code) {
                    self.change_media(held_by, side, media, now, out);
                }
                self.deadline = now.plus(self.session);
            }
            (_, Phase::Talking { .. }) => self.deadline = now.plus(self.session),
            _ => {}
        }
    }

    fn change_media(
        &mut self,
        held_by: Option<Side>,
        side: Side,
        media: Option<Media>,
        now: Timestamp,
        out: &mut Vec<CallReport>,
    ) {
        match (held_by, media) {
            (None, Some(Media::Hold)) => {
                for l in &mut self.legs {
                    let state = if l.side == side {
                        CallState::Held
                    } else {
                        CallState::RemoteHeld
                    };
                    l.go(state, now, out);
                }
                self.phase = Phase::Talking {
                    held_by: Some(side),
                };
            }
            (Some(holder), Some(Media::Talk)) if holder == side => {
                self.all(CallState::Active, now, out);
                self.phase = Phase::Talking { held_by: None };
            }
            _ => {}
        }
    }

    fn all(&mut self, state: CallState, now: Timestamp, out: &mut Vec<CallReport>) {
        for l in &mut self.legs {
            l.go(state, now, out);
        }
    }

    /// A call that ends before it was answered: the callee missed or rejected it, the caller's
    /// attempt is cancelled. A call that never rang rings first (the state machine has no other
    /// way from INITIALIZING to an unanswered end).
    fn end_unanswered(
        &mut self,
        code: Option<u16>,
        now: Timestamp,
        timers: &Timers,
        out: &mut Vec<CallReport>,
    ) {
        self.all(CallState::Ringing, now, out);
        let rejected = !self.cancelled && matches!(code, Some(486 | 600 | 603));
        for l in &mut self.legs {
            let state = match l.side {
                Side::Caller => CallState::Cancelled,
                Side::Callee if rejected => CallState::Rejected,
                Side::Callee => CallState::Missed,
            };
            l.go(state, now, out);
        }
        self.finish(now, timers);
    }

    fn hang_up(&mut self, now: Timestamp, timers: &Timers, out: &mut Vec<CallReport>) {
        self.all(CallState::Answered, now, out);
        self.finish(now, timers);
    }

    fn finish(&mut self, now: Timestamp, timers: &Timers) {
        self.phase = Phase::Ended;
        self.pending = None;
        self.deadline = now.plus(timers.linger);
    }
}
