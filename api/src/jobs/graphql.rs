use async_graphql::{Context, ID, Object, SimpleObject};
use entity::ids::DeadJobId;
use entity::jobs::QueueName;
use entity::tables::{dead_jobs, worker_heartbeats};

use crate::auth::require_admin;
use crate::errors::GqlResultExt;
use crate::ids;
use crate::pagination::{Connection, ConnectionNode, decode_after, encode_cursor};
use crate::state::AppState;
use crate::{jobs_written, write_txn};

/// A job that failed for good or ran out of retries.
#[derive(SimpleObject)]
pub struct DeadJob {
    id: ID,
    /// The job's stable name, e.g. `settle_payment.v1`.
    name: String,
    /// The job's payload, as JSON text; the value of a secret-bearing key
    /// (token, password, …: `entity::jobs::SECRET_KEYS`) reads `[redacted]`.
    payload: String,
    /// Attempts made before it died.
    attempts: i32,
    last_error: String,
    failed_at: chrono::DateTime<chrono::Utc>,
}

impl From<dead_jobs::Model> for DeadJob {
    fn from(row: dead_jobs::Model) -> Self {
        Self {
            id: ids::to_gql(row.id),
            name: row.job_name,
            payload: entity::jobs::redacted(&row.payload).to_string(),
            attempts: row.attempts,
            last_error: row.last_error,
            failed_at: row.failed_at,
        }
    }
}

impl ConnectionNode for DeadJob {
    const CONNECTION: &'static str = "DeadJobConnection";
    const EDGE: &'static str = "DeadJobEdge";
}

/// A job queue, as an operator asking "are jobs flowing?" sees it.
#[derive(SimpleObject)]
pub struct Queue {
    /// `emails` or `settlements`.
    name: String,
    /// Jobs on the queue, waiting or running; null when this api process
    /// has no queue of its own (worker processes sweep the outbox) or the
    /// queue does not answer.
    depth: Option<i32>,
    /// The queue's jobs that are due and still wait in the outbox to be
    /// pushed (a backlog the dispatcher has not caught up with).
    due: i32,
    /// How long the oldest of those has been due; null when none is.
    oldest_due_age_seconds: Option<i32>,
}

/// A job-runner process, from its heartbeats.
#[derive(SimpleObject)]
pub struct Worker {
    /// Its worker id, `<host>-<pid>-<random>`.
    id: String,
    /// The queues it consumes.
    queues: Vec<String>,
    started_at: chrono::DateTime<chrono::Utc>,
    last_heartbeat_at: chrono::DateTime<chrono::Utc>,
    /// Whether its last heartbeat is recent (within 30 s).
    alive: bool,
    /// Jobs it was running at its last heartbeat.
    running_jobs: i32,
}

impl Worker {
    fn new(row: worker_heartbeats::Model, now: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            alive: entity::workers::is_alive(&row, now),
            queues: row
                .queues
                .split(',')
                .filter(|q| !q.is_empty())
                .map(str::to_owned)
                .collect(),
            id: row.id,
            started_at: row.started_at,
            last_heartbeat_at: row.last_heartbeat_at,
            running_jobs: row.running_jobs,
        }
    }
}

/// A count as a GraphQL `Int`.
fn int(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[derive(Default)]
pub struct JobsQuery;

#[Object]
impl JobsQuery {
    /// Admin: jobs that failed for good, newest first.
    async fn dead_jobs(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<DeadJob>> {
        require_admin(ctx)?;
        let state = ctx.data::<AppState>()?;
        let size = entity::pagination::page_size(first).or_gql(ctx)?;
        let after: Option<DeadJobId> = decode_after(after.as_deref())?;
        let page = entity::dead_jobs::list(&state.db, after, size)
            .await
            .or_gql(ctx)?;
        Ok(Connection::new(
            page,
            after.is_some(),
            |row| encode_cursor(&row.id),
            DeadJob::from,
            |db| async move { entity::dead_jobs::count(&db).await },
        ))
    }

    /// Admin: each job queue's depth and what waits for it in the outbox.
    async fn queues(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Queue>> {
        require_admin(ctx)?;
        let state = ctx.data::<AppState>()?;
        let now = chrono::Utc::now();
        let mut queues = Vec::with_capacity(QueueName::ALL.len());
        for name in QueueName::ALL {
            let depth = match &state.queue {
                Some(queue) => match queue.depth(name).await {
                    Ok(depth) => Some(int(depth)),
                    Err(error) => {
                        tracing::warn!(%error, queue = name.as_str(), "queues: the queue does not answer");
                        None
                    }
                },
                None => None,
            };
            let due = entity::outbox::due_on(&state.db, name).await.or_gql(ctx)?;
            queues.push(Queue {
                name: name.as_str().to_owned(),
                depth,
                due: int(due.count),
                oldest_due_age_seconds: due
                    .oldest
                    .map(|oldest| i32::try_from((now - oldest).num_seconds().max(0)).unwrap_or(i32::MAX)),
            });
        }
        Ok(queues)
    }

    /// Admin: the job runners seen lately (alive or dead within a day),
    /// latest heartbeat first.
    async fn workers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Worker>> {
        require_admin(ctx)?;
        let state = ctx.data::<AppState>()?;
        let now = chrono::Utc::now();
        let rows = entity::workers::list(&state.db).await.or_gql(ctx)?;
        Ok(rows.into_iter().map(|row| Worker::new(row, now)).collect())
    }

    /// Admin: outbox rows not yet pushed to a queue (due or not).
    async fn outbox_backlog(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        require_admin(ctx)?;
        let state = ctx.data::<AppState>()?;
        Ok(int(entity::outbox::backlog(&state.db).await.or_gql(ctx)?))
    }

    /// Admin: how many jobs are dead (the `deadJobs` list's `totalCount`).
    async fn dead_job_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        require_admin(ctx)?;
        let state = ctx.data::<AppState>()?;
        Ok(int(entity::dead_jobs::count(&state.db).await.or_gql(ctx)?))
    }
}

#[derive(Default)]
pub struct JobsMutation;

#[Object]
impl JobsMutation {
    /// Admin: runs a dead job again as a fresh first attempt. True when queued.
    async fn retry_dead_job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        require_admin(ctx)?;
        let id = ids::parse(&id, "id")?;
        write_txn(ctx, |txn| {
            Box::pin(async move { entity::dead_jobs::retry(txn, id).await })
        })
        .await?;
        jobs_written(ctx);
        Ok(true)
    }
}
