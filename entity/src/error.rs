//! The error every domain function returns.
//!
//! Policy: a variant names something a caller can act on (and the API maps to
//! a stable `extensions.code`); anything unexpected is [`DomainError::Database`],
//! which the API logs with the request id and never shows to a client.

use crate::ids::{ProductId, VariantId};
use crate::money::MoneyError;
use crate::orders::OrderStatus;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Input that fails a domain rule; `field` names the input it came from.
    #[error("invalid {field}: {message}")]
    InvalidInput { field: &'static str, message: String },
    /// Credentials or a token that do not prove who the caller is.
    #[error("not authenticated: {0}")]
    Unauthenticated(&'static str),
    /// The caller is known but may not do this.
    #[error("forbidden")]
    Forbidden,
    /// The payment gateway refused the payment for good.
    #[error("payment declined: {0}")]
    PaymentDeclined(String),
    /// The payment provider could not be asked (it failed, hung or is shut
    /// off by a circuit breaker): nothing was charged or written; retry later.
    #[error("payment provider unavailable: {0}")]
    PaymentUnavailable(String),
    /// The thing does not exist, or the caller may not see it.
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    /// Fewer units on hand than asked for.
    #[error(
        "variant {variant_id} of product {product_id} is out of stock: {requested} requested, {available} available"
    )]
    OutOfStock {
        product_id: ProductId,
        variant_id: VariantId,
        requested: i32,
        available: i32,
    },
    /// An order status change that the state machine does not allow.
    #[error("an order cannot go from {from} to {to}")]
    IllegalTransition { from: OrderStatus, to: OrderStatus },
    /// A uniqueness rule or a concurrent change stopped the write.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("database error")]
    Database(#[from] sea_orm::DbErr),
    #[error("payload encoding error")]
    Encoding(#[from] serde_json::Error),
}

impl DomainError {
    /// `err` as [`DomainError::Conflict`] with `message` when it is a
    /// unique-constraint violation (a taken sku, email or code), else as
    /// the database error it is.
    pub(crate) fn conflict_if_unique(err: sea_orm::DbErr, message: &str) -> Self {
        if is_unique_violation(&err) {
            Self::Conflict(message.to_owned())
        } else {
            Self::Database(err)
        }
    }

    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            field,
            message: message.into(),
        }
    }
}

/// Whether `err` is a unique-constraint violation (a duplicate email, sku,
/// idempotency key, …), on either backend.
#[must_use]
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}
