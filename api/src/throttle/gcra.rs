//! The generic cell rate algorithm (GCRA), the arithmetic of every limit.
//!
//! A limit's whole state is one number per key, its *theoretical arrival
//! time* (TAT): the moment its bucket would be full again. Each unit taken
//! pushes the TAT one [`Quota::interval`] later; a take is allowed when
//! the pushed TAT stays within `burst` intervals of now. So `burst` units
//! may be taken at once, and after that one per interval: a token bucket
//! of size `burst` refilled continuously, in one number, with no timer.
//! A refund moves the TAT back (never before now).
//!
//! All times are whole microseconds, so the same integers come out of
//! [`apply`] (the in-process store) and of [`SCRIPT`] (Redis, where Lua
//! numbers are doubles: exact for integers below 2⁵³, and a TAT of today
//! is about 2⁵⁰ µs).
use std::time::Duration;

/// How many units a key may take: `burst` at once, then one per `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    burst: u32,
    /// The time one unit takes to come back, in µs (at least 1).
    interval_us: u64,
}

impl Quota {
    /// `burst` at once, refilled at `per_second` units a second (a cost
    /// bucket: size and restore rate). A rate of zero or less refills
    /// nothing for a very long time (one unit a century).
    #[must_use]
    pub fn per_second(burst: u32, per_second: f64) -> Self {
        let interval_us = if per_second > 0.0 {
            (1_000_000.0 / per_second).round()
        } else {
            100.0 * 365.0 * 86_400.0 * 1_000_000.0
        };
        Self {
            burst: burst.max(1),
            // A float in a u64's range, rounded: the cast is exact.
            interval_us: (interval_us as u64).max(1),
        }
    }

    /// `count` units per `period`, all of them available at once: "10 per
    /// 15 minutes" is `Quota::per(10, 15 min)`.
    #[must_use]
    pub fn per(count: u32, period: Duration) -> Self {
        let count = count.max(1);
        let period_us = u64::try_from(period.as_micros()).unwrap_or(u64::MAX);
        Self {
            burst: count,
            interval_us: (period_us / u64::from(count)).max(1),
        }
    }

    /// The most units available at once.
    #[must_use]
    pub const fn burst(&self) -> u32 {
        self.burst
    }

    /// The time one unit takes to come back.
    #[must_use]
    pub const fn interval(&self) -> Duration {
        Duration::from_micros(self.interval_us)
    }

    /// Units restored per second.
    #[must_use]
    pub fn per_second_rate(&self) -> f64 {
        1_000_000.0 / self.interval_us as f64
    }

    /// The time `burst` intervals take: how long a key lives at most.
    #[must_use]
    pub fn period(&self) -> Duration {
        self.interval() * self.burst
    }

    pub(super) const fn interval_us(&self) -> u64 {
        self.interval_us
    }
}

/// What a limiter answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the units were taken (always true for a peek with a unit
    /// available, and for a refund).
    pub allowed: bool,
    /// Whole units available now (after the take, when it was allowed).
    pub remaining: u64,
    /// How long until the units asked for would be allowed; zero when
    /// allowed. More than `burst` units are never allowed: this is then
    /// the time until the bucket is full.
    pub retry_after: Duration,
    /// How long until the bucket is full again.
    pub reset_after: Duration,
}

impl Decision {
    /// `retry_after` in whole seconds, rounded up (at least 1 when refused):
    /// what `Retry-After` and `extensions.retryAfter` carry.
    #[must_use]
    pub fn retry_after_secs(&self) -> u64 {
        if self.allowed {
            0
        } else {
            self.retry_after
                .as_micros()
                .div_ceil(1_000_000)
                .max(1)
                .try_into()
                .unwrap_or(u64::MAX)
        }
    }
}

/// What to do with a key's stored TAT after [`apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Write {
    Keep,
    /// Store this TAT, which expires (the bucket is full) at that moment.
    Set(i64),
    Delete,
}

/// The decision for taking `amount` units (a peek when 0, a refund of
/// `-amount` when negative) from a key whose TAT is `stored` (none when
/// the bucket is full), at `now`. The same steps as [`SCRIPT`].
pub(super) fn apply(stored: Option<i64>, now: i64, quota: Quota, amount: i64) -> (Decision, Write) {
    let interval = i64::try_from(quota.interval_us).unwrap_or(i64::MAX);
    let burst = i64::from(quota.burst);
    let offset = interval.saturating_mul(burst);
    let tat = stored.unwrap_or(now).max(now);
    let level = |at: i64| u64::try_from((now + offset - at) / interval).unwrap_or(0);
    let micros = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
    if amount > 0 {
        let new_tat = tat.saturating_add(interval.saturating_mul(amount));
        let allow_at = new_tat - offset;
        if allow_at > now {
            let retry = if amount > burst { tat - now } else { allow_at - now };
            let decision = Decision {
                allowed: false,
                remaining: level(tat),
                retry_after: micros(retry),
                reset_after: micros(tat - now),
            };
            return (decision, Write::Keep);
        }
        let decision = Decision {
            allowed: true,
            remaining: level(new_tat),
            retry_after: Duration::ZERO,
            reset_after: micros(new_tat - now),
        };
        (decision, Write::Set(new_tat))
    } else if amount == 0 {
        let retry = (tat + interval - offset - now).max(0);
        let decision = Decision {
            allowed: retry == 0,
            remaining: level(tat),
            retry_after: micros(retry),
            reset_after: micros(tat - now),
        };
        (decision, Write::Keep)
    } else {
        let new_tat = tat.saturating_add(interval.saturating_mul(amount)).max(now);
        let decision = Decision {
            allowed: true,
            remaining: level(new_tat),
            retry_after: Duration::ZERO,
            reset_after: micros(new_tat - now),
        };
        let write = if new_tat == now {
            Write::Delete
        } else {
            Write::Set(new_tat)
        };
        (decision, write)
    }
}

/// [`apply`] in Redis, atomically, on Redis's clock (so every api
/// instance shares one clock). KEYS: the key. ARGV: interval (µs), burst,
/// amount. Returns `{allowed, remaining, retry_after_us, reset_after_us}`.
pub(super) const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local offset = interval * burst
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then tat = math.max(tonumber(stored), now) end
local function level(at) return math.max(math.floor((now + offset - at) / interval), 0) end
local function store(new_tat)
  if new_tat <= now then
    redis.call('DEL', KEYS[1])
  else
    redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
  end
end
if amount > 0 then
  local new_tat = tat + interval * amount
  local allow_at = new_tat - offset
  if allow_at > now then
    local retry = allow_at - now
    if amount > burst then retry = tat - now end
    return {0, level(tat), retry, tat - now}
  end
  store(new_tat)
  return {1, level(new_tat), 0, new_tat - now}
elseif amount == 0 then
  local retry = math.max(tat + interval - offset - now, 0)
  local allowed = 0
  if retry == 0 then allowed = 1 end
  return {allowed, level(tat), retry, tat - now}
else
  local new_tat = math.max(tat + interval * amount, now)
  store(new_tat)
  return {1, level(new_tat), 0, new_tat - now}
end
";

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000;

    /// Runs `amounts` one after another at the times given, from a full
    /// bucket; returns each decision.
    fn run(quota: Quota, steps: &[(i64, i64)]) -> Vec<Decision> {
        let mut stored = None;
        steps
            .iter()
            .map(|&(at, amount)| {
                let (decision, write) = apply(stored, at, quota, amount);
                match write {
                    Write::Keep => {}
                    Write::Set(tat) => stored = Some(tat),
                    Write::Delete => stored = None,
                }
                decision
            })
            .collect()
    }

    #[test]
    fn a_burst_is_allowed_at_once_then_one_unit_per_interval() {
        // 3 per 3 s: 3 at once, then one a second.
        let quota = Quota::per(3, Duration::from_secs(3));
        let t0 = 1_700_000_000 * SEC;
        let decisions = run(
            quota,
            &[(t0, 1), (t0, 1), (t0, 1), (t0, 1), (t0 + SEC, 1), (t0 + SEC, 1)],
        );
        let allowed: Vec<bool> = decisions.iter().map(|d| d.allowed).collect();
        assert_eq!(allowed, [true, true, true, false, true, false]);
        let remaining: Vec<u64> = decisions.iter().map(|d| d.remaining).collect();
        assert_eq!(remaining, [2, 1, 0, 0, 0, 0]);
        assert_eq!(decisions[3].retry_after, Duration::from_secs(1));
        assert_eq!(decisions[3].reset_after, Duration::from_secs(3));
        assert_eq!(decisions[3].retry_after_secs(), 1);
        assert_eq!(decisions[5].retry_after, Duration::from_secs(1));
    }

    #[test]
    fn a_refused_take_changes_nothing_and_a_full_bucket_needs_no_state() {
        let quota = Quota::per(2, Duration::from_secs(2));
        let t0 = 1_700_000_000 * SEC;
        let (_, write) = apply(None, t0, quota, 0);
        assert_eq!(write, Write::Keep);
        let (refused, write) = apply(Some(t0 + 2 * SEC), t0, quota, 1);
        assert!(!refused.allowed);
        assert_eq!(write, Write::Keep);
        // A TAT in the past is a full bucket.
        let (full, _) = apply(Some(t0 - 60 * SEC), t0, quota, 0);
        assert_eq!((full.remaining, full.reset_after), (2, Duration::ZERO));
    }

    #[test]
    fn amounts_weigh_as_many_units_and_a_refund_gives_them_back() {
        // A cost bucket: 1000 points restored at 50 a second.
        let quota = Quota::per_second(1000, 50.0);
        let t0 = 1_700_000_000 * SEC;
        let d = run(
            quota,
            &[
                (t0, 400),
                (t0, 400),
                (t0, 400),
                (t0, -300),
                (t0, 0),
                (t0 + SEC, 0),
            ],
        );
        assert_eq!((d[0].allowed, d[0].remaining), (true, 600));
        assert_eq!((d[1].allowed, d[1].remaining), (true, 200));
        // 400 asked, 200 there: 200 more take 4 s at 50/s.
        assert_eq!((d[2].allowed, d[2].remaining), (false, 200));
        assert_eq!(d[2].retry_after, Duration::from_secs(4));
        assert_eq!(d[3].remaining, 500, "300 refunded");
        assert_eq!(
            (d[4].allowed, d[4].remaining),
            (true, 500),
            "a peek takes nothing"
        );
        assert_eq!(d[5].remaining, 550, "50 restored in a second");
        assert_eq!(d[4].reset_after, Duration::from_secs(10));
    }

    #[test]
    fn a_refund_never_fills_beyond_full() {
        let quota = Quota::per(5, Duration::from_secs(5));
        let t0 = 1_700_000_000 * SEC;
        let d = run(quota, &[(t0, 1), (t0, -10), (t0, 0)]);
        assert_eq!(d[1].remaining, 5);
        let (_, write) = apply(Some(t0 + SEC), t0, quota, -10);
        assert_eq!(write, Write::Delete);
        assert_eq!(d[2].remaining, 5);
    }

    #[test]
    fn more_than_the_burst_is_never_allowed() {
        let quota = Quota::per(5, Duration::from_secs(5));
        let t0 = 1_700_000_000 * SEC;
        let (d, write) = apply(None, t0, quota, 6);
        assert!(!d.allowed);
        assert_eq!(write, Write::Keep);
        assert_eq!((d.remaining, d.retry_after), (5, Duration::ZERO));
    }

    #[test]
    fn quotas_from_rates_and_periods() {
        assert_eq!(
            Quota::per(10, Duration::from_secs(900)).interval(),
            Duration::from_secs(90)
        );
        assert_eq!(
            Quota::per_second(1000, 50.0).interval(),
            Duration::from_millis(20)
        );
        assert!((Quota::per_second(1000, 50.0).per_second_rate() - 50.0).abs() < 1e-9);
        assert_eq!(
            Quota::per(3, Duration::from_secs(3)).period(),
            Duration::from_secs(3)
        );
    }
}
