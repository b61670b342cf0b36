//! The read barrier of the catalog cache: every cached read asks for the
//! catalog version and the current stock of the products it would serve,
//! read by a statement that starts *after* the read began
//! (`entity::catalog::version::freshness`).
//!
//! Concurrent reads share statements: a read joins the open batch; a batch
//! starts as soon as fewer than [`IN_FLIGHT`] statements are running, with
//! every id its reads asked for, and the task that ran one batch runs the
//! next that opened meanwhile. A read waits for at most one statement ahead
//! of its own; under load one statement answers tens of reads, and the
//! database sees a few statements per round trip, not one per request.
//! (Several in flight, not one: with one, every read on a busy machine
//! waits for the whole previous round trip, scheduling delays included.)
use std::sync::{Arc, Mutex, PoisonError};

use entity::DomainError;
use entity::catalog::version::Freshness;
use entity::ids::ProductId;
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::watch;

/// One batch's answer, shared by its reads.
type Outcome = Result<Arc<Freshness>, Arc<DomainError>>;

/// Reads the catalog version and stock for many concurrent reads at once.
pub struct FreshnessReader {
    db: DatabaseConnection,
    pending: Mutex<Pending>,
}

/// The most batch statements running at once.
pub const IN_FLIGHT: usize = 4;

#[derive(Default)]
struct Pending {
    /// The batch that reads join; its statement has not started.
    open: Option<Batch>,
    /// Tasks running batches (at most [`IN_FLIGHT`]).
    running: usize,
}

struct Batch {
    ids: Vec<ProductId>,
    done: watch::Sender<Option<Outcome>>,
}

impl FreshnessReader {
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Arc<Self> {
        Arc::new(Self {
            db,
            pending: Mutex::default(),
        })
    }

    /// The catalog version and the stock of `ids`, read by a statement
    /// that started after this call.
    ///
    /// # Errors
    /// [`DomainError::Database`] when the statement failed (after the
    /// retry on a lost connection).
    pub async fn read(self: &Arc<Self>, ids: &[ProductId]) -> Result<Arc<Freshness>, DomainError> {
        let mut done = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let batch = pending.open.get_or_insert_with(|| Batch {
                ids: Vec::new(),
                done: watch::Sender::new(None),
            });
            batch.ids.extend_from_slice(ids);
            let done = batch.done.subscribe();
            if pending.running < IN_FLIGHT {
                pending.running += 1;
                tokio::spawn(Arc::clone(self).run());
            }
            done
        };
        let outcome = match done.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            // The task ended without answering (the runtime is shutting down).
            Err(_) => None,
        };
        match outcome {
            Some(Ok(fresh)) => Ok(fresh),
            Some(Err(error)) => Err(DbErr::Custom(format!("reading the catalog version: {error}")).into()),
            None => Err(DbErr::Custom("reading the catalog version: the reader stopped".into()).into()),
        }
    }

    /// Runs the open batch, then the next, until none is left.
    async fn run(self: Arc<Self>) {
        let stopped = Stopped(&self);
        loop {
            let batch = {
                let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
                match pending.open.take() {
                    Some(batch) => batch,
                    None => {
                        pending.running -= 1;
                        // Done, not stopped: a read may already have
                        // opened a batch for a new task.
                        std::mem::forget(stopped);
                        return;
                    }
                }
            };
            let mut ids = batch.ids;
            ids.sort_unstable();
            ids.dedup();
            let outcome =
                crate::transaction::read(|| entity::catalog::version::freshness(&self.db, &ids)).await;
            batch
                .done
                .send_replace(Some(outcome.map(Arc::new).map_err(Arc::new)));
        }
    }
}

/// Should a task stop before its batch was answered (its runtime shutting
/// down), the open batch's reads are answered with an error instead of
/// waiting forever, and the next read starts a new task.
struct Stopped<'a>(&'a FreshnessReader);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        let mut pending = self.0.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.running = pending.running.saturating_sub(1);
        // Dropping its sender wakes the batch's reads.
        pending.open = None;
    }
}
