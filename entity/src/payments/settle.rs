//! Settling a payment: the rule behind the `SettlePayment` job.
//!
//! Safe to run twice and safe against a racing cancellation:
//! - only an AUTHORIZED payment is captured; anything else is a no-op;
//! - the outcome is written with compare-and-set updates, so a cancellation
//!   that voided the payment while the capture was in flight wins, and the
//!   captured money is refunded at once;
//! - every attempt is counted on the payment (`attempts`, `last_error`),
//!   which GraphQL shows on `Order.payment`.
use std::time::Duration;

use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{DatabaseConnection, DatabaseTransaction};

use super::{GatewayError, PaymentGateway, PaymentStatus};
use crate::catalog::{Quantity, return_stock};
use crate::db::begin_write;
use crate::error::DomainError;
use crate::jobs::{EmailMessage, JobOutcome, SendEmail, SettlePayment};
use crate::money::Money;
use crate::orders::{OrderStatus, transition};
use crate::tables::{order_lines, orders, payments, users};

/// Moves a payment from `from` to `to` if it is still in `from`.
async fn compare_and_set<C: ConnectionTrait>(
    conn: &C,
    payment_id: Uuid,
    from: PaymentStatus,
    to: PaymentStatus,
    error: Option<&str>,
) -> Result<bool, DomainError> {
    let updated = payments::Entity::update_many()
        .col_expr(payments::Column::Status, Expr::value(to.to_string()))
        .col_expr(payments::Column::LastError, Expr::value(error.map(str::to_owned)))
        .col_expr(payments::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(payments::Column::Id.eq(payment_id))
        .filter(payments::Column::Status.eq(from.to_string()))
        .exec(conn)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Counts one capture attempt on an AUTHORIZED payment; `None` when the
/// payment is no longer AUTHORIZED (settled, failed, voided: nothing to do).
async fn start_attempt(
    db: &DatabaseConnection,
    payment_id: Uuid,
) -> Result<Option<payments::Model>, DomainError> {
    let started = payments::Entity::update_many()
        .col_expr(
            payments::Column::Attempts,
            Expr::col(payments::Column::Attempts).add(1),
        )
        .col_expr(payments::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(payments::Column::Id.eq(payment_id))
        .filter(payments::Column::Status.eq(PaymentStatus::Authorized.to_string()))
        .exec_with_returning(db)
        .await?;
    Ok(started.into_iter().next())
}

async fn customer_email(txn: &DatabaseTransaction, order: &orders::Model) -> Result<String, DomainError> {
    Ok(users::Entity::find_by_id(order.user_id)
        .one(txn)
        .await?
        .ok_or(DomainError::NotFound { entity: "user" })?
        .email)
}

/// Captures the payment of `job` and records the outcome.
///
/// # Errors
/// [`DomainError`] only when the database fails; gateway failures are
/// outcomes: a decline is `Done` (the order is PAYMENT_FAILED), a transient
/// error or a timeout is `Retry`.
pub async fn settle_payment(
    db: &DatabaseConnection,
    gateway: &dyn PaymentGateway,
    job: &SettlePayment,
    capture_timeout: Duration,
) -> Result<JobOutcome, DomainError> {
    let Some(payment) = start_attempt(db, job.payment_id).await? else {
        return match payments::Entity::find_by_id(job.payment_id).one(db).await? {
            Some(_) => Ok(JobOutcome::Done),
            None => Ok(JobOutcome::Fail(format!(
                "payment {} does not exist",
                job.payment_id
            ))),
        };
    };
    let amount = Money::from_parts(payment.amount_minor, &payment.currency)?;
    let reference = payment.authorization_ref.clone().unwrap_or_default();
    let attempt = u32::try_from(payment.attempts).unwrap_or(u32::MAX);
    let captured =
        match tokio::time::timeout(capture_timeout, gateway.capture(&reference, amount, attempt)).await {
            Ok(result) => result,
            Err(_) => Err(GatewayError::Timeout),
        };
    match captured {
        Ok(()) => record_settled(db, gateway, &payment, amount, job.request_id.clone()).await,
        Err(GatewayError::Declined(reason)) => {
            record_declined(db, &payment, &reason, job.request_id.clone()).await
        }
        Err(GatewayError::InvalidToken) => {
            record_declined(db, &payment, "unknown authorisation", job.request_id.clone()).await
        }
        Err(err @ (GatewayError::Transient(_) | GatewayError::Timeout)) => {
            let message = err.to_string();
            payments::Entity::update_many()
                .col_expr(payments::Column::LastError, Expr::value(message.clone()))
                .filter(payments::Column::Id.eq(payment.id))
                .exec(db)
                .await?;
            Ok(JobOutcome::Retry(message))
        }
    }
}

async fn record_settled(
    db: &DatabaseConnection,
    gateway: &dyn PaymentGateway,
    payment: &payments::Model,
    amount: Money,
    request_id: Option<String>,
) -> Result<JobOutcome, DomainError> {
    let txn = begin_write(db).await?;
    if compare_and_set(
        &txn,
        payment.id,
        PaymentStatus::Authorized,
        PaymentStatus::Settled,
        None,
    )
    .await?
    {
        let order = transition(&txn, payment.order_id, OrderStatus::Paid).await?;
        let to = customer_email(&txn, &order).await?;
        crate::outbox::enqueue(
            &txn,
            &SendEmail {
                dedupe_key: format!("payment-receipt:{}", order.id),
                to,
                message: EmailMessage::PaymentReceipt { order_id: order.id },
                request_id,
            },
        )
        .await?;
        txn.commit().await?;
        return Ok(JobOutcome::Done);
    }
    txn.rollback().await?;
    // The order was cancelled (payment voided) while the capture ran: the
    // money was taken anyway, so give it back.
    let current = payments::Entity::find_by_id(payment.id).one(db).await?;
    if current.as_ref().map(|p| p.status) == Some(PaymentStatus::Voided) {
        let reference = payment.authorization_ref.clone().unwrap_or_default();
        if let Err(err) = gateway.refund(&reference, amount).await {
            return Ok(JobOutcome::Retry(format!(
                "refund after a late capture failed: {err}"
            )));
        }
        compare_and_set(
            db,
            payment.id,
            PaymentStatus::Voided,
            PaymentStatus::Refunded,
            None,
        )
        .await?;
    }
    Ok(JobOutcome::Done)
}

async fn record_declined(
    db: &DatabaseConnection,
    payment: &payments::Model,
    reason: &str,
    request_id: Option<String>,
) -> Result<JobOutcome, DomainError> {
    let txn = begin_write(db).await?;
    let message = format!("capture declined: {reason}");
    if !compare_and_set(
        &txn,
        payment.id,
        PaymentStatus::Authorized,
        PaymentStatus::Failed,
        Some(&message),
    )
    .await?
    {
        return Ok(JobOutcome::Done);
    }
    let order = transition(&txn, payment.order_id, OrderStatus::PaymentFailed).await?;
    let lines = order_lines::Entity::find()
        .filter(order_lines::Column::OrderId.eq(order.id))
        .all(&txn)
        .await?;
    for line in &lines {
        return_stock(&txn, line.product_id, Quantity::parse(line.quantity)?, order.id).await?;
    }
    let to = customer_email(&txn, &order).await?;
    crate::outbox::enqueue(
        &txn,
        &SendEmail {
            dedupe_key: format!("payment-failed:{}", order.id),
            to,
            message: EmailMessage::PaymentFailed { order_id: order.id },
            request_id,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(JobOutcome::Done)
}
