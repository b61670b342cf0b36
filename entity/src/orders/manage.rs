//! Cancelling and fulfilling orders.
//!
//! Cancelling returns every line's stock, voids an authorised payment or
//! refunds a settled one, and emails the customer — all in one transaction
//! with the status change, which is a compare-and-set: a settlement that
//! races a cancellation sees the order already CANCELLED (or the other way
//! round) and never both.
use chrono::Utc;
use sea_orm::DatabaseConnection;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;

use super::{OrderStatus, transition};
use crate::actor::Actor;
use crate::catalog::{Quantity, return_stock};
use crate::db::begin_write;
use crate::error::DomainError;
use crate::jobs::{EmailMessage, SendEmail};
use crate::money::Money;
use crate::payments::{PaymentGateway, PaymentStatus};
use crate::tables::{order_lines, orders, payments, users};

/// Cancels an order the actor may see (its owner, or an admin).
///
/// # Errors
/// [`DomainError::NotFound`] when the order does not exist or belongs to
/// someone else; [`DomainError::IllegalTransition`] when it is already
/// fulfilled, failed or cancelled; [`DomainError::PaymentDeclined`] when the
/// gateway refuses the void or refund (nothing is changed then).
pub async fn cancel_order(
    db: &DatabaseConnection,
    gateway: &dyn PaymentGateway,
    actor: Actor,
    order_id: Uuid,
    request_id: Option<String>,
) -> Result<orders::Model, DomainError> {
    super::find_order(db, actor, order_id)
        .await?
        .ok_or(DomainError::NotFound { entity: "order" })?;
    let txn = begin_write(db).await?;
    let order = transition(&txn, order_id, OrderStatus::Cancelled).await?;
    let lines = order_lines::Entity::find()
        .filter(order_lines::Column::OrderId.eq(order_id))
        .all(&txn)
        .await?;
    for line in &lines {
        return_stock(&txn, line.product_id, Quantity::parse(line.quantity)?, order_id).await?;
    }
    if let Some(payment) = payments::Entity::find()
        .filter(payments::Column::OrderId.eq(order_id))
        .one(&txn)
        .await?
    {
        release_payment(&txn, gateway, &payment).await?;
    }
    let customer = users::Entity::find_by_id(order.user_id)
        .one(&txn)
        .await?
        .ok_or(DomainError::NotFound { entity: "user" })?;
    crate::outbox::enqueue(
        &txn,
        &SendEmail {
            dedupe_key: format!("order-cancelled:{order_id}"),
            to: customer.email,
            message: EmailMessage::OrderCancelled { order_id },
            request_id,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(order)
}

/// Voids an authorised payment or refunds a settled one, at the gateway and
/// in the table (conditionally on the status just read).
async fn release_payment<C: ConnectionTrait>(
    conn: &C,
    gateway: &dyn PaymentGateway,
    payment: &payments::Model,
) -> Result<(), DomainError> {
    let next = match payment.status {
        PaymentStatus::Authorized => PaymentStatus::Voided,
        PaymentStatus::Settled => PaymentStatus::Refunded,
        PaymentStatus::Failed | PaymentStatus::Voided | PaymentStatus::Refunded => return Ok(()),
    };
    if let Some(reference) = &payment.authorization_ref {
        let amount = Money::from_parts(payment.amount_minor, &payment.currency)?;
        let result = if next == PaymentStatus::Voided {
            gateway.void(reference).await
        } else {
            gateway.refund(reference, amount).await
        };
        result.map_err(|e| DomainError::PaymentDeclined(e.to_string()))?;
    }
    let updated = payments::Entity::update_many()
        .col_expr(payments::Column::Status, Expr::value(next.to_string()))
        .col_expr(payments::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(payments::Column::Id.eq(payment.id))
        .filter(payments::Column::Status.eq(payment.status.to_string()))
        .exec(conn)
        .await?;
    if updated.rows_affected == 0 {
        return Err(DomainError::Conflict(
            "the payment changed meanwhile; retry".into(),
        ));
    }
    Ok(())
}

/// Marks a PAID order FULFILLED. Admins only.
///
/// # Errors
/// [`DomainError::Forbidden`] for a customer; [`DomainError::NotFound`];
/// [`DomainError::IllegalTransition`] unless the order is PAID.
pub async fn fulfill_order<C: ConnectionTrait>(
    conn: &C,
    actor: Actor,
    order_id: Uuid,
) -> Result<orders::Model, DomainError> {
    if !actor.is_admin() {
        return Err(DomainError::Forbidden);
    }
    transition(conn, order_id, OrderStatus::Fulfilled).await
}

/// Cancels orders still PENDING_PAYMENT after `older_than` (stock returned,
/// payment voided, customer emailed), at most `limit` per call. Returns how
/// many were cancelled; an order that was paid meanwhile is left alone.
///
/// # Errors
/// [`DomainError::Database`] or a gateway refusal of a void.
pub async fn expire_unpaid_orders(
    db: &DatabaseConnection,
    gateway: &dyn PaymentGateway,
    older_than: std::time::Duration,
    limit: u64,
) -> Result<usize, DomainError> {
    use sea_orm::{QueryOrder, QuerySelect};
    let cutoff = Utc::now() - chrono::Duration::from_std(older_than).unwrap_or_default();
    let stale: Vec<Uuid> = orders::Entity::find()
        .select_only()
        .column(orders::Column::Id)
        .filter(orders::Column::Status.eq(OrderStatus::PendingPayment.as_str()))
        .filter(orders::Column::CreatedAt.lt(cutoff))
        .order_by_asc(orders::Column::CreatedAt)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    let mut expired = 0;
    for order_id in stale {
        match cancel_order(db, gateway, Actor::system(), order_id, None).await {
            Ok(_) => expired += 1,
            Err(DomainError::IllegalTransition { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(expired)
}
