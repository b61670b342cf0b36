//! Polling with a deadline, for what happens in the background (jobs,
//! emails, processes coming up).
use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` until it returns `Ok`, for at most `within`; panics with
/// `what` and the last `Err` otherwise. Polls every 50 ms.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if started.elapsed() >= within => {
                panic!("{what}: not reached within {within:?}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Polls `condition` every 20 ms until it holds; panics after `within`.
pub async fn until(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    until_async(within, what, || std::future::ready(condition())).await;
}

/// [`until`] for an async condition.
pub async fn until_async<F, Fut>(within: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
