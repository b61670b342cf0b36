use sea_orm::entity::prelude::*;

use crate::ids::OutboxId;

/// A job written in the same transaction as the data that caused it; pushed to
/// the queue after commit (`dispatched_at` set), or later by the sweeper.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: OutboxId,
    pub job_name: String,
    pub payload: Json,
    /// Which attempt of the job this row is (1 = first; a retry is a new row).
    pub attempt: i32,
    /// Not dispatched before this time (retries wait out their backoff here).
    pub available_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub dispatched_at: Option<DateTimeUtc>,
    /// When the attempt finished (done, rescheduled or dead). A row
    /// dispatched long ago and never completed was lost by the queue (a
    /// Redis crash) and is pushed again.
    pub completed_at: Option<DateTimeUtc>,
    pub dispatch_attempts: i32,
    pub last_error: Option<String>,
    /// The W3C trace context of the span that wrote the row (the HTTP
    /// request, or the job whose retry this is), so the job's span continues
    /// that trace; `None` when trace export was off or for older rows.
    pub traceparent: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
