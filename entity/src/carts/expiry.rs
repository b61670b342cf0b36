//! Abandoned carts: deleted once nobody changed them for the retention
//! (`CART_RETENTION` in the worker, [`DEFAULT_RETENTION`] by default).
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::DbBackend;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{LockBehavior, LockType, Query};

use crate::error::DomainError;
use crate::tables::carts;

/// How long an untouched cart is kept: 30 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Deletes up to `batch` carts (their lines go with them) last changed
/// before `cutoff`; returns how many. On PostgreSQL the rows are taken
/// `FOR UPDATE SKIP LOCKED`, so workers pruning at once, or a customer
/// writing to an old cart, never wait on each other (a cart being written
/// is changed now, so it is not abandoned anyway).
///
/// # Errors
/// [`DomainError::Database`].
pub async fn expire_abandoned_carts<C: ConnectionTrait>(
    conn: &C,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<u64, DomainError> {
    let mut abandoned = Query::select();
    abandoned
        .column(carts::Column::Id)
        .from(carts::Entity)
        .and_where(carts::Column::UpdatedAt.lt(cutoff))
        .limit(batch);
    if conn.get_database_backend() == DbBackend::Postgres {
        abandoned.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let deleted = carts::Entity::delete_many()
        .filter(carts::Column::Id.in_subquery(abandoned))
        .exec(conn)
        .await?;
    Ok(deleted.rows_affected)
}
