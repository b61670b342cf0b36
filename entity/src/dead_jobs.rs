//! Dead jobs: attempts that failed for good or ran out of retries. They are
//! kept with their payload and last error until an admin retries them, which
//! puts the job back in the outbox as a new first attempt.
use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::{PaginatorTrait, QueryOrder, QuerySelect};

use crate::error::DomainError;
use crate::ids::DeadJobId;
use crate::jobs::Envelope;
use crate::pagination::Page;
use crate::tables::{dead_jobs, outbox};

/// Keeps `envelope`'s job as dead with the error that ended it.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn bury<C: ConnectionTrait>(
    conn: &C,
    envelope: &Envelope,
    error: &str,
) -> Result<dead_jobs::Model, DomainError> {
    Ok(dead_jobs::ActiveModel {
        id: Set(DeadJobId::new()),
        job_name: Set(envelope.job_name.clone()),
        payload: Set(envelope.payload.clone()),
        attempts: Set(i32::try_from(envelope.attempt).unwrap_or(i32::MAX).max(1)),
        last_error: Set(error.to_owned()),
        failed_at: Set(Utc::now()),
    }
    .insert(conn)
    .await?)
}

/// Dead jobs, newest first, after the id `after`.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    after: Option<DeadJobId>,
    size: u64,
) -> Result<Page<dead_jobs::Model>, DomainError> {
    let mut query = dead_jobs::Entity::find();
    if let Some(after) = after {
        query = query.filter(dead_jobs::Column::Id.lt(after));
    }
    let rows = query
        .order_by_desc(dead_jobs::Column::Id)
        .limit(size + 1)
        .all(conn)
        .await?;
    Ok(Page::from_overfetch(rows, size))
}

/// How many jobs are dead.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn count<C: ConnectionTrait>(conn: &C) -> Result<u64, DomainError> {
    Ok(dead_jobs::Entity::find().count(conn).await?)
}

/// Moves a dead job back to the outbox as a fresh first attempt. Call inside
/// a transaction: the delete and the insert happen together or not at all,
/// so two admins retrying at once make one new attempt.
///
/// # Errors
/// [`DomainError::NotFound`] for an unknown (or already retried) dead job.
pub async fn retry<C: ConnectionTrait>(conn: &C, id: DeadJobId) -> Result<outbox::Model, DomainError> {
    let dead = dead_jobs::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound { entity: "dead job" })?;
    let deleted = dead_jobs::Entity::delete_by_id(id).exec(conn).await?;
    if deleted.rows_affected == 0 {
        return Err(DomainError::NotFound { entity: "dead job" });
    }
    crate::outbox::enqueue_raw(conn, &dead.job_name, dead.payload).await
}
