//! Reads that share statements: concurrent reads join one batch, and one
//! load answers them all. A batch's load starts only after every read in it
//! joined, so a shared answer is never older than the read's own statement
//! would have been: a change that returned before a read began is seen.
//!
//! A read joins the open batch; a batch starts as soon as fewer than
//! [`IN_FLIGHT`] loads are running, with every key its reads asked for,
//! and the task that ran one batch runs the next that opened meanwhile. A
//! read waits for at most one load ahead of its own; under load one
//! statement answers tens of reads, and the database sees a few statements
//! per round trip, not one per request. (Several in flight, not one: with
//! one, every read on a busy machine waits for the whole previous round
//! trip, scheduling delays included.)
use std::sync::{Arc, Mutex, PoisonError};

use entity::DomainError;
use futures::future::BoxFuture;
use sea_orm::DbErr;
use tokio::sync::watch;

/// The most loads of one [`SharedReads`] running at once.
pub const IN_FLIGHT: usize = 4;

/// One batch's answer, shared by its reads.
type Outcome<V> = Result<Arc<V>, Arc<DomainError>>;

/// Loads the answer for a batch's keys (as its reads gave them: repeated
/// keys included).
type Load<K, V> = Box<dyn Fn(Vec<K>) -> BoxFuture<'static, Result<V, DomainError>> + Send + Sync>;

/// Reads of `V` for keys `K` that share loads.
pub struct SharedReads<K, V> {
    /// What is read, for error messages.
    what: &'static str,
    load: Load<K, V>,
    pending: Mutex<Pending<K, V>>,
}

struct Pending<K, V> {
    /// The batch that reads join; its load has not started.
    open: Option<Batch<K, V>>,
    /// Tasks running batches (at most [`IN_FLIGHT`]).
    running: usize,
}

struct Batch<K, V> {
    keys: Vec<K>,
    done: watch::Sender<Option<Outcome<V>>>,
}

impl<K: Send + 'static, V: Send + Sync + 'static> SharedReads<K, V> {
    /// Reads of `what`, answered by `load`.
    pub fn new<F, Fut>(what: &'static str, load: F) -> Arc<Self>
    where
        F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<V, DomainError>> + Send + 'static,
    {
        Arc::new(Self {
            what,
            load: Box::new(move |keys| Box::pin(load(keys))),
            pending: Mutex::new(Pending {
                open: None,
                running: 0,
            }),
        })
    }

    /// The answer of a load that started after this call and was given
    /// `keys` (among other reads' keys).
    ///
    /// # Errors
    /// [`DomainError::Database`] when the load failed (after its own retry
    /// on a lost connection) or could not run (the runtime shutting down).
    pub async fn read(self: &Arc<Self>, keys: impl IntoIterator<Item = K>) -> Result<Arc<V>, DomainError> {
        let mut done = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let batch = pending.open.get_or_insert_with(|| Batch {
                keys: Vec::new(),
                done: watch::Sender::new(None),
            });
            batch.keys.extend(keys);
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
            Some(Ok(answer)) => Ok(answer),
            Some(Err(error)) => Err(again(self.what, &error)),
            None => Err(DbErr::Custom(format!("reading {}: the reader stopped", self.what)).into()),
        }
    }

    /// Runs the open batch, then the next, until none is left.
    async fn run(self: Arc<Self>) {
        let stopped = Stopped(&self.pending);
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
            let outcome = (self.load)(batch.keys).await;
            batch
                .done
                .send_replace(Some(outcome.map(Arc::new).map_err(Arc::new)));
        }
    }
}

/// `error`, shared by a batch's reads, as each read's own: input errors
/// keep their variant (and so their stable code); anything else is a
/// database error naming what was read.
#[must_use]
pub fn again(what: &str, error: &DomainError) -> DomainError {
    match error {
        DomainError::InvalidInput { field, message } => DomainError::InvalidInput {
            field,
            message: message.clone(),
        },
        other => DbErr::Custom(format!("reading {what}: {other}")).into(),
    }
}

/// Should a task stop before its batch was answered (its runtime shutting
/// down), the open batch's reads are answered with an error instead of
/// waiting forever, and the next read starts a new task.
struct Stopped<'a, K, V>(&'a Mutex<Pending<K, V>>);

impl<K, V> Drop for Stopped<'_, K, V> {
    fn drop(&mut self) {
        let mut pending = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        pending.running = pending.running.saturating_sub(1);
        // Dropping its sender wakes the batch's reads.
        pending.open = None;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Semaphore;

    use super::*;

    /// Reads whose loads wait for `gate` and answer with the number of
    /// loads started before them and the keys they were given.
    fn gated(gate: &Arc<Semaphore>, started: &Arc<AtomicUsize>) -> Arc<SharedReads<u32, (usize, Vec<u32>)>> {
        let (gate, started) = (Arc::clone(gate), Arc::clone(started));
        SharedReads::new("numbers", move |keys: Vec<u32>| {
            let (gate, started) = (Arc::clone(&gate), Arc::clone(&started));
            async move {
                let nth = started.fetch_add(1, Ordering::SeqCst);
                gate.acquire().await.expect("open").forget();
                Ok((nth, keys))
            }
        })
    }

    #[tokio::test]
    async fn reads_waiting_behind_busy_loads_share_one_that_starts_after_them() {
        let gate = Arc::new(Semaphore::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let reads = gated(&gate, &started);
        // IN_FLIGHT reads, one after the other, start a load each; the
        // loads hold until the gate opens.
        let mut first = Vec::new();
        for key in 0..IN_FLIGHT {
            let reads = Arc::clone(&reads);
            let number = u32::try_from(key).expect("small");
            first.push(tokio::spawn(async move { reads.read([number]).await }));
            while started.load(Ordering::SeqCst) <= key {
                tokio::task::yield_now().await;
            }
        }
        // These begin while every load is busy: they join one open batch.
        let later: Vec<_> = (100..150)
            .map(|key| {
                let reads = Arc::clone(&reads);
                tokio::spawn(async move { reads.read([key]).await })
            })
            .collect();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        gate.add_permits(1_000);
        for (key, read) in (0..).zip(first) {
            let answer = read.await.expect("ran").expect("read");
            assert_eq!(answer.1, vec![key], "a read alone in its load");
        }
        let mut shared = None;
        for read in later {
            let answer = read.await.expect("ran").expect("read");
            assert!(
                answer.0 >= IN_FLIGHT,
                "answered by a load that started after the read: load {}",
                answer.0
            );
            shared.get_or_insert_with(|| Arc::clone(&answer));
            assert!(
                Arc::ptr_eq(shared.as_ref().expect("set"), &answer),
                "one load for all"
            );
        }
        let keys = &shared.expect("50 reads").1;
        assert_eq!(
            keys,
            &(100..150).collect::<Vec<_>>(),
            "every read's key, in order"
        );
        assert_eq!(started.load(Ordering::SeqCst), IN_FLIGHT + 1, "loads in all");
    }

    #[tokio::test]
    async fn a_failed_load_fails_its_reads_and_the_next_read_loads_again() {
        let loads = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&loads);
        let reads = SharedReads::new("numbers", move |_: Vec<u32>| {
            let nth = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if nth == 0 {
                    Err(DomainError::InvalidInput {
                        field: "first",
                        message: "must not be negative".into(),
                    })
                } else {
                    Ok(nth)
                }
            }
        });
        let error = reads.read([1]).await.expect_err("the first load fails");
        assert!(
            matches!(error, DomainError::InvalidInput { field: "first", .. }),
            "input errors keep their variant: {error:?}"
        );
        assert_eq!(*reads.read([1]).await.expect("loaded again"), 1);
    }
}
