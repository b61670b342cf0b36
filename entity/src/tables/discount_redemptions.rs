use sea_orm::entity::prelude::*;

use crate::ids::{DiscountCodeId, DiscountRedemptionId, OrderId, UserId};

/// One order's use of a code and what it took off; `released_at` is set
/// when the order is cancelled and the use given back.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "discount_redemptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: DiscountRedemptionId,
    pub code_id: DiscountCodeId,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub amount_minor: i64,
    pub currency: String,
    pub created_at: DateTimeUtc,
    pub released_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
