//! Running one attempt of a job, and what happens after it.
//!
//! Every queue delivery is one attempt of one outbox row. [`run`] decodes it
//! by name, calls the job's handler (a thin adapter over an `entity` rule),
//! and then, by the outcome:
//! - `Done`: nothing more to write but the row's `completed_at`, which the
//!   completer writes in a batch with others (`complete`); the queue acks
//!   the delivery at once;
//! - `Retry`: below `JOB_MAX_ATTEMPTS`, a new outbox row for the next attempt,
//!   due after an exponential backoff with jitter; at the limit, a dead job;
//! - `Fail`: a dead job at once (a permanent error);
//! - `Later`: the same attempt again after a wait (another worker holds the
//!   work, e.g. an email whose sender's lease has not run out; or a circuit
//!   breaker is open and the gateway or SMTP server was not called).
//!
//! This is the only retry mechanism: apalis never re-runs a job because it
//! failed (see `queue`). Delivery is at least once, so handlers are
//! idempotent: settling a settled payment or sending a sent email is a no-op.
//!
//! Adding a job: a payload type with a versioned `NAME` in `entity::jobs`,
//! a file here with `async fn run(ctx, job) -> JobOutcome`, one arm in [`run`].
use std::sync::Arc;
use std::time::Duration;

use entity::db::lost::ConnectionLost;
use entity::jobs::{Envelope, Job, JobOutcome, ReleasePayment, SendEmail, SettlePayment};
use entity::payments::PaymentGateway;
use sea_orm::DatabaseConnection;
use serde::de::DeserializeOwned;
use tracing::Instrument as _;

use crate::config::RetryPolicy;
use crate::notifications::{Links, Mailer};

pub mod release_payment;
pub mod send_email;
pub mod settle_payment;

/// What job handlers share.
#[derive(Clone)]
pub struct JobContext {
    pub db: DatabaseConnection,
    pub gateway: Arc<dyn PaymentGateway>,
    pub mailer: Arc<Mailer>,
    pub links: Links,
    pub retry: RetryPolicy,
    /// Wakes the dispatcher when a job wrote new outbox rows (a receipt email
    /// after a settlement), so they do not wait for the sweeper's grace.
    pub kicker: crate::dispatch::Kicker,
    /// Tells the api's `orderUpdated` subscribers about settled, failed and
    /// released payments.
    pub events: crate::events::OrderEvents,
    /// Records `Done` attempts in batches (see `complete`).
    pub completer: crate::complete::Completer,
}

/// The name of the job that does nothing: accepted only by builds with the
/// `bench-noop` feature (`bench/jobs.sh`), so the bench measures the
/// pipeline (outbox → queue → outcome) without a handler's SQL. It runs on
/// the emails queue (every job that is not a settlement's does).
#[cfg(feature = "bench-noop")]
pub const NOOP: &str = "bench_noop.v1";

fn decode<J: Job + DeserializeOwned>(envelope: &Envelope) -> Result<J, JobOutcome> {
    serde_json::from_value(envelope.payload.clone())
        .map_err(|e| JobOutcome::Fail(format!("payload of {} does not decode: {e}", J::NAME)))
}

/// Runs one attempt and records its outcome; never fails (see module docs).
///
/// All of it runs in a `job` span named for the job (`otel.name`) whose
/// parent is the span that wrote the outbox row: the HTTP request that
/// placed an order, or the job whose retry this is (`entity::trace`). So
/// with trace export on, one order's request, jobs and emails are one trace.
pub async fn run(ctx: &JobContext, envelope: Envelope) {
    let span = tracing::info_span!(
        "job",
        otel.name = %envelope.job_name,
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        job = %envelope.job_name,
        outbox_id = %envelope.outbox_id,
        attempt = envelope.attempt,
        outcome = tracing::field::Empty,
    );
    entity::trace::follow(&span, envelope.traceparent.as_deref());
    attempt(ctx, envelope).instrument(span).await;
}

async fn attempt(ctx: &JobContext, mut envelope: Envelope) {
    let started = std::time::Instant::now();
    // The order whose payment this job may have changed.
    let mut changed_order = None;
    let outcome = match envelope.job_name.as_str() {
        SettlePayment::NAME => match decode::<SettlePayment>(&envelope) {
            Ok(job) => {
                changed_order = Some(job.order_id);
                settle_payment::run(ctx, &job).await
            }
            Err(outcome) => outcome,
        },
        ReleasePayment::NAME => match decode::<ReleasePayment>(&envelope) {
            Ok(job) => {
                changed_order = Some(job.order_id);
                release_payment::run(ctx, &job).await
            }
            Err(outcome) => outcome,
        },
        SendEmail::NAME => match decode::<SendEmail>(&envelope) {
            Ok(job) => send_email::run(ctx, &mut envelope, job).await,
            Err(outcome) => outcome,
        },
        #[cfg(feature = "bench-noop")]
        NOOP => JobOutcome::Done,
        other => JobOutcome::Fail(format!("no handler for job {other:?}")),
    };
    crate::metrics::job_finished(&envelope.job_name, &outcome, started.elapsed());
    let span = tracing::Span::current();
    span.record("outcome", crate::metrics::outcome_label(&outcome));
    if matches!(outcome, JobOutcome::Fail(_) | JobOutcome::Retry(_)) {
        span.record("otel.status_code", "ERROR");
    }
    record(ctx, &envelope, outcome).await;
    if let Some(order_id) = changed_order {
        ctx.events.publish(order_id).await;
    }
}

/// Writes the consequence of `outcome` and marks the attempt completed, in
/// one transaction; retries the write for a while if the database is briefly
/// unreachable (if it never comes back, the reaper pushes the row again).
/// `Done` has no consequence to write: the completer marks it, in a batch.
async fn record(ctx: &JobContext, envelope: &Envelope, outcome: JobOutcome) {
    if outcome == JobOutcome::Done {
        ctx.completer.complete(envelope.outbox_id).await;
        return;
    }
    let mut wait = Duration::from_millis(200);
    for _ in 0..8 {
        match write_outcome(ctx, envelope, &outcome).await {
            Ok(()) => return,
            Err(err) => {
                if err.connection_lost() {
                    entity::db::lost::record_fault();
                }
                tracing::error!(job = %envelope.job_name, error = %err, "could not record a job outcome; trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
    }
    tracing::error!(job = %envelope.job_name, outbox_id = %envelope.outbox_id, "gave up recording a job outcome");
}

async fn write_outcome(
    ctx: &JobContext,
    envelope: &Envelope,
    outcome: &JobOutcome,
) -> Result<(), entity::DomainError> {
    let txn = entity::db::begin_write(&ctx.db).await?;
    match outcome {
        // `record` hands these to the completer.
        JobOutcome::Done => {}
        JobOutcome::Later { after, reason } => {
            entity::outbox::enqueue_later(&txn, envelope, *after).await?;
            tracing::info!(job = %envelope.job_name, attempt = envelope.attempt, ?after, reason = %reason, "job postponed");
        }
        JobOutcome::Retry(message) if envelope.attempt < ctx.retry.max_attempts => {
            let delay = ctx.retry.backoff(envelope.attempt);
            entity::outbox::enqueue_retry(&txn, envelope, delay).await?;
            tracing::info!(job = %envelope.job_name, attempt = envelope.attempt, ?delay, error = %message, "job will be retried");
        }
        JobOutcome::Retry(message) | JobOutcome::Fail(message) => {
            entity::dead_jobs::bury(&txn, envelope, message).await?;
            tracing::warn!(job = %envelope.job_name, attempt = envelope.attempt, error = %message, "job is dead");
        }
    }
    entity::outbox::mark_completed(&txn, envelope.outbox_id).await?;
    txn.commit().await?;
    ctx.kicker.kick();
    Ok(())
}

/// A database failure inside a handler is temporary as far as the job is
/// concerned. A dead connection (the database restarted) is not even the
/// job's failure: the same attempt runs again shortly, on a fresh connection.
pub(crate) fn retry_on_error(result: Result<JobOutcome, entity::DomainError>) -> JobOutcome {
    result.unwrap_or_else(|err| {
        if err.connection_lost() {
            entity::db::lost::record_fault();
            tracing::warn!(error = ?err, "job met a dead database connection; running it again");
            return JobOutcome::Later {
                after: DEAD_CONNECTION_PAUSE,
                reason: format!("database connection lost: {err}"),
            };
        }
        tracing::warn!(error = %err, "job hit a database error");
        JobOutcome::Retry(format!("database: {err}"))
    })
}

/// How long a job that met a dead connection waits before it runs again.
const DEAD_CONNECTION_PAUSE: Duration = Duration::from_millis(200);
