use sea_orm::entity::prelude::*;

use crate::ids::ProductId;

/// A product's catalog data. Stock is not here: it lives on its variants
/// (`product_variants`); `price_minor` is the product's "from price", the
/// lowest price among its active variants, kept by `entity::catalog`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "products")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ProductId,
    pub sku: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub price_minor: i64,
    pub currency: String,
    pub active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::stock_movements::Entity")]
    StockMovements,
    #[sea_orm(has_many = "super::order_lines::Entity")]
    OrderLines,
    #[sea_orm(has_many = "super::product_variants::Entity")]
    Variants,
}

impl Related<super::product_variants::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Variants.def()
    }
}

impl Related<super::stock_movements::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::StockMovements.def()
    }
}

impl Related<super::order_lines::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::OrderLines.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
