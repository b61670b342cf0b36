//! The transactional outbox: a job is written in the same transaction as the
//! data that caused it, so a crash between commit and the push to the queue
//! loses nothing — the row is still there for the dispatcher or the sweeper.
//!
//! Rows are also the retry schedule: a transient failure writes a new row for
//! the next attempt with `available_at` in the future, so the queue itself
//! only ever holds jobs that are due now (and stays small: see the worker's
//! high-water mark).
use std::time::Duration;

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Query};
use sea_orm::{Condition, DbBackend, PaginatorTrait, QueryOrder};

use crate::error::DomainError;
use crate::ids::OutboxId;
use crate::jobs::{Envelope, Job, QueueName};
use crate::tables::outbox;

fn row(
    job_name: &str,
    payload: serde_json::Value,
    attempt: i32,
    delay: Duration,
    traceparent: Option<String>,
) -> outbox::ActiveModel {
    let now = Utc::now();
    let available_at = now + chrono::Duration::from_std(delay).unwrap_or_else(|_| chrono::Duration::days(1));
    outbox::ActiveModel {
        id: Set(OutboxId::new()),
        job_name: Set(job_name.to_owned()),
        payload: Set(payload),
        attempt: Set(attempt),
        available_at: Set(available_at),
        created_at: Set(now),
        dispatched_at: Set(None),
        completed_at: Set(None),
        dispatch_attempts: Set(0),
        last_error: Set(None),
        traceparent: Set(traceparent),
    }
}

/// Writes `job` to the outbox through `conn`, which should be the caller's
/// transaction: the row commits or rolls back with the caller's data. The
/// row keeps the trace context of the current span (the HTTP request or the
/// job writing it: see [`crate::trace`]), which the job's span continues.
///
/// # Errors
/// [`DomainError::Database`] when the insert fails, [`DomainError::Encoding`]
/// when the payload cannot be serialised.
pub async fn enqueue<C: ConnectionTrait, J: Job>(conn: &C, job: &J) -> Result<outbox::Model, DomainError> {
    Ok(first_attempt(job)?.insert(conn).await?)
}

/// The row [`enqueue`] writes for `job`, for a caller that writes several
/// rows in one statement (`orders::write`: an order's jobs in one `INSERT`
/// with the order). It must go into the caller's transaction, as for
/// [`enqueue`].
///
/// # Errors
/// [`DomainError::Encoding`] when the payload cannot be serialised.
pub(crate) fn first_attempt<J: Job>(job: &J) -> Result<outbox::ActiveModel, DomainError> {
    Ok(row(
        J::NAME,
        serde_json::to_value(job)?,
        1,
        Duration::ZERO,
        crate::trace::current(),
    ))
}

/// Schedules the next attempt of `envelope`'s job after `delay`, in the
/// same trace as the attempt before.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn enqueue_retry<C: ConnectionTrait>(
    conn: &C,
    envelope: &Envelope,
    delay: Duration,
) -> Result<outbox::Model, DomainError> {
    let attempt = i32::try_from(envelope.attempt.saturating_add(1)).unwrap_or(i32::MAX);
    Ok(again(envelope, attempt, delay).insert(conn).await?)
}

/// Schedules the same attempt of `envelope`'s job again after `delay` (it
/// could not run yet; no attempt was used up).
///
/// # Errors
/// [`DomainError::Database`].
pub async fn enqueue_later<C: ConnectionTrait>(
    conn: &C,
    envelope: &Envelope,
    delay: Duration,
) -> Result<outbox::Model, DomainError> {
    let attempt = Ord::max(i32::try_from(envelope.attempt).unwrap_or(i32::MAX), 1);
    Ok(again(envelope, attempt, delay).insert(conn).await?)
}

/// A row for `envelope`'s job to run again as `attempt` after `delay`, in
/// the trace of the attempt before.
fn again(envelope: &Envelope, attempt: i32, delay: Duration) -> outbox::ActiveModel {
    row(
        &envelope.job_name,
        envelope.payload.clone(),
        attempt,
        delay,
        envelope.traceparent.clone(),
    )
}

/// Puts a job back in the outbox as a first attempt (an admin's retry of a
/// dead job), in the trace of the current span (the admin's request).
///
/// # Errors
/// [`DomainError::Database`].
pub async fn enqueue_raw<C: ConnectionTrait>(
    conn: &C,
    job_name: &str,
    payload: serde_json::Value,
) -> Result<outbox::Model, DomainError> {
    Ok(row(job_name, payload, 1, Duration::ZERO, crate::trace::current())
        .insert(conn)
        .await?)
}

/// The queue message for an outbox row.
#[must_use]
pub fn envelope(row: &outbox::Model) -> Envelope {
    Envelope {
        outbox_id: row.id,
        job_name: row.job_name.clone(),
        attempt: u32::try_from(row.attempt).unwrap_or(1),
        payload: row.payload.clone(),
        traceparent: row.traceparent.clone(),
    }
}

/// Claims the rows to push, at most `limit`, in one statement: marks them
/// dispatched and returns them (`UPDATE … RETURNING`), oldest first. Due
/// are undispatched rows — first attempts older than `grace` (the api
/// pushes fresh ones itself) and retries whose backoff is over — and rows
/// dispatched more than `lost_after` ago whose attempt never completed (the
/// queue lost them; pushing again is harmless: handlers are idempotent and
/// the queue ignores a row it still holds). `only` limits the claim to one
/// queue's jobs (the other queue is full).
///
/// The rows are marked *before* they are pushed, so no lock or transaction
/// is held across the push: a row whose push then fails is handed back with
/// [`release_claim`]; a process that dies in between leaves its claimed rows
/// to the reaper (`lost_after`). On PostgreSQL the rows are picked `FOR
/// UPDATE SKIP LOCKED`, so any number of dispatchers never claim the same
/// row; on SQLite writes are serialised by the database itself.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn claim_due<C: ConnectionTrait>(
    conn: &C,
    grace: Duration,
    lost_after: Duration,
    limit: u64,
    only: Option<QueueName>,
) -> Result<Vec<outbox::Model>, DomainError> {
    let now = Utc::now();
    let ago = |d: Duration| now - chrono::Duration::from_std(d).unwrap_or_default();
    let waiting = Condition::all()
        .add(outbox::Column::DispatchedAt.is_null())
        .add(outbox::Column::AvailableAt.lte(now))
        .add(
            Condition::any()
                .add(outbox::Column::Attempt.gt(1))
                .add(outbox::Column::CreatedAt.lte(ago(grace))),
        );
    let lost = outbox::Column::DispatchedAt.lte(ago(lost_after));
    // `completed_at IS NULL` stays a top-level term, outside the `OR`:
    // SQLite only uses the partial index `ix_outbox_unfinished_available_at`
    // (whose order is the `ORDER BY`) when the query's own `AND` terms name
    // its `WHERE`; otherwise it scans the whole table
    // (docs/outbox-indexes.md).
    let mut due = Query::select();
    due.column(outbox::Column::Id)
        .from(outbox::Entity)
        .and_where(outbox::Column::CompletedAt.is_null())
        .cond_where(Condition::any().add(waiting).add(lost))
        .order_by(outbox::Column::AvailableAt, sea_orm::Order::Asc)
        .limit(limit);
    if let Some(queue) = only {
        due.and_where(of_queue(queue));
    }
    let picked = if conn.get_database_backend() == DbBackend::Postgres {
        due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        // `id = ANY(ARRAY(…))`, not `id IN (…)`: the picked ids become one
        // array, so the rows are fetched through the primary key whatever
        // the statistics say. As a semi-join, PostgreSQL may instead hash
        // the ids and scan the whole table for them (it did with 100,000
        // unfinished rows: docs/outbox-indexes.md, "During a burst").
        Expr::cust_with_exprs(
            "$1 = ANY(ARRAY $2)",
            [
                Expr::col((outbox::Entity, outbox::Column::Id)),
                Expr::SubQuery(None, Box::new(due.into())),
            ],
        )
    } else {
        outbox::Column::Id.in_subquery(due)
    };
    let mut rows = outbox::Entity::update_many()
        .col_expr(outbox::Column::DispatchedAt, Expr::value(now))
        .filter(picked)
        .exec_with_returning(conn)
        .await?;
    // `RETURNING` keeps no order.
    rows.sort_by_key(|row| row.available_at);
    Ok(rows)
}

/// The condition "a job of `queue`".
fn of_queue(queue: QueueName) -> sea_orm::sea_query::SimpleExpr {
    let settlement = outbox::Column::JobName.is_in(QueueName::SETTLEMENT_JOBS);
    match queue {
        QueueName::Settlements => settlement,
        QueueName::Emails => settlement.not(),
    }
}

/// Deletes at most `batch` rows whose attempt finished more than
/// `older_than` ago, in one statement; returns how many. Call it again
/// until it returns less than `batch` (the worker's prune schedule does,
/// pausing between batches so no statement holds locks for long).
///
/// Only `completed_at` decides: a row still waiting, dispatched but not
/// finished, or finished recently is never touched. Nothing else refers to
/// outbox rows — a dead job keeps its own copy of the payload, which is
/// what an admin's retry puts back in the outbox — so dead jobs are kept
/// until an admin acts, whatever the outbox's retention.
///
/// On PostgreSQL the rows are picked `FOR UPDATE SKIP LOCKED`: prunes
/// running at once in several workers take disjoint batches and never wait
/// on each other or on a worker completing a row. On SQLite writes are
/// serialised by the database itself.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn prune_completed<C: ConnectionTrait>(
    conn: &C,
    older_than: Duration,
    batch: u64,
) -> Result<u64, DomainError> {
    // A retention beyond chrono's range: nothing is that old.
    let Some(cutoff) = chrono::Duration::from_std(older_than)
        .ok()
        .and_then(|age| Utc::now().checked_sub_signed(age))
    else {
        return Ok(0);
    };
    let mut finished = Query::select();
    finished
        .column(outbox::Column::Id)
        .from(outbox::Entity)
        // `IS NOT NULL` spelled out: it is the partial index's `WHERE`
        // (`ix_outbox_completed_at`), and it says what is never deleted.
        .and_where(outbox::Column::CompletedAt.is_not_null())
        .and_where(outbox::Column::CompletedAt.lt(cutoff))
        .limit(batch);
    if conn.get_database_backend() == DbBackend::Postgres {
        finished.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let deleted = outbox::Entity::delete_many()
        .filter(outbox::Column::Id.in_subquery(finished))
        .exec(conn)
        .await?;
    Ok(deleted.rows_affected)
}

/// Makes every row that was pushed and never completed due again: the queue
/// lost them (see the worker's `JobQueue::lost_its_jobs`). Returns how many.
/// A row whose job is in fact still running somewhere then runs twice,
/// which the idempotent handlers absorb.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn redispatch_unfinished<C: ConnectionTrait>(conn: &C) -> Result<u64, DomainError> {
    let updated = outbox::Entity::update_many()
        .col_expr(
            outbox::Column::DispatchedAt,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .filter(outbox::Column::DispatchedAt.is_not_null())
        .filter(outbox::Column::CompletedAt.is_null())
        .exec(conn)
        .await?;
    Ok(updated.rows_affected)
}

/// Replaces the stored payload of the row `id` (a legacy payload rewritten
/// without its secret: see `accounts::legacy_reset_id`).
///
/// # Errors
/// [`DomainError::Database`].
pub async fn replace_payload<C: ConnectionTrait>(
    conn: &C,
    id: OutboxId,
    payload: serde_json::Value,
) -> Result<(), DomainError> {
    outbox::Entity::update_many()
        .col_expr(outbox::Column::Payload, Expr::value(payload))
        .filter(outbox::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Records that the attempt of a row finished (whatever its outcome).
///
/// # Errors
/// [`DomainError::Database`].
pub async fn mark_completed<C: ConnectionTrait>(conn: &C, id: OutboxId) -> Result<(), DomainError> {
    complete_many(conn, &[id]).await.map(|_| ())
}

/// Records that the attempts of `ids` finished, in one statement (the
/// worker's completer batches the cheap outcomes this way). A row already
/// completed (a redelivered job) keeps its first `completed_at`. Returns
/// how many of `ids` name a row (completed now or before).
///
/// The rows are found by the primary key alone: the statement has no
/// `completed_at IS NULL` term (the first `completed_at` is kept by
/// `COALESCE` instead), because with one PostgreSQL may read them through
/// `ix_outbox_unfinished_available_at`, whose `WHERE` that term matches,
/// filtering every unfinished row against the ids. Its statistics taken
/// before a burst say that index holds a handful of rows, so it did, and a
/// batch of 500 cost 20–280 ms with 100,000 rows waiting instead of 2 ms
/// (docs/outbox-indexes.md, "During a burst").
///
/// # Errors
/// [`DomainError::Database`].
pub async fn complete_many<C: ConnectionTrait>(conn: &C, ids: &[OutboxId]) -> Result<u64, DomainError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let updated = outbox::Entity::update_many()
        .col_expr(
            outbox::Column::CompletedAt,
            Expr::col(outbox::Column::CompletedAt).if_null(Utc::now()),
        )
        .filter(outbox::Column::Id.is_in(ids.iter().copied()))
        .exec(conn)
        .await?;
    Ok(updated.rows_affected)
}

/// Hands back rows claimed by [`claim_due`] whose push failed: due again at
/// once, with the failure counted and kept, so the backlog shows why rows
/// wait.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn release_claim<C: ConnectionTrait>(
    conn: &C,
    ids: &[OutboxId],
    error: &str,
) -> Result<(), DomainError> {
    if ids.is_empty() {
        return Ok(());
    }
    outbox::Entity::update_many()
        .col_expr(
            outbox::Column::DispatchedAt,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .col_expr(
            outbox::Column::DispatchAttempts,
            Expr::col(outbox::Column::DispatchAttempts).add(1),
        )
        .col_expr(outbox::Column::LastError, Expr::value(error))
        .filter(outbox::Column::Id.is_in(ids.iter().copied()))
        .filter(outbox::Column::CompletedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// The outbox rows of one queue's jobs that are due and wait to be pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub count: u64,
    /// Since when the oldest of them has been due.
    pub oldest: Option<chrono::DateTime<Utc>>,
}

/// The rows of `queue`'s jobs that are due now and not yet pushed: work
/// that waits in the database rather than on the queue.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn due_on<C: ConnectionTrait>(conn: &C, queue: QueueName) -> Result<Due, DomainError> {
    let due = Condition::all()
        .add(of_queue(queue))
        .add(outbox::Column::DispatchedAt.is_null())
        .add(outbox::Column::CompletedAt.is_null())
        .add(outbox::Column::AvailableAt.lte(Utc::now()));
    let count = outbox::Entity::find().filter(due.clone()).count(conn).await?;
    let oldest = outbox::Entity::find()
        .filter(due)
        .order_by_asc(outbox::Column::AvailableAt)
        .one(conn)
        .await?
        .map(|row| row.available_at);
    Ok(Due { count, oldest })
}

/// How many rows wait to be pushed (due or not): the outbox backlog.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn backlog<C: ConnectionTrait>(conn: &C) -> Result<u64, DomainError> {
    Ok(outbox::Entity::find()
        .filter(outbox::Column::DispatchedAt.is_null())
        .filter(outbox::Column::CompletedAt.is_null())
        .count(conn)
        .await?)
}
