//! Changing a cart: creating one, adding, changing and removing lines.
//! Each function is one write transaction's work (call it inside one from
//! [`crate::db::begin_write`]); see the module's rules for why the cart's
//! row is updated first.
use std::collections::HashMap;

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{PaginatorTrait, QuerySelect};

use super::{
    CartKey, CartToken, MAX_LINE_QUANTITY, MAX_LINES, OpenCart, lock_customer_cart, lock_for_write,
    settle_currency,
};
use crate::catalog::Quantity;
use crate::catalog::variants::{VariantOf, variants_by_ids};
use crate::error::DomainError;
use crate::ids::{CartId, UserId, VariantId};
use crate::tables::{cart_lines, carts};

/// Units of a variant to add to a cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CartLineRequest {
    pub variant_id: VariantId,
    pub quantity: Quantity,
}

/// A line's new quantity; `None` removes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CartLineChange {
    pub variant_id: VariantId,
    pub quantity: Option<Quantity>,
}

impl CartLineChange {
    /// # Errors
    /// [`DomainError::InvalidInput`] on `quantity` outside 0..=1000 (0 removes the line).
    pub fn parse(variant_id: VariantId, quantity: i32) -> Result<Self, DomainError> {
        let quantity = match quantity {
            0 => None,
            n => Some(Quantity::parse(n).map_err(|_| {
                DomainError::invalid("quantity", format!("must be between 0 and {MAX_LINE_QUANTITY}"))
            })?),
        };
        Ok(Self { variant_id, quantity })
    }
}

/// A new cart with `lines`: a guest's (`owner` `None`), named by the fresh
/// token in the returned cart's `public_id`. A signed-in customer who
/// already has a cart gets that one, with `lines` added.
///
/// # Errors
/// As [`add_lines`]; [`DomainError::Conflict`] when the customer's cart
/// was made by a concurrent request (retry).
pub async fn create_cart<C: ConnectionTrait>(
    txn: &C,
    owner: Option<UserId>,
    lines: &[CartLineRequest],
) -> Result<OpenCart, DomainError> {
    if lines.len() > MAX_LINES {
        return Err(too_many_lines());
    }
    let existing = match owner {
        Some(user) => lock_customer_cart(txn, user).await?,
        None => None,
    };
    let cart = match existing {
        Some(row) => OpenCart::customer(row),
        None => {
            let token = CartToken::mint();
            let now = Utc::now();
            let row = carts::ActiveModel {
                id: Set(CartId::new()),
                token_hash: Set(token.digest()),
                user_id: Set(owner),
                currency: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(txn)
            .await
            .map_err(|e| {
                DomainError::conflict_if_unique(e, "your cart was created by another request; retry")
            })?;
            OpenCart::new(row, &CartKey::Token(token))
        }
    };
    if lines.is_empty() {
        return Ok(cart);
    }
    put_lines(txn, cart, lines).await
}

/// Adds `lines` to the cart: a variant already in it adds to that line
/// (capped at 1000 units); the price seen becomes today's.
///
/// # Errors
/// [`DomainError::NotFound`] (the cart, as [`super::find_cart`]);
/// [`DomainError::InvalidInput`] on `lines` (none, more than 50 in the
/// request or in the cart after it, another currency), on `variantId` (an
/// unknown or unbuyable variant); [`DomainError::OutOfStock`] when a line
/// would hold more units than the variant has in stock. Nothing is written
/// then.
pub async fn add_lines<C: ConnectionTrait>(
    txn: &C,
    key: &CartKey,
    viewer: Option<UserId>,
    lines: &[CartLineRequest],
) -> Result<OpenCart, DomainError> {
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(too_many_lines());
    }
    let cart = lock_for_write(txn, key, viewer).await?;
    put_lines(txn, cart, lines).await
}

/// Sets each line's quantity (0 removes it); the price seen becomes today's.
///
/// # Errors
/// As [`add_lines`], and [`DomainError::InvalidInput`] on `variantId` for a
/// variant not in the cart.
pub async fn update_lines<C: ConnectionTrait>(
    txn: &C,
    key: &CartKey,
    viewer: Option<UserId>,
    changes: &[CartLineChange],
) -> Result<OpenCart, DomainError> {
    if changes.is_empty() || changes.len() > MAX_LINES {
        return Err(too_many_lines());
    }
    let mut cart = lock_for_write(txn, key, viewer).await?;
    let kept: Vec<VariantId> = changes
        .iter()
        .filter(|c| c.quantity.is_some())
        .map(|c| c.variant_id)
        .collect();
    let variants = variants_by_ids(txn, &kept).await?;
    let now = Utc::now();
    for change in changes {
        let filter = cart_lines::Entity::delete_many()
            .filter(cart_lines::Column::CartId.eq(cart.row.id))
            .filter(cart_lines::Column::VariantId.eq(change.variant_id));
        let touched = match change.quantity {
            None => filter.exec(txn).await?.rows_affected,
            Some(quantity) => {
                let variant = buyable(&variants, change.variant_id)?;
                check_stock(variant, quantity.get())?;
                settle_currency(txn, &mut cart.row, &variant.variant.currency).await?;
                cart_lines::Entity::update_many()
                    .col_expr(cart_lines::Column::Quantity, Expr::value(quantity.get()))
                    .col_expr(
                        cart_lines::Column::UnitPriceMinorSeen,
                        Expr::value(variant.variant.price_minor),
                    )
                    .col_expr(cart_lines::Column::UpdatedAt, Expr::value(now))
                    .filter(cart_lines::Column::CartId.eq(cart.row.id))
                    .filter(cart_lines::Column::VariantId.eq(change.variant_id))
                    .exec(txn)
                    .await?
                    .rows_affected
            }
        };
        if touched == 0 && change.quantity.is_some() {
            return Err(DomainError::invalid(
                "variantId",
                format!("{} is not in the cart", change.variant_id),
            ));
        }
    }
    Ok(cart)
}

/// Removes the lines of `variants`; a variant not in the cart is ignored.
///
/// # Errors
/// [`DomainError::NotFound`] (the cart); [`DomainError::InvalidInput`] on
/// `variantIds` for none or more than 50.
pub async fn remove_lines<C: ConnectionTrait>(
    txn: &C,
    key: &CartKey,
    viewer: Option<UserId>,
    variants: &[VariantId],
) -> Result<OpenCart, DomainError> {
    if variants.is_empty() || variants.len() > MAX_LINES {
        return Err(DomainError::invalid(
            "variantIds",
            format!("must name 1 to {MAX_LINES} variants"),
        ));
    }
    let cart = lock_for_write(txn, key, viewer).await?;
    cart_lines::Entity::delete_many()
        .filter(cart_lines::Column::CartId.eq(cart.row.id))
        .filter(cart_lines::Column::VariantId.is_in(variants.iter().copied()))
        .exec(txn)
        .await?;
    Ok(cart)
}

/// Deletes a cart and its lines: checkout, in the order's transaction. A
/// cart is bought once: when it is gone already (another checkout of it,
/// under another idempotency key, committed first; PostgreSQL makes this
/// one wait for it) the order must not be written.
///
/// # Errors
/// [`DomainError::Conflict`] when the cart no longer exists.
pub async fn delete_cart<C: ConnectionTrait>(txn: &C, id: CartId) -> Result<(), DomainError> {
    let deleted = carts::Entity::delete_by_id(id).exec(txn).await?;
    if deleted.rows_affected == 0 {
        return Err(DomainError::Conflict(
            "this cart was checked out or deleted meanwhile".into(),
        ));
    }
    Ok(())
}

fn too_many_lines() -> DomainError {
    DomainError::invalid("lines", format!("must have 1 to {MAX_LINES} lines"))
}

/// Adds `lines` to a locked cart (see [`add_lines`]).
async fn put_lines<C: ConnectionTrait>(
    txn: &C,
    mut cart: OpenCart,
    lines: &[CartLineRequest],
) -> Result<OpenCart, DomainError> {
    // One row per variant: an upsert cannot touch one row twice.
    let mut merged: Vec<(VariantId, i32)> = Vec::with_capacity(lines.len());
    for line in lines {
        match merged.iter_mut().find(|(id, _)| *id == line.variant_id) {
            Some((_, quantity)) => *quantity = (*quantity + line.quantity.get()).min(MAX_LINE_QUANTITY),
            None => merged.push((line.variant_id, line.quantity.get())),
        }
    }
    let ids: Vec<VariantId> = merged.iter().map(|(id, _)| *id).collect();
    let variants = variants_by_ids(txn, &ids).await?;
    let mut currency: Option<&str> = None;
    for (id, _) in &merged {
        let variant = buyable(&variants, *id)?;
        match currency {
            None => currency = Some(&variant.variant.currency),
            Some(c) if c != variant.variant.currency => {
                return Err(DomainError::invalid(
                    "lines",
                    "all lines of a cart must be in one currency",
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(currency) = currency {
        settle_currency(txn, &mut cart.row, currency).await?;
    }
    let now = Utc::now();
    let rows = merged.iter().map(|(id, quantity)| cart_lines::ActiveModel {
        cart_id: Set(cart.row.id),
        variant_id: Set(*id),
        quantity: Set(*quantity),
        unit_price_minor_seen: Set(variants.get(id).map_or(0, |v| v.variant.price_minor)),
        created_at: Set(now),
        updated_at: Set(now),
    });
    let written = upsert_adding(txn, rows).await?;
    for line in &written {
        if let Some(variant) = variants.get(&line.variant_id) {
            check_stock(variant, line.quantity)?;
        }
    }
    let count = cart_lines::Entity::find()
        .filter(cart_lines::Column::CartId.eq(cart.row.id))
        .select_only()
        .column(cart_lines::Column::VariantId)
        .count(txn)
        .await?;
    if count > MAX_LINES as u64 {
        return Err(DomainError::invalid(
            "lines",
            format!("a cart holds at most {MAX_LINES} lines"),
        ));
    }
    Ok(cart)
}

/// Inserts `rows`, adding each to the line of the same variant when there
/// is one (capped at 1000 units, the price seen and time replaced), in one
/// statement; returns the lines as written.
pub(super) async fn upsert_adding<C: ConnectionTrait>(
    txn: &C,
    rows: impl IntoIterator<Item = cart_lines::ActiveModel>,
) -> Result<Vec<cart_lines::Model>, DomainError> {
    let rows: Vec<_> = rows.into_iter().collect();
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let sum = "cart_lines.quantity + excluded.quantity";
    let capped = Expr::cust(format!(
        "CASE WHEN {sum} > {MAX_LINE_QUANTITY} THEN {MAX_LINE_QUANTITY} ELSE {sum} END"
    ));
    Ok(cart_lines::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([cart_lines::Column::CartId, cart_lines::Column::VariantId])
                .value(cart_lines::Column::Quantity, capped)
                .update_columns([
                    cart_lines::Column::UnitPriceMinorSeen,
                    cart_lines::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_with_returning(txn)
        .await?)
}

/// The variant `id` if a customer may buy it.
fn buyable(variants: &HashMap<VariantId, VariantOf>, id: VariantId) -> Result<&VariantOf, DomainError> {
    variants
        .get(&id)
        .filter(|v| v.buyable())
        .ok_or_else(|| DomainError::invalid("variantId", format!("{id} is not for sale")))
}

/// [`DomainError::OutOfStock`] unless the variant has `quantity` units on hand.
fn check_stock(variant: &VariantOf, quantity: i32) -> Result<(), DomainError> {
    if quantity > variant.variant.stock {
        return Err(DomainError::OutOfStock {
            product_id: variant.product.id,
            variant_id: variant.variant.id,
            requested: quantity,
            available: variant.variant.stock,
        });
    }
    Ok(())
}
