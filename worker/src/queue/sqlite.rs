//! The SQLite backend: apalis-sqlite 1.0's `Jobs` and `Workers` tables in the
//! app's own SQLite file, next to SeaORM's tables. Its own small pool opens
//! the file like `entity::db` does (WAL, `synchronous = NORMAL`, the same
//! busy timeout), so the two writers queue up instead of failing with
//! "database is locked". apalis's `setup()` is not used: it also switches
//! the connection to `synchronous = OFF`; only its migrations are applied.
//! Every apalis write transaction starts with a write, so SQLite's busy
//! timeout applies to it.
//!
//! # Keeping the cost per job flat
//! Two things made every job dearer as finished jobs piled up in `Jobs`
//! (the rate of 20,000 jobs was 0.6× that of 2,000):
//! - apalis's ack (`UPDATE Jobs … FROM json_each(?1) … WHERE Jobs.id = j.task_id
//!   AND Jobs.lock_by = ?2`) was planned through apalis's index `LIdx` on
//!   `lock_by`: every row the consumer ever locked — all its `Done` rows
//!   until vacuumed — was visited, and the batch's JSON parsed again for
//!   each. [`SCHEMA_TUNING`] drops that index; the ack then looks each task
//!   up by its primary key. Nothing we run needs it (see there).
//! - the vacuum deleted at most 1,000 finished jobs per heartbeat (200 a
//!   second), below the rate jobs finish; it now deletes batches until none
//!   is left (bounded per round).
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::{BackendExt, TaskBuilder, TaskId, WorkerBuilder, WorkerBuilderExt, WorkerContext};
use apalis_sqlite::{
    Config, SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions, SqliteStorage, SqliteTask,
};
use entity::jobs::{Envelope, QueueName};
use futures::{Future, StreamExt};
use sea_orm::sqlx;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};

use super::consumer::{Deliver, EventStream, Pushed};
use super::{QueueError, QueueOptions, queue_key};

/// Connections of the queue's pool: SQLite has one writer anyway.
const MAX_CONNECTIONS: u32 = 4;
/// Finished jobs deleted per statement of a vacuum round: each statement is
/// a short write, so jobs' own writes get the lock in between.
const VACUUM_BATCH: i64 = 1_000;
/// Statements per vacuum round at most (a round runs every heartbeat, and
/// must end within the consumer's vacuum timeout): 50,000 jobs per
/// heartbeat, far above what one SQLite file completes.
const VACUUM_BATCHES: u32 = 50;
/// Run after apalis's migrations at every start (idempotent, so processes
/// starting together may all run them).
///
/// `LIdx` (apalis's index on `Jobs.lock_by`) makes SQLite plan the ack of a
/// batch as "every row locked by this consumer × the batch": the consumer's
/// finished rows stay locked by it until vacuumed, so each ack cost grew
/// with them (86 ms per ack with 20,000 of them, against 0.1 ms once the
/// ack looks tasks up by id; see the module docs). The queries we run that
/// name `lock_by` do not need it: the fetch, the orphan recovery and the
/// re-queue of abandoned tasks use the status index or the primary key; our
/// vacuum's `NOT IN (SELECT lock_by …)` and the foreign-key check of a
/// deleted `Workers` row read the (vacuumed, small) table once per
/// heartbeat at most.
const SCHEMA_TUNING: &[&str] = &["DROP INDEX IF EXISTS LIdx"];
/// `Workers` rows of consumers unseen for this long (and holding no job)
/// are deleted: one row per process start would otherwise pile up.
const FORGET_WORKERS_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
/// Two processes opening a fresh file at once may race on the migrations;
/// the loser retries once the winner is done.
const MIGRATION_ATTEMPTS: u32 = 3;

/// Queues in the app's SQLite file; see [`super::JobQueue::sqlite`].
#[derive(Clone)]
pub struct SqliteQueue {
    pool: SqlitePool,
    namespace: Arc<str>,
    opts: QueueOptions,
    /// Wakes this process's consumers when it pushed jobs: a burst the
    /// dispatcher pushes is fetched at once, not after an idle `poll_interval`.
    pushed: Pushed,
}

impl std::fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueue")
            .field("namespace", &self.namespace)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl SqliteQueue {
    pub(super) async fn connect(
        database_url: &str,
        namespace: &str,
        opts: QueueOptions,
    ) -> Result<Self, QueueError> {
        let options = SqliteConnectOptions::from_str(database_url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(entity::db::SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(entity::db::SQLITE_BUSY_TIMEOUT)
            .connect_with(options)
            .await?;
        let mut attempt = 1;
        loop {
            match SqliteStorage::migrations().run(&pool).await {
                Ok(()) => break,
                Err(error) if attempt < MIGRATION_ATTEMPTS => {
                    tracing::warn!(%error, attempt, "applying the SQLite queue migrations failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    attempt += 1;
                }
                Err(error) => return Err(sqlx::Error::from(error).into()),
            }
        }
        for &statement in SCHEMA_TUNING {
            sqlx::query(statement).execute(&pool).await?;
        }
        Ok(Self {
            pool,
            namespace: namespace.into(),
            opts,
            pushed: Pushed::default(),
        })
    }

    pub(super) fn options(&self) -> &QueueOptions {
        &self.opts
    }

    /// apalis's view of `queue` (see the Redis twin for locks and results).
    fn config(&self, queue: QueueName) -> Config {
        Config::default()
            .queue(queue_key(&self.namespace, queue))
            .batch_size(self.opts.fetch_batch)
            .heartbeat_interval(self.opts.heartbeat)
            .missed_heartbeats(self.opts.missed_heartbeats())
            .lock_tasks(false)
            .persist_results(true)
    }

    /// Pushes `jobs` in one write transaction (one commit for the batch,
    /// instead of one per job), then wakes this process's idle consumer of
    /// `queue`. A job whose outbox id is still queued is skipped: its insert
    /// fails alone, the transaction goes on.
    pub(super) async fn push_many(&self, queue: QueueName, jobs: &[Envelope]) -> Result<(), QueueError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let job_type = queue_key(&self.namespace, queue);
        let tasks = jobs
            .iter()
            .map(|job| {
                Ok(TaskBuilder::new(serde_json::to_vec(job)?)
                    .task_id(TaskId::from_string(ulid_text(
                        job.outbox_id.into_uuid().as_u128(),
                    )))
                    // A second fence against apalis's storage retries: a
                    // `Failed` row is only refetched while `attempts < max_attempts`.
                    .max_attempts(1)
                    .build())
            })
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        if let [task] = tasks.as_slice() {
            // One job: one autocommitted insert.
            let mut conn = self.pool.acquire().await?;
            insert(&mut conn, &job_type, task, &jobs[0]).await?;
            self.pushed.wake(queue);
            return Ok(());
        }
        // `BEGIN IMMEDIATE`: the write lock is taken (or waited for, up to
        // the busy timeout) up front, never upgraded halfway.
        let mut txn = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for (task, job) in tasks.iter().zip(jobs) {
            insert(&mut txn, &job_type, task, job).await?;
        }
        txn.commit().await?;
        self.pushed.wake(queue);
        Ok(())
    }

    pub(super) async fn depth(&self, queue: QueueName) -> Result<u64, QueueError> {
        let depth: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM Jobs WHERE job_type = ?1 AND status IN ('Pending', 'Queued', 'Running')",
        )
        .bind(queue_key(&self.namespace, queue))
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(depth).unwrap_or_default())
    }

    pub(super) fn vacuum(
        &self,
        queue: QueueName,
    ) -> impl Future<Output = Result<u64, QueueError>> + Send + 'static {
        let pool = self.pool.clone();
        let job_type = queue_key(&self.namespace, queue);
        async move {
            let mut jobs = 0;
            for _ in 0..VACUUM_BATCHES {
                let deleted = sqlx::query(
                    "DELETE FROM Jobs WHERE rowid IN \
                     (SELECT rowid FROM Jobs WHERE job_type = ?1 AND status = 'Done' LIMIT ?2)",
                )
                .bind(&job_type)
                .bind(VACUUM_BATCH)
                .execute(&pool)
                .await?
                .rows_affected();
                jobs += deleted;
                if deleted < VACUUM_BATCH.unsigned_abs() {
                    break;
                }
            }
            let forget_after = i64::try_from(FORGET_WORKERS_AFTER.as_secs()).unwrap_or(i64::MAX);
            sqlx::query(
                "DELETE FROM Workers WHERE worker_type = ?1 AND last_seen < strftime('%s', 'now') - ?2 \
                 AND id NOT IN (SELECT lock_by FROM Jobs WHERE lock_by IS NOT NULL)",
            )
            .bind(&job_type)
            .bind(forget_after)
            .execute(&pool)
            .await?;
            Ok(jobs)
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
        let backend = SqliteStorage::<serde_json::Value>::new(&self.pool)
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

/// Inserts one task; a task whose id is still in the table (the same
/// outbox row pushed again while queued or running) is skipped. On a
/// failure inside a transaction SQLite undoes the failed statement alone.
async fn insert(
    conn: &mut SqliteConnection,
    job_type: &str,
    task: &SqliteTask,
    job: &Envelope,
) -> Result<(), QueueError> {
    match apalis_sqlite::queries::push_tasks(conn, job_type, std::slice::from_ref(task)).await {
        Ok(()) => Ok(()),
        Err(apalis_sqlite::Error::Database(sqlx::Error::Database(error))) if error.is_unique_violation() => {
            tracing::debug!(job_type, outbox_id = %job.outbox_id, "job already queued; push ignored");
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// `value` in ULID text form (26 characters of Crockford base32): the task
/// id of an outbox row. apalis-sqlite parses every task id it reads as a
/// ULID, and fails the whole fetch otherwise, so the row's UUID is written
/// as the ULID with the same 128 bits.
fn ulid_text(mut value: u128) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut text = [b'0'; 26];
    for slot in text.iter_mut().rev() {
        *slot = ALPHABET[(value & 31) as usize];
        value >>= 5;
    }
    text.iter().map(|&c| char::from(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::ulid_text;

    #[test]
    fn task_ids_are_the_outbox_ids_bits_in_ulid_form() {
        assert_eq!(ulid_text(0), "00000000000000000000000000");
        assert_eq!(ulid_text(u128::MAX), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
        // The example of the ULID spec: 01ARZ3NDEKTSV4RRFFQ69G5FAV.
        assert_eq!(
            ulid_text(0x0156_3E3A_B5D3_D676_4C61_EFB9_9302_BD5B),
            "01ARZ3NDEKTSV4RRFFQ69G5FAV"
        );
    }
}
