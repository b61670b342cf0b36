use sea_orm::entity::prelude::*;

use crate::ids::{CartId, UserId};

/// A server-side cart: a guest's (no `user_id`, reached by its secret
/// token) or a customer's (at most one each).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "carts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: CartId,
    /// SHA-256 hex of the cart's secret token; the token itself is never stored.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// The customer whose cart it is; `None` for a guest's.
    #[sea_orm(unique)]
    pub user_id: Option<UserId>,
    /// The currency of its lines, set by the first line; meaningless while
    /// the cart has no lines.
    pub currency: Option<String>,
    pub created_at: DateTimeUtc,
    /// Every write touches it; abandoned carts expire by it.
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
