//! Reading orders. Ownership is part of every query: a customer's reads are
//! filtered by `user_id` in SQL, so another customer's order is simply not
//! found, whatever id is guessed.
use std::collections::HashMap;

use sea_orm::entity::prelude::*;
use sea_orm::{PaginatorTrait, QueryOrder, QuerySelect, Select};

use super::OrderStatus;
use crate::actor::Actor;
use crate::error::DomainError;
use crate::ids::OrderId;
use crate::pagination::Page;
use crate::payments::PaymentStatus;
use crate::tables::{order_lines, orders, payments, users};

fn visible_to(actor: Actor) -> Select<orders::Entity> {
    let query = orders::Entity::find();
    if actor.is_admin() {
        query
    } else {
        query.filter(orders::Column::UserId.eq(actor.user_id))
    }
}

fn with_status(query: Select<orders::Entity>, status: Option<OrderStatus>) -> Select<orders::Entity> {
    match status {
        Some(status) => query.filter(orders::Column::Status.eq(status.as_str())),
        None => query,
    }
}

/// One order, if the actor may see it (its owner, or an admin).
///
/// # Errors
/// [`DomainError::Database`] only.
pub async fn find_order<C: ConnectionTrait>(
    conn: &C,
    actor: Actor,
    order_id: OrderId,
) -> Result<Option<orders::Model>, DomainError> {
    Ok(visible_to(actor)
        .filter(orders::Column::Id.eq(order_id))
        .one(conn)
        .await?)
}

/// What a watcher of an order sees change: its status and its payment's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderState {
    pub status: OrderStatus,
    pub payment: Option<PaymentStatus>,
}

impl OrderState {
    /// Whether nothing more will happen to the order or its payment: it was
    /// fulfilled, its payment failed, or it was cancelled and its payment
    /// released (voided, refunded, or never taken).
    #[must_use]
    pub fn is_final(self) -> bool {
        match self.status {
            OrderStatus::Fulfilled | OrderStatus::PaymentFailed => true,
            OrderStatus::Cancelled => !matches!(
                self.payment,
                Some(PaymentStatus::Authorized | PaymentStatus::Settled)
            ),
            OrderStatus::PendingPayment | OrderStatus::Paid => false,
        }
    }
}

/// One order and its [`OrderState`], if the actor may see it.
///
/// # Errors
/// [`DomainError::Database`] only.
pub async fn find_order_state<C: ConnectionTrait>(
    conn: &C,
    actor: Actor,
    order_id: OrderId,
) -> Result<Option<(orders::Model, OrderState)>, DomainError> {
    let Some(order) = find_order(conn, actor, order_id).await? else {
        return Ok(None);
    };
    let payment = payments::Entity::find()
        .filter(payments::Column::OrderId.eq(order.id))
        .one(conn)
        .await?
        .map(|payment| payment.status);
    let state = OrderState {
        status: order.status,
        payment,
    };
    Ok(Some((order, state)))
}

/// The actor's orders (all orders for an admin), newest first, after the
/// order id `after`.
///
/// # Errors
/// [`DomainError::Database`] only.
pub async fn list_orders<C: ConnectionTrait>(
    conn: &C,
    actor: Actor,
    status: Option<OrderStatus>,
    after: Option<OrderId>,
    size: u64,
) -> Result<Page<orders::Model>, DomainError> {
    let mut query = with_status(visible_to(actor), status);
    if let Some(after) = after {
        query = query.filter(orders::Column::Id.lt(after));
    }
    let rows = query
        .order_by_desc(orders::Column::Id)
        .limit(size + 1)
        .all(conn)
        .await?;
    Ok(Page::from_overfetch(rows, size))
}

/// How many orders [`list_orders`] would page through.
///
/// # Errors
/// [`DomainError::Database`] only.
pub async fn count_orders<C: ConnectionTrait>(
    conn: &C,
    actor: Actor,
    status: Option<OrderStatus>,
) -> Result<u64, DomainError> {
    Ok(with_status(visible_to(actor), status).count(conn).await?)
}

/// The lines of many orders in one statement (for data loaders), in the
/// order they were written.
///
/// # Errors
/// [`DomainError::Database`] only.
pub async fn lines_by_order_ids<C: ConnectionTrait>(
    conn: &C,
    order_ids: &[OrderId],
) -> Result<HashMap<OrderId, Vec<order_lines::Model>>, DomainError> {
    let rows = order_lines::Entity::find()
        .filter(order_lines::Column::OrderId.is_in(order_ids.iter().copied()))
        .order_by_asc(order_lines::Column::Id)
        .all(conn)
        .await?;
    let mut by_order: HashMap<OrderId, Vec<order_lines::Model>> = HashMap::new();
    for line in rows {
        by_order.entry(line.order_id).or_default().push(line);
    }
    Ok(by_order)
}

/// The payments of many orders in one statement (for data loaders).
///
/// # Errors
/// [`DomainError::Database`] only.
pub async fn payments_by_order_ids<C: ConnectionTrait>(
    conn: &C,
    order_ids: &[OrderId],
) -> Result<HashMap<OrderId, payments::Model>, DomainError> {
    let rows = payments::Entity::find()
        .filter(payments::Column::OrderId.is_in(order_ids.iter().copied()))
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|p| (p.order_id, p)).collect())
}

/// An order with everything an email about it shows.
#[derive(Debug, Clone)]
pub struct OrderDetails {
    pub order: orders::Model,
    pub lines: Vec<order_lines::Model>,
    pub customer: users::Model,
}

/// Loads an order with its lines and customer (for the worker's emails).
///
/// # Errors
/// [`DomainError::Database`] only; a missing order or customer is `None`.
pub async fn order_details<C: ConnectionTrait>(
    conn: &C,
    order_id: OrderId,
) -> Result<Option<OrderDetails>, DomainError> {
    let Some(order) = orders::Entity::find_by_id(order_id).one(conn).await? else {
        return Ok(None);
    };
    let Some(customer) = users::Entity::find_by_id(order.user_id).one(conn).await? else {
        return Ok(None);
    };
    let lines = order_lines::Entity::find()
        .filter(order_lines::Column::OrderId.eq(order_id))
        .order_by_asc(order_lines::Column::Id)
        .all(conn)
        .await?;
    Ok(Some(OrderDetails {
        order,
        lines,
        customer,
    }))
}
