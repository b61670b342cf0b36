//! Carts: server-side carts for guests and customers.
//!
//! Layout:
//! - this module: the rules, [`CartToken`] and [`CartKey`] (how a cart is
//!   named), [`OpenCart`] and finding a cart the caller may use;
//! - [`edit`]: creating a cart, adding, changing and removing lines;
//! - [`view`]: a cart as read, priced today ([`CartView`]);
//! - [`merge`]: a guest's cart merged into the customer's at sign-in;
//! - [`expiry`]: deleting carts abandoned for longer than the retention.
//!
//! The rules:
//! - A guest's cart is named by a secret token, `cart_` + 32 random bytes in
//!   base64url, handed out once by [`edit::create_cart`] and stored only as
//!   its SHA-256 hex digest: the token is the capability, a leaked table
//!   cannot be replayed.
//! - A customer has at most one cart (a unique index on `user_id`). It can
//!   only be read or changed by that customer, signed in, whatever id is
//!   presented: to anyone else it is "not found", the same answer as for a
//!   cart that does not exist. Its id is its row id ([`CartId`]), which is
//!   no secret and needs none; the token it had as a guest's cart keeps
//!   working for its owner.
//! - A line is one variant; adding a variant already in the cart adds to
//!   its quantity, capped at [`MAX_LINE_QUANTITY`]; a cart holds at most
//!   [`MAX_LINES`] lines, all in one currency (set by its first line). Only
//!   a buyable variant (it and its product active) can be added, and only
//!   as many units as it has in stock at that moment: stock is checked,
//!   never reserved (`placeOrder`/checkout reserves it).
//! - Prices are never trusted from the cart: a read prices every line at
//!   today's price, and says when it differs from the price the customer
//!   saw when they last added or changed the line (`unit_price_minor_seen`).
//! - Every write is one short transaction whose first statement is a
//!   conditional `UPDATE carts … RETURNING` that finds the cart, checks who
//!   may use it and locks its row (PostgreSQL; SQLite has one writer), so
//!   concurrent writes to one cart run one after the other and the line
//!   limit and currency are checked without a race; lines are upserts
//!   (`ON CONFLICT … DO UPDATE SET quantity = quantity + excluded.quantity`),
//!   so concurrent adds to one line never lose a unit.
//! - Carts not changed for the retention (`CART_RETENTION`, 30 days) are
//!   deleted by the worker, a small batch per statement.
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{Condition, UpdateMany};

use crate::accounts::tokens;
use crate::error::DomainError;
use crate::ids::{CartId, UserId};
use crate::tables::carts;

pub use crate::catalog::MAX_LINE_QUANTITY;
pub use crate::orders::place::MAX_LINES;

pub mod edit;
pub mod expiry;
pub mod merge;
pub mod view;

pub use edit::{
    CartLineChange, CartLineRequest, add_lines, create_cart, delete_cart, remove_lines, update_lines,
};
pub use expiry::{DEFAULT_RETENTION, expire_abandoned_carts};
pub use merge::merge_guest_cart;
pub use view::{CartLineView, CartView, cart_currency, cart_items, customer_cart, read_cart};

/// What every cart token starts with, so a client (and a log reader) can
/// tell it from other ids.
const TOKEN_PREFIX: &str = "cart_";

/// A guest cart's secret token, as handed out or presented.
#[derive(Clone, PartialEq, Eq)]
pub struct CartToken(String);

impl std::fmt::Debug for CartToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CartToken(…)")
    }
}

impl CartToken {
    /// A fresh token.
    fn mint() -> Self {
        Self(format!("{TOKEN_PREFIX}{}", tokens::generate().raw))
    }

    /// A presented token, or `None` when the text cannot be one of ours.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let body = raw.strip_prefix(TOKEN_PREFIX)?;
        (body.len() == 43
            && body
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .then(|| Self(raw.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The stored form.
    fn digest(&self) -> String {
        tokens::digest(&self.0)
    }
}

/// How a caller names a cart: a guest cart's token, or a customer cart's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartKey {
    Token(CartToken),
    Id(CartId),
}

impl CartKey {
    /// The key `raw` names, or `None` when it is neither a token nor an id.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        CartToken::parse(raw)
            .map(Self::Token)
            .or_else(|| raw.parse().ok().map(Self::Id))
    }
}

/// A cart the caller may use, with the id the client calls it by.
#[derive(Debug, Clone)]
pub struct OpenCart {
    pub row: carts::Model,
    /// A guest cart's token; a customer cart's row id.
    pub public_id: String,
}

impl OpenCart {
    fn new(row: carts::Model, key: &CartKey) -> Self {
        let public_id = match (row.user_id, key) {
            (None, CartKey::Token(token)) => token.as_str().to_owned(),
            _ => row.id.to_string(),
        };
        Self { row, public_id }
    }

    /// A customer's cart, which is named by its id.
    fn customer(row: carts::Model) -> Self {
        Self {
            public_id: row.id.to_string(),
            row,
        }
    }
}

/// The cart `key` names if `viewer` may use it: a guest cart to anyone
/// holding its token, a customer's cart to that customer only.
///
/// # Errors
/// [`DomainError::NotFound`] when there is no such cart or it is not the
/// viewer's (the same answer, so nothing tells one from the other).
pub async fn find_cart<C: ConnectionTrait>(
    conn: &C,
    key: &CartKey,
    viewer: Option<UserId>,
) -> Result<OpenCart, DomainError> {
    let condition = usable_by(key, viewer).ok_or(NOT_FOUND)?;
    let row = carts::Entity::find()
        .filter(condition)
        .one(conn)
        .await?
        .ok_or(NOT_FOUND)?;
    Ok(OpenCart::new(row, key))
}

const NOT_FOUND: DomainError = DomainError::NotFound { entity: "cart" };

/// The rows `viewer` may use under `key`, or `None` when there can be none.
fn usable_by(key: &CartKey, viewer: Option<UserId>) -> Option<Condition> {
    match (key, viewer) {
        (CartKey::Token(token), None) => Some(
            Condition::all()
                .add(carts::Column::TokenHash.eq(token.digest()))
                .add(carts::Column::UserId.is_null()),
        ),
        (CartKey::Token(token), Some(user)) => Some(
            Condition::all()
                .add(carts::Column::TokenHash.eq(token.digest()))
                .add(
                    Condition::any()
                        .add(carts::Column::UserId.is_null())
                        .add(carts::Column::UserId.eq(user)),
                ),
        ),
        (CartKey::Id(id), Some(user)) => Some(
            Condition::all()
                .add(carts::Column::Id.eq(*id))
                .add(carts::Column::UserId.eq(user)),
        ),
        (CartKey::Id(_), None) => None,
    }
}

/// Finds, checks and locks the cart for a write, marking it changed: the
/// first statement of every write (see the module's rules).
async fn lock_for_write<C: ConnectionTrait>(
    txn: &C,
    key: &CartKey,
    viewer: Option<UserId>,
) -> Result<OpenCart, DomainError> {
    let condition = usable_by(key, viewer).ok_or(NOT_FOUND)?;
    let row = touch(carts::Entity::update_many().filter(condition))
        .exec_with_returning(txn)
        .await?
        .into_iter()
        .next()
        .ok_or(NOT_FOUND)?;
    Ok(OpenCart::new(row, key))
}

/// `update` also marking the cart changed now.
fn touch(update: UpdateMany<carts::Entity>) -> UpdateMany<carts::Entity> {
    update.col_expr(carts::Column::UpdatedAt, Expr::value(chrono::Utc::now()))
}

/// Locks and touches the customer's cart, if they have one.
async fn lock_customer_cart<C: ConnectionTrait>(
    txn: &C,
    user: UserId,
) -> Result<Option<carts::Model>, DomainError> {
    Ok(
        touch(carts::Entity::update_many().filter(carts::Column::UserId.eq(user)))
            .exec_with_returning(txn)
            .await?
            .into_iter()
            .next(),
    )
}

/// Sets the cart's currency to `currency` unless it holds lines in another.
///
/// # Errors
/// [`DomainError::InvalidInput`] on `lines` when it does.
async fn settle_currency<C: ConnectionTrait>(
    txn: &C,
    cart: &mut carts::Model,
    currency: &str,
) -> Result<(), DomainError> {
    use crate::tables::cart_lines;
    use sea_orm::sea_query::Query;
    let has_lines = Query::select()
        .expr(Expr::val(1))
        .from(cart_lines::Entity)
        .and_where(cart_lines::Column::CartId.eq(cart.id))
        .take();
    let updated = carts::Entity::update_many()
        .col_expr(carts::Column::Currency, Expr::value(currency))
        .filter(carts::Column::Id.eq(cart.id))
        .filter(
            Condition::any()
                .add(carts::Column::Currency.is_null())
                .add(carts::Column::Currency.eq(currency))
                .add(Expr::exists(has_lines).not()),
        )
        .exec(txn)
        .await?;
    if updated.rows_affected == 0 {
        return Err(DomainError::invalid(
            "lines",
            format!(
                "this cart holds {} prices; a line in {currency} cannot join it",
                cart.currency.as_deref().unwrap_or("other")
            ),
        ));
    }
    cart.currency = Some(currency.to_owned());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_43_base64url_characters_and_parse_back() {
        let token = CartToken::mint();
        assert!(token.as_str().starts_with("cart_"), "{}", token.as_str());
        assert_eq!(token.as_str().len(), 48);
        assert_eq!(CartToken::parse(token.as_str()), Some(token.clone()));
        assert_eq!(token.digest().len(), 64);
        assert_ne!(token, CartToken::mint(), "every token is fresh");
    }

    #[test]
    fn anything_else_is_not_a_token_and_a_uuid_is_a_cart_id() {
        assert_eq!(CartToken::parse("cart_short"), None);
        assert_eq!(CartToken::parse(&format!("cart_{}", "*".repeat(43))), None);
        assert_eq!(CartKey::parse("nonsense"), None);
        let id = CartId::new();
        assert_eq!(CartKey::parse(&id.to_string()), Some(CartKey::Id(id)));
        assert!(
            format!("{:?}", CartToken::mint()).contains('…'),
            "Debug hides the secret"
        );
    }
}
