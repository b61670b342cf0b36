//! The completer: records finished attempts in batches.
//!
//! Most attempts end `Done` with nothing to write but the row's
//! `completed_at`. Rather than one transaction each, the job hands the row's
//! id to the [`Completer`] and returns at once (its queue slot is free for
//! the next job); the completer writes the ids it collected with one
//! `UPDATE … WHERE id IN (…)` at most `COMPLETION_FLUSH_MS` after the first
//! of them arrived, or as soon as `COMPLETION_BATCH` are waiting, and once
//! more on shutdown, after the consumers have stopped (the way River's and
//! graphile-worker's completers work). Outcomes that write more — a retry,
//! a postponement, a dead job — keep their own transaction (`jobs::record`).
//!
//! What a crash costs: a `Done` job's effects are committed by its handler
//! before its id is buffered, so a process killed with buffered ids loses
//! only their `completed_at`. Those rows stay dispatched and unfinished,
//! the reaper pushes them again after `REDISPATCH_AFTER_SECS`, and the
//! idempotent handlers find nothing left to do (a settled payment, a sent
//! email) and complete them. While the database is unreachable a batch is
//! retried with backoff (as `jobs::record` retries an outcome); ids
//! arriving meanwhile wait in a bounded buffer, and a job whose id does not
//! fit waits for room, which slows the consumers down rather than growing
//! memory.
use std::time::Duration;

use entity::db::lost::ConnectionLost;
use entity::ids::OutboxId;
use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, watch};

use crate::dispatch::Kicker;

/// `COMPLETION_BATCH` and `COMPLETION_FLUSH_MS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletionSettings {
    /// Most ids written by one statement; a full batch is written at once.
    pub batch: usize,
    /// How long the first id of a batch may wait for others.
    pub flush_every: Duration,
}

impl Default for CompletionSettings {
    fn default() -> Self {
        Self {
            batch: 500,
            flush_every: Duration::from_millis(2),
        }
    }
}

/// Ids waiting to be written, at most this many batches' worth.
const BUFFERED_BATCHES: usize = 4;
/// Tries per batch while the database fails, doubling the pause from
/// [`FIRST_PAUSE`] (about 50 s in all, as for a single outcome).
const TRIES: u32 = 8;
const FIRST_PAUSE: Duration = Duration::from_millis(200);

/// Where jobs hand their finished rows; cheap to clone.
#[derive(Debug, Clone)]
pub struct Completer {
    ids: mpsc::Sender<OutboxId>,
}

/// The writing side of a [`Completer`], run by [`Pending::run`].
#[derive(Debug)]
pub struct Pending {
    ids: mpsc::Receiver<OutboxId>,
    settings: CompletionSettings,
}

impl Completer {
    #[must_use]
    pub fn new(settings: CompletionSettings) -> (Self, Pending) {
        let settings = CompletionSettings {
            batch: settings.batch.max(1),
            ..settings
        };
        let (tx, rx) = mpsc::channel(settings.batch * BUFFERED_BATCHES);
        (Self { ids: tx }, Pending { ids: rx, settings })
    }

    /// Records (soon) that the attempt of row `id` finished.
    pub async fn complete(&self, id: OutboxId) {
        if self.ids.send(id).await.is_err() {
            tracing::warn!(outbox_id = %id, "the completer has stopped; the reaper will push this row again");
        }
    }
}

impl Pending {
    /// Writes batches until `closed` turns true, then writes what is left
    /// and returns. Tells the dispatcher after each batch: finished jobs
    /// made room in the queue.
    pub async fn run(mut self, db: DatabaseConnection, kicker: Kicker, mut closed: watch::Receiver<bool>) {
        let limit = self.settings.batch;
        let mut batch = Vec::with_capacity(limit);
        loop {
            tokio::select! {
                received = self.ids.recv_many(&mut batch, limit) => {
                    if received == 0 {
                        return;
                    }
                }
                _ = closed.wait_for(|closed| *closed) => {
                    while batch.len() < limit {
                        let Ok(id) = self.ids.try_recv() else { break };
                        batch.push(id);
                    }
                    if batch.is_empty() {
                        return;
                    }
                }
            }
            // More ids for this batch until it is full, the flush interval
            // is over, or the completer is closed.
            let flush_at = tokio::time::sleep(self.settings.flush_every);
            tokio::pin!(flush_at);
            while batch.len() < limit && !*closed.borrow() {
                let wanted = limit - batch.len();
                tokio::select! {
                    received = self.ids.recv_many(&mut batch, wanted) => {
                        if received == 0 {
                            break;
                        }
                    }
                    () = &mut flush_at => break,
                    // Closed, or its sender gone (which counts as closed).
                    changed = closed.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                }
            }
            write(&db, &batch).await;
            batch.clear();
            kicker.room_freed();
        }
    }
}

/// Writes one batch, retrying while the database fails.
async fn write(db: &DatabaseConnection, ids: &[OutboxId]) {
    let mut pause = FIRST_PAUSE;
    for _ in 0..TRIES {
        match entity::outbox::complete_many(db, ids).await {
            Ok(_) => return,
            Err(error) => {
                if error.connection_lost() {
                    entity::db::lost::record_fault();
                }
                tracing::error!(%error, rows = ids.len(), "could not record finished jobs; trying again");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
    }
    tracing::error!(
        rows = ids.len(),
        "gave up recording finished jobs; the reaper will push them again"
    );
}
