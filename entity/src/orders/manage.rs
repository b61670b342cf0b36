//! Cancelling and fulfilling orders, and what happens when an order leaves.
//!
//! Cancelling is one transaction: the status change (a compare-and-set, so a
//! settlement that races a cancellation sees the order already CANCELLED, or
//! the other way round, and never both), every line's stock back, the
//! customer's email, and a `release_payment.v1` job that voids an authorised
//! payment or refunds a captured one. The gateway is called by that job,
//! never inside the transaction: on SQLite a network call there would hold
//! the only writer, and a commit that fails after a refund would leave a
//! refunded order PAID.
use chrono::Utc;
use sea_orm::DatabaseConnection;
use sea_orm::entity::prelude::*;

use super::{OrderStatus, transition};
use crate::accounts::Email;
use crate::actor::Actor;
use crate::catalog::{Quantity, return_stock};
use crate::db::begin_write;
use crate::error::DomainError;
use crate::ids::OrderId;
use crate::jobs::{EmailMessage, ReleasePayment, SendEmail};
use crate::tables::{order_lines, orders, payments, users};

/// Why an order left the shop's books.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Departure {
    /// Cancelled by its customer, an admin, or expiry.
    Cancelled,
    /// Its payment could not be captured.
    PaymentFailed,
}

/// What every order that leaves goes through, inside the caller's
/// transaction (after its status change): each line's units go back to
/// the variant it bought, a discount code it used gets that use back, and
/// the customer is emailed why.
pub(crate) async fn leave<C: ConnectionTrait>(
    conn: &C,
    order: &orders::Model,
    departure: Departure,
    request_id: Option<String>,
) -> Result<(), DomainError> {
    let lines = order_lines::Entity::find()
        .filter(order_lines::Column::OrderId.eq(order.id))
        .all(conn)
        .await?;
    for line in &lines {
        return_stock(conn, line.variant_id, Quantity::parse(line.quantity)?, order.id).await?;
    }
    crate::discounts::release(conn, order.id).await?;
    let (dedupe_key, message) = match departure {
        Departure::Cancelled => (
            format!("order-cancelled:{}", order.id),
            EmailMessage::OrderCancelled { order_id: order.id },
        ),
        Departure::PaymentFailed => (
            format!("payment-failed:{}", order.id),
            EmailMessage::PaymentFailed { order_id: order.id },
        ),
    };
    email_customer(conn, order, dedupe_key, message, request_id).await
}

/// Writes an email about `order` to its customer into the outbox.
pub(crate) async fn email_customer<C: ConnectionTrait>(
    conn: &C,
    order: &orders::Model,
    dedupe_key: String,
    message: EmailMessage,
    request_id: Option<String>,
) -> Result<(), DomainError> {
    let customer = users::Entity::find_by_id(order.user_id)
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound { entity: "user" })?;
    enqueue_email(
        conn,
        Email::stored(customer.email),
        dedupe_key,
        message,
        request_id,
    )
    .await
}

/// Writes an email to `to` into the outbox.
pub(crate) async fn enqueue_email<C: ConnectionTrait>(
    conn: &C,
    to: Email,
    dedupe_key: String,
    message: EmailMessage,
    request_id: Option<String>,
) -> Result<(), DomainError> {
    crate::outbox::enqueue(
        conn,
        &SendEmail {
            dedupe_key,
            to,
            message,
            request_id,
        },
    )
    .await?;
    Ok(())
}

/// Cancels an order the actor may see (its owner, or an admin).
///
/// # Errors
/// [`DomainError::NotFound`] when the order does not exist or belongs to
/// someone else; [`DomainError::IllegalTransition`] when it is already
/// fulfilled, failed or cancelled.
pub async fn cancel_order(
    db: &DatabaseConnection,
    actor: Actor,
    order_id: OrderId,
    request_id: Option<String>,
) -> Result<orders::Model, DomainError> {
    super::find_order(db, actor, order_id)
        .await?
        .ok_or(DomainError::NotFound { entity: "order" })?;
    let txn = begin_write(db).await?;
    let order = transition(&txn, order_id, OrderStatus::Cancelled).await?;
    leave(&txn, &order, Departure::Cancelled, request_id.clone()).await?;
    if let Some(payment) = payments::Entity::find()
        .filter(payments::Column::OrderId.eq(order_id))
        .one(&txn)
        .await?
    {
        crate::outbox::enqueue(
            &txn,
            &ReleasePayment {
                payment_id: payment.id,
                order_id,
                request_id,
            },
        )
        .await?;
    }
    txn.commit().await?;
    Ok(order)
}

/// Marks a PAID order FULFILLED (shipped), and emails its customer that
/// it is on its way, in one transaction. Admins only.
///
/// # Errors
/// [`DomainError::Forbidden`] for a customer; [`DomainError::NotFound`];
/// [`DomainError::IllegalTransition`] unless the order is PAID.
pub async fn fulfill_order(
    db: &DatabaseConnection,
    actor: Actor,
    order_id: OrderId,
    request_id: Option<String>,
) -> Result<orders::Model, DomainError> {
    if !actor.is_admin() {
        return Err(DomainError::Forbidden);
    }
    let txn = begin_write(db).await?;
    let order = transition(&txn, order_id, OrderStatus::Fulfilled).await?;
    email_customer(
        &txn,
        &order,
        format!("order-shipped:{order_id}"),
        EmailMessage::OrderShipped { order_id },
        request_id,
    )
    .await?;
    txn.commit().await?;
    Ok(order)
}

/// Cancels orders still PENDING_PAYMENT after `older_than` (stock returned,
/// payment released by a job, customer emailed), at most `limit` per call.
/// Returns how many were cancelled; an order that was paid meanwhile is left
/// alone.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn expire_unpaid_orders(
    db: &DatabaseConnection,
    older_than: std::time::Duration,
    limit: u64,
) -> Result<Vec<OrderId>, DomainError> {
    use sea_orm::{QueryOrder, QuerySelect};
    let cutoff = Utc::now() - chrono::Duration::from_std(older_than).unwrap_or_default();
    let stale: Vec<OrderId> = orders::Entity::find()
        .select_only()
        .column(orders::Column::Id)
        .filter(orders::Column::Status.eq(OrderStatus::PendingPayment.as_str()))
        .filter(orders::Column::CreatedAt.lt(cutoff))
        .order_by_asc(orders::Column::CreatedAt)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    let mut expired = Vec::new();
    for order_id in stale {
        match cancel_order(db, Actor::system(), order_id, None).await {
            Ok(_) => expired.push(order_id),
            Err(DomainError::IllegalTransition { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(expired)
}
