//! Stock rules. Every stock change is one conditional `UPDATE` plus
//! one `stock_movements` row, inside the caller's transaction.
//!
//! The `UPDATE … WHERE stock + delta >= 0` is the whole concurrency story: on
//! PostgreSQL the row lock makes a racing transaction re-check the condition
//! after the winner commits; on SQLite writers are serialised. No read-then-
//! write window exists, so stock can never be oversold or go negative (the
//! CHECK constraint backs this up).
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, QuerySelect};

use crate::error::DomainError;
use crate::ids::{OrderId, ProductId, StockMovementId};
use crate::tables::{products, stock_movements};

use super::Quantity;

/// Why stock changed; stored on the movement row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StockReason {
    /// Units reserved by an order.
    OrderReserved(OrderId),
    /// Units given back by a cancelled, failed or expired order.
    OrderReturned(OrderId),
    /// An admin's adjustment, with their explanation.
    Adjustment(String),
}

impl StockReason {
    fn describe(&self) -> (String, Option<OrderId>) {
        match self {
            StockReason::OrderReserved(order) => ("order reserved".to_owned(), Some(*order)),
            StockReason::OrderReturned(order) => ("order returned".to_owned(), Some(*order)),
            StockReason::Adjustment(text) => (text.clone(), None),
        }
    }
}

/// Takes `quantity` units of an active product for an order.
///
/// # Errors
/// [`DomainError::OutOfStock`] when fewer units are on hand,
/// [`DomainError::NotFound`] for an unknown or inactive product.
pub async fn reserve_stock<C: ConnectionTrait>(
    conn: &C,
    product_id: ProductId,
    quantity: Quantity,
    order_id: OrderId,
) -> Result<products::Model, DomainError> {
    change_stock(
        conn,
        product_id,
        -quantity.get(),
        &StockReason::OrderReserved(order_id),
        true,
    )
    .await
}

/// Gives back `quantity` units an order had reserved (active or not).
///
/// # Errors
/// [`DomainError::NotFound`] for an unknown product.
pub async fn return_stock<C: ConnectionTrait>(
    conn: &C,
    product_id: ProductId,
    quantity: Quantity,
    order_id: OrderId,
) -> Result<products::Model, DomainError> {
    change_stock(
        conn,
        product_id,
        quantity.get(),
        &StockReason::OrderReturned(order_id),
        false,
    )
    .await
}

/// An admin's change of stock: positive or negative, never zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockDelta(i32);

impl StockDelta {
    /// # Errors
    /// [`DomainError::InvalidInput`] on `delta` for zero.
    pub fn parse(delta: i32) -> Result<Self, DomainError> {
        if delta == 0 {
            return Err(DomainError::invalid("delta", "must not be zero"));
        }
        Ok(Self(delta))
    }

    #[must_use]
    pub fn get(self) -> i32 {
        self.0
    }
}

/// Why an admin changed stock: 1 to 200 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdjustmentReason(String);

impl AdjustmentReason {
    /// # Errors
    /// [`DomainError::InvalidInput`] on `reason` when empty or too long.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let reason = raw.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(DomainError::invalid("reason", "must be 1 to 200 characters"));
        }
        Ok(Self(reason.to_owned()))
    }
}

/// An admin's stock adjustment by `delta`, recording `reason`.
///
/// # Errors
/// [`DomainError::OutOfStock`] when the result would be below zero,
/// [`DomainError::NotFound`] for an unknown product.
pub async fn adjust_stock<C: ConnectionTrait>(
    conn: &C,
    product_id: ProductId,
    delta: StockDelta,
    reason: AdjustmentReason,
) -> Result<products::Model, DomainError> {
    change_stock(
        conn,
        product_id,
        delta.get(),
        &StockReason::Adjustment(reason.0),
        false,
    )
    .await
}

async fn change_stock<C: ConnectionTrait>(
    conn: &C,
    product_id: ProductId,
    delta: i32,
    reason: &StockReason,
    require_active: bool,
) -> Result<products::Model, DomainError> {
    let mut update = products::Entity::update_many()
        .col_expr(
            products::Column::Stock,
            Expr::col(products::Column::Stock).add(delta),
        )
        .col_expr(products::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(products::Column::Id.eq(product_id))
        .filter(Expr::col(products::Column::Stock).add(delta).gte(0));
    if require_active {
        update = update.filter(products::Column::Active.eq(true));
    }
    let Some(product) = update.exec_with_returning(conn).await?.into_iter().next() else {
        return Err(why_unchanged(conn, product_id, delta, require_active).await?);
    };
    let (reason, order_id) = reason.describe();
    stock_movements::ActiveModel {
        id: Set(StockMovementId::new()),
        product_id: Set(product_id),
        order_id: Set(order_id),
        delta: Set(delta),
        stock_after: Set(product.stock),
        reason: Set(reason),
        created_at: Set(Utc::now()),
    }
    .insert(conn)
    .await?;
    Ok(product)
}

/// Explains why the conditional update matched no row.
async fn why_unchanged<C: ConnectionTrait>(
    conn: &C,
    product_id: ProductId,
    delta: i32,
    require_active: bool,
) -> Result<DomainError, DomainError> {
    let found: Option<(i32, bool)> = products::Entity::find_by_id(product_id)
        .select_only()
        .column(products::Column::Stock)
        .column(products::Column::Active)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(match found {
        Some((stock, active)) if active || !require_active => DomainError::OutOfStock {
            product_id,
            requested: -delta,
            available: stock,
        },
        _ => DomainError::NotFound { entity: "product" },
    })
}
