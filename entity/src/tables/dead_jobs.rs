use sea_orm::entity::prelude::*;

use crate::ids::DeadJobId;

/// A job that failed for good or ran out of retries; an admin can retry it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dead_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: DeadJobId,
    pub job_name: String,
    pub payload: Json,
    pub attempts: i32,
    pub last_error: String,
    pub failed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
