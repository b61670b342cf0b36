//! Scheduled work, on apalis-cron: expiring orders that stayed unpaid past
//! `ORDER_PAYMENT_TIMEOUT` (stock returned, payment released by a job, customer emailed).
//! The outbox sweep is the dispatcher's own loop (`dispatch`).
use std::time::Duration;

use apalis::prelude::{BoxDynError, Data, WorkerBuilder};
use apalis_cron::{CronScheduler, Schedule, Tick};
use chrono::Utc;
use sea_orm::DatabaseConnection;

use crate::events::OrderEvents;

/// Orders expired per tick at most; the next tick takes the rest.
const EXPIRE_BATCH: u64 = 100;

/// A tick every `interval`, starting one interval from now.
#[derive(Debug, Clone, Copy)]
pub struct Every(pub Duration);

impl Schedule<Utc> for Every {
    fn next_tick(&mut self, _tz: &Utc) -> Option<Tick<Utc>> {
        let next =
            Utc::now() + chrono::Duration::from_std(self.0).unwrap_or_else(|_| chrono::Duration::minutes(1));
        u64::try_from(next.timestamp()).ok().map(Tick::new)
    }
}

#[derive(Clone)]
struct Expiry {
    db: DatabaseConnection,
    older_than: Duration,
    events: OrderEvents,
}

async fn expire(_tick: Tick<Utc>, expiry: Data<Expiry>) -> Result<(), BoxDynError> {
    let expired = entity::orders::expire_unpaid_orders(&expiry.db, expiry.older_than, EXPIRE_BATCH).await?;
    if !expired.is_empty() {
        tracing::info!(
            expired = expired.len(),
            "cancelled orders left unpaid past the payment timeout"
        );
    }
    for order_id in expired {
        expiry.events.publish(order_id).await;
    }
    Ok(())
}

/// Runs the expiry schedule every `interval` until `shutdown`.
///
/// # Errors
/// When the apalis worker fails to run.
pub async fn run_expiry(
    db: DatabaseConnection,
    events: OrderEvents,
    older_than: Duration,
    interval: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let worker = WorkerBuilder::new("storefront-order-expiry")
        .backend(CronScheduler::new(Every(interval)))
        .data(Expiry {
            db,
            older_than,
            events,
        })
        .build(expire);
    worker
        .run_until(async move {
            shutdown.await;
            Ok::<(), std::io::Error>(())
        })
        .await
        .map_err(|e| anyhow::anyhow!("order expiry schedule stopped: {e}"))
}
