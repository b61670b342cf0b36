//! Running an apalis worker as a consumer that survives its backend.
//!
//! apalis 1.0's worker stream ends for good at the first storage error and
//! has no shutdown deadline, so [`supervise`] runs it in *generations*:
//! - a generation is one apalis `Worker` (same registered name each time, so
//!   a new generation re-queues what the last one left in flight);
//! - on the first backend error the generation is stopped: it takes no new
//!   jobs, lets running ones finish, tries to write their acks, and ends
//!   ([`drain`]); the supervisor logs, backs off and starts the next one;
//! - on shutdown the generation is *paused* rather than stopped, so apalis
//!   keeps heartbeating and writing acks while running jobs finish; once none
//!   run it is stopped (buffered, never-started jobs go back to the queue),
//!   and at the deadline it is dropped, leaving the unfinished jobs un-acked.
//!
//! [`Deliver`] is the apalis service: it decodes the [`Envelope`], runs the
//! handler, and always reports success to apalis, so apalis never retries.
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use apalis::prelude::{Event, PollSnapshot, PollStrategy, Service, Task, WorkerContext, WorkerError};
use entity::jobs::{Envelope, QueueName};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use tokio::sync::{Notify, futures::OwnedNotified};
use tokio::task::JoinHandle;

use super::{QueueError, QueueOptions};

/// One generation's apalis event stream.
pub(super) type EventStream = BoxStream<'static, Result<Event, WorkerError>>;

/// The task running one generation; dropping it (when `consume`'s future is
/// dropped) aborts the generation, leaving its running jobs un-acked.
struct Generation(JoinHandle<Option<WorkerError>>);

impl Drop for Generation {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The first backoff after a failed generation is `poll_interval` clamped to
/// this range; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(1));
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A generation that lived this long resets the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
/// How often a draining generation is checked for "no job running".
const DRAIN_CHECK: Duration = Duration::from_millis(25);
/// Bound on one vacuum round, so it cannot hold up a shutdown.
const VACUUM_TIMEOUT: Duration = Duration::from_secs(5);

/// The apalis service of a consumer: one call per delivery.
#[derive(Clone)]
pub(super) struct Deliver<H> {
    handler: H,
    queue: QueueName,
}

impl<H> Deliver<H> {
    pub(super) fn new(handler: H, queue: QueueName) -> Self {
        Self { handler, queue }
    }
}

impl<H, F> Service<Task<serde_json::Value>> for Deliver<H>
where
    H: Fn(Envelope) -> F + Send + Sync + Clone + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    type Response = ();
    /// Never an error: a failed attempt is the outbox's business, and an
    /// error here would make apalis's storage retry the task.
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<(), Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, task: Task<serde_json::Value>) -> Self::Future {
        let task_id = task.ctx().task_id().map(ToString::to_string).unwrap_or_default();
        let queue = self.queue.as_str();
        // The payload is decoded here rather than by apalis's codec: a codec
        // error is a *backend* error in apalis 1.0 and would end the worker
        // on every fetch of the poisoned task.
        match serde_json::from_value::<Envelope>(task.args) {
            Ok(envelope) => {
                let handler = &self.handler;
                let Ok(job) = std::panic::catch_unwind(AssertUnwindSafe(|| handler(envelope))) else {
                    tracing::error!(queue, task_id, "job handler panicked; the delivery is acked");
                    return futures::future::ready(Ok(())).boxed();
                };
                async move {
                    if AssertUnwindSafe(job).catch_unwind().await.is_err() {
                        tracing::error!(queue, task_id, "job handler panicked; the delivery is acked");
                    }
                    Ok(())
                }
                .boxed()
            }
            Err(error) => {
                tracing::error!(queue, task_id, %error, "undecodable job dropped (not an Envelope)");
                futures::future::ready(Ok(())).boxed()
            }
        }
    }
}

/// Wakes this process's idle consumers when it pushed jobs, so a job pushed
/// by the worker's own dispatcher is fetched at once rather than at the
/// next `poll_interval` (jobs pushed by other processes still wait for it).
/// Clones share the signals.
#[derive(Debug, Clone, Default)]
pub(super) struct Pushed(Arc<[Arc<Notify>; 2]>);

impl Pushed {
    fn signal(&self, queue: QueueName) -> &Arc<Notify> {
        &self.0[usize::from(queue == QueueName::Settlements)]
    }

    /// Jobs were pushed to `queue`.
    pub(super) fn wake(&self, queue: QueueName) {
        self.signal(queue).notify_waiters();
    }

    /// An apalis poll strategy for a consumer of `queue`: fetch after
    /// `interval`, or as soon as this process pushed to `queue`.
    pub(super) fn strategy(&self, queue: QueueName, interval: Duration) -> PushedOrInterval {
        PushedOrInterval {
            signal: Arc::clone(self.signal(queue)),
            notified: None,
            interval,
            delay: None,
        }
    }
}

/// See [`Pushed::strategy`].
pub(super) struct PushedOrInterval {
    signal: Arc<Notify>,
    notified: Option<Pin<Box<OwnedNotified>>>,
    interval: Duration,
    delay: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl PollStrategy for PushedOrInterval {
    /// Registers the waker with both; whichever fires first wakes the
    /// worker, which then fetches.
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        let notified = self
            .notified
            .get_or_insert_with(|| Box::pin(Arc::clone(&self.signal).notified_owned()));
        let pushed = notified.as_mut().poll(cx).is_ready();
        if pushed {
            self.notified = None;
        }
        let interval = self.interval;
        let delay = self
            .delay
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(interval)));
        let ticked = delay.as_mut().poll(cx).is_ready();
        if ticked || pushed {
            self.delay = None;
            return Poll::Ready(Some(()));
        }
        Poll::Pending
    }
}

/// Runs generations of the apalis worker `name` until `shutdown`, then shuts
/// the last one down within `opts.shutdown_deadline`. `make` builds one
/// generation's stream around the given context; `vacuum` deletes finished
/// jobs' leftovers and runs every heartbeat.
pub(super) async fn supervise<M, V>(
    name: &str,
    opts: &QueueOptions,
    make: M,
    vacuum: V,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    M: Fn(WorkerContext) -> EventStream,
    V: Fn() -> BoxFuture<'static, Result<u64, QueueError>>,
{
    let mut shutdown = pin!(shutdown);
    let first_backoff = opts.poll_interval.clamp(BACKOFF_MIN.0, BACKOFF_MIN.1);
    let mut backoff = first_backoff;
    let mut vacuum_every = tokio::time::interval(opts.heartbeat);
    vacuum_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut generation = 0_u64;
    loop {
        generation += 1;
        let ctx = WorkerContext::new(name);
        let started = Instant::now();
        let mut run = Generation(tokio::spawn(drain(
            make(ctx.clone()),
            ctx.clone(),
            opts.shutdown_deadline,
        )));
        tracing::debug!(worker = name, generation, "consumer started");
        let ended = loop {
            tokio::select! {
                ended = &mut run.0 => break Some(ended),
                () = &mut shutdown => break None,
                _ = vacuum_every.tick() => {
                    match tokio::time::timeout(VACUUM_TIMEOUT, vacuum()).await {
                        Ok(Ok(removed)) if removed > 0 => tracing::debug!(worker = name, removed, "vacuumed finished jobs"),
                        Ok(Ok(_)) => {}
                        Ok(Err(error)) => tracing::warn!(worker = name, %error, "vacuuming finished jobs failed"),
                        Err(_) => tracing::warn!(worker = name, "vacuuming finished jobs timed out"),
                    }
                }
            }
        };
        let Some(ended) = ended else {
            shut_down(name, &ctx, run, opts.shutdown_deadline).await;
            return;
        };
        match ended {
            Ok(Some(error)) => {
                tracing::warn!(worker = name, generation, %error, retry_in = ?backoff, "queue backend failed; reconnecting");
            }
            Ok(None) => {
                tracing::warn!(worker = name, generation, retry_in = ?backoff, "consumer ended; restarting")
            }
            Err(error) => {
                tracing::error!(worker = name, generation, %error, retry_in = ?backoff, "consumer task panicked; restarting");
            }
        }
        if started.elapsed() >= HEALTHY_AFTER {
            backoff = first_backoff;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = &mut shutdown => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Polls one generation's stream to its end; returns the first backend
/// error, if any. After that error the generation is stopped and polled on
/// (running jobs finish, their acks are flushed) for at most `finish_within`,
/// until it ends or fails again: polling apalis after an error raised while
/// closing would re-poll a finished future. Jobs still running then are
/// dropped un-acked; the next generation re-queues them when it registers.
async fn drain(mut stream: EventStream, ctx: WorkerContext, finish_within: Duration) -> Option<WorkerError> {
    let mut first_error: Option<WorkerError> = None;
    let mut give_up_at: Option<tokio::time::Instant> = None;
    loop {
        let next = match give_up_at {
            None => stream.next().await,
            Some(at) => match tokio::time::timeout_at(at, stream.next()).await {
                Ok(next) => next,
                Err(_) => {
                    tracing::warn!(
                        worker = ctx.name(),
                        running = ctx.task_count(),
                        "jobs still running after a backend error; dropping them un-acked"
                    );
                    return first_error;
                }
            },
        };
        let Some(event) = next else { break };
        match event {
            Ok(Event::Error(error)) => {
                tracing::warn!(worker = ctx.name(), %error, "apalis reported a task error");
            }
            Ok(_) => {}
            Err(error) => {
                if first_error.is_some() || ctx.is_stopped() {
                    tracing::warn!(worker = ctx.name(), %error, "queue backend failed while closing");
                    return first_error.or(Some(error));
                }
                tracing::warn!(
                    worker = ctx.name(),
                    %error,
                    running = ctx.task_count(),
                    "queue backend failed; finishing running jobs before reconnecting"
                );
                first_error = Some(error);
                give_up_at = Some(tokio::time::Instant::now() + finish_within);
                // Without a stop the drained stream would wait for ever.
                let _ = ctx.stop();
            }
        }
    }
    first_error
}

/// Graceful shutdown of one generation (see the module docs).
async fn shut_down(name: &str, ctx: &WorkerContext, mut run: Generation, deadline: Duration) {
    // Paused, apalis still heartbeats and acks but takes no new job. It
    // cannot pause before it has started: then the check below stops it.
    if ctx.pause().is_err() {
        let _ = ctx.stop();
    }
    let deadline = tokio::time::sleep(deadline);
    let mut deadline = pin!(deadline);
    let mut check = tokio::time::interval(DRAIN_CHECK);
    loop {
        tokio::select! {
            ended = &mut run.0 => {
                match ended {
                    Ok(Some(error)) => tracing::warn!(worker = name, %error, "consumer stopped with a backend error; un-acked jobs come back after orphan_after"),
                    Ok(None) => tracing::info!(worker = name, "consumer stopped"),
                    Err(error) => tracing::error!(worker = name, %error, "consumer task panicked while stopping"),
                }
                return;
            }
            _ = check.tick() => {
                if !ctx.is_stopped() && ctx.task_count() == 0 {
                    // Closing also puts fetched-but-unstarted jobs back.
                    let _ = ctx.stop();
                }
            }
            () = &mut deadline => {
                tracing::warn!(
                    worker = name,
                    running = ctx.task_count(),
                    "shutdown deadline passed; dropping running jobs un-acked (they come back after orphan_after)"
                );
                run.0.abort();
                let _ = (&mut run.0).await;
                return;
            }
        }
    }
}
