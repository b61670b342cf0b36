use sea_orm::entity::prelude::*;

use crate::ids::ShippingZoneId;

/// A country and the one zone it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shipping_zone_countries")]
pub struct Model {
    /// ISO 3166-1 alpha-2, upper-case.
    #[sea_orm(primary_key, auto_increment = false)]
    pub country_code: String,
    pub zone_id: ShippingZoneId,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
