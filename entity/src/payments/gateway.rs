//! The payment gateway boundary: what the shop asks of a payment provider.
use std::time::Duration;

use async_trait::async_trait;

use crate::error::DomainError;
use crate::money::Money;

/// The payment method a customer hands over (a card token from the
/// provider's checkout, or a sandbox test token): 1 to 200 visible ASCII
/// characters. Whether the provider knows it is the provider's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentToken(String);

impl PaymentToken {
    /// # Errors
    /// [`DomainError::InvalidInput`] on `paymentToken` for anything else.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.is_empty() || raw.len() > 200 || !raw.chars().all(|c| c.is_ascii_graphic()) {
            return Err(DomainError::invalid(
                "paymentToken",
                "must be 1-200 visible ASCII characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a gateway call failed; decides whether a job retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The provider refused for good (card declined, capture refused).
    #[error("declined: {0}")]
    Declined(String),
    /// The payment method token is not one the provider knows.
    #[error("unknown payment token")]
    InvalidToken,
    /// A temporary failure: retry later.
    #[error("temporary gateway failure: {0}")]
    Transient(String),
    /// No answer in time: the outcome is unknown, retry (captures are idempotent).
    #[error("gateway timed out")]
    Timeout,
    /// Not called: the provider failed or hung repeatedly just now (a
    /// circuit breaker is open); try again after `retry_after`.
    #[error("payment provider unavailable; try again in {retry_after:?}")]
    Unavailable { retry_after: Duration },
}

impl GatewayError {
    /// Whether trying again later may succeed.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            GatewayError::Transient(_) | GatewayError::Timeout | GatewayError::Unavailable { .. }
        )
    }
}

/// A payment provider. Authorise at order time, capture in a job; every call
/// is idempotent on the provider's side for the same authorisation reference.
#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Reserves `amount` on the payment method `token`; returns the
    /// provider's reference for the authorisation.
    async fn authorize(&self, token: &PaymentToken, amount: Money) -> Result<String, GatewayError>;
    /// Takes the authorised money. `attempt` counts from 1.
    async fn capture(&self, authorization_ref: &str, amount: Money, attempt: u32)
    -> Result<(), GatewayError>;
    /// Releases an authorisation that will not be captured.
    async fn void(&self, authorization_ref: &str) -> Result<(), GatewayError>;
    /// Gives captured money back. `idempotency_key` names this refund: the
    /// provider refunds once per key however often it is asked (a job that
    /// crashed after the call asks again).
    async fn refund(
        &self,
        authorization_ref: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<(), GatewayError>;
}
