//! The payment gateway as every process calls it: the configured adapter
//! behind a timeout per call and one circuit breaker per process.
//!
//! A timeout or a transient error is a breaker failure; a decline or an
//! unknown token is an answer (the provider is up). While the breaker is
//! open every call fails at once with [`GatewayError::Unavailable`]:
//! `placeOrder` answers PAYMENT_UNAVAILABLE and jobs are postponed.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use entity::money::Money;
use entity::payments::{GatewayError, PaymentGateway, PaymentToken};

use crate::breaker::{BreakerSettings, CircuitBreaker, Dependency, Guarded};

/// How long each kind of call may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayTimeouts {
    /// `AUTHORIZE_TIMEOUT_MS` (default 10000): authorisation, while a
    /// customer waits on `placeOrder`.
    pub authorize: Duration,
    /// `CAPTURE_TIMEOUT_MS` (default 10000): capture, void and refund, in jobs.
    pub settle: Duration,
}

pub struct GuardedGateway {
    inner: Arc<dyn PaymentGateway>,
    timeouts: GatewayTimeouts,
    breaker: CircuitBreaker,
}

impl GuardedGateway {
    #[must_use]
    pub fn new(inner: Arc<dyn PaymentGateway>, timeouts: GatewayTimeouts, breaker: BreakerSettings) -> Self {
        Self {
            inner,
            timeouts,
            breaker: CircuitBreaker::new(Dependency::PaymentGateway, breaker),
        }
    }

    async fn guard<T>(
        &self,
        timeout: Duration,
        call: impl Future<Output = Result<T, GatewayError>> + Send,
    ) -> Result<T, GatewayError> {
        let failure = |err: &GatewayError| matches!(err, GatewayError::Transient(_) | GatewayError::Timeout);
        self.breaker
            .call(timeout, call, failure)
            .await
            .map_err(|err| match err {
                Guarded::Refused(refused) => GatewayError::Unavailable {
                    retry_after: refused.retry_after,
                },
                Guarded::TimedOut(_) => GatewayError::Timeout,
                Guarded::Failed(err) => err,
            })
    }
}

#[async_trait]
impl PaymentGateway for GuardedGateway {
    async fn authorize(&self, token: &PaymentToken, amount: Money) -> Result<String, GatewayError> {
        self.guard(self.timeouts.authorize, self.inner.authorize(token, amount))
            .await
    }

    async fn capture(
        &self,
        authorization_ref: &str,
        amount: Money,
        attempt: u32,
    ) -> Result<(), GatewayError> {
        self.guard(
            self.timeouts.settle,
            self.inner.capture(authorization_ref, amount, attempt),
        )
        .await
    }

    async fn void(&self, authorization_ref: &str) -> Result<(), GatewayError> {
        self.guard(self.timeouts.settle, self.inner.void(authorization_ref))
            .await
    }

    async fn refund(
        &self,
        authorization_ref: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<(), GatewayError> {
        self.guard(
            self.timeouts.settle,
            self.inner.refund(authorization_ref, amount, idempotency_key),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use entity::money::Currency;
    use entity::payments::{SandboxGateway, tokens};

    use super::*;

    #[tokio::test]
    async fn a_hanging_gateway_times_out_then_is_not_called_until_the_breaker_lets_a_probe_through() {
        let gateway = GuardedGateway::new(
            Arc::new(SandboxGateway {
                timeout_after: Duration::from_secs(60),
            }),
            GatewayTimeouts {
                authorize: Duration::from_millis(20),
                settle: Duration::from_millis(20),
            },
            BreakerSettings {
                failures: 2,
                open_for: Duration::from_millis(100),
            },
        );
        let amount = Money::new(100, Currency::parse("EUR").expect("EUR"));
        let token = |t: &str| PaymentToken::parse(t).expect("token");
        let declined = gateway.authorize(&token(tokens::DECLINED), amount).await;
        assert!(
            matches!(declined, Err(GatewayError::Declined(_))),
            "an answer, not a failure"
        );
        for _ in 0..2 {
            let hung = gateway.authorize(&token(tokens::AUTHORIZE_TIMEOUT), amount).await;
            assert_eq!(hung, Err(GatewayError::Timeout));
        }
        let started = std::time::Instant::now();
        let refused = gateway.authorize(&token(tokens::OK), amount).await;
        assert!(
            matches!(refused, Err(GatewayError::Unavailable { .. })),
            "{refused:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(10), "refused at once");

        tokio::time::sleep(Duration::from_millis(150)).await;
        let probe = gateway.authorize(&token(tokens::OK), amount).await;
        assert!(probe.is_ok(), "the probe goes through: {probe:?}");
        let reference = probe.expect("authorised");
        assert_eq!(gateway.capture(&reference, amount, 1).await, Ok(()));
    }
}
