//! The traffic mix and its clocks: which share of calls is inbound, how they end, how many are put
//! on hold, and how long they ring, talk and hold. Each figure is a named constant so that the
//! README, the tests and the generator say the same thing.
//!
//! Pure: every function draws from the random generator it is given and reads no clock.

use crate::domain::Direction;
use rand::{Rng, RngExt};
use std::time::Duration;

/// Share of calls that are inbound (the rest are outbound).
pub const INBOUND_SHARE: f64 = 0.60;
/// How inbound calls end: answered, missed (rang out), rejected (declined by the user).
pub const INBOUND_ANSWERED: f64 = 0.70;
pub const INBOUND_MISSED: f64 = 0.20;
// The remaining 10 % of inbound calls are rejected.
/// How outbound calls end: answered by the far end, or cancelled (the caller hung up first).
pub const OUTBOUND_ANSWERED: f64 = 0.75;
// The remaining 25 % of outbound calls are cancelled.
/// Share of outbound calls reported as INITIALIZING (dialling) before RINGING.
pub const OUTBOUND_INITIALIZING: f64 = 0.50;
/// Share of answered calls put on hold once, and twice.
pub const HELD_ONCE: f64 = 0.15;
pub const HELD_TWICE: f64 = 0.05;
/// Share of holds that are the far end's (REMOTE_HELD) rather than the user's (HELD).
pub const REMOTE_HOLD: f64 = 0.20;
/// Share of answered calls transferred away (ACTIVE, DETACHED, then ANSWERED).
pub const TRANSFERRED: f64 = 0.05;

/// How a call ends, seen from the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ending {
    Answered,
    Missed,
    Rejected,
    Cancelled,
}

/// A clamped log-normal distribution, given by its median and the spread of its logarithm.
#[derive(Debug, Clone, Copy)]
pub struct LogNormal {
    pub median_s: f64,
    pub sigma: f64,
    pub min_s: f64,
    pub max_s: f64,
}

/// A uniform distribution between two bounds, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Uniform {
    pub min_s: f64,
    pub max_s: f64,
}

/// INITIALIZING to RINGING: dialling.
pub const SETUP: Uniform = Uniform {
    min_s: 0.3,
    max_s: 1.5,
};
/// RINGING until someone answers (median 5 s).
pub const RING_ANSWERED: LogNormal = LogNormal {
    median_s: 5.0,
    sigma: 0.5,
    min_s: 1.0,
    max_s: 25.0,
};
/// RINGING until the call rings out (no answer timeout, voicemail).
pub const RING_MISSED: Uniform = Uniform {
    min_s: 18.0,
    max_s: 30.0,
};
/// RINGING until the user declines.
pub const RING_REJECTED: Uniform = Uniform {
    min_s: 2.0,
    max_s: 12.0,
};
/// RINGING until the caller gives up (median 15 s).
pub const RING_CANCELLED: LogNormal = LogNormal {
    median_s: 15.0,
    sigma: 0.6,
    min_s: 3.0,
    max_s: 45.0,
};
/// Talking time, holds excluded (median 75 s, mean about 2 minutes, up to 30 minutes).
pub const TALK: LogNormal = LogNormal {
    median_s: 75.0,
    sigma: 1.0,
    min_s: 10.0,
    max_s: 1_800.0,
};
/// One hold.
pub const HOLD: Uniform = Uniform {
    min_s: 10.0,
    max_s: 90.0,
};
/// From DETACHED (handed over) to the call ending for this user.
pub const DETACHED: Uniform = Uniform {
    min_s: 1.0,
    max_s: 5.0,
};

impl LogNormal {
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        let z = standard_normal(rng);
        let s = (self.median_s.ln() + self.sigma * z).exp();
        millis(s.clamp(self.min_s, self.max_s))
    }
}

impl Uniform {
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        millis(self.min_s + (self.max_s - self.min_s) * rng.random::<f64>())
    }
}

/// Picks the direction of a call.
pub fn direction(rng: &mut impl Rng) -> Direction {
    if rng.random::<f64>() < INBOUND_SHARE {
        Direction::Inbound
    } else {
        Direction::Outbound
    }
}

/// Picks how a call of this direction ends.
pub fn ending(rng: &mut impl Rng, direction: Direction) -> Ending {
    let u = rng.random::<f64>();
    match direction {
        Direction::Inbound if u < INBOUND_ANSWERED => Ending::Answered,
        Direction::Inbound if u < INBOUND_ANSWERED + INBOUND_MISSED => Ending::Missed,
        Direction::Inbound => Ending::Rejected,
        Direction::Outbound if u < OUTBOUND_ANSWERED => Ending::Answered,
        Direction::Outbound => Ending::Cancelled,
    }
}

/// Does the call start with INITIALIZING?
pub fn starts_initializing(rng: &mut impl Rng, direction: Direction) -> bool {
    let u = rng.random::<f64>();
    direction == Direction::Outbound && u < OUTBOUND_INITIALIZING
}

/// How many times an answered call is put on hold.
pub fn holds(rng: &mut impl Rng) -> usize {
    let u = rng.random::<f64>();
    if u < HELD_TWICE {
        2
    } else if u < HELD_TWICE + HELD_ONCE {
        1
    } else {
        0
    }
}

/// Is this hold the far end's?
pub fn remote_hold(rng: &mut impl Rng) -> bool {
    rng.random::<f64>() < REMOTE_HOLD
}

/// Is this answered call transferred away?
pub fn transferred(rng: &mut impl Rng) -> bool {
    rng.random::<f64>() < TRANSFERRED
}

/// The time from one call's start to the next one's, for `rate` calls per second on average
/// (a Poisson process: exponential gaps).
pub fn arrival_gap(rng: &mut impl Rng, rate: f64) -> Duration {
    let u: f64 = rng.random();
    Duration::from_secs_f64(-(1.0 - u).ln() / rate)
}

/// A draw from the standard normal distribution (Box-Muller).
fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln is finite
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Seconds as a whole number of milliseconds (event times have millisecond precision).
fn millis(seconds: f64) -> Duration {
    Duration::from_millis((seconds * 1_000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::Xoshiro256PlusPlus;

    #[test]
    fn log_normal_draws_stay_within_bounds_and_centre_on_the_median() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut draws: Vec<Duration> = (0..10_000).map(|_| TALK.sample(&mut rng)).collect();
        draws.sort();
        assert!(draws[0] >= Duration::from_secs(10));
        assert!(draws[draws.len() - 1] <= Duration::from_secs(1_800));
        let median = draws[draws.len() / 2].as_secs_f64();
        assert!((65.0..85.0).contains(&median), "median talk time {median}");
    }

    #[test]
    fn arrival_gaps_average_one_over_the_rate() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let total: f64 = (0..10_000)
            .map(|_| arrival_gap(&mut rng, 4.0).as_secs_f64())
            .sum();
        let mean = total / 10_000.0;
        assert!((0.23..0.27).contains(&mean), "mean gap {mean}");
    }

    #[test]
    fn only_the_direction_s_own_endings_are_drawn() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        for _ in 0..1_000 {
            assert_ne!(ending(&mut rng, Direction::Inbound), Ending::Cancelled);
            let out = ending(&mut rng, Direction::Outbound);
            assert!(matches!(out, Ending::Answered | Ending::Cancelled));
        }
    }
}
