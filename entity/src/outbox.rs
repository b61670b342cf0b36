//! The transactional outbox: a job is written in the same transaction as the
//! data that caused it, so a crash between commit and the push to the queue
//! loses nothing — the row is still there for the dispatcher or the sweeper.
use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;

use crate::error::DomainError;
use crate::ids::new_id;
use crate::jobs::Job;
use crate::tables::outbox;

/// Writes `job` to the outbox through `conn`, which should be the caller's
/// transaction: the row commits or rolls back with the caller's data.
///
/// # Errors
/// [`DomainError::Database`] when the insert fails, [`DomainError::Encoding`]
/// when the payload cannot be serialised.
pub async fn enqueue<C: ConnectionTrait, J: Job>(conn: &C, job: &J) -> Result<outbox::Model, DomainError> {
    let row = outbox::ActiveModel {
        id: Set(new_id()),
        job_name: Set(J::NAME.to_owned()),
        payload: Set(serde_json::to_value(job)?),
        created_at: Set(Utc::now()),
        dispatched_at: Set(None),
        dispatch_attempts: Set(0),
        last_error: Set(None),
    };
    Ok(row.insert(conn).await?)
}
