//! Moving jobs from the outbox to the queue.
//!
//! The api wakes the dispatcher right after a mutation commits ([`Kicker`]),
//! so fresh jobs are pushed at once; the worker runs the same loop as the
//! sweeper, every `SWEEP_INTERVAL`, for rows the api could not push (a crash
//! between commit and push, Redis down) and for retries whose backoff is over.
//!
//! Backpressure: nothing is pushed to a queue that already holds
//! `QUEUE_HIGH_WATER` jobs. The rest waits in the outbox, which is a table
//! and can hold any burst, so Redis never holds more due jobs than apalis
//! can promote in one poll (see `queue`).
//!
//! Reaper: a row dispatched more than `REDISPATCH_AFTER_SECS` ago whose
//! attempt never completed was lost by the queue (Redis restarted without
//! persistence, say) and is pushed again; the queue ignores a row it still
//! holds and handlers are idempotent, so a false alarm costs nothing.
//!
//! On PostgreSQL each round takes its rows `FOR UPDATE SKIP LOCKED` inside a
//! transaction, so any number of dispatchers (api and worker processes) run
//! at once without pushing a row twice. On SQLite there is one process and
//! no lock is held while pushing (the SQLite queue writes to the same file).
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use entity::db::lost::ConnectionLost;
use entity::jobs::QueueName;
use sea_orm::{DatabaseConnection, DbBackend, TransactionTrait};
use tokio::sync::Notify;

use crate::queue::JobQueue;

/// Rows read per round.
const BATCH: u64 = 200;

/// Wakes a dispatcher now (cheap; call after a commit that wrote outbox rows).
#[derive(Debug, Clone, Default)]
pub struct Kicker(Arc<Notify>);

impl Kicker {
    pub fn kick(&self) {
        self.0.notify_one();
    }
}

#[derive(Clone)]
pub struct Dispatcher {
    db: DatabaseConnection,
    queue: JobQueue,
    high_water: u64,
    /// A row dispatched this long ago whose attempt never completed was lost
    /// by the queue (a Redis crash) and is pushed again.
    lost_after: Duration,
    kicker: Kicker,
}

impl Dispatcher {
    #[must_use]
    pub fn new(db: DatabaseConnection, queue: JobQueue, high_water: u64, lost_after: Duration) -> Self {
        Self {
            db,
            queue,
            high_water,
            lost_after,
            kicker: Kicker::default(),
        }
    }

    /// The queue it pushes to.
    #[must_use]
    pub fn queue(&self) -> &JobQueue {
        &self.queue
    }

    #[must_use]
    pub fn kicker(&self) -> Kicker {
        self.kicker.clone()
    }

    /// Room left in each queue below the high-water mark.
    async fn room(&self) -> Result<HashMap<QueueName, u64>, crate::queue::QueueError> {
        let mut room = HashMap::new();
        for queue in QueueName::ALL {
            let depth = self.queue.depth(queue).await?;
            room.insert(queue, self.high_water.saturating_sub(depth));
        }
        Ok(room)
    }

    /// One round: pushes due rows while the queues have room. Returns how
    /// many were pushed and whether another round may find more.
    async fn round(&self, grace: Duration) -> anyhow::Result<(usize, bool)> {
        let mut room = self.room().await?;
        if room.values().all(|r| *r == 0) {
            return Ok((0, false));
        }
        let postgres = self.db.get_database_backend() == DbBackend::Postgres;
        let txn = if postgres {
            Some(self.db.begin().await?)
        } else {
            None
        };
        let rows = match &txn {
            Some(txn) => entity::outbox::due(txn, grace, self.lost_after, BATCH).await?,
            None => entity::outbox::due(&self.db, grace, self.lost_after, BATCH).await?,
        };
        let fetched = rows.len();
        let mut pushed = Vec::with_capacity(fetched);
        let mut failure = None;
        for row in &rows {
            let queue = QueueName::for_job(&row.job_name);
            let Some(left) = room.get_mut(&queue).filter(|left| **left > 0) else {
                continue;
            };
            match self.queue.push(queue, &entity::outbox::envelope(row)).await {
                Ok(()) => {
                    *left -= 1;
                    pushed.push(row.id);
                    crate::metrics::job_pushed(&row.job_name);
                }
                Err(err) => {
                    failure = Some(err.to_string());
                    break;
                }
            }
        }
        match &txn {
            Some(txn) => entity::outbox::mark_dispatched(txn, &pushed).await?,
            None => entity::outbox::mark_dispatched(&self.db, &pushed).await?,
        }
        if let Some(txn) = txn {
            txn.commit().await?;
        }
        if let Some(error) = failure {
            let waiting: Vec<_> = rows
                .iter()
                .map(|r| r.id)
                .filter(|id| !pushed.contains(id))
                .collect();
            entity::outbox::record_dispatch_failure(&self.db, &waiting, &error).await?;
            anyhow::bail!("pushing to the queue failed: {error}");
        }
        let more = fetched as u64 == BATCH && pushed.len() == fetched;
        Ok((pushed.len(), more))
    }

    /// When the queue lost its jobs (Redis came back empty), makes every
    /// pushed-but-unfinished row due again at once, instead of after
    /// `REDISPATCH_AFTER_SECS`. Checked every sweep: one Redis command.
    async fn recover_lost_jobs(&self) {
        if !matches!(self.queue.lost_its_jobs().await, Ok(true)) {
            return;
        }
        // Several processes may get here at once: the update is the same
        // for each, and a row pushed twice is queued once.
        match entity::outbox::redispatch_unfinished(&self.db).await {
            Ok(rows) => {
                if rows > 0 {
                    tracing::warn!(
                        rows,
                        "the queue lost its jobs (Redis came back empty): pushing them again"
                    );
                }
                if let Err(error) = self.queue.mark_jobs_held().await {
                    tracing::warn!(%error, "could not mark the queue as holding its jobs; will check again");
                }
            }
            Err(error) => {
                tracing::error!(%error, "the queue lost its jobs; marking them for a new push failed, will try again")
            }
        }
    }

    /// Pushes due rows until none are left or the queues are full.
    ///
    /// # Errors
    /// When the database or the queue fails; pushed rows stay marked.
    pub async fn pump(&self, grace: Duration) -> anyhow::Result<usize> {
        let mut total = 0;
        loop {
            let (pushed, more) = self.round(grace).await?;
            total += pushed;
            if !more {
                return Ok(total);
            }
        }
    }

    /// Runs until `shutdown`: on a kick, pushes everything due (`Duration::ZERO`
    /// grace); every `interval`, sweeps with `grace`.
    pub async fn run(self, interval: Duration, grace: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let grace = tokio::select! {
                () = &mut shutdown => return,
                () = self.kicker.0.notified() => Duration::ZERO,
                _ = ticker.tick() => {
                    self.recover_lost_jobs().await;
                    grace
                }
            };
            match self.pump(grace).await {
                Ok(0) => {}
                Ok(pushed) => tracing::debug!(pushed, "outbox dispatched"),
                Err(err) => {
                    // A dead pooled connection (the database restarted): the
                    // next round must not meet the pool's other dead ones.
                    if err
                        .downcast_ref::<sea_orm::DbErr>()
                        .is_some_and(ConnectionLost::connection_lost)
                    {
                        entity::db::lost::record_fault();
                    }
                    tracing::warn!(error = %err, "outbox dispatch failed; will retry");
                }
            }
        }
    }
}
