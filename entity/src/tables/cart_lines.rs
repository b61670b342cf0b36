use sea_orm::entity::prelude::*;

use crate::ids::{CartId, VariantId};

/// One variant in a cart.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "cart_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub cart_id: CartId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub variant_id: VariantId,
    /// 1..=1000 (CHECK).
    pub quantity: i32,
    /// The variant's price when the line was last added or changed, so a
    /// read can say the price has changed since.
    pub unit_price_minor_seen: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
