//! One webhook's queue as the process driving it keeps it in memory: which deliveries may be sent
//! now, in order per call, within the webhook's window. Pure bookkeeping, no I/O; the engine owns
//! one per driven webhook.
//!
//! - **Order**: the deliveries of one call form a chain (by `seq`); only its head may be in
//!   flight, and the next goes out once the head's outcome is recorded. Different calls go out in
//!   parallel, oldest first.
//! - **Window**: a webhook starts with one attempt in flight; each success widens the window by
//!   one (so it doubles per round of answers) up to the cap, and a failure shrinks it back to one.
//!   An endpoint that hangs, refuses or errors therefore holds one of the engine's slots however
//!   many calls wait for it.
//! - **Circuit breaker**: a failed attempt pauses the webhook (the store records it): the failed
//!   delivery is retried at its time, and every delivery not tried yet is held ([`HELD`]) until a
//!   delivery succeeds. A page read while the webhook is paused says so, and the same rule holds
//!   its deliveries.
//! - **Memory**: at most [`CAP`] deliveries are kept; the rest stay in the store, and the lane asks
//!   for the next page once it is down to half ([`Lane::wants_page`]). Deliveries queued by this
//!   process are offered as they commit ([`Lane::offer`]) and taken only when it is certain that
//!   nothing of their call is missing in between; otherwise the lane reads the store again.
//!
//! May depend on: `domain`, the store's queue types.

use crate::domain::Timestamp;
use crate::store::{AttemptEnd, DeliveryJob, Fresh, QueuePage, Queued, Started, Target};
use std::collections::{BTreeSet, HashMap, HashSet};

/// `due` of a delivery held while its webhook is paused: never, until a delivery succeeds.
pub const HELD: Timestamp = Timestamp::LATEST;
/// Deliveries a lane keeps in memory at most.
pub const CAP: usize = 1024;
/// The window of a webhook this process has not sent to lately.
pub const INITIAL_WINDOW: usize = 1;
/// Calls whose last finished delivery a lane remembers (to accept later deliveries of them
/// without reading the store); past it the oldest half is forgotten.
const REMEMBERED_CALLS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placed {
    /// Not a chain head that may go: in flight, or behind another delivery of its call.
    No,
    Ready,
    Timed(Timestamp),
}

#[derive(Debug)]
struct Row {
    delivery: Queued,
    in_flight: bool,
    placed: Placed,
}

/// How an offered delivery was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Taken,
    /// Known already, or it will come with the next page.
    Ignored,
}

/// One webhook's queue in memory.
#[derive(Debug)]
pub struct Lane {
    target: Option<Target>,
    rows: HashMap<i64, Row>,
    /// Per call, its deliveries' `seq`s.
    chains: HashMap<i64, BTreeSet<i64>>,
    /// Calls with a delivery in flight.
    busy: HashSet<i64>,
    /// Chain heads that may go now, oldest first.
    ready: BTreeSet<i64>,
    /// Chain heads that may go later (retries; [`HELD`] ones only once the webhook answers).
    timed: BTreeSet<(Timestamp, i64)>,
    in_flight: usize,
    window: usize,
    cap: usize,
    /// The store may hold pending deliveries that are not in `rows`.
    more: bool,
    /// Read the store again even above the low-water mark (it changed underneath).
    stale: bool,
    /// Per call, the highest `seq` of its deliveries that finished here.
    done: HashMap<i64, i64>,
    /// Calls forgotten from `done` had all their finished deliveries at or below this.
    horizon: i64,
    /// Some deliveries may be [`HELD`] (the webhook was paused).
    paused: bool,
    /// The webhook failed: nothing more goes out.
    failed: bool,
}

impl Lane {
    /// A lane that knows nothing yet: its first page comes from the store. `cap`: the widest its
    /// window grows (at least 1).
    pub fn new(cap: usize) -> Lane {
        let cap = cap.max(1);
        Lane {
            target: None,
            rows: HashMap::new(),
            chains: HashMap::new(),
            busy: HashSet::new(),
            ready: BTreeSet::new(),
            timed: BTreeSet::new(),
            in_flight: 0,
            window: INITIAL_WINDOW.min(cap),
            cap,
            more: true,
            stale: false,
            done: HashMap::new(),
            horizon: i64::MIN,
            paused: false,
            failed: false,
        }
    }

    /// Whether to read the next page now.
    pub fn wants_page(&self) -> bool {
        !self.failed && (self.stale || (self.more && self.rows.len() <= CAP / 2))
    }

    /// What to ask the store for: how many, leaving out those already here.
    pub fn page_request(&self) -> (usize, Vec<i64>) {
        (
            CAP.saturating_sub(self.rows.len()).max(1),
            self.rows.keys().copied().collect(),
        )
    }

    /// The store changed underneath (another process queued deliveries, a replay): read it again.
    pub fn read_again(&mut self) {
        self.more = true;
        self.stale = true;
    }

    /// Takes a page from the store. `flying`: deliveries with an attempt in flight (from an
    /// earlier lane of the same webhook), which must not go again before it ends.
    pub fn loaded(&mut self, page: QueuePage, flying: &HashSet<i64>, now: Timestamp) {
        self.target = Some(page.target);
        // The store's word on the pause is the latest (every outcome this lane applied is
        // written by now): a pause it knows and the lane did not holds what was never tried; a
        // pause it ended (a renewal after the webhook expired) releases what was held.
        if page.paused && !self.paused {
            self.hold_untried();
        } else if !page.paused {
            self.resume(now);
        }
        self.more = !page.complete;
        self.stale = false;
        for delivery in page.deliveries {
            if self.rows.contains_key(&delivery.seq) {
                continue;
            }
            let in_flight = flying.contains(&delivery.seq);
            self.add(delivery, in_flight, now);
        }
    }

    /// A delivery this process queued, just committed.
    pub fn offer(&mut self, fresh: Fresh, now: Timestamp) -> Offer {
        let delivery = fresh.delivery;
        let call = delivery.call_seq;
        if self.target.is_none() || self.failed || self.rows.contains_key(&delivery.seq) {
            return Offer::Ignored;
        }
        let finished_up_to = self.done.get(&call).copied();
        if finished_up_to.is_some_and(|done| done >= delivery.seq) {
            return Offer::Ignored;
        }
        let before_known = match fresh.after {
            None => true,
            Some(after) => {
                self.rows.contains_key(&after) || finished_up_to.is_some_and(|done| done >= after)
            }
        };
        // Forgotten calls, a page still to read, no room, or an earlier delivery of the call
        // that is neither here nor finished here: the store has it in order.
        let forgotten = finished_up_to.is_none() && delivery.seq <= self.horizon;
        if forgotten || self.more || self.rows.len() >= CAP || !before_known {
            self.more = true;
            return Offer::Ignored;
        }
        self.add(delivery, false, now);
        Offer::Taken
    }

    /// Up to `room` deliveries to send now (fewer when the window or the order allow fewer),
    /// marked in flight; none once the webhook has expired or failed.
    pub fn take(&mut self, now: Timestamp, room: usize) -> Vec<i64> {
        if self.failed || self.target.as_ref().is_none_or(|t| t.expire_at <= now) {
            return Vec::new();
        }
        while let Some(&(due, seq)) = self.timed.first() {
            if due > now {
                break;
            }
            self.timed.remove(&(due, seq));
            self.ready.insert(seq);
            self.set_placed(seq, Placed::Ready);
        }
        let n = room.min(self.window.saturating_sub(self.in_flight));
        let taken: Vec<i64> = self.ready.iter().take(n).copied().collect();
        for seq in &taken {
            self.ready.remove(seq);
            if let Some(row) = self.rows.get_mut(seq) {
                row.in_flight = true;
                row.placed = Placed::No;
                self.busy.insert(row.delivery.call_seq);
            }
            self.in_flight += 1;
        }
        taken
    }

    /// The job of a started attempt.
    pub fn job(&self, started: Started) -> Option<DeliveryJob> {
        let row = self.rows.get(&started.seq)?;
        Some(DeliveryJob::new(
            self.target.as_ref()?,
            &row.delivery,
            started,
        ))
    }

    /// The store did not start `seq` (no longer pending, or no longer ours to drive).
    pub fn not_started(&mut self, seq: i64, now: Timestamp) {
        if let Some(row) = self.rows.remove(&seq) {
            self.in_flight = self.in_flight.saturating_sub(1);
            let call = row.delivery.call_seq;
            self.busy.remove(&call);
            self.remove_from_chain(call, seq);
            self.place_head(call, now);
        }
        self.read_again();
    }

    /// An attempt of this lane ended, as it will be recorded.
    pub fn ended(&mut self, seq: i64, end: &AttemptEnd, now: Timestamp) {
        let Some(row) = self.rows.get_mut(&seq) else {
            return;
        };
        if row.in_flight {
            row.in_flight = false;
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        let call = row.delivery.call_seq;
        self.busy.remove(&call);
        match end {
            AttemptEnd::Delivered => {
                self.rows.remove(&seq);
                self.remove_from_chain(call, seq);
                self.remember_done(call, seq);
                self.window = (self.window + 1).min(self.cap);
                self.resume(now);
                self.place_head(call, now);
            }
            AttemptEnd::Retry { at } => {
                row.delivery.due = *at;
                row.delivery.attempts += 1;
                self.window = INITIAL_WINDOW.min(self.cap);
                self.hold_all_but(seq);
                self.place_head(call, now);
            }
            AttemptEnd::Failed(_) => {
                self.failed = true;
                self.rows.retain(|_, r| r.in_flight);
                self.chains.clear();
                self.ready.clear();
                self.timed.clear();
            }
        }
    }

    /// The earliest time a delivery waiting for its time may go (not [`HELD`] ones).
    pub fn next_due(&self) -> Option<Timestamp> {
        self.timed
            .first()
            .map(|(due, _)| *due)
            .filter(|due| *due < HELD)
    }

    /// Nothing in memory, nothing in flight, nothing more in the store as far as it knows.
    pub fn is_idle(&self) -> bool {
        self.rows.is_empty() && !self.more && !self.stale
    }

    /// The webhook failed or expired: the lane is of no more use once nothing is in flight.
    pub fn is_finished(&self, now: Timestamp) -> bool {
        self.in_flight == 0
            && (self.failed || self.target.as_ref().is_some_and(|t| t.expire_at <= now))
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn add(&mut self, mut delivery: Queued, in_flight: bool, now: Timestamp) {
        let (seq, call) = (delivery.seq, delivery.call_seq);
        // While paused, a delivery never tried (since its last replay) is held like the rest,
        // however it comes: the store held it, or holds it, or writes none for it.
        let untried = delivery.attempts <= delivery.replayed_after;
        if self.paused && untried && !in_flight {
            delivery.due = HELD;
        }
        self.paused |= delivery.due == HELD;
        if in_flight {
            self.in_flight += 1;
            self.busy.insert(call);
        }
        self.rows.insert(
            seq,
            Row {
                delivery,
                in_flight,
                placed: Placed::No,
            },
        );
        let chain = self.chains.entry(call).or_default();
        let old_head = chain.first().copied();
        chain.insert(seq);
        if let Some(old) = old_head.filter(|old| *old > seq) {
            self.unplace(old);
        }
        self.place_head(call, now);
    }

    fn remove_from_chain(&mut self, call: i64, seq: i64) {
        self.unplace(seq);
        if let Some(chain) = self.chains.get_mut(&call) {
            chain.remove(&seq);
            if chain.is_empty() {
                self.chains.remove(&call);
            }
        }
    }

    /// Puts the head of `call`'s chain where it belongs, unless the call has one in flight.
    fn place_head(&mut self, call: i64, now: Timestamp) {
        if self.busy.contains(&call) {
            return;
        }
        let Some(head) = self.chains.get(&call).and_then(|c| c.first().copied()) else {
            return;
        };
        let Some(row) = self.rows.get(&head) else {
            return;
        };
        if row.in_flight || row.placed != Placed::No {
            return;
        }
        let due = row.delivery.due;
        let placed = if due <= now {
            self.ready.insert(head);
            Placed::Ready
        } else {
            self.timed.insert((due, head));
            Placed::Timed(due)
        };
        self.set_placed(head, placed);
    }

    fn unplace(&mut self, seq: i64) {
        let Some(row) = self.rows.get_mut(&seq) else {
            return;
        };
        match row.placed {
            Placed::No => {}
            Placed::Ready => {
                self.ready.remove(&seq);
            }
            Placed::Timed(due) => {
                self.timed.remove(&(due, seq));
            }
        }
        row.placed = Placed::No;
    }

    fn set_placed(&mut self, seq: i64, placed: Placed) {
        if let Some(row) = self.rows.get_mut(&seq) {
            row.placed = placed;
        }
    }

    /// The pause: every waiting delivery but `probe` is held.
    fn hold_all_but(&mut self, probe: i64) {
        self.paused = true;
        let held: Vec<i64> = self
            .rows
            .iter()
            .filter(|(seq, r)| **seq != probe && !r.in_flight && r.delivery.due < HELD)
            .map(|(seq, _)| *seq)
            .collect();
        self.hold(held);
        self.unplace(probe);
    }

    /// A pause found in the store: every delivery never tried (since its last replay) is held.
    fn hold_untried(&mut self) {
        self.paused = true;
        let held: Vec<i64> = self
            .rows
            .iter()
            .filter(|(_, r)| {
                !r.in_flight
                    && r.delivery.due < HELD
                    && r.delivery.attempts <= r.delivery.replayed_after
            })
            .map(|(seq, _)| *seq)
            .collect();
        self.hold(held);
    }

    /// Gives these deliveries [`HELD`], moving the chain heads among them out of `ready`.
    fn hold(&mut self, seqs: Vec<i64>) {
        for seq in seqs {
            let placed = self.rows.get(&seq).map(|r| r.placed);
            if let Some(row) = self.rows.get_mut(&seq) {
                row.delivery.due = HELD;
            }
            if placed.is_some_and(|p| p != Placed::No) {
                self.unplace(seq);
                self.timed.insert((HELD, seq));
                self.set_placed(seq, Placed::Timed(HELD));
            }
        }
    }

    /// The end of a pause, after a success: what was held is due now.
    fn resume(&mut self, now: Timestamp) {
        if !std::mem::take(&mut self.paused) {
            return;
        }
        let held: Vec<i64> = self
            .rows
            .iter()
            .filter(|(_, r)| r.delivery.due == HELD)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in held {
            self.unplace(seq);
            if let Some(row) = self.rows.get_mut(&seq) {
                row.delivery.due = now;
            }
        }
        let calls: Vec<i64> = self.chains.keys().copied().collect();
        for call in calls {
            self.place_head(call, now);
        }
    }

    fn remember_done(&mut self, call: i64, seq: i64) {
        let entry = self.done.entry(call).or_insert(seq);
        *entry = (*entry).max(seq);
        if self.done.len() > REMEMBERED_CALLS {
            let mut seqs: Vec<i64> = self.done.values().copied().collect();
            let (_, median, _) = seqs.select_nth_unstable(REMEMBERED_CALLS / 2);
            let median = *median;
            self.horizon = self.horizon.max(median);
            self.done.retain(|_, done| *done > median);
        }
    }
}

#[cfg(test)]
#[path = "lane_tests.rs"]
mod tests;
