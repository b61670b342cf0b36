//! Settling a payment: the rule behind the `SettlePayment` job.
//!
//! Safe to run twice and safe against a racing cancellation:
//! - only an AUTHORIZED payment of a PENDING_PAYMENT order is captured
//!   (one conditional statement); anything else is a no-op;
//! - the outcome is written with compare-and-set updates; a capture that
//!   lands after the order was cancelled (the payment may even have been
//!   voided meanwhile) records the money as taken and writes a
//!   `release_payment.v1` job, which refunds it;
//! - every attempt is counted on the payment (`attempts`, `last_error`),
//!   which GraphQL shows on `Order.payment`; a capture the gateway adapter
//!   refused without calling (its circuit breaker is open) is no attempt:
//!   the job is postponed.
//!
//! The gateway bounds its own calls (the adapter's timeout), so a hanging
//! provider comes back here as [`GatewayError::Timeout`].
use chrono::Utc;
use sea_orm::DatabaseConnection;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Query;
use sea_orm::sea_query::{Expr, ExprTrait};

use super::{GatewayError, PaymentGateway, PaymentStatus, compare_and_set};
use crate::db::begin_write;
use crate::error::DomainError;
use crate::ids::PaymentId;
use crate::jobs::{EmailMessage, JobOutcome, ReleasePayment, SettlePayment};
use crate::money::Money;
use crate::orders::manage::{Departure, email_customer, leave};
use crate::orders::{OrderStatus, transition};
use crate::tables::{orders, payments};

/// Counts one capture attempt on an AUTHORIZED payment of an order still
/// waiting for it; `None` when there is nothing to capture (settled, failed,
/// voided, or the order was cancelled and its payment is being released).
async fn start_attempt(
    db: &DatabaseConnection,
    payment_id: PaymentId,
) -> Result<Option<payments::Model>, DomainError> {
    let started = payments::Entity::update_many()
        .col_expr(
            payments::Column::Attempts,
            Expr::col(payments::Column::Attempts).add(1),
        )
        .col_expr(payments::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(payments::Column::Id.eq(payment_id))
        .filter(payments::Column::Status.eq(PaymentStatus::Authorized.to_string()))
        .filter(
            payments::Column::OrderId.in_subquery(
                Query::select()
                    .column(orders::Column::Id)
                    .from(orders::Entity)
                    .and_where(orders::Column::Status.eq(OrderStatus::PendingPayment.as_str()))
                    .to_owned(),
            ),
        )
        .exec_with_returning(db)
        .await?;
    Ok(started.into_iter().next())
}

/// Captures the payment of `job` and records the outcome.
///
/// # Errors
/// [`DomainError`] only when the database fails; gateway failures are
/// outcomes: a decline is `Done` (the order is PAYMENT_FAILED), a transient
/// error or a timeout is `Retry`; an unavailable gateway (not called) is
/// `Later`.
pub async fn settle_payment(
    db: &DatabaseConnection,
    gateway: &dyn PaymentGateway,
    job: &SettlePayment,
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
    match gateway.capture(&reference, amount, attempt).await {
        Ok(()) => record_settled(db, &payment, job.request_id.clone()).await,
        Err(GatewayError::Declined(reason)) => {
            record_declined(db, &payment, &reason, job.request_id.clone()).await
        }
        Err(GatewayError::InvalidToken) => {
            record_declined(db, &payment, "unknown authorisation", job.request_id.clone()).await
        }
        Err(err @ GatewayError::Unavailable { retry_after }) => {
            // Not called, so not an attempt: take back the one just counted.
            payments::Entity::update_many()
                .col_expr(
                    payments::Column::Attempts,
                    Expr::col(payments::Column::Attempts).sub(1),
                )
                .filter(payments::Column::Id.eq(payment.id))
                .exec(db)
                .await?;
            Ok(JobOutcome::Later {
                after: retry_after,
                reason: err.to_string(),
            })
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

/// The money was taken. Normally the order becomes PAID and the customer
/// gets a receipt; if the order was cancelled while the capture ran, the
/// payment is recorded as SETTLED all the same (from AUTHORIZED, or from
/// VOIDED when the release got there first) and a release job refunds it.
async fn record_settled(
    db: &DatabaseConnection,
    payment: &payments::Model,
    request_id: Option<String>,
) -> Result<JobOutcome, DomainError> {
    let txn = begin_write(db).await?;
    let mut captured = false;
    for from in [PaymentStatus::Authorized, PaymentStatus::Voided] {
        if compare_and_set(&txn, payment.id, from, PaymentStatus::Settled, None).await? {
            captured = true;
            break;
        }
    }
    if !captured {
        // Settled, failed or refunded by an earlier delivery of this job.
        txn.rollback().await?;
        return Ok(JobOutcome::Done);
    }
    match transition(&txn, payment.order_id, OrderStatus::Paid).await {
        Ok(order) => {
            email_customer(
                &txn,
                &order,
                format!("payment-receipt:{}", order.id),
                EmailMessage::PaymentReceipt { order_id: order.id },
                request_id,
            )
            .await?;
        }
        Err(DomainError::IllegalTransition {
            from: OrderStatus::Cancelled,
            ..
        }) => {
            crate::outbox::enqueue(
                &txn,
                &ReleasePayment {
                    payment_id: payment.id,
                    order_id: payment.order_id,
                    request_id,
                },
            )
            .await?;
        }
        Err(err) => return Err(err),
    }
    txn.commit().await?;
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
    match transition(&txn, payment.order_id, OrderStatus::PaymentFailed).await {
        Ok(order) => leave(&txn, &order, Departure::PaymentFailed, request_id).await?,
        // Cancelled while the capture ran: the cancellation returned the
        // stock and told the customer; no money was taken.
        Err(DomainError::IllegalTransition {
            from: OrderStatus::Cancelled,
            ..
        }) => {}
        Err(err) => return Err(err),
    }
    txn.commit().await?;
    Ok(JobOutcome::Done)
}
