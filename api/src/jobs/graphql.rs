use async_graphql::{Context, ID, Object, SimpleObject};
use entity::ids::DeadJobId;
use entity::tables::dead_jobs;

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
