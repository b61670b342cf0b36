use sea_orm::entity::prelude::*;

/// A running job-runner process, as its last heartbeat described it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "worker_heartbeats")]
pub struct Model {
    /// The process's worker id (`<host>-<pid>-<random>`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The queues it consumes, comma-separated.
    pub queues: String,
    pub started_at: DateTimeUtc,
    pub last_heartbeat_at: DateTimeUtc,
    /// Jobs it was running at its last heartbeat.
    pub running_jobs: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
