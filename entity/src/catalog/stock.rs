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
use sea_orm::sea_query::{
    Alias, Asterisk, CommonTableExpression, Expr, ExprTrait, Query, UpdateStatement, WithClause,
};
use sea_orm::{DbBackend, QueryTrait};

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
/// and the movement row: on PostgreSQL in the same statement
/// ([`update_and_record`]), on SQLite as a second `INSERT` (SQLite allows
/// no `UPDATE` in `WITH`; in process, it costs no round trip).
async fn change_stock<C: ConnectionTrait>(
    conn: &C,
    variant_id: VariantId,
    delta: i32,
    reason: &StockReason,
    require_active: bool,
) -> Result<product_variants::Model, DomainError> {
    use product_variants::Column;
    let now = Utc::now();
    let mut update = product_variants::Entity::update_many()
        .col_expr(Column::Stock, Expr::col(Column::Stock).add(delta))
        .col_expr(Column::UpdatedAt, Expr::value(now))
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
    let (reason, order_id) = reason.describe();
    let movement = Movement {
        id: StockMovementId::new(),
        order_id,
        delta,
        reason,
        at: now,
    };
    let changed = if conn.get_database_backend() == DbBackend::Postgres {
        update_and_record(conn, update.into_query(), movement).await?
    } else {
        let changed = update.exec_with_returning(conn).await?.into_iter().next();
        if let Some(variant) = &changed {
            movement.of(variant).insert(conn).await?;
        }
        changed
    };
    match changed {
        Some(variant) => Ok(variant),
        None => Err(why_unchanged(conn, variant_id, delta, require_active).await?),
    }
}

/// A `stock_movements` row but what the update decides: the variant's
/// product and its stock after.
struct Movement {
    id: StockMovementId,
    order_id: Option<OrderId>,
    delta: i32,
    reason: String,
    at: chrono::DateTime<Utc>,
}

impl Movement {
    fn of(self, variant: &product_variants::Model) -> stock_movements::ActiveModel {
        stock_movements::ActiveModel {
            id: Set(self.id),
            product_id: Set(variant.product_id),
            variant_id: Set(variant.id),
            order_id: Set(self.order_id),
            delta: Set(self.delta),
            stock_after: Set(variant.stock),
            reason: Set(self.reason),
            created_at: Set(self.at),
        }
    }
}

/// PostgreSQL: `WITH changed AS (update RETURNING *), movement AS (INSERT
/// INTO stock_movements SELECT … FROM changed) SELECT * FROM changed`: the
/// movement takes the variant's product and stock after from the updated
/// row, so it is written exactly when the update matched, in one round
/// trip (which an order's transaction holds its locks through).
async fn update_and_record<C: ConnectionTrait>(
    conn: &C,
    mut update: UpdateStatement,
    movement: Movement,
) -> Result<Option<product_variants::Model>, DomainError> {
    use product_variants::Column as V;
    use stock_movements::Column as M;
    let changed = Alias::new("changed");
    update.returning_all();
    let from_changed = Query::select()
        .expr(Expr::val(movement.id))
        .column((changed.clone(), V::ProductId))
        .column((changed.clone(), V::Id))
        .expr(Expr::val(movement.order_id))
        .expr(Expr::val(movement.delta))
        .column((changed.clone(), V::Stock))
        .expr(Expr::val(movement.reason))
        .expr(Expr::val(movement.at))
        .from(changed.clone())
        .to_owned();
    let insert = Query::insert()
        .into_table(stock_movements::Entity)
        .columns([
            M::Id,
            M::ProductId,
            M::VariantId,
            M::OrderId,
            M::Delta,
            M::StockAfter,
            M::Reason,
            M::CreatedAt,
        ])
        .select_from(from_changed)
        .map_err(|e| DbErr::Custom(format!("the stock movement's INSERT: {e}")))?
        .to_owned();
    let mut with = WithClause::new();
    with.cte(
        CommonTableExpression::new()
            .query(update)
            .table_name(changed.clone())
            .to_owned(),
    )
    .cte(
        CommonTableExpression::new()
            .query(insert)
            .table_name(Alias::new("movement"))
            .to_owned(),
    );
    let statement = with.query(Query::select().column(Asterisk).from(changed).to_owned());
    Ok(product_variants::Entity::find()
        .from_raw_sql(conn.get_database_backend().build(&statement))
        .one(conn)
        .await?)
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
