//! Scheduled work: expiring orders that stayed unpaid past
//! `ORDER_PAYMENT_TIMEOUT` (stock returned, payment released by a job,
//! customer emailed), on apalis-cron; pruning the outbox of rows finished
//! longer ago than `OUTBOX_RETENTION` ([`run_outbox_prune`]); deleting
//! carts nobody changed for `CART_RETENTION` ([`run_cart_expiry`]).
//! The outbox sweep is the dispatcher's own loop (`dispatch`).
//!
//! Every worker process runs both, safely at once: expiry cancels each order
//! through its state machine (a second cancel is an illegal transition,
//! skipped), pruning takes its rows `FOR UPDATE SKIP LOCKED` on PostgreSQL
//! (SQLite has one writer at a time), and so does cart expiry.
use std::time::Duration;

use apalis::prelude::{BoxDynError, Data, WorkerBuilder};
use apalis_cron::{CronScheduler, Schedule, Tick};
use chrono::Utc;
use entity::DomainError;
use sea_orm::DatabaseConnection;

use crate::events::OrderEvents;

/// Orders expired per tick at most; the next tick takes the rest.
const EXPIRE_BATCH: u64 = 100;
/// Outbox rows deleted per statement: small, so each `DELETE` holds its
/// row locks (and SQLite's write lock) for a few milliseconds.
const PRUNE_BATCH: u64 = 500;
/// The pause between two prune statements, so the dispatcher's and the
/// jobs' writes get in between (SQLite has a single writer).
const PRUNE_PAUSE: Duration = Duration::from_millis(50);
/// Carts deleted per statement (their lines go with them, so a batch
/// deletes up to 50 times as many line rows): small, like [`PRUNE_BATCH`].
const CART_BATCH: u64 = 100;

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

/// Runs `step` (one statement deleting at most `batch` rows, returning how
/// many) until a step finds less than a full batch, with `pause` between
/// steps so other writers get in. Returns how many rows it deleted; rows
/// deleted by earlier steps stay deleted when a later one fails.
async fn in_batches<F, Fut>(batch: u64, pause: Duration, mut step: F) -> Result<u64, DomainError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, DomainError>>,
{
    let mut total = 0;
    loop {
        let deleted = step().await?;
        total += deleted;
        if deleted < batch {
            return Ok(total);
        }
        tokio::time::sleep(pause).await;
    }
}

/// Runs `round` when started and then every `interval` until `shutdown` (a
/// round never overlaps the next; one cut short by `shutdown` is a series
/// of statements that each happened or did not, and the next start does
/// the rest). The first round runs at once rather than one interval later,
/// so a worker that restarts more often than `interval` still does it. A
/// plain timer rather than apalis-cron: a round may take longer than a
/// tick, and must not start twice in one process.
async fn every<F, Fut>(interval: Duration, shutdown: impl Future<Output = ()>, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    tokio::pin!(shutdown);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = ticker.tick() => {}
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = round() => {}
        }
    }
}

/// One prune round: deletes outbox rows finished more than `retention` ago,
/// `batch` at a time with `pause` in between (see [`in_batches`]).
///
/// # Errors
/// The database's.
pub async fn prune_outbox(
    db: &DatabaseConnection,
    retention: Duration,
    batch: u64,
    pause: Duration,
) -> Result<u64, DomainError> {
    in_batches(batch, pause, || {
        entity::outbox::prune_completed(db, retention, batch)
    })
    .await
}

/// Prunes the outbox when started and then every `interval` until
/// `shutdown` (see [`every`]).
pub async fn run_outbox_prune(
    db: DatabaseConnection,
    retention: Duration,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) {
    every(interval, shutdown, || async {
        match prune_outbox(&db, retention, PRUNE_BATCH, PRUNE_PAUSE).await {
            Ok(0) => {}
            Ok(rows) => tracing::info!(
                rows,
                ?retention,
                "pruned finished outbox rows past their retention"
            ),
            Err(error) => tracing::warn!(%error, "pruning the outbox failed; will try again"),
        }
    })
    .await;
}

/// One cart expiry round: deletes carts not changed since `cutoff`, `batch`
/// at a time with `pause` in between (see [`in_batches`]).
///
/// # Errors
/// The database's.
pub async fn expire_carts(
    db: &DatabaseConnection,
    cutoff: chrono::DateTime<Utc>,
    batch: u64,
    pause: Duration,
) -> Result<u64, DomainError> {
    in_batches(batch, pause, || {
        entity::carts::expire_abandoned_carts(db, cutoff, batch)
    })
    .await
}

/// Deletes carts nobody changed for `retention` when started and then
/// every `interval` until `shutdown` (see [`every`]).
pub async fn run_cart_expiry(
    db: DatabaseConnection,
    retention: Duration,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) {
    every(interval, shutdown, || async {
        // A retention beyond chrono's range: nothing is that old.
        let Some(cutoff) = chrono::Duration::from_std(retention)
            .ok()
            .and_then(|age| Utc::now().checked_sub_signed(age))
        else {
            return;
        };
        match expire_carts(&db, cutoff, CART_BATCH, PRUNE_PAUSE).await {
            Ok(0) => {}
            Ok(carts) => tracing::info!(carts, ?retention, "deleted carts abandoned past their retention"),
            Err(error) => tracing::warn!(%error, "expiring abandoned carts failed; will try again"),
        }
    })
    .await;
}
