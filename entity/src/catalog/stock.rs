//! Stock rules. Stock lives on variants (`product_variants.stock`); every
//! stock change is one conditional `UPDATE` of one variant plus one
//! `stock_movements` row naming it, inside the caller's transaction.
//!
//! The `UPDATE … WHERE stock + delta >= 0` is the whole concurrency story: on
//! PostgreSQL the row lock makes a racing transaction re-check the condition
//! after the winner commits; on SQLite writers are serialised. No read-then-
//! write window exists, so stock can never be oversold or go negative (the
//! CHECK constraint backs this up).
use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, Query};

use crate::error::DomainError;
use crate::ids::{OrderId, ProductId, StockMovementId, VariantId};
use crate::tables::{product_variants, products, stock_movements};

use super::Quantity;
use super::variants::VariantOf;

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

/// Takes `quantity` units of an active variant of an active product for an
/// order.
///
/// # Errors
/// [`DomainError::OutOfStock`] when fewer units are on hand,
/// [`DomainError::NotFound`] for an unknown or inactive variant or product.
pub async fn reserve_stock<C: ConnectionTrait>(
    conn: &C,
    variant_id: VariantId,
    quantity: Quantity,
    order_id: OrderId,
) -> Result<product_variants::Model, DomainError> {
    change_stock(
        conn,
        variant_id,
        -quantity.get(),
        &StockReason::OrderReserved(order_id),
        true,
    )
    .await
}

/// Gives back `quantity` units of a variant an order had reserved (active
/// or not).
///
/// # Errors
/// [`DomainError::NotFound`] for an unknown variant.
pub async fn return_stock<C: ConnectionTrait>(
    conn: &C,
    variant_id: VariantId,
    quantity: Quantity,
    order_id: OrderId,
) -> Result<product_variants::Model, DomainError> {
    change_stock(
        conn,
        variant_id,
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

/// An admin's stock adjustment of one variant by `delta`, recording
/// `reason`. Stock is not catalog data: the catalog version stays.
///
/// # Errors
/// [`DomainError::OutOfStock`] when the result would be below zero,
/// [`DomainError::NotFound`] for an unknown variant.
pub async fn adjust_variant_stock<C: ConnectionTrait>(
    conn: &C,
    variant_id: VariantId,
    delta: StockDelta,
    reason: AdjustmentReason,
) -> Result<product_variants::Model, DomainError> {
    change_stock(
        conn,
        variant_id,
        delta.get(),
        &StockReason::Adjustment(reason.0),
        false,
    )
    .await
}

/// An admin's stock adjustment of a product that has exactly one variant
/// (the contract from before variants); returns that variant with its
/// product.
///
/// # Errors
/// [`DomainError::InvalidInput`] on `productId` when the product has
/// several variants; as [`adjust_variant_stock`] otherwise.
pub async fn adjust_stock<C: ConnectionTrait>(
    conn: &C,
    product_id: ProductId,
    delta: StockDelta,
    reason: AdjustmentReason,
) -> Result<VariantOf, DomainError> {
    let mut found = products::Entity::find_by_id(product_id)
        .find_with_related(product_variants::Entity)
        .all(conn)
        .await?;
    let Some((product, mut variants)) = found.pop() else {
        return Err(DomainError::NotFound { entity: "product" });
    };
    let (Some(variant), true) = (variants.pop(), variants.is_empty()) else {
        return Err(DomainError::invalid(
            "productId",
            "the product has several variants: adjust stock per variant",
        ));
    };
    let variant = adjust_variant_stock(conn, variant.id, delta, reason).await?;
    Ok(VariantOf { variant, product })
}

/// `UPDATE product_variants SET stock = stock + delta WHERE id = ? AND
/// stock + delta >= 0 [AND active AND its product is active] RETURNING *`,
/// then the movement row.
async fn change_stock<C: ConnectionTrait>(
    conn: &C,
    variant_id: VariantId,
    delta: i32,
    reason: &StockReason,
    require_active: bool,
) -> Result<product_variants::Model, DomainError> {
    use product_variants::Column;
    let mut update = product_variants::Entity::update_many()
        .col_expr(Column::Stock, Expr::col(Column::Stock).add(delta))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(Column::Id.eq(variant_id))
        .filter(Expr::col(Column::Stock).add(delta).gte(0));
    if require_active {
        let product_active = Query::select()
            .expr(Expr::val(1))
            .from(products::Entity)
            .and_where(
                Expr::col((products::Entity, products::Column::Id))
                    .equals((product_variants::Entity, Column::ProductId)),
            )
            .and_where(Expr::col((products::Entity, products::Column::Active)).eq(true))
            .to_owned();
        update = update
            .filter(Column::Active.eq(true))
            .filter(Expr::exists(product_active));
    }
    let Some(variant) = update.exec_with_returning(conn).await?.into_iter().next() else {
        return Err(why_unchanged(conn, variant_id, delta, require_active).await?);
    };
    let (reason, order_id) = reason.describe();
    stock_movements::ActiveModel {
        id: Set(StockMovementId::new()),
        product_id: Set(variant.product_id),
        variant_id: Set(variant.id),
        order_id: Set(order_id),
        delta: Set(delta),
        stock_after: Set(variant.stock),
        reason: Set(reason),
        created_at: Set(Utc::now()),
    }
    .insert(conn)
    .await?;
    Ok(variant)
}

/// Explains why the conditional update matched no row.
async fn why_unchanged<C: ConnectionTrait>(
    conn: &C,
    variant_id: VariantId,
    delta: i32,
    require_active: bool,
) -> Result<DomainError, DomainError> {
    let found = product_variants::Entity::find_by_id(variant_id)
        .find_also_related(products::Entity)
        .one(conn)
        .await?;
    Ok(match found {
        Some((_, Some(product))) if require_active && !product.active => {
            DomainError::NotFound { entity: "product" }
        }
        Some((variant, Some(_))) if variant.active || !require_active => DomainError::OutOfStock {
            product_id: variant.product_id,
            variant_id: variant.id,
            requested: -delta,
            available: variant.stock,
        },
        _ => DomainError::NotFound { entity: "variant" },
    })
}
