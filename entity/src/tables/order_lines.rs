use sea_orm::entity::prelude::*;

use crate::ids::{OrderId, OrderLineId, ProductId, VariantId};

/// A line of an order with its price, product name, variant SKU and title
/// snapshotted at order time.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: OrderLineId,
    pub order_id: OrderId,
    pub product_id: ProductId,
    pub product_name: String,
    /// The variant bought, and its SKU and title as they were then.
    pub variant_id: VariantId,
    pub sku: String,
    pub variant_title: String,
    pub quantity: i32,
    pub unit_price_minor: i64,
    pub currency: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::orders::Entity",
        from = "Column::OrderId",
        to = "super::orders::Column::Id"
    )]
    Order,
    #[sea_orm(
        belongs_to = "super::products::Entity",
        from = "Column::ProductId",
        to = "super::products::Column::Id"
    )]
    Product,
}

impl Related<super::orders::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Order.def()
    }
}

impl Related<super::products::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Product.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
