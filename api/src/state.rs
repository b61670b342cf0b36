//! The dependencies every resolver may use, in one struct stored in the
//! schema's data.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use entity::payments::PaymentGateway;
use sea_orm::DatabaseConnection;

use crate::auth::TokenKeys;

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub gateway: Arc<dyn PaymentGateway>,
    pub tokens: TokenKeys,
    /// Whether a token's session is still live (see `auth`).
    pub sessions: Arc<crate::auth::Sessions>,
    /// Wakes the dispatcher after a commit that wrote outbox rows.
    pub kicker: worker::dispatch::Kicker,
    /// The job queue this process pushes to, if any: `/readyz` checks it,
    /// admins and `/metrics` read its depths.
    pub queue: Option<worker::queue::JobQueue>,
    /// Order changes, published after commits and heard by `orderUpdated`.
    pub events: worker::events::OrderEvents,
    /// SQL statements run so far, counted by the connection's metric hook
    /// (exported as a metric; tests assert N+1 stays designed out).
    pub statements: Arc<StatementCounter>,
    /// Rate limits, shared through Redis by every instance when there is
    /// one (see `throttle`).
    pub limiter: crate::throttle::Limiter,
    /// What each named limit allows (`RATE_LIMIT_*`).
    pub rate_limits: Arc<crate::throttle::rules::RateLimits>,
    /// The catalog cache product reads go through; `None` with
    /// `CATALOG_CACHE=off`.
    pub catalog: Option<Arc<crate::catalog::CatalogCache>>,
    /// Product reads shared by concurrent requests: the cache's barrier
    /// and misses, and every product read when there is no cache.
    pub catalog_reads: Arc<crate::catalog::CatalogReads>,
}

#[derive(Debug, Default)]
pub struct StatementCounter(AtomicU64);

impl StatementCounter {
    pub fn record(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
