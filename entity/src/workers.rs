//! The job runners' heartbeats, in the database both binaries share, so an
//! admin (and `/metrics`) can tell which workers are alive whatever the queue
//! backend. Each running worker writes its row every [`HEARTBEAT_EVERY`]
//! (an upsert: one statement), deletes it when it stops cleanly, and is
//! alive while its last heartbeat is younger than [`ALIVE_WITHIN`]. A row
//! left by a killed worker stays, not alive, for [`FORGET_AFTER`] — what an
//! operator asking "which worker died?" wants to see — and is then removed
//! by any other worker's heartbeat.
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{PaginatorTrait, QueryOrder, QuerySelect};

use crate::error::DomainError;
use crate::tables::worker_heartbeats as workers;

/// How often a worker writes its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// A worker is alive while its last heartbeat is younger than this (six
/// heartbeats: a busy database or a stalled host does not flap it).
pub const ALIVE_WITHIN: Duration = Duration::from_secs(30);
/// A dead worker's row is removed this long after its last heartbeat.
pub const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The most workers listed.
pub const MAX_LISTED: u64 = 500;

/// What one heartbeat says about its worker.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub worker_id: String,
    pub queues: Vec<String>,
    pub started_at: DateTime<Utc>,
    pub running_jobs: u32,
}

fn ago(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now - chrono::Duration::from_std(d).unwrap_or_default()
}

/// Writes `beat` (creating the worker's row on its first), and forgets
/// workers dead for [`FORGET_AFTER`].
///
/// # Errors
/// [`DomainError::Database`].
pub async fn beat<C: ConnectionTrait>(conn: &C, beat: &Heartbeat) -> Result<(), DomainError> {
    let now = Utc::now();
    let row = workers::ActiveModel {
        id: Set(beat.worker_id.clone()),
        queues: Set(beat.queues.join(",")),
        started_at: Set(beat.started_at),
        last_heartbeat_at: Set(now),
        running_jobs: Set(i32::try_from(beat.running_jobs).unwrap_or(i32::MAX)),
    };
    workers::Entity::insert(row)
        .on_conflict(
            OnConflict::column(workers::Column::Id)
                .update_columns([
                    workers::Column::Queues,
                    workers::Column::LastHeartbeatAt,
                    workers::Column::RunningJobs,
                ])
                .to_owned(),
        )
        .exec(conn)
        .await?;
    workers::Entity::delete_many()
        .filter(workers::Column::LastHeartbeatAt.lt(ago(now, FORGET_AFTER)))
        .exec(conn)
        .await?;
    Ok(())
}

/// Removes a worker that stopped cleanly.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn leave<C: ConnectionTrait>(conn: &C, worker_id: &str) -> Result<(), DomainError> {
    workers::Entity::delete_by_id(worker_id.to_owned())
        .exec(conn)
        .await?;
    Ok(())
}

/// Whether the worker of `row` is alive at `now`.
#[must_use]
pub fn is_alive(row: &workers::Model, now: DateTime<Utc>) -> bool {
    row.last_heartbeat_at > ago(now, ALIVE_WITHIN)
}

/// The workers known (alive or recently dead), latest heartbeat first; at
/// most [`MAX_LISTED`].
///
/// # Errors
/// [`DomainError::Database`].
pub async fn list<C: ConnectionTrait>(conn: &C) -> Result<Vec<workers::Model>, DomainError> {
    Ok(workers::Entity::find()
        .order_by_desc(workers::Column::LastHeartbeatAt)
        .limit(MAX_LISTED)
        .all(conn)
        .await?)
}

/// How many workers are alive now.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn alive<C: ConnectionTrait>(conn: &C) -> Result<u64, DomainError> {
    Ok(workers::Entity::find()
        .filter(workers::Column::LastHeartbeatAt.gt(ago(Utc::now(), ALIVE_WITHIN)))
        .count(conn)
        .await?)
}
