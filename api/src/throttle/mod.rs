//! Rate limits shared by every api instance: one [`Limiter`] takes units
//! from named buckets, in Redis when there is one, in this process
//! otherwise.
//!
//! Layout:
//! - [`gcra`]: [`Quota`], [`Decision`] and the arithmetic (GCRA), in Rust
//!   and as the one Lua script Redis runs.
//! - [`blocks`]: [`Escalation`]: blocks that grow with each failure
//!   (login), in Rust and as a second script.
//! - `local`: the in-process store.
//! - [`rules`]: the named limits (login, register, password reset,
//!   placeOrder, persisted queries), their defaults and variables, and
//!   what resolvers call.
//!
//! The query cost buckets (`cost::bucket`) are limits of this limiter too:
//! a take of many units at once, and a refund.
//!
//! **Atomic.** In Redis a take is one script (`EVALSHA`): read the key's
//! state, decide, write, on Redis's clock. Never a read then a write from
//! here, so two instances cannot both spend the last unit, and instances
//! whose clocks disagree still agree on the limit.
//!
//! **Keys.** `<QUEUE_NAMESPACE>:throttle:<limit>:<subject>`, the subject
//! (an email, an IP, a user id) as the first 128 bits of its SHA-256: the
//! key says nothing about whom it limits and has a bounded length. A key
//! expires when its bucket is full again, so idle subjects cost nothing.
//!
//! **When Redis fails** (down, or slower than [`REDIS_TIMEOUT`]), every
//! limit degrades to this process's own store, with the same quotas — it
//! neither lets everything through (fail-open would hand an attacker the
//! login form while Redis is away) nor refuses everything (fail-closed
//! would close the shop with its cache). For [`REDIS_PAUSE`] after a
//! failure Redis is not asked at all, so an outage costs one slow request
//! per pause, not one per request. Each instance then limits on its own
//! (N instances let N times through) until Redis answers again.
//!
//! Every refusal counts in the `rate_limited_total{limit}` metric.
pub mod blocks;
pub mod gcra;
mod local;
pub mod rules;

use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use blocks::Escalation;
use blocks::Op;
pub use gcra::{Decision, Quota};
use redis::Script;
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};

/// The longest a limit waits for Redis before deciding in process.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(1_000);
/// How long the in-process store decides alone after Redis failed.
pub const REDIS_PAUSE: Duration = Duration::from_secs(5);

static GCRA: LazyLock<Script> = LazyLock::new(|| Script::new(gcra::SCRIPT));
static BLOCKS: LazyLock<Script> = LazyLock::new(|| Script::new(blocks::SCRIPT));

/// Takes units from named buckets; cheap to clone (one shared state).
#[derive(Clone)]
pub struct Limiter(Arc<Inner>);

struct Inner {
    redis: Option<Remote>,
    local: local::Local,
    /// When Redis last failed: the local store answers for [`REDIS_PAUSE`].
    redis_failed: Mutex<Option<Instant>>,
}

struct Remote {
    conn: ConnectionManager,
    /// `<namespace>:throttle:`.
    prefix: String,
}

impl Limiter {
    /// Limits kept in this process only.
    #[must_use]
    pub fn in_process() -> Self {
        Self(Arc::new(Inner {
            redis: None,
            local: local::Local::default(),
            redis_failed: Mutex::new(None),
        }))
    }

    /// Limits kept in Redis under `<namespace>:throttle:`, shared by every
    /// instance on that Redis. Connects on first use, so Redis may be down
    /// at start (see the module docs for what happens then).
    ///
    /// # Errors
    /// When `url` is not a Redis URL.
    pub fn in_redis(
        url: &str,
        namespace: &str,
        timeouts: worker::queue::RedisTimeouts,
    ) -> redis::RedisResult<Self> {
        let conn = ConnectionManager::new_lazy_with_config(
            redis::Client::open(url)?,
            worker::queue::redis_config(timeouts),
        )?;
        Ok(Self(Arc::new(Inner {
            redis: Some(Remote {
                conn,
                prefix: format!("{namespace}:throttle:"),
            }),
            local: local::Local::default(),
            redis_failed: Mutex::new(None),
        })))
    }

    /// Whether the limits are shared through Redis.
    #[must_use]
    pub fn is_shared(&self) -> bool {
        self.0.redis.is_some()
    }

    /// Takes `amount` units from `subject`'s bucket of the limit `limit`
    /// (all of them, or none when they are not all there). A refusal counts
    /// in `rate_limited_total{limit}`.
    pub async fn take(&self, limit: &'static str, subject: &str, quota: Quota, amount: u32) -> Decision {
        let decision = self.apply(limit, subject, quota, i64::from(amount)).await;
        if !decision.allowed {
            metrics::counter!("rate_limited_total", "limit" => limit).increment(1);
        }
        decision
    }

    /// The bucket's level, taking nothing (`allowed`: a unit is there).
    pub async fn peek(&self, limit: &'static str, subject: &str, quota: Quota) -> Decision {
        self.apply(limit, subject, quota, 0).await
    }

    /// Puts `amount` units back (never beyond a full bucket): what was
    /// taken for work that turned out cheaper.
    pub async fn give_back(&self, limit: &'static str, subject: &str, quota: Quota, amount: u32) -> Decision {
        self.apply(limit, subject, quota, -i64::from(amount)).await
    }

    /// How long `subject` is still blocked by the escalating block `limit`
    /// (zero: not blocked).
    pub async fn blocked(&self, limit: &'static str, subject: &str) -> Duration {
        self.strike(limit, subject, Op::Check).await
    }

    /// Records a failure of `subject`; returns the block it starts (zero:
    /// none yet).
    pub async fn failed(&self, limit: &'static str, subject: &str, escalation: Escalation) -> Duration {
        self.strike(limit, subject, Op::Fail(escalation)).await
    }

    /// Forgets `subject`'s failures (it succeeded).
    pub async fn succeeded(&self, limit: &'static str, subject: &str) {
        self.strike(limit, subject, Op::Clear).await;
    }

    async fn apply(&self, limit: &str, subject: &str, quota: Quota, amount: i64) -> Decision {
        let key = key(limit, subject);
        let shared = self.ask_redis(|remote| remote.apply(&key, quota, amount)).await;
        shared.unwrap_or_else(|| self.0.local.apply(&key, quota, amount))
    }

    async fn strike(&self, limit: &str, subject: &str, op: Op) -> Duration {
        let key = key(limit, subject);
        let shared = self.ask_redis(|remote| remote.strike(&key, op)).await;
        shared.unwrap_or_else(|| self.0.local.strike(&key, op))
    }

    /// Redis's answer, or `None` when there is no Redis or it failed (see
    /// the module docs).
    async fn ask_redis<'a, T, F>(&'a self, call: impl FnOnce(&'a Remote) -> F) -> Option<T>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let remote = self.0.redis.as_ref()?;
        if self.redis_paused() {
            return None;
        }
        match tokio::time::timeout(REDIS_TIMEOUT, call(remote)).await {
            Ok(Ok(answer)) => Some(answer),
            Ok(Err(error)) => {
                self.redis_failed(&error.to_string());
                None
            }
            Err(_) => {
                self.redis_failed("no answer within the timeout");
                None
            }
        }
    }

    fn redis_paused(&self) -> bool {
        let failed = self.0.redis_failed.lock().unwrap_or_else(PoisonError::into_inner);
        failed.is_some_and(|at| at.elapsed() < REDIS_PAUSE)
    }

    fn redis_failed(&self, error: &str) {
        *self.0.redis_failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        tracing::warn!(
            error,
            pause_secs = REDIS_PAUSE.as_secs(),
            "rate limits: Redis failed; limiting in this process alone for a while"
        );
    }
}

impl Remote {
    async fn apply(&self, key: &str, quota: Quota, amount: i64) -> redis::RedisResult<Decision> {
        let (allowed, remaining, retry_us, reset_us): (i64, i64, i64, i64) = GCRA
            .key(format!("{}{key}", self.prefix))
            .arg(quota.interval_us())
            .arg(quota.burst())
            .arg(amount)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let micros = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
        Ok(Decision {
            allowed: allowed == 1,
            remaining: u64::try_from(remaining).unwrap_or(0),
            retry_after: micros(retry_us),
            reset_after: micros(reset_us),
        })
    }

    async fn strike(&self, key: &str, op: Op) -> redis::RedisResult<Duration> {
        let mut invocation = BLOCKS.key(format!("{}{key}", self.prefix));
        for arg in op.args() {
            invocation.arg(arg);
        }
        let left_us: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(Duration::from_micros(u64::try_from(left_us).unwrap_or(0)))
    }
}

/// `<limit>:<first 128 bits of SHA-256(subject), hex>`.
fn key(limit: &str, subject: &str) -> String {
    let digest = format!("{:x}", Sha256::digest(subject.as_bytes()));
    format!("{limit}:{}", &digest[..32])
}

#[cfg(test)]
mod tests;
