//! The job queue between the outbox and the job handlers: apalis-redis in
//! production, apalis-sqlite inside the app's SQLite file in the embedded
//! default (README "Running in production"). The rest of the worker sees only [`JobQueue`]:
//! [`push`](JobQueue::push), [`depth`](JobQueue::depth) and
//! [`consume`](JobQueue::consume).
//!
//! # What the queue is for
//! Our own code owns retries. Each queued item is exactly **one attempt** of
//! one outbox row ([`Envelope`]); a transient failure is rescheduled by the
//! job runner as a *new* outbox row with a later `available_at`, and the
//! dispatcher only pushes rows that are due. So the queue holds jobs that are
//! due now and has three duties: durable push, delivery to one of many
//! consumers, and redelivery of the jobs of a consumer that died.
//!
//! # Delivery guarantee: at least once
//! A job is delivered to one consumer at a time, and redelivered only when
//! its consumer is gone before acking it. So a handler normally sees a job
//! once, but may see it again after a crash, an outage or a slow shutdown;
//! every handler is idempotent (keyed by `payment_id` or `dedupe_key`).
//! [`push`](JobQueue::push) is also idempotent per `outbox_id` while the job
//! is waiting or running (the api's push and the sweeper's may race): the
//! outbox id is the apalis task id (in ULID form on SQLite, which insists),
//! and a second push of it is a no-op. Finished jobs are vacuumed every
//! heartbeat, after which the same id could be pushed and run again.
//!
//! # What is acked when
//! A delivery is acked once the handler's future returns — whatever the job's
//! outcome, which the handler records in the outbox itself (a `Done` one
//! through the worker's completer, a few milliseconds later: see
//! `complete`). A handler that
//! panics is logged and acked too: a queued item is one attempt, never a
//! retry loop. The ack is written to Redis/SQLite by apalis a moment later
//! (batched with the next poll), so a process killed between the two
//! redelivers that job: at least once, not exactly once. A job is **not**
//! acked when its consumer dies (SIGKILL, OOM, power), when it is still
//! running at the end of the shutdown deadline, when `consume`'s future is
//! dropped, or when the connection to the backend breaks before the ack is
//! written; all of them come back. What the backend itself loses is not: a
//! Redis restarted without persistence comes back empty, so a dispatched
//! outbox row that never gets an outcome must be re-pushed from the outbox
//! (the reaper's job), which the idempotent push makes safe. The same holds
//! for a job acked while its `Done` outcome was still buffered when its
//! process died: the re-push of a job that finished in Redis (not yet
//! vacuumed) queues it again.
//!
//! # Worker ids and the orphan timeout
//! Each consumer heartbeats every [`QueueOptions::heartbeat`]. The jobs of a
//! consumer whose heartbeat is older than [`QueueOptions::orphan_after`] are
//! put back on the queue by any other live consumer at its next heartbeat,
//! so a dead consumer's jobs come back roughly `orphan_after` after its
//! death (give or take one heartbeat and one second: apalis stores whole
//! seconds). A consumer that re-registers under the same id (a new
//! generation, below) re-queues its own leftovers first. Recovery works only
//! if every process has its **own worker id** (apalis-dev/apalis#504): two live processes sharing an id keep each
//! other's heartbeat fresh and a dead one's jobs are never recovered. Use
//! [`unique_worker_id`] (host-pid-random). The id registered with apalis is
//! `<worker_id>:<queue>` so one id can consume both queues. Hence
//! `heartbeat >= 1s`; `orphan_after` is rounded up to a multiple of
//! `heartbeat` and must exceed the longest stall a live process can have
//! (slow disk, overloaded host), or a live consumer's jobs are run twice.
//!
//! # Why apalis retries are off
//! apalis 1.0 has two retry mechanisms (apalis-dev/apalis#510, #554): the
//! tower `RetryLayer`, and the storage's own: a task whose service returns an
//! error is rescheduled by the backend (Redis: up to a hard-coded 25 attempts
//! whatever `max_attempts` says; SQLite: `Failed` rows are refetched while
//! `attempts < max_attempts`). Either would run an attempt again behind the
//! outbox's back, with its own backoff and no dead state. So no `RetryLayer`
//! is installed, the apalis service never returns an error (the handler's
//! outcome is not apalis's business), and SQLite tasks carry
//! `max_attempts = 1` as a second fence. Redelivery after a crash is the only
//! way apalis runs a job twice.
//!
//! # The high-water mark
//! The dispatcher keeps [`depth`](JobQueue::depth) of each queue under
//! [`HIGH_WATER_MARK`] and leaves the rest in the outbox (durable in the
//! database, swept later). Reasons, in order:
//! - apalis-redis 1.0.0 moves *all* due scheduled tasks to the active list
//!   with one Lua `unpack(...)` per poll; Redis's Lua stops at 8,000 values
//!   ("too many results to unpack"), so with more than ~8,000 due scheduled
//!   tasks **every** poll fails and the queue is wedged for good (reproduced
//!   in `tests/queue/unpack_limit.rs`). apalis's own push always goes through
//!   that scheduled set (`run_at` is never 0). Our [`push`](JobQueue::push)
//!   therefore writes the task straight to the active list (same keys and
//!   fields as apalis's `batch_push.lua`), which removes the trap for our
//!   jobs: 9,000 due jobs are consumed normally (same test file). The
//!   scheduled set is then only fed by apalis's retry path, which is off.
//! - the other `unpack` left is orphan recovery, which re-queues a dead
//!   consumer's in-flight set in one call; that set is bounded by
//!   `fetch_batch + concurrency` (both capped at [`MAX_BATCH`]).
//! - a bounded queue bounds Redis memory, SQLite's `Jobs` table and the time
//!   a job waits behind others; backpressure belongs in the outbox.
//!
//! # Failures
//! A consumer never panics and never returns on a backend error: apalis 1.0
//! ends a worker at its first storage error (connection refused, a response
//! timeout — redis-rs's default is 500 ms, ours 5 s —, "worker not
//! registered" after a Redis restart; see apalis-dev/apalis-redis#76), so
//! [`consume`](JobQueue::consume) runs the apalis worker in generations: on
//! an error it lets running jobs finish (for up to `shutdown_deadline`),
//! logs, waits (exponential backoff from `poll_interval` up to 5 s) and
//! starts a new one, which re-registers and re-queues its own leftovers. An
//! idle consumer asks for work once per `poll_interval`, no more.
//!
//! # Batches
//! [`push_many`](JobQueue::push_many) pushes a dispatcher's batch with one
//! script call; a consumer fetches up to [`QueueOptions::fetch_batch`] jobs
//! per round trip and apalis writes acks in batches. An idle Redis
//! consumer asks again every `poll_interval`, or at once when its own
//! process pushed to its queue.
//!
//! Layout: `mod.rs` (this API), `redis.rs` and `sqlite.rs` (the backends),
//! `consumer.rs` (the apalis service, the generation supervisor, the wake-up
//! on push).
use std::future::Future;
use std::time::Duration;

use entity::jobs::{Envelope, QueueName};

mod consumer;
mod redis;
mod sqlite;

pub use self::redis::{RedisQueue, RedisTimeouts, redis_config};
pub use self::sqlite::SqliteQueue;

/// The depth per queue the dispatcher should stay under (see the module docs):
/// well below the 8,000-value Lua `unpack` limit of apalis-redis 1.0.0.
pub const HIGH_WATER_MARK: u64 = 5_000;

/// Upper bound for `fetch_batch` and `concurrency`: a dead consumer's
/// in-flight set is re-queued with one Lua `unpack`, which must stay far
/// below 8,000 values.
pub const MAX_BATCH: usize = 1_000;

/// The prefix of every key (Redis) or `job_type` (SQLite) in production.
pub const DEFAULT_NAMESPACE: &str = "storefront";

/// What can go wrong talking to the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The options or arguments cannot work; nothing was sent anywhere.
    #[error("invalid queue configuration: {0}")]
    Config(String),
    /// Redis refused, timed out or is unreachable.
    #[error("redis queue: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// The SQLite queue tables could not be opened, read or written.
    #[error("sqlite queue: {0}")]
    Sqlite(#[from] apalis_sqlite::Error),
    /// The job could not be encoded as JSON.
    #[error("encoding a job: {0}")]
    Encode(#[from] serde_json::Error),
}

impl From<sea_orm::sqlx::Error> for QueueError {
    fn from(error: sea_orm::sqlx::Error) -> Self {
        QueueError::Sqlite(apalis_sqlite::Error::Database(error))
    }
}

/// Timing and batching of consumers; the same for every queue of a
/// [`JobQueue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueOptions {
    /// How often an idle consumer asks for new jobs: the latency of a job
    /// pushed to an idle queue, and the idle load on Redis/SQLite.
    pub poll_interval: Duration,
    /// How often a consumer proves it is alive (and recovers dead ones'
    /// jobs). Whole seconds, at least 1 s: apalis stores seconds.
    pub heartbeat: Duration,
    /// After this long without a heartbeat a consumer counts as dead and its
    /// un-acked jobs go back to the queue. Rounded up to a multiple of
    /// `heartbeat`; at least twice `heartbeat` plus 1 s, since apalis
    /// compares whole seconds.
    pub orphan_after: Duration,
    /// On shutdown, how long running jobs may take to finish; the ones still
    /// running are dropped un-acked and come back after `orphan_after`. Must
    /// be below `orphan_after`, or a draining consumer's jobs could be
    /// recovered by others while they still run.
    pub shutdown_deadline: Duration,
    /// How many jobs a consumer takes from the queue per fetch (1 ..=
    /// [`MAX_BATCH`]). Fetched jobs wait in the consumer for a free slot, so
    /// keep it near the concurrency: bigger batches mean fewer round trips
    /// but less even sharing between consumers.
    pub fetch_batch: usize,
    /// `REDIS_CONNECT_TIMEOUT_MS`, `REDIS_RESPONSE_TIMEOUT_MS`: every Redis
    /// connection of the process (queue, events, persisted queries).
    pub redis: RedisTimeouts,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(500),
            heartbeat: Duration::from_secs(5),
            orphan_after: Duration::from_secs(30),
            shutdown_deadline: Duration::from_secs(20),
            fetch_batch: 10,
            redis: RedisTimeouts::default(),
        }
    }
}

impl QueueOptions {
    /// Checks the constraints documented on each field.
    ///
    /// # Errors
    /// [`QueueError::Config`] naming the first broken constraint.
    pub fn validate(&self) -> Result<(), QueueError> {
        let fail = |message: &str| Err(QueueError::Config(message.to_owned()));
        if self.poll_interval.is_zero() {
            return fail("poll_interval must be positive");
        }
        if self.heartbeat < Duration::from_secs(1) {
            return fail("heartbeat must be at least 1s (apalis counts whole seconds)");
        }
        if self.orphan_after < self.heartbeat * 2 + Duration::from_secs(1) {
            return fail("orphan_after must be at least twice heartbeat plus 1s");
        }
        if self.shutdown_deadline >= self.orphan_after {
            return fail("shutdown_deadline must be below orphan_after");
        }
        if self.fetch_batch == 0 || self.fetch_batch > MAX_BATCH {
            return fail("fetch_batch must be between 1 and MAX_BATCH");
        }
        Ok(())
    }

    /// `orphan_after` in heartbeats, rounded up: what apalis configures.
    fn missed_heartbeats(&self) -> usize {
        let beats = self
            .orphan_after
            .as_millis()
            .div_ceil(self.heartbeat.as_millis().max(1));
        usize::try_from(beats).unwrap_or(usize::MAX).max(2)
    }
}

/// A worker id unique to this process: `<host>-<pid>-<random>`.
#[must_use]
pub fn unique_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!("{host}-{}-{:08x}", std::process::id(), rand::random::<u32>())
}

/// The job queue: Redis or SQLite, chosen by configuration. Cheap to clone;
/// clones share one connection (Redis) or pool (SQLite).
#[derive(Debug, Clone)]
pub enum JobQueue {
    /// apalis-redis, for 1..N worker processes on any hosts.
    Redis(RedisQueue),
    /// apalis-sqlite in the app's SQLite file, for the embedded default.
    Sqlite(SqliteQueue),
}

impl JobQueue {
    /// Connects to Redis at `url`; queues "emails" and "settlements" live
    /// under keys `<namespace>:<queue>:*` (production: [`DEFAULT_NAMESPACE`];
    /// tests: one namespace per test).
    ///
    /// Push durability is Redis's: run it with `appendonly yes` (or accept
    /// that the sweeper re-pushes what a Redis crash lost from the outbox).
    ///
    /// # Errors
    /// [`QueueError::Config`] for invalid options or namespace,
    /// [`QueueError::Redis`] when Redis cannot be reached.
    pub async fn redis(url: &str, namespace: &str, opts: QueueOptions) -> Result<Self, QueueError> {
        opts.validate()?;
        check_namespace(namespace)?;
        Ok(JobQueue::Redis(RedisQueue::connect(url, namespace, opts).await?))
    }

    /// Opens the apalis-sqlite tables inside the SQLite file at
    /// `database_url` (`sqlite://path?mode=rwc`, the app's own file: WAL,
    /// busy timeout as in `entity::db`) and applies apalis's migrations;
    /// queues are apalis job types `<namespace>:<queue>`.
    ///
    /// # Errors
    /// [`QueueError::Config`] for invalid options or namespace,
    /// [`QueueError::Sqlite`] when the file cannot be opened or migrated.
    pub async fn sqlite(database_url: &str, namespace: &str, opts: QueueOptions) -> Result<Self, QueueError> {
        opts.validate()?;
        check_namespace(namespace)?;
        Ok(JobQueue::Sqlite(
            SqliteQueue::connect(database_url, namespace, opts).await?,
        ))
    }

    /// The options consumers of this queue run with.
    #[must_use]
    pub fn options(&self) -> &QueueOptions {
        match self {
            JobQueue::Redis(queue) => queue.options(),
            JobQueue::Sqlite(queue) => queue.options(),
        }
    }

    /// Pushes one attempt of a job; it is due at once. Pushing an
    /// `outbox_id` that is still waiting or running is a no-op.
    ///
    /// # Errors
    /// [`QueueError::Redis`]/[`QueueError::Sqlite`] when the backend is
    /// unreachable (the outbox row stays undispatched and is pushed again by
    /// the sweeper), [`QueueError::Encode`] if the envelope cannot be encoded.
    pub async fn push(&self, queue: QueueName, job: &Envelope) -> Result<(), QueueError> {
        self.push_many(queue, std::slice::from_ref(job)).await
    }

    /// Pushes attempts of jobs as [`push`](JobQueue::push) does, all to
    /// `queue`: on Redis in one round trip (one script call); on SQLite in
    /// one transaction. On an error some may have been pushed; pushing them
    /// again is a no-op.
    ///
    /// # Errors
    /// As [`push`](JobQueue::push).
    pub async fn push_many(&self, queue: QueueName, jobs: &[Envelope]) -> Result<(), QueueError> {
        match self {
            JobQueue::Redis(backend) => backend.push_many(queue, jobs).await,
            JobQueue::Sqlite(backend) => backend.push_many(queue, jobs).await,
        }
    }

    /// Jobs pushed and not yet finished: waiting, fetched by a consumer, or
    /// running (including those of a dead consumer not yet recovered).
    ///
    /// # Errors
    /// [`QueueError::Redis`]/[`QueueError::Sqlite`] when the backend is
    /// unreachable.
    pub async fn depth(&self, queue: QueueName) -> Result<u64, QueueError> {
        match self {
            JobQueue::Redis(backend) => backend.depth(queue).await,
            JobQueue::Sqlite(backend) => backend.depth(queue).await,
        }
    }

    /// Whether the queue lost what it held: Redis restarted without
    /// persistence, a failover to an empty replica, a `FLUSHALL`. The Redis
    /// queue keeps a marker key of its own ([`JobQueue::mark_jobs_held`],
    /// set once the lost jobs were taken care of): missing means empty. The
    /// SQLite queue lives in the database and never loses jobs on its own.
    ///
    /// # Errors
    /// [`QueueError::Redis`] when Redis is unreachable.
    pub async fn lost_its_jobs(&self) -> Result<bool, QueueError> {
        match self {
            JobQueue::Redis(backend) => backend.lost_its_jobs().await,
            JobQueue::Sqlite(_) => Ok(false),
        }
    }

    /// Records that the queue holds what was pushed to it (see
    /// [`JobQueue::lost_its_jobs`]).
    ///
    /// # Errors
    /// [`QueueError::Redis`] when Redis is unreachable.
    pub async fn mark_jobs_held(&self) -> Result<(), QueueError> {
        match self {
            JobQueue::Redis(backend) => backend.mark_jobs_held().await,
            JobQueue::Sqlite(_) => Ok(()),
        }
    }

    /// Consumes `queue`, running up to `concurrency` jobs at a time as
    /// consumer `worker_id` (unique per process: [`unique_worker_id`]), and
    /// calls `handler` once per delivery until `shutdown` resolves. Then it
    /// takes no new jobs, waits up to [`QueueOptions::shutdown_deadline`] for
    /// running ones (acking those that finish) and returns; jobs still
    /// running are dropped un-acked and come back after `orphan_after`.
    ///
    /// Backend errors never end it (see the module docs): they are logged
    /// and the consumer reconnects with backoff. Dropping the future instead
    /// of resolving `shutdown` is a crash: running jobs are dropped un-acked.
    ///
    /// # Errors
    /// [`QueueError::Config`] when `concurrency` is 0 or above [`MAX_BATCH`]
    /// or `worker_id` is empty; nothing else.
    pub async fn consume<H, F>(
        &self,
        queue: QueueName,
        concurrency: usize,
        worker_id: &str,
        handler: H,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), QueueError>
    where
        H: Fn(Envelope) -> F + Send + Sync + Clone + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        if concurrency == 0 || concurrency > MAX_BATCH {
            return Err(QueueError::Config(
                "concurrency must be between 1 and MAX_BATCH".to_owned(),
            ));
        }
        if worker_id.trim().is_empty() {
            return Err(QueueError::Config("worker_id must not be empty".to_owned()));
        }
        let name = format!("{worker_id}:{}", queue.as_str());
        let deliver = consumer::Deliver::new(handler, queue);
        let opts = self.options().clone();
        let this = self.clone();
        let vacuum = self.clone();
        consumer::supervise(
            &name,
            &opts,
            move |ctx| match &this {
                JobQueue::Redis(backend) => backend.worker_stream(queue, ctx, concurrency, deliver.clone()),
                JobQueue::Sqlite(backend) => backend.worker_stream(queue, ctx, concurrency, deliver.clone()),
            },
            move || {
                let vacuum = vacuum.clone();
                Box::pin(async move {
                    match &vacuum {
                        JobQueue::Redis(backend) => backend.vacuum(queue).await,
                        JobQueue::Sqlite(backend) => backend.vacuum(queue).await,
                    }
                })
            },
            shutdown,
        )
        .await;
        Ok(())
    }
}

/// Namespaces become Redis key prefixes and SQLite job types: keep them
/// plain so they cannot collide with apalis's own separators or globs.
fn check_namespace(namespace: &str) -> Result<(), QueueError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if namespace.is_empty() || !namespace.chars().all(plain) {
        return Err(QueueError::Config(format!(
            "namespace {namespace:?} must be non-empty ASCII letters, digits, '-', '_' or '.'"
        )));
    }
    Ok(())
}

/// The apalis queue name (Redis key prefix, SQLite job type) of `queue`.
fn queue_key(namespace: &str, queue: QueueName) -> String {
    format!("{namespace}:{}", queue.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options_are_valid() {
        assert!(QueueOptions::default().validate().is_ok());
        assert_eq!(QueueOptions::default().missed_heartbeats(), 6);
    }

    #[test]
    fn options_that_would_lose_or_duplicate_jobs_are_refused() {
        let base = QueueOptions::default();
        let sub_second = QueueOptions {
            heartbeat: Duration::from_millis(500),
            ..base.clone()
        };
        let too_eager = QueueOptions {
            orphan_after: Duration::from_secs(6),
            ..base.clone()
        };
        let deadline_too_long = QueueOptions {
            shutdown_deadline: Duration::from_secs(30),
            ..base.clone()
        };
        let no_batch = QueueOptions {
            fetch_batch: 0,
            ..base.clone()
        };
        let huge_batch = QueueOptions {
            fetch_batch: MAX_BATCH + 1,
            ..base
        };
        for options in [sub_second, too_eager, deadline_too_long, no_batch, huge_batch] {
            assert!(
                matches!(options.validate(), Err(QueueError::Config(_))),
                "{options:?}"
            );
        }
    }

    #[test]
    fn orphan_timeout_is_rounded_up_to_whole_heartbeats() {
        let options = QueueOptions {
            heartbeat: Duration::from_secs(2),
            orphan_after: Duration::from_secs(5),
            ..QueueOptions::default()
        };
        assert_eq!(options.missed_heartbeats(), 3);
    }

    #[test]
    fn worker_ids_differ_between_calls_and_name_the_process() {
        let (a, b) = (unique_worker_id(), unique_worker_id());
        assert_ne!(a, b);
        assert!(a.contains(&format!("-{}-", std::process::id())));
    }

    #[test]
    fn namespaces_are_plain() {
        assert!(check_namespace("storefront").is_ok());
        assert!(check_namespace("test-01.a_b").is_ok());
        for bad in ["", "a:b", "a*", "a b", "ä"] {
            assert!(check_namespace(bad).is_err(), "{bad:?}");
        }
    }
}
