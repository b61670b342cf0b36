//! The built-in sandbox gateway: behaves by test token like a real
//! provider's test cards, with no state of its own, so any number of api and
//! worker processes agree on every outcome.
use std::time::Duration;

use async_trait::async_trait;

use super::gateway::{GatewayError, PaymentGateway, PaymentToken};
use crate::money::Money;

/// The sandbox's test tokens.
pub mod tokens {
    /// Authorises and settles.
    pub const OK: &str = "sandbox_ok";
    /// Authorisation declined: the order is refused and nothing is written.
    pub const DECLINED: &str = "sandbox_declined";
    /// Authorised; capture declined for good.
    pub const CAPTURE_DECLINED: &str = "sandbox_capture_declined";
    /// Capture fails transiently twice, then settles.
    pub const FLAKY: &str = "sandbox_flaky";
    /// Capture never answers in time.
    pub const TIMEOUT: &str = "sandbox_timeout";
    /// Capture hangs on its first attempt (a timeout), then settles: a
    /// gateway that stalls and recovers.
    pub const SLOW: &str = "sandbox_slow";
    /// Authorisation never answers in time: `placeOrder` fails with
    /// PAYMENT_UNAVAILABLE and writes nothing.
    pub const AUTHORIZE_TIMEOUT: &str = "sandbox_authorize_timeout";
    /// Every token the sandbox accepts.
    pub const ALL: &[&str] = &[
        OK,
        DECLINED,
        CAPTURE_DECLINED,
        FLAKY,
        TIMEOUT,
        SLOW,
        AUTHORIZE_TIMEOUT,
    ];
}

/// How many captures of a [`tokens::FLAKY`] payment fail before one succeeds.
pub const FLAKY_FAILURES: u32 = 2;

#[derive(Debug, Clone)]
pub struct SandboxGateway {
    /// How long a hanging call ([`tokens::TIMEOUT`], [`tokens::SLOW`],
    /// [`tokens::AUTHORIZE_TIMEOUT`]) hangs before reporting a timeout;
    /// callers normally give up sooner with their own deadline.
    pub timeout_after: Duration,
}

impl Default for SandboxGateway {
    fn default() -> Self {
        Self {
            timeout_after: Duration::from_secs(30),
        }
    }
}

impl SandboxGateway {
    async fn hang<T>(&self) -> Result<T, GatewayError> {
        tokio::time::sleep(self.timeout_after).await;
        Err(GatewayError::Timeout)
    }
}

/// The token is carried inside the reference, so capture needs no lookup.
fn token_of(authorization_ref: &str) -> &str {
    authorization_ref
        .strip_prefix("sbx:")
        .and_then(|rest| rest.split_once(':'))
        .map_or("", |(token, _)| token)
}

#[async_trait]
impl PaymentGateway for SandboxGateway {
    async fn authorize(&self, token: &PaymentToken, _amount: Money) -> Result<String, GatewayError> {
        match token.as_str() {
            tokens::DECLINED => Err(GatewayError::Declined("card declined".into())),
            tokens::AUTHORIZE_TIMEOUT => self.hang().await,
            t if tokens::ALL.contains(&t) => Ok(format!("sbx:{t}:{}", uuid::Uuid::now_v7().simple())),
            _ => Err(GatewayError::InvalidToken),
        }
    }

    async fn capture(
        &self,
        authorization_ref: &str,
        _amount: Money,
        attempt: u32,
    ) -> Result<(), GatewayError> {
        match token_of(authorization_ref) {
            tokens::OK => Ok(()),
            tokens::CAPTURE_DECLINED => Err(GatewayError::Declined("capture declined".into())),
            tokens::FLAKY if attempt <= FLAKY_FAILURES => Err(GatewayError::Transient(format!(
                "sandbox flaky failure {attempt} of {FLAKY_FAILURES}"
            ))),
            tokens::FLAKY => Ok(()),
            tokens::TIMEOUT => self.hang().await,
            tokens::SLOW if attempt <= 1 => self.hang().await,
            tokens::SLOW => Ok(()),
            _ => Err(GatewayError::Declined("unknown authorisation".into())),
        }
    }

    async fn void(&self, authorization_ref: &str) -> Result<(), GatewayError> {
        if token_of(authorization_ref).is_empty() {
            return Err(GatewayError::Declined("unknown authorisation".into()));
        }
        Ok(())
    }

    async fn refund(
        &self,
        authorization_ref: &str,
        _amount: Money,
        _idempotency_key: &str,
    ) -> Result<(), GatewayError> {
        self.void(authorization_ref).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    fn amount() -> Money {
        Money::new(1000, Currency::parse("EUR").expect("EUR"))
    }

    #[tokio::test]
    async fn each_token_behaves_as_documented() {
        let gateway = SandboxGateway {
            timeout_after: Duration::from_millis(10),
        };
        let auth = |token: &str| {
            let gateway = gateway.clone();
            let token = super::PaymentToken::parse(token).expect("a well-formed token");
            async move { gateway.authorize(&token, amount()).await }
        };
        let ok = auth(tokens::OK).await.expect("ok authorises");
        assert_eq!(gateway.capture(&ok, amount(), 1).await, Ok(()));

        assert!(matches!(
            auth(tokens::DECLINED).await,
            Err(GatewayError::Declined(_))
        ));
        assert_eq!(auth("tok_visa").await, Err(GatewayError::InvalidToken));

        let declined = auth(tokens::CAPTURE_DECLINED).await.expect("authorises");
        let err = gateway
            .capture(&declined, amount(), 1)
            .await
            .expect_err("capture declined");
        assert!(matches!(err, GatewayError::Declined(_)) && !err.is_retryable());

        let flaky = auth(tokens::FLAKY).await.expect("authorises");
        for attempt in 1..=FLAKY_FAILURES {
            let err = gateway
                .capture(&flaky, amount(), attempt)
                .await
                .expect_err("transient");
            assert!(err.is_retryable());
        }
        assert_eq!(
            gateway.capture(&flaky, amount(), FLAKY_FAILURES + 1).await,
            Ok(())
        );

        let slow = auth(tokens::TIMEOUT).await.expect("authorises");
        assert_eq!(
            gateway.capture(&slow, amount(), 1).await,
            Err(GatewayError::Timeout)
        );

        let stalls_once = auth(tokens::SLOW).await.expect("authorises");
        assert_eq!(
            gateway.capture(&stalls_once, amount(), 1).await,
            Err(GatewayError::Timeout)
        );
        assert_eq!(gateway.capture(&stalls_once, amount(), 2).await, Ok(()));
        assert_eq!(auth(tokens::AUTHORIZE_TIMEOUT).await, Err(GatewayError::Timeout));

        assert_eq!(gateway.void(&ok).await, Ok(()));
        assert_eq!(gateway.refund(&ok, amount(), "refund-1").await, Ok(()));
    }
}
