use sea_orm::entity::prelude::*;

use crate::ids::{DiscountCodeId, UserId};

/// How many of one customer's orders carry a code now.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "discount_customer_uses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub code_id: DiscountCodeId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: UserId,
    pub uses: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
