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
//! Batches: a round claims up to `DISPATCH_BATCH` rows with one statement
//! (`UPDATE … RETURNING`, rows picked `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL: any number of dispatchers, in api and worker processes, never
//! claim the same row) and pushes them with one Redis call per queue. The
//! rows are marked dispatched *before* the push and no transaction is open
//! during it: a failed push hands its rows back at once
//! (`outbox::release_claim`); a process that dies between claim and push
//! leaves them to the reaper.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use entity::db::lost::ConnectionLost;
use entity::jobs::QueueName;
use entity::tables::outbox;
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;

use crate::queue::JobQueue;

/// `DISPATCH_BATCH`'s default: rows claimed per statement.
pub const DEFAULT_BATCH: u64 = 500;

/// Wakes a dispatcher now (cheap): [`kick`](Kicker::kick) after a commit
/// that wrote outbox rows, [`room_freed`](Kicker::room_freed) after jobs
/// finished.
#[derive(Debug, Clone, Default)]
pub struct Kicker(Arc<Signals>);

#[derive(Debug, Default)]
struct Signals {
    rows: Notify,
    room: Notify,
}

impl Kicker {
    /// New rows were committed: push them.
    pub fn kick(&self) {
        self.0.rows.notify_one();
    }

    /// Jobs finished, so the queues may have room for rows waiting in the
    /// outbox. Cheaper than a kick: a refill only claims when every queue
    /// has room for a good batch (see [`Dispatcher::run`]).
    pub fn room_freed(&self) {
        self.0.room.notify_one();
    }
}

/// What a round may claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Whatever the queues have room for (a kick, a sweep).
    Full,
    /// Only a claim for all queues at once, when each has room for a good
    /// batch: a claim filtered to one queue reads past the other queue's
    /// waiting rows, which a backlog makes long, and finished jobs free room
    /// hundreds of times a second.
    Refill,
}

#[derive(Clone)]
pub struct Dispatcher {
    db: DatabaseConnection,
    queue: JobQueue,
    high_water: u64,
    /// Rows claimed per statement.
    batch: u64,
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
            batch: DEFAULT_BATCH,
            lost_after,
            kicker: Kicker::default(),
        }
    }

    /// Claims and pushes up to `batch` rows per round (at least 1).
    #[must_use]
    pub fn with_batch(mut self, batch: u64) -> Self {
        self.batch = batch.max(1);
        self
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

    /// One round: claims due rows the queues have room for and pushes
    /// them. Returns how many were pushed and whether another round may find
    /// more.
    ///
    /// `drained` holds the queues whose own claim (filtered to that queue)
    /// came back short earlier in the same pump: no rows of theirs are due,
    /// so they get no filtered claim again until the next pump. Such a
    /// claim reads past every row of the other queue (the index is in
    /// `available_at` order, not by queue): with 100,000 settlements waiting
    /// and the emails queue empty, each round's empty emails claim cost 17 ms
    /// (`bench/jobs.sh`, pg_stat_statements), more than the claim that
    /// found the rows.
    async fn round(
        &self,
        grace: Duration,
        kind: Round,
        drained: &mut HashSet<QueueName>,
    ) -> anyhow::Result<(usize, bool)> {
        let room = self.room().await?;
        // A queue takes a claim when it has room for a good batch: fewer,
        // bigger claims under load; an idle queue always has room.
        let enough = self.batch.min((self.high_water / 4).max(1));
        let least = room.values().copied().min().unwrap_or(0);
        // One claim for every queue when all have room (the usual case: one
        // statement, at most the smallest room, so none overfills); else one
        // per queue with room, on a kick or a sweep.
        let claims: Vec<(Option<QueueName>, u64)> = if least >= enough {
            vec![(None, least.min(self.batch))]
        } else if kind == Round::Full {
            room.iter()
                .filter(|(queue, left)| **left > 0 && !drained.contains(*queue))
                .map(|(queue, left)| (Some(*queue), (*left).min(self.batch)))
                .collect()
        } else {
            Vec::new()
        };
        let (mut pushed, mut more) = (0, false);
        for (only, limit) in claims {
            let rows = entity::outbox::claim_due(&self.db, grace, self.lost_after, limit, only).await?;
            let full = rows.len() as u64 == limit;
            if let (Some(queue), false) = (only, full) {
                drained.insert(queue);
            }
            more |= full;
            pushed += self.push_claimed(rows).await?;
        }
        Ok((pushed, more))
    }

    /// Pushes claimed rows, one call per queue; on a failure hands back the
    /// rows not pushed and fails.
    async fn push_claimed(&self, rows: Vec<outbox::Model>) -> anyhow::Result<usize> {
        let mut pushed = 0;
        for (i, queue) in QueueName::ALL.into_iter().enumerate() {
            let jobs: Vec<_> = rows
                .iter()
                .filter(|row| QueueName::for_job(&row.job_name) == queue)
                .map(entity::outbox::envelope)
                .collect();
            if let Err(error) = self.queue.push_many(queue, &jobs).await {
                let left = &QueueName::ALL[i..];
                let waiting: Vec<_> = rows
                    .iter()
                    .filter(|row| left.contains(&QueueName::for_job(&row.job_name)))
                    .map(|row| row.id)
                    .collect();
                entity::outbox::release_claim(&self.db, &waiting, &error.to_string()).await?;
                anyhow::bail!("pushing to the queue failed: {error}");
            }
            for job in &jobs {
                crate::metrics::job_pushed(&job.job_name);
            }
            pushed += jobs.len();
        }
        Ok(pushed)
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
        self.pump_rounds(grace, Round::Full).await
    }

    async fn pump_rounds(&self, grace: Duration, kind: Round) -> anyhow::Result<usize> {
        let mut total = 0;
        let mut drained = HashSet::new();
        loop {
            let (pushed, more) = self.round(grace, kind, &mut drained).await?;
            total += pushed;
            if !more {
                return Ok(total);
            }
        }
    }

    /// Runs until `shutdown`: on a kick, pushes everything due (`Duration::ZERO`
    /// grace); when room was freed, refills the queues (a [`Round::Refill`]);
    /// every `interval`, sweeps with `grace`.
    pub async fn run(self, interval: Duration, grace: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let (grace, kind) = tokio::select! {
                () = &mut shutdown => return,
                () = self.kicker.0.rows.notified() => (Duration::ZERO, Round::Full),
                () = self.kicker.0.room.notified() => (Duration::ZERO, Round::Refill),
                _ = ticker.tick() => {
                    self.recover_lost_jobs().await;
                    (grace, Round::Full)
                }
            };
            match self.pump_rounds(grace, kind).await {
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
