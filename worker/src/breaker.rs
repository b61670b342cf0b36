//! Circuit breakers around the dependencies a slow answer hurts: the payment
//! gateway (authorise in the api; capture, void, refund in jobs) and the
//! SMTP server. One breaker per dependency per process.
//!
//! - **Closed**: calls go through; `failures` consecutive failures or
//!   timeouts (`BREAKER_FAILURES`, default 5) open it. A success resets the count.
//! - **Open** for `BREAKER_OPEN_MS` (default 10 s): every call is refused at
//!   once with [`Refused`], so `placeOrder` answers PAYMENT_UNAVAILABLE
//!   instead of hanging and jobs are postponed (not failed, no attempt used).
//! - **Half-open**: the first call after that is a probe, and the only call
//!   let through until it ends; its success closes the breaker, its failure
//!   opens it again for another period.
//!
//! Every transition is a log line (warn on open, info otherwise), a
//! `circuit_breaker_transitions_total{dependency,from,to}` count, and the
//! gauge `circuit_breaker_state{dependency}` (0 closed, 1 open, 2 half-open),
//! through the `metrics` facade.
//!
//! Why not a crate: `recloser` exposes neither its state nor its transitions
//! and, like `failsafe`, lets every call through while half-open (a gateway
//! that still hangs would hold every request again); `tower-resilience`
//! wraps tower `Service`s, not the plain async calls we guard.
use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// When breakers open and for how long (the same for every dependency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// `BREAKER_FAILURES` (default 5): consecutive failures that open a breaker.
    pub failures: u32,
    /// `BREAKER_OPEN_MS` (default 10000): how long it stays open before a probe.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures: 5,
            open_for: Duration::from_secs(10),
        }
    }
}

/// The dependencies that have a breaker; the `dependency` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    PaymentGateway,
    Smtp,
}

impl Dependency {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Dependency::PaymentGateway => "payment_gateway",
            Dependency::Smtp => "smtp",
        }
    }
}

/// A breaker's state, as the gauge shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

impl BreakerState {
    fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// The call was not made: the breaker is open (or its probe is running).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{} is unavailable (circuit open); try again in {retry_after:?}", dependency.as_str())]
pub struct Refused {
    pub dependency: Dependency,
    /// When the next call may go through.
    pub retry_after: Duration,
}

/// How a guarded call ended.
#[derive(Debug, thiserror::Error)]
pub enum Guarded<E> {
    #[error(transparent)]
    Refused(Refused),
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    #[error(transparent)]
    Failed(E),
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
pub struct CircuitBreaker {
    dependency: Dependency,
    settings: BreakerSettings,
    state: Mutex<State>,
}

impl CircuitBreaker {
    #[must_use]
    pub fn new(dependency: Dependency, settings: BreakerSettings) -> Self {
        let breaker = Self {
            dependency,
            settings,
            state: Mutex::new(State::Closed { failures: 0 }),
        };
        breaker.gauge(BreakerState::Closed);
        breaker
    }

    /// The state now (an open breaker whose time is up counts as half-open).
    #[must_use]
    pub fn state(&self) -> BreakerState {
        match &*self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() < *until => BreakerState::Open,
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Runs `call` within `timeout` unless the breaker refuses it, and
    /// records the outcome: a timeout or an error for which `is_failure`
    /// holds counts as a failure; anything else (an answer, even a "no")
    /// shows the dependency is up.
    ///
    /// # Errors
    /// [`Guarded::Refused`] without calling; [`Guarded::TimedOut`];
    /// [`Guarded::Failed`] with the call's own error.
    pub async fn call<T, E>(
        &self,
        timeout: Duration,
        call: impl Future<Output = Result<T, E>>,
        is_failure: impl FnOnce(&E) -> bool,
    ) -> Result<T, Guarded<E>> {
        let permit = self.admit().map_err(Guarded::Refused)?;
        let outcome = tokio::time::timeout(timeout, call).await;
        permit.finish(match &outcome {
            Ok(Ok(_)) => false,
            Ok(Err(err)) => is_failure(err),
            Err(_) => true,
        });
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(Guarded::Failed(err)),
            Err(_) => Err(Guarded::TimedOut(timeout)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn admit(&self) -> Result<Permit<'_>, Refused> {
        let mut state = self.lock();
        let now = Instant::now();
        match &mut *state {
            State::Closed { .. } => Ok(Permit::new(self, false)),
            State::Open { until } if now < *until => Err(self.refused(*until - now)),
            State::Open { .. } => {
                *state = State::HalfOpen { probing: true };
                self.transition(BreakerState::Open, BreakerState::HalfOpen);
                Ok(Permit::new(self, true))
            }
            State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                Ok(Permit::new(self, true))
            }
            State::HalfOpen { probing: true } => Err(self.refused(self.settings.open_for)),
        }
    }

    /// Postponed jobs come back spread over half a period after `wait`, so
    /// they do not all meet the one probe at once.
    fn refused(&self, wait: Duration) -> Refused {
        let spread = self.settings.open_for.mul_f64(rand::random::<f64>() * 0.5);
        Refused {
            dependency: self.dependency,
            retry_after: wait + spread,
        }
    }

    fn record(&self, probe: bool, failed: bool) {
        let mut state = self.lock();
        let open = || State::Open {
            until: Instant::now() + self.settings.open_for,
        };
        match &mut *state {
            State::Closed { failures } if failed => {
                *failures += 1;
                if *failures >= self.settings.failures {
                    *state = open();
                    self.transition(BreakerState::Closed, BreakerState::Open);
                }
            }
            State::Closed { failures } => *failures = 0,
            State::HalfOpen { .. } if probe && failed => {
                *state = open();
                self.transition(BreakerState::HalfOpen, BreakerState::Open);
            }
            State::HalfOpen { .. } if probe => {
                *state = State::Closed { failures: 0 };
                self.transition(BreakerState::HalfOpen, BreakerState::Closed);
            }
            // A call admitted before the breaker opened, ending late: the
            // state already says what it would.
            State::HalfOpen { .. } | State::Open { .. } => {}
        }
    }

    /// A probe that ended without an outcome (its caller was cancelled):
    /// the next call probes instead.
    fn abandon_probe(&self) {
        if let State::HalfOpen { probing } = &mut *self.lock() {
            *probing = false;
        }
    }

    fn transition(&self, from: BreakerState, to: BreakerState) {
        let dependency = self.dependency.as_str();
        if to == BreakerState::Open {
            tracing::warn!(
                dependency,
                from = from.as_str(),
                open_for = ?self.settings.open_for,
                "circuit breaker opened: calls are refused until a probe succeeds"
            );
        } else {
            tracing::info!(
                dependency,
                from = from.as_str(),
                to = to.as_str(),
                "circuit breaker {}",
                if to == BreakerState::Closed {
                    "closed: calls go through again"
                } else {
                    "half-open: the next call probes"
                }
            );
        }
        metrics::counter!(
            "circuit_breaker_transitions_total",
            "dependency" => dependency,
            "from" => from.as_str(),
            "to" => to.as_str()
        )
        .increment(1);
        self.gauge(to);
    }

    fn gauge(&self, state: BreakerState) {
        metrics::gauge!("circuit_breaker_state", "dependency" => self.dependency.as_str())
            .set(f64::from(state as u8));
    }
}

/// The right to make one call; reports its outcome (or, dropped, its absence).
struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    finished: bool,
}

impl<'a> Permit<'a> {
    fn new(breaker: &'a CircuitBreaker, probe: bool) -> Self {
        Self {
            breaker,
            probe,
            finished: false,
        }
    }

    fn finish(mut self, failed: bool) {
        self.finished = true;
        self.breaker.record(self.probe, failed);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.finished {
            self.breaker.abandon_probe();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(open_for_ms: u64) -> CircuitBreaker {
        CircuitBreaker::new(
            Dependency::PaymentGateway,
            BreakerSettings {
                failures: 3,
                open_for: Duration::from_millis(open_for_ms),
            },
        )
    }

    async fn fail(b: &CircuitBreaker) -> Result<(), Guarded<&'static str>> {
        b.call(Duration::from_secs(1), async { Err("down") }, |_| true)
            .await
    }

    async fn succeed(b: &CircuitBreaker) -> Result<(), Guarded<&'static str>> {
        b.call(Duration::from_secs(1), async { Ok(()) }, |_| true).await
    }

    #[tokio::test]
    async fn consecutive_failures_open_it_and_a_success_in_between_resets_the_count() {
        let b = breaker(60_000);
        for _ in 0..2 {
            assert!(matches!(fail(&b).await, Err(Guarded::Failed("down"))));
        }
        succeed(&b).await.expect("closed");
        for _ in 0..2 {
            let _ = fail(&b).await;
        }
        assert_eq!(b.state(), BreakerState::Closed, "2 failures since the success");
        let _ = fail(&b).await;
        assert_eq!(b.state(), BreakerState::Open);
        match succeed(&b).await {
            Err(Guarded::Refused(refused)) => assert!(refused.retry_after > Duration::from_secs(59)),
            other => panic!("refused while open: {other:?}"),
        }
    }

    #[tokio::test]
    async fn answers_that_are_not_failures_keep_it_closed() {
        let b = breaker(60_000);
        for _ in 0..5 {
            let declined = b
                .call(Duration::from_secs(1), async { Err::<(), _>("declined") }, |_| {
                    false
                })
                .await;
            assert!(matches!(declined, Err(Guarded::Failed("declined"))));
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test]
    async fn timeouts_count_as_failures() {
        let b = breaker(60_000);
        for _ in 0..3 {
            let hung = b
                .call(
                    Duration::from_millis(10),
                    std::future::pending::<Result<(), &str>>(),
                    |_| true,
                )
                .await;
            assert!(matches!(hung, Err(Guarded::TimedOut(_))));
        }
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[tokio::test]
    async fn one_probe_at_a_time_whose_success_closes_it() {
        let b = std::sync::Arc::new(breaker(20));
        for _ in 0..3 {
            let _ = fail(&b).await;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let probe = {
            let b = std::sync::Arc::clone(&b);
            tokio::spawn(async move {
                b.call(
                    Duration::from_secs(5),
                    async { wait.await.map_err(|_| "gone") },
                    |_| true,
                )
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            matches!(succeed(&b).await, Err(Guarded::Refused(_))),
            "a second call waits for the probe"
        );
        release.send(()).expect("probe waiting");
        probe.await.expect("probe task").expect("probe succeeds");
        assert_eq!(b.state(), BreakerState::Closed);
        succeed(&b).await.expect("closed again");
    }

    #[tokio::test]
    async fn a_failed_probe_opens_it_again_and_an_abandoned_one_frees_the_slot() {
        let b = breaker(20);
        for _ in 0..3 {
            let _ = fail(&b).await;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        let _ = fail(&b).await;
        assert_eq!(b.state(), BreakerState::Open);

        tokio::time::sleep(Duration::from_millis(30)).await;
        let abandoned = b.call(
            Duration::from_secs(5),
            std::future::pending::<Result<(), &str>>(),
            |_| true,
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(10), abandoned)
                .await
                .is_err()
        );
        succeed(&b).await.expect("the next call probes");
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
