//! Escalating blocks: a subject that fails `after` times is blocked for
//! `first`, and each further failure doubles the block, up to `max`.
//! Failures are forgotten `remember` after the last one, or at once on a
//! success. What stops password guessing that stays under the attempt
//! limits: a guesser who waits out each block waits ever longer.
//!
//! The state of a subject is its failure count and the end of its block;
//! [`apply`] is the arithmetic, [`SCRIPT`] the same steps in Redis.
use std::time::Duration;

/// When failures start a block, and how it grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escalation {
    /// Failures before the first block.
    pub after: u32,
    /// The first block; each further failure doubles it.
    pub first: Duration,
    /// The longest block.
    pub max: Duration,
    /// Failures are forgotten this long after the last one.
    pub remember: Duration,
}

/// One subject's failures, in process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Strikes {
    pub(super) failures: u32,
    /// When the block ends (µs since the epoch; 0: none).
    pub(super) until: i64,
    /// When the state may be forgotten.
    pub(super) expires: i64,
}

/// What happens to a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// How long its block still runs.
    Check,
    /// One more failure: the block it starts, if any.
    Fail(Escalation),
    /// A success: its failures are forgotten.
    Clear,
}

impl Op {
    /// The script's arguments: op, after, first (µs), max (µs), remember (ms).
    pub(super) fn args(self) -> [u64; 5] {
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        match self {
            Op::Check => [0; 5],
            Op::Fail(e) => [
                1,
                u64::from(e.after),
                us(e.first),
                us(e.max),
                u64::try_from(e.remember.as_millis()).unwrap_or(u64::MAX),
            ],
            Op::Clear => [2, 0, 0, 0, 0],
        }
    }
}

/// `op` on a subject whose state is `stored` (expired state is none), at
/// `now`: the new state (none: forget it) and the block's time left (for
/// a check) or length (for a failure).
pub(super) fn apply(stored: Option<Strikes>, now: i64, op: Op) -> (Option<Strikes>, Duration) {
    let stored = stored.filter(|s| s.expires > now);
    let left = |until: i64| Duration::from_micros(u64::try_from(until - now).unwrap_or(0));
    match op {
        Op::Clear => (None, Duration::ZERO),
        Op::Check => (stored, stored.map_or(Duration::ZERO, |s| left(s.until))),
        Op::Fail(escalation) => {
            let mut strikes = stored.unwrap_or_default();
            strikes.failures = strikes.failures.saturating_add(1);
            let mut block = Duration::ZERO;
            if strikes.failures >= escalation.after {
                let doublings = strikes.failures - escalation.after;
                block = escalation
                    .first
                    .checked_mul(2u32.checked_pow(doublings).unwrap_or(u32::MAX))
                    .unwrap_or(escalation.max)
                    .min(escalation.max);
                strikes.until = now + i64::try_from(block.as_micros()).unwrap_or(i64::MAX / 4);
            }
            let remember = i64::try_from(escalation.remember.as_micros()).unwrap_or(i64::MAX / 4);
            strikes.expires = (now + remember).max(strikes.until);
            (Some(strikes), block)
        }
    }
}

/// [`apply`] in Redis, on Redis's clock: a hash `{n, until}` that expires
/// when it may be forgotten. KEYS: the key. ARGV: [`Op::args`]. Returns
/// the block's time left (check) or length (failure), in µs.
pub(super) const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local op = tonumber(ARGV[1])
if op == 2 then
  redis.call('DEL', KEYS[1])
  return 0
end
local untl = tonumber(redis.call('HGET', KEYS[1], 'until') or 0)
if op == 0 then
  return math.max(untl - now, 0)
end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local after = tonumber(ARGV[2])
local block = 0
if n >= after then
  block = math.min(tonumber(ARGV[3]) * 2 ^ (n - after), tonumber(ARGV[4]))
  untl = now + block
  redis.call('HSET', KEYS[1], 'until', string.format('%.0f', untl))
end
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[5]), math.ceil((untl - now) / 1000)))
return block
";

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000;

    fn escalation() -> Escalation {
        Escalation {
            after: 3,
            first: Duration::from_secs(60),
            max: Duration::from_secs(300),
            remember: Duration::from_secs(3600),
        }
    }

    #[test]
    fn blocks_start_after_the_threshold_and_double_up_to_the_cap() {
        let t0 = 1_700_000_000 * SEC;
        let mut state = None;
        let mut blocks = Vec::new();
        for n in 0..7 {
            let (next, block) = apply(state, t0 + n * 1000 * SEC, Op::Fail(escalation()));
            state = next;
            blocks.push(block.as_secs());
        }
        assert_eq!(blocks, [0, 0, 60, 120, 240, 300, 300]);
        let (_, left) = apply(state, t0 + 6000 * SEC + 100 * SEC, Op::Check);
        assert_eq!(left, Duration::from_secs(200));
    }

    #[test]
    fn a_success_or_a_quiet_hour_forgets_the_failures() {
        let t0 = 1_700_000_000 * SEC;
        let (state, _) = apply(None, t0, Op::Fail(escalation()));
        let (state, _) = apply(state, t0, Op::Fail(escalation()));
        let (cleared, _) = apply(state, t0, Op::Clear);
        assert_eq!(cleared, None);
        let (_, block) = apply(state, t0 + 3601 * SEC, Op::Fail(escalation()));
        assert_eq!(block, Duration::ZERO, "the two old failures were forgotten");
        let (_, block) = apply(state, t0 + 10 * SEC, Op::Fail(escalation()));
        assert_eq!(block, Duration::from_secs(60), "the third within the hour blocks");
    }

    #[test]
    fn a_huge_failure_count_stays_at_the_cap() {
        let strikes = Strikes {
            failures: 1_000,
            until: 0,
            expires: i64::MAX,
        };
        let (_, block) = apply(Some(strikes), 0, Op::Fail(escalation()));
        assert_eq!(block, Duration::from_secs(300));
    }
}
