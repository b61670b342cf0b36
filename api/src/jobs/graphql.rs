use async_graphql::{Context, ID, Object, SimpleObject};
use entity::tables::dead_jobs;

use crate::auth::require_admin;
use crate::catalog::graphql::parse_id;
use crate::errors::GqlResultExt;
use crate::pagination::{PageInfo, decode_cursor, encode_cursor};
use crate::state::AppState;
use crate::{jobs_written, write_txn};

/// A job that failed for good or ran out of retries.
#[derive(SimpleObject)]
pub struct DeadJob {
    id: ID,
    /// The job's stable name, e.g. `settle_payment.v1`.
    name: String,
    /// The job's payload, as JSON text.
    payload: String,
    /// Attempts made before it died.
    attempts: i32,
    last_error: String,
    failed_at: chrono::DateTime<chrono::Utc>,
}

impl From<dead_jobs::Model> for DeadJob {
    fn from(row: dead_jobs::Model) -> Self {
        Self {
            id: ID(row.id.to_string()),
            name: row.job_name,
            payload: row.payload.to_string(),
            attempts: row.attempts,
            last_error: row.last_error,
            failed_at: row.failed_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct DeadJobEdge {
    cursor: String,
    node: DeadJob,
}

#[derive(SimpleObject)]
pub struct DeadJobConnection {
    edges: Vec<DeadJobEdge>,
    page_info: PageInfo,
    total_count: u64,
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
    ) -> async_graphql::Result<DeadJobConnection> {
        require_admin(ctx)?;
        let state = ctx.data::<AppState>()?;
        let size = entity::paging::page_size(first).or_gql(ctx)?;
        let after: Option<uuid::Uuid> = after.as_deref().map(decode_cursor).transpose()?;
        let page = entity::dead_jobs::list(&state.db, after, size)
            .await
            .or_gql(ctx)?;
        let total_count = entity::dead_jobs::count(&state.db).await.or_gql(ctx)?;
        let edges: Vec<DeadJobEdge> = page
            .items
            .into_iter()
            .map(|row| DeadJobEdge {
                cursor: encode_cursor(&row.id),
                node: row.into(),
            })
            .collect();
        let cursors: Vec<String> = edges.iter().map(|e| e.cursor.clone()).collect();
        Ok(DeadJobConnection {
            page_info: PageInfo::new(&cursors, page.has_next_page, after.is_some()),
            edges,
            total_count,
        })
    }
}

#[derive(Default)]
pub struct JobsMutation;

#[Object]
impl JobsMutation {
    /// Admin: runs a dead job again as a fresh first attempt. True when queued.
    async fn retry_dead_job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        require_admin(ctx)?;
        let id = parse_id(&id, "id")?;
        write_txn(ctx, |txn| {
            Box::pin(async move { entity::dead_jobs::retry(txn, id).await })
        })
        .await?;
        jobs_written(ctx);
        Ok(true)
    }
}
