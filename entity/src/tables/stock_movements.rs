use sea_orm::entity::prelude::*;

use crate::ids::{OrderId, ProductId, StockMovementId, VariantId};

/// One row per stock change: who changed it (`reason`, `order_id`), by how
/// much, and what the variant's stock was after.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stock_movements")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: StockMovementId,
    pub product_id: ProductId,
    /// The variant whose stock changed (stock lives on variants).
    pub variant_id: VariantId,
    pub order_id: Option<OrderId>,
    pub delta: i32,
    pub stock_after: i32,
    pub reason: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::products::Entity",
        from = "Column::ProductId",
        to = "super::products::Column::Id"
    )]
    Product,
    #[sea_orm(
        belongs_to = "super::orders::Entity",
        from = "Column::OrderId",
        to = "super::orders::Column::Id"
    )]
    Order,
}

impl Related<super::products::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Product.def()
    }
}

impl Related<super::orders::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Order.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
