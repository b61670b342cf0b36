//! Limits kept in this process: without Redis, and while Redis is away.
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::blocks::{self, Op, Strikes};
use super::gcra::{self, Decision, Quota, Write};

/// Keys are pruned (full buckets dropped) when there are more than this,
/// and then whenever their number doubles.
const PRUNE_FROM: usize = 4_096;

/// Every key's TAT, in one map behind one lock (a take is a few
/// arithmetic steps: the lock is never held across an await).
#[derive(Default)]
pub(super) struct Local {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    tats: HashMap<String, i64>,
    prune_at: usize,
    strikes: HashMap<String, Strikes>,
    strikes_prune_at: usize,
}

impl Local {
    pub(super) fn apply(&self, key: &str, quota: Quota, amount: i64) -> Decision {
        let now = now_us();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (decision, write) = gcra::apply(state.tats.get(key).copied(), now, quota, amount);
        match write {
            Write::Keep => {}
            Write::Set(tat) => {
                state.tats.insert(key.to_owned(), tat);
            }
            Write::Delete => {
                state.tats.remove(key);
            }
        }
        if state.tats.len() > state.prune_at.max(PRUNE_FROM) {
            state.tats.retain(|_, tat| *tat > now);
            state.prune_at = state.tats.len() * 2;
        }
        decision
    }

    /// [`blocks::apply`] on `key`'s failures.
    pub(super) fn strike(&self, key: &str, op: Op) -> Duration {
        let now = now_us();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (next, block) = blocks::apply(state.strikes.get(key).copied(), now, op);
        match next {
            Some(strikes) => {
                state.strikes.insert(key.to_owned(), strikes);
            }
            None => {
                state.strikes.remove(key);
            }
        }
        if state.strikes.len() > state.strikes_prune_at.max(PRUNE_FROM) {
            state.strikes.retain(|_, strikes| strikes.expires > now);
            state.strikes_prune_at = state.strikes.len() * 2;
        }
        block
    }
}

/// Microseconds since the Unix epoch.
fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_micros()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_buckets_are_pruned_so_the_map_stays_bounded() {
        let local = Local::default();
        // One unit coming back every microsecond: full again at once.
        let quota = Quota::per(1, Duration::from_micros(1));
        for n in 0..(3 * PRUNE_FROM) {
            local.apply(&format!("k{n}"), quota, 1);
        }
        let kept = local.state.lock().expect("lock").tats.len();
        assert!(kept <= PRUNE_FROM + 1, "{kept} keys kept");
    }
}
