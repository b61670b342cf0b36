use sea_orm::entity::prelude::*;

use crate::ids::{ProductId, VariantId};

/// One buyable version of a product: its own SKU, price, stock, weight and
/// option values (JSON text: `[{"name":"Size","value":"M"}]`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "product_variants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: VariantId,
    pub product_id: ProductId,
    pub sku: String,
    pub title: String,
    pub option_values: String,
    pub price_minor: i64,
    pub currency: String,
    pub stock: i32,
    pub weight_grams: i32,
    pub active: bool,
    pub position: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::products::Entity",
        from = "Column::ProductId",
        to = "super::products::Column::Id"
    )]
    Product,
}

impl Related<super::products::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Product.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
