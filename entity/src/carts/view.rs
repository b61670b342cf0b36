//! A cart as read: every line priced at today's price, next to the price
//! the customer saw, with whether it can be bought now. Three statements
//! whatever the number of lines: the cart, its lines, their variants with
//! their products.
use chrono::{DateTime, Utc};
use sea_orm::QueryOrder;
use sea_orm::entity::prelude::*;

use super::OpenCart;
use crate::catalog::Quantity;
use crate::catalog::variants::{VariantOf, variants_by_ids};
use crate::error::DomainError;
use crate::ids::{CartId, ProductId, UserId, VariantId};
use crate::money::{Currency, Money};
use crate::pricing::{self, BasisPoints, PricedLine, PricingRules, TaxMode};
use crate::tables::{cart_lines, carts};

/// A cart priced today.
#[derive(Debug, Clone)]
pub struct CartView {
    /// What the client calls it (a guest cart's token, a customer cart's id).
    pub public_id: String,
    pub id: CartId,
    pub owner: Option<UserId>,
    /// The lines, oldest first.
    pub lines: Vec<CartLineView>,
    /// The sum of the lines in the cart's currency at today's prices
    /// ([`pricing::order_totals`]); `None` while the cart is empty.
    pub subtotal: Option<Money>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One line priced today.
#[derive(Debug, Clone)]
pub struct CartLineView {
    pub variant_id: VariantId,
    pub product_id: ProductId,
    pub product_name: String,
    pub variant_title: String,
    pub sku: String,
    pub quantity: Quantity,
    /// Today's price of one unit.
    pub unit_price: Money,
    /// The price of one unit when the line was last added or changed.
    pub price_seen: Money,
    /// `unit_price` differs from `price_seen`.
    pub price_changed: bool,
    /// Buyable now (variant and product active, in the cart's currency) and
    /// at least `quantity` units in stock.
    pub available: bool,
    /// `unit_price` × `quantity`.
    pub line_total: Money,
    /// Weight of one unit, in grams (shipping by weight).
    pub unit_weight_grams: u32,
}

impl CartView {
    /// The units in the cart.
    #[must_use]
    pub fn total_quantity(&self) -> i32 {
        self.lines.iter().map(|line| line.quantity.get()).sum()
    }

    /// The lines as [`pricing::order_totals`] takes them (checkout).
    #[must_use]
    pub fn priced_lines(&self) -> Vec<PricedLine> {
        self.lines
            .iter()
            .map(|line| PricedLine {
                unit_price: line.unit_price,
                quantity: line.quantity,
                unit_weight_grams: line.unit_weight_grams,
            })
            .collect()
    }

    /// Whether any line's price changed since the customer saw it.
    #[must_use]
    pub fn any_price_changed(&self) -> bool {
        self.lines.iter().any(|line| line.price_changed)
    }

    /// Whether every line can be bought now.
    #[must_use]
    pub fn all_available(&self) -> bool {
        self.lines.iter().all(|line| line.available)
    }
}

/// The customer's cart, if they have one.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn customer_cart<C: ConnectionTrait>(
    conn: &C,
    user: UserId,
) -> Result<Option<OpenCart>, DomainError> {
    Ok(carts::Entity::find()
        .filter(carts::Column::UserId.eq(user))
        .one(conn)
        .await?
        .map(OpenCart::customer))
}

/// A cart's lines, oldest first, each with its variant and product (two
/// statements: lines, variants). What a read prices and checkout buys.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn cart_items<C: ConnectionTrait>(
    conn: &C,
    cart: CartId,
) -> Result<Vec<(cart_lines::Model, VariantOf)>, DomainError> {
    let rows = cart_lines::Entity::find()
        .filter(cart_lines::Column::CartId.eq(cart))
        .order_by_asc(cart_lines::Column::CreatedAt)
        .order_by_asc(cart_lines::Column::VariantId)
        .all(conn)
        .await?;
    let ids: Vec<VariantId> = rows.iter().map(|row| row.variant_id).collect();
    let mut variants = variants_by_ids(conn, &ids).await?;
    // A line's variant is never missing (the foreign key deletes the line).
    Ok(rows
        .into_iter()
        .filter_map(|row| variants.remove(&row.variant_id).map(|of| (row, of)))
        .collect())
}

/// The currency of a cart's lines; `None` while it is empty.
#[must_use]
pub fn cart_currency(cart: &carts::Model, lines: usize) -> Option<Currency> {
    if lines == 0 {
        return None;
    }
    cart.currency
        .as_deref()
        .and_then(|code| Currency::parse(code).ok())
}

/// `cart` priced today (two statements: lines, variants).
///
/// # Errors
/// [`DomainError::Database`].
pub async fn read_cart<C: ConnectionTrait>(conn: &C, cart: OpenCart) -> Result<CartView, DomainError> {
    let items = cart_items(conn, cart.row.id).await?;
    let currency = cart_currency(&cart.row, items.len());
    let mut lines = Vec::with_capacity(items.len());
    for (row, of) in items {
        let quantity = Quantity::parse(row.quantity)?;
        let PricedLine {
            unit_price,
            unit_weight_grams,
            ..
        } = of.priced(quantity)?;
        let price_seen = Money::new(row.unit_price_minor_seen, unit_price.currency);
        lines.push(CartLineView {
            variant_id: row.variant_id,
            product_id: of.product.id,
            product_name: of.product.name.clone(),
            variant_title: of.variant.title.clone(),
            sku: of.variant.sku.clone(),
            quantity,
            unit_price,
            price_seen,
            price_changed: unit_price != price_seen,
            available: of.buyable()
                && of.variant.stock >= quantity.get()
                && Some(unit_price.currency) == currency,
            line_total: unit_price.checked_mul(i64::from(quantity.get()))?,
            unit_weight_grams,
        });
    }
    let subtotal = match currency {
        Some(currency) => {
            let same: Vec<PricedLine> = lines
                .iter()
                .filter(|line| line.unit_price.currency == currency)
                .map(|line| PricedLine {
                    unit_price: line.unit_price,
                    quantity: line.quantity,
                    unit_weight_grams: line.unit_weight_grams,
                })
                .collect();
            let rules = PricingRules {
                currency,
                tax_mode: TaxMode::Exclusive,
                tax_rate: BasisPoints::parse("taxRate", 0)?,
                shipping: None,
                discount: None,
            };
            Some(pricing::order_totals(&same, &rules)?.subtotal)
        }
        None => None,
    };
    Ok(CartView {
        public_id: cart.public_id,
        id: cart.row.id,
        owner: cart.row.user_id,
        lines,
        subtotal,
        created_at: cart.row.created_at,
        updated_at: cart.row.updated_at,
    })
}
