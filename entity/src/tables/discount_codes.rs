use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ids::DiscountCodeId;

/// A discount code; the rules that use it are in [`crate::discounts`].
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "discount_codes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: DiscountCodeId,
    /// Upper-case, unique.
    pub code: String,
    pub kind: DiscountKind,
    /// Basis points for a percentage (1000 = 10 %), minor units for a fixed amount.
    pub value: i64,
    /// The currency of a fixed amount and of the minimum subtotal.
    pub currency: String,
    pub minimum_subtotal_minor: i64,
    pub starts_at: DateTimeUtc,
    pub ends_at: Option<DateTimeUtc>,
    /// How many orders may carry it in all (`None`: no limit).
    pub usage_limit: Option<i32>,
    /// How many orders of one customer may carry it (`None`: no limit).
    pub per_customer_limit: Option<i32>,
    /// Orders that carry it now (a cancelled order's use is given back).
    pub times_used: i32,
    pub active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// What a code takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DiscountKind {
    #[sea_orm(string_value = "PERCENTAGE")]
    Percentage,
    #[sea_orm(string_value = "FIXED_AMOUNT")]
    FixedAmount,
}
