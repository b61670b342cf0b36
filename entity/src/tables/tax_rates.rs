use sea_orm::entity::prelude::*;

/// The tax rate charged on orders shipped to one country.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tax_rates")]
pub struct Model {
    /// ISO 3166-1 alpha-2, upper-case.
    #[sea_orm(primary_key, auto_increment = false)]
    pub country_code: String,
    /// 2000 is 20 %.
    pub rate_basis_points: i32,
    /// What the receipt calls it ("VAT", "Sales tax").
    pub name: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
