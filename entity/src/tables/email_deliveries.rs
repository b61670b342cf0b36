use sea_orm::entity::prelude::*;

use crate::notifications::DeliveryStatus;

/// One row per email ever meant to be sent, unique by `dedupe_key`
/// (e.g. `order-confirmation:<order id>`), so a redelivered job sends nothing.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub dedupe_key: String,
    pub recipient: String,
    pub template: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// A sender holds the delivery until then, so two workers never send it at once.
    pub claimed_until: Option<DateTimeUtc>,
    pub sent_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
