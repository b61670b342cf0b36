//! Payments: the status of the one payment an order has.
//!
//! AUTHORIZED at order time; a settlement job makes it SETTLED or FAILED; a
//! cancellation's release job makes an authorised payment VOIDED and a
//! settled one REFUNDED. Every gateway call happens in a job (or, for the
//! authorisation, before the order's transaction), never inside a
//! database transaction.
//!
//! Layout: [`gateway`] (the trait, [`PaymentToken`]), [`sandbox`] (the
//! built-in test gateway), [`settle`] (capture), [`release`] (void/refund),
//! [`refund`] (an admin's partial refunds).
pub mod gateway;
pub mod refund;
pub mod release;
pub mod sandbox;
pub mod settle;

use chrono::Utc;
use sea_orm::ConnectionTrait;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;

use crate::error::DomainError;
use crate::ids::PaymentId;
use crate::tables::payments;
pub use crate::tables::payments::PaymentStatus;

pub use gateway::{GatewayError, PaymentGateway, PaymentToken};
pub use release::release_payment;
pub use sandbox::{SandboxGateway, tokens};
pub use settle::settle_payment;

/// Moves a payment from `from` to `to` if it is still in `from`: every
/// payment outcome is written this way, so two jobs racing on one payment
/// can never both win.
async fn compare_and_set<C: ConnectionTrait>(
    conn: &C,
    payment_id: PaymentId,
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
