//! Releasing the payment of a cancelled order: the rule behind the
//! `ReleasePayment` job (`release_payment.v1`).
//!
//! Void an AUTHORIZED payment, refund a SETTLED one; FAILED, VOIDED and
//! REFUNDED payments need nothing, so a redelivered job is a no-op. The
//! gateway is called first and the outcome written after with a
//! compare-and-set; if a racing capture changed the payment meanwhile
//! (AUTHORIZED → SETTLED), the job looks again and refunds. The gateway
//! bounds its own calls (the adapter's timeout).
use sea_orm::DatabaseConnection;
use sea_orm::entity::prelude::*;

use super::{GatewayError, PaymentGateway, PaymentStatus, compare_and_set};
use crate::error::DomainError;
use crate::jobs::{JobOutcome, ReleasePayment};
use crate::money::Money;
use crate::orders::OrderStatus;
use crate::tables::{orders, payments};

/// How many times a release looks again after a racing capture moved the
/// payment; more than one race on one payment means something else is wrong.
const MAX_ROUNDS: usize = 3;

/// Releases the payment of `job`'s cancelled order.
///
/// # Errors
/// [`DomainError`] only when the database fails; gateway failures are
/// outcomes: a refusal is `Fail` (the job is dead for an admin to see), a
/// transient error or a timeout is `Retry`; an unavailable gateway (not
/// called: its circuit breaker is open) is `Later`.
pub async fn release_payment(
    db: &DatabaseConnection,
    gateway: &dyn PaymentGateway,
    job: &ReleasePayment,
) -> Result<JobOutcome, DomainError> {
    let order_status: Option<OrderStatus> = orders::Entity::find_by_id(job.order_id)
        .one(db)
        .await?
        .map(|o| o.status);
    if order_status != Some(OrderStatus::Cancelled) {
        return Ok(JobOutcome::Fail(format!(
            "order {} is not cancelled; its payment is not released",
            job.order_id
        )));
    }
    for _ in 0..MAX_ROUNDS {
        let Some(payment) = payments::Entity::find_by_id(job.payment_id).one(db).await? else {
            return Ok(JobOutcome::Fail(format!(
                "payment {} does not exist",
                job.payment_id
            )));
        };
        let next = match payment.status {
            PaymentStatus::Authorized => PaymentStatus::Voided,
            PaymentStatus::Settled => PaymentStatus::Refunded,
            PaymentStatus::Failed | PaymentStatus::Voided | PaymentStatus::Refunded => {
                return Ok(JobOutcome::Done);
            }
        };
        if let Some(reference) = &payment.authorization_ref {
            let amount = Money::from_parts(payment.amount_minor, &payment.currency)?;
            let result = if next == PaymentStatus::Voided {
                gateway.void(reference).await
            } else {
                gateway
                    .refund(reference, amount, &format!("release:{}", payment.id))
                    .await
            };
            match result {
                Ok(()) => {}
                Err(err @ GatewayError::Unavailable { retry_after }) => {
                    return Ok(JobOutcome::Later {
                        after: retry_after,
                        reason: err.to_string(),
                    });
                }
                Err(err) if err.is_retryable() => return Ok(JobOutcome::Retry(err.to_string())),
                Err(err) => return Ok(JobOutcome::Fail(format!("{next} refused: {err}"))),
            }
        }
        if compare_and_set(db, payment.id, payment.status, next, None).await? {
            return Ok(JobOutcome::Done);
        }
    }
    Ok(JobOutcome::Retry(
        "the payment kept changing while it was released".into(),
    ))
}
