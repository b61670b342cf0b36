//! The Redis backend: apalis-redis 1.0 for consuming, plus three small Lua
//! scripts of ours over apalis's key layout (`<namespace>:<queue>:…`):
//! - push straight to the active list (`:active`), with the task data in
//!   `:data` and its metadata in `:meta:<id>` exactly as apalis's
//!   `batch_push.lua` writes them, minus the detour through the scheduled
//!   set that wedges apalis past ~8,000 due tasks (see the module docs of
//!   `queue`);
//! - depth: `:active` + `:scheduled` + every registered consumer's
//!   `:inflight:<worker>` set;
//! - vacuum: apalis keeps every finished task's data, metadata and id
//!   forever (apalis-dev/apalis-redis#10); we delete those of acked tasks.
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, Script};
use apalis::prelude::{BackendExt, WorkerBuilder, WorkerBuilderExt, WorkerContext};
use apalis_redis::{Config, RedisStorage};
use entity::jobs::{Envelope, QueueName};
use futures::{Future, StreamExt};

use super::consumer::{Deliver, EventStream, Pushed};
use super::{QueueError, QueueOptions, queue_key};

/// How long Redis may take; a slower connection or reply is an error the
/// caller retries (the connection manager reconnects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisTimeouts {
    /// `REDIS_CONNECT_TIMEOUT_MS` (default 2000).
    pub connect: Duration,
    /// `REDIS_RESPONSE_TIMEOUT_MS` (default 5000): one reply. redis-rs
    /// defaults to 500 ms, after which a busy Redis ends apalis workers
    /// (apalis-dev/apalis-redis#76).
    pub response: Duration,
}

impl Default for RedisTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            response: Duration::from_secs(5),
        }
    }
}
/// Reconnection attempts per failed request; the consumer retries on top.
const RECONNECT_RETRIES: usize = 3;
/// Finished tasks deleted per vacuum script call, and calls per vacuum.
const VACUUM_BATCH: usize = 1_000;
const VACUUM_ROUNDS: usize = 100;

/// KEYS: data hash, active list, meta prefix, done set. ARGV: pairs of
/// task id, task data. Returns how many were queued; an id that is waiting
/// or running is left alone (a re-push), an id that finished but was not
/// vacuumed yet is queued again (the reaper's re-push of a job whose outcome
/// was never recorded).
static PUSH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local queued = 0
for i = 1, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('hsetnx', KEYS[1], id, ARGV[i + 1]) == 1
    or redis.call('srem', KEYS[4], id) == 1 then
    redis.call('hset', KEYS[1], id, ARGV[i + 1])
    redis.call('del', KEYS[3] .. ':' .. id)
    redis.call('hset', KEYS[3] .. ':' .. id,
      'attempts', 0, 'max_attempts', 1, 'status', 'Pending', 'idempotency_key', '')
    redis.call('rpush', KEYS[2], id)
    queued = queued + 1
  end
end
return queued
",
    )
});

/// KEYS: active list, scheduled set, workers set. ARGV: in-flight prefix.
static DEPTH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local depth = redis.call('llen', KEYS[1]) + redis.call('zcard', KEYS[2])
for _, worker in ipairs(redis.call('zrange', KEYS[3], 0, -1)) do
  depth = depth + redis.call('scard', ARGV[1] .. ':' .. worker)
end
return depth
",
    )
});

/// KEYS: done set, data hash, meta prefix. ARGV: how many.
static VACUUM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ids = redis.call('spop', KEYS[1], tonumber(ARGV[1]))
for _, id in ipairs(ids) do
  redis.call('hdel', KEYS[2], id)
  redis.call('del', KEYS[3] .. ':' .. id)
end
return #ids
",
    )
});

/// How every Redis connection of ours behaves: replies and connections
/// within `timeouts`, a few quick reconnection attempts per failed request.
#[must_use]
pub fn redis_config(timeouts: RedisTimeouts) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_response_timeout(Some(timeouts.response))
        .set_connection_timeout(Some(timeouts.connect))
        .set_number_of_retries(RECONNECT_RETRIES)
        .set_max_delay(Duration::from_secs(1))
}

/// Queues in Redis; see [`super::JobQueue::redis`].
#[derive(Clone)]
pub struct RedisQueue {
    /// One multiplexed, self-reconnecting connection shared by every push,
    /// depth and consumer of this queue.
    conn: ConnectionManager,
    namespace: Arc<str>,
    opts: QueueOptions,
    /// Wakes this process's consumers when it pushed jobs.
    pushed: Pushed,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("namespace", &self.namespace)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl RedisQueue {
    pub(super) async fn connect(url: &str, namespace: &str, opts: QueueOptions) -> Result<Self, QueueError> {
        let client = Client::open(url)?;
        let config = redis_config(opts.redis);
        // Lazy: the first command connects, and a failed one reconnects, so
        // a process started while Redis is down comes up (degraded) and
        // its jobs flow once Redis is there.
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            conn,
            namespace: namespace.into(),
            opts,
            pushed: Pushed::default(),
        })
    }

    pub(super) fn options(&self) -> &QueueOptions {
        &self.opts
    }

    /// apalis's view of `queue`: names the keys and sets the consumer's
    /// timing. Locks are off (they only add an O(n) `LREM` per task; orphan
    /// recovery works from the in-flight sets), results are on (that *is*
    /// the ack), pub/sub events are off (nobody listens).
    fn config(&self, queue: QueueName) -> Config {
        Config::default()
            .queue(queue_key(&self.namespace, queue))
            .batch_size(self.opts.fetch_batch)
            .heartbeat_interval(self.opts.heartbeat)
            .missed_heartbeats(self.opts.missed_heartbeats())
            .lock_tasks(false)
            .persist_results(true)
            .emit_events(false)
    }

    /// Pushes `jobs` with one script call (one round trip), then wakes this
    /// process's idle consumer of `queue`.
    pub(super) async fn push_many(&self, queue: QueueName, jobs: &[Envelope]) -> Result<(), QueueError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let config = self.config(queue);
        let mut call = PUSH.prepare_invoke();
        call.key(config.job_data_hash())
            .key(config.active_jobs_list())
            .key(config.job_meta_hash())
            .key(config.done_jobs_set());
        for job in jobs {
            call.arg(job.outbox_id.to_string()).arg(serde_json::to_vec(job)?);
        }
        let queued: usize = call.invoke_async(&mut self.conn.clone()).await?;
        if queued < jobs.len() {
            tracing::debug!(
                queue = queue.as_str(),
                ignored = jobs.len() - queued,
                "jobs already queued; push ignored"
            );
        }
        self.pushed.wake(queue);
        Ok(())
    }

    /// See [`super::JobQueue::lost_its_jobs`]: the marker key is missing.
    pub(super) async fn lost_its_jobs(&self) -> Result<bool, QueueError> {
        let present: i64 = ::redis::cmd("EXISTS")
            .arg(format!("{}:marker", self.namespace))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(present == 0)
    }

    /// Sets the marker key that [`Self::lost_its_jobs`] looks for.
    pub(super) async fn mark_jobs_held(&self) -> Result<(), QueueError> {
        let () = ::redis::cmd("SET")
            .arg(format!("{}:marker", self.namespace))
            .arg(uuid::Uuid::now_v7().to_string())
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    pub(super) async fn depth(&self, queue: QueueName) -> Result<u64, QueueError> {
        let config = self.config(queue);
        Ok(DEPTH
            .key(config.active_jobs_list())
            .key(config.scheduled_jobs_set())
            .key(config.workers_set())
            .arg(config.inflight_jobs_set())
            .invoke_async(&mut self.conn.clone())
            .await?)
    }

    pub(super) fn vacuum(
        &self,
        queue: QueueName,
    ) -> impl Future<Output = Result<u64, QueueError>> + Send + 'static {
        let config = self.config(queue);
        let mut conn = self.conn.clone();
        async move {
            // Batches of VACUUM_BATCH (each a short script: Redis serves
            // others between them) until the finished jobs are gone, up to
            // VACUUM_ROUNDS: a heartbeat keeps up with far more jobs a
            // second than one batch would.
            let mut removed = 0;
            for _ in 0..VACUUM_ROUNDS {
                let round: u64 = VACUUM
                    .key(config.done_jobs_set())
                    .key(config.job_data_hash())
                    .key(config.job_meta_hash())
                    .arg(VACUUM_BATCH)
                    .invoke_async(&mut conn)
                    .await?;
                removed += round;
                if round < VACUUM_BATCH as u64 {
                    break;
                }
            }
            Ok(removed)
        }
    }

    /// One generation of an apalis worker consuming `queue`.
    pub(super) fn worker_stream<H, F>(
        &self,
        queue: QueueName,
        ctx: WorkerContext,
        concurrency: usize,
        deliver: Deliver<H>,
    ) -> EventStream
    where
        H: Fn(Envelope) -> F + Send + Sync + Clone + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let backend = RedisStorage::<serde_json::Value>::new(self.conn.clone())
            .with_config(self.config(queue))
            .poll_with_strategy(self.pushed.strategy(queue, self.opts.poll_interval));
        WorkerBuilder::new(ctx)
            .backend(backend)
            .concurrency(concurrency)
            .build(deliver)
            .stream()
            .boxed()
    }
}
