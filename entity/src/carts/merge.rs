//! A guest's cart merged into the customer's as they sign in.
//!
//! - The customer has no cart: the guest's cart becomes theirs (its lines,
//!   its token still working for them).
//! - They have one: the guest's lines are added to it (a variant in both
//!   gets the summed quantity, capped at 1000 units; new variants join
//!   while the cart holds fewer than 50 lines) and the guest's cart is
//!   deleted. When the two hold lines in different currencies the guest's
//!   cart, the one just filled, replaces the customer's.
//! - A token that names no guest cart (someone's customer cart, an expired
//!   or made-up one) merges nothing and says nothing.
//!
//! Stock is not checked here: a line holding more than is on hand reads as
//! not available, and signing in never fails because of a cart.
//!
//! Both carts are locked, the guest's first, before any line is read, so a
//! write racing the sign-in is either merged or waits and finds the guest
//! cart gone ("not found"); nothing locks them in the other order.
use std::collections::HashSet;

use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;

use super::edit::upsert_adding;
use super::{CartToken, MAX_LINES, OpenCart, lock_customer_cart, touch};
use crate::error::DomainError;
use crate::ids::{UserId, VariantId};
use crate::tables::{cart_lines, carts};

/// Merges the guest cart `guest` into `user`'s cart; returns the
/// customer's cart afterwards (`None` when they have none).
///
/// # Errors
/// [`DomainError::Database`]; [`DomainError::Conflict`] when a concurrent
/// sign-in of the same customer gave them a cart meanwhile (retry).
pub async fn merge_guest_cart<C: ConnectionTrait>(
    txn: &C,
    guest: &CartToken,
    user: UserId,
) -> Result<Option<OpenCart>, DomainError> {
    let guest_cart = touch(carts::Entity::update_many())
        .filter(carts::Column::TokenHash.eq(guest.digest()))
        .filter(carts::Column::UserId.is_null())
        .exec_with_returning(txn)
        .await?
        .into_iter()
        .next();
    let customer_cart = lock_customer_cart(txn, user).await?;
    let Some(guest_cart) = guest_cart else {
        return Ok(customer_cart.map(OpenCart::customer));
    };
    let Some(mut customer_cart) = customer_cart else {
        return adopt(txn, guest_cart, user).await.map(Some);
    };
    let lines_of = |cart| {
        cart_lines::Entity::find()
            .filter(cart_lines::Column::CartId.eq(cart))
            .all(txn)
    };
    let guest_lines = lines_of(guest_cart.id).await?;
    let customer_lines = lines_of(customer_cart.id).await?;
    if !customer_lines.is_empty() && !guest_lines.is_empty() && customer_cart.currency != guest_cart.currency
    {
        carts::Entity::delete_by_id(customer_cart.id).exec(txn).await?;
        return adopt(txn, guest_cart, user).await.map(Some);
    }
    carts::Entity::delete_by_id(guest_cart.id).exec(txn).await?;
    let held: HashSet<VariantId> = customer_lines.iter().map(|line| line.variant_id).collect();
    let mut room = MAX_LINES.saturating_sub(held.len());
    let rows = guest_lines.into_iter().filter_map(|line| {
        if !held.contains(&line.variant_id) {
            room = room.checked_sub(1)?;
        }
        Some(cart_lines::ActiveModel {
            cart_id: Set(customer_cart.id),
            variant_id: Set(line.variant_id),
            quantity: Set(line.quantity),
            unit_price_minor_seen: Set(line.unit_price_minor_seen),
            created_at: Set(line.created_at),
            updated_at: Set(line.updated_at),
        })
    });
    let rows: Vec<_> = rows.collect();
    if !rows.is_empty() && customer_lines.is_empty() {
        carts::Entity::update_many()
            .col_expr(carts::Column::Currency, Expr::value(guest_cart.currency.clone()))
            .filter(carts::Column::Id.eq(customer_cart.id))
            .exec(txn)
            .await?;
        customer_cart.currency = guest_cart.currency;
    }
    upsert_adding(txn, rows).await?;
    Ok(Some(OpenCart::customer(customer_cart)))
}

/// The guest cart becomes `user`'s.
async fn adopt<C: ConnectionTrait>(
    txn: &C,
    guest: carts::Model,
    user: UserId,
) -> Result<OpenCart, DomainError> {
    let row = carts::Entity::update_many()
        .col_expr(carts::Column::UserId, Expr::value(user))
        .filter(carts::Column::Id.eq(guest.id))
        .exec_with_returning(txn)
        .await
        .map_err(|e| DomainError::conflict_if_unique(e, "your cart was changed by another sign-in; retry"))?
        .into_iter()
        .next()
        .ok_or(DomainError::NotFound { entity: "cart" })?;
    Ok(OpenCart::customer(row))
}
