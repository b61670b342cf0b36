use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ids::{ShippingMethodId, ShippingZoneId};

/// A way to ship to a zone and its rate.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shipping_methods")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ShippingMethodId,
    pub zone_id: ShippingZoneId,
    pub name: String,
    pub kind: ShippingMethodKind,
    /// The flat price, or the base of a weight-based rate.
    pub price_minor: i64,
    /// Per started kilogram (weight-based rates; 0 for flat ones).
    pub per_kg_minor: i64,
    pub currency: String,
    pub active: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// How a method charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShippingMethodKind {
    #[sea_orm(string_value = "FLAT")]
    Flat,
    #[sea_orm(string_value = "WEIGHT")]
    Weight,
}
