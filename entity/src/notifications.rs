//! Notifications: one `email_deliveries` row per email, unique by dedupe key,
//! so a redelivered `SendEmail` job never sends twice.
//!
//! A sender first *claims* the delivery (a short lease), sends, then marks it
//! SENT. Two workers holding the same job can never both send: the claim is a
//! compare-and-set. A worker that dies after sending but before marking leaves
//! an expired lease; the retry then sends again — the one duplicate that
//! at-least-once delivery cannot rule out, and only after a crash.
use std::time::Duration;

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::Condition;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait};

use crate::error::{DomainError, is_unique_violation};
use crate::ids::EmailDeliveryId;
use crate::jobs::SendEmail;
use crate::tables::email_deliveries;
pub use crate::tables::email_deliveries::DeliveryStatus;

/// What a sender may do with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Send it now; the lease is yours.
    Send(email_deliveries::Model),
    /// It was sent before: do nothing.
    AlreadySent,
    /// Another sender holds the lease until then: try again after it.
    Busy { until: chrono::DateTime<Utc> },
}

/// Claims the delivery of `job` for `lease`.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn claim_delivery<C: ConnectionTrait>(
    conn: &C,
    job: &SendEmail,
    lease: Duration,
) -> Result<Claim, DomainError> {
    let now = Utc::now();
    let inserted = email_deliveries::ActiveModel {
        id: Set(EmailDeliveryId::new()),
        dedupe_key: Set(job.dedupe_key.clone()),
        recipient: Set(job.to.to_string()),
        template: Set(job.message.template().to_owned()),
        status: Set(DeliveryStatus::Pending),
        attempts: Set(0),
        last_error: Set(None),
        claimed_until: Set(None),
        sent_at: Set(None),
        created_at: Set(now),
    }
    .insert(conn)
    .await;
    match inserted {
        Ok(_) => {}
        Err(err) if is_unique_violation(&err) => {}
        Err(err) => return Err(err.into()),
    }
    let until = now + chrono::Duration::from_std(lease).unwrap_or_else(|_| chrono::Duration::minutes(1));
    let claimable = [DeliveryStatus::Pending, DeliveryStatus::Failed].map(DeliveryStatus::as_str);
    let claimed = email_deliveries::Entity::update_many()
        .col_expr(
            email_deliveries::Column::Attempts,
            Expr::col(email_deliveries::Column::Attempts).add(1),
        )
        .col_expr(email_deliveries::Column::ClaimedUntil, Expr::value(until))
        .col_expr(
            email_deliveries::Column::Status,
            Expr::value(DeliveryStatus::Pending.as_str()),
        )
        .filter(email_deliveries::Column::DedupeKey.eq(job.dedupe_key.as_str()))
        .filter(email_deliveries::Column::Status.is_in(claimable))
        .filter(
            Condition::any()
                .add(email_deliveries::Column::ClaimedUntil.is_null())
                .add(email_deliveries::Column::ClaimedUntil.lt(now)),
        )
        .exec_with_returning(conn)
        .await?;
    if let Some(row) = claimed.into_iter().next() {
        return Ok(Claim::Send(row));
    }
    let current = email_deliveries::Entity::find()
        .filter(email_deliveries::Column::DedupeKey.eq(job.dedupe_key.as_str()))
        .one(conn)
        .await?;
    Ok(match current {
        Some(row) if row.status == DeliveryStatus::Sent => Claim::AlreadySent,
        Some(row) => Claim::Busy {
            until: row.claimed_until.unwrap_or(now),
        },
        None => Claim::Busy { until: now },
    })
}

/// Marks a claimed delivery as sent.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn delivery_sent<C: ConnectionTrait>(conn: &C, dedupe_key: &str) -> Result<(), DomainError> {
    email_deliveries::Entity::update_many()
        .col_expr(
            email_deliveries::Column::Status,
            Expr::value(DeliveryStatus::Sent.as_str()),
        )
        .col_expr(email_deliveries::Column::SentAt, Expr::value(Utc::now()))
        .col_expr(
            email_deliveries::Column::ClaimedUntil,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .col_expr(
            email_deliveries::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .filter(email_deliveries::Column::DedupeKey.eq(dedupe_key))
        .exec(conn)
        .await?;
    Ok(())
}

/// Records a failed send and releases the lease; a permanent failure marks
/// the delivery FAILED (an admin's retry of the dead job may claim it again).
///
/// # Errors
/// [`DomainError::Database`].
pub async fn delivery_failed<C: ConnectionTrait>(
    conn: &C,
    dedupe_key: &str,
    error: &str,
    permanent: bool,
) -> Result<(), DomainError> {
    let status = if permanent {
        DeliveryStatus::Failed
    } else {
        DeliveryStatus::Pending
    };
    email_deliveries::Entity::update_many()
        .col_expr(email_deliveries::Column::Status, Expr::value(status.as_str()))
        .col_expr(email_deliveries::Column::LastError, Expr::value(error))
        .col_expr(
            email_deliveries::Column::ClaimedUntil,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .filter(email_deliveries::Column::DedupeKey.eq(dedupe_key))
        .filter(email_deliveries::Column::Status.ne(DeliveryStatus::Sent.as_str()))
        .exec(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::DeliveryStatus;
    use sea_orm::Iterable;

    #[test]
    fn statuses_are_spelled_as_stored() {
        let all: Vec<&str> = DeliveryStatus::iter().map(DeliveryStatus::as_str).collect();
        assert_eq!(all, ["PENDING", "SENT", "FAILED"]);
    }
}
