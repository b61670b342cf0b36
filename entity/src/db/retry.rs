//! The one retry policy for work that met a dead connection.
//!
//! Safe to retry, on a fresh connection (see [`super::lost`]):
//! - a read;
//! - a write transaction that failed before its COMMIT was sent: PostgreSQL
//!   rolled it back when the session died, so nothing of it remains;
//! - a write transaction whose COMMIT was sent but whose answer was lost:
//!   [`commit`] asks the server whether it committed (`txid_status`) and
//!   turns the answer into success or a plain, retryable loss. When even
//!   that cannot be learnt it fails with [`is_commit_unknown`], which is
//!   never retried: the work may be done, and only the caller can tell
//!   (`placeOrder` asks again with its idempotency key).
//!
//! SQLite has no connection to lose: the policy never triggers there.
use std::future::Future;
use std::time::Duration;

use futures::future::BoxFuture;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement};

use super::lost::{ConnectionLost, record_fault};

/// Retries after the first attempt. Two: the first retry may still meet a
/// connection that died in the same restart before the fault was recorded.
pub const RETRIES: u32 = 2;

/// The pause before retry `n` (1-based): short, as the pool itself waits
/// (up to `DATABASE_ACQUIRE_TIMEOUT_MS`) for a server that is starting up.
fn pause(retry: u32) -> Duration {
    Duration::from_millis(25 * u64::from(retry * retry))
}

/// Runs `attempt`, and again (up to [`RETRIES`] times) while it fails
/// because its connection died. `attempt` must be safe to repeat: a read,
/// or a whole write transaction (see [`write`]).
///
/// # Errors
/// The last attempt's error.
pub async fn retrying<T, E, F, Fut>(what: &str, mut attempt: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: ConnectionLost + std::fmt::Debug,
{
    let mut retry = 0;
    loop {
        match attempt().await {
            Err(err) if err.connection_lost() => {
                record_fault();
                retry += 1;
                if retry > RETRIES {
                    return Err(err);
                }
                tracing::warn!(error = ?err, what, retry, "database connection lost: retrying on a fresh connection");
                tokio::time::sleep(pause(retry)).await;
            }
            outcome => return outcome,
        }
    }
}

/// Runs `work` in a write transaction ([`super::begin_write`]) and commits
/// it ([`commit`]), the whole transaction retried by [`retrying`] when its
/// connection died. `work` may run more than once, so it must only touch the
/// database (no network call belongs in a transaction anyway).
///
/// # Errors
/// The error of `work`, or of the database.
pub async fn write<T, E, F>(db: &DatabaseConnection, what: &str, work: F) -> Result<T, E>
where
    F: for<'c> Fn(&'c DatabaseTransaction) -> BoxFuture<'c, Result<T, E>>,
    E: From<DbErr> + ConnectionLost + std::fmt::Debug,
{
    retrying(what, || async {
        let txn = super::begin_write(db).await?;
        let value = work(&txn).await?;
        commit(db, txn).await?;
        Ok(value)
    })
    .await
}

/// The message that starts the error of a COMMIT whose outcome is unknown.
const COMMIT_UNKNOWN: &str = "the outcome of COMMIT is unknown";

/// Whether `err` is [`commit`]'s "outcome unknown": the transaction may or
/// may not have committed, so neither retrying it blindly nor undoing its
/// side effects is safe.
#[must_use]
pub fn is_commit_unknown(err: &DbErr) -> bool {
    matches!(err, DbErr::Custom(message) if message.starts_with(COMMIT_UNKNOWN))
}

/// Commits `txn`. On PostgreSQL, when the connection dies during COMMIT,
/// asks the server (on a fresh connection from `db`) whether the
/// transaction committed: `Ok` when it did, the original (retryable) error
/// when it did not, [`is_commit_unknown`] when the server cannot say.
///
/// Costs one small statement (`txid_current()`) per PostgreSQL write transaction.
///
/// # Errors
/// As above; any other COMMIT error as is.
pub async fn commit(db: &DatabaseConnection, txn: DatabaseTransaction) -> Result<(), DbErr> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return txn.commit().await;
    }
    let txid = current_txid(&txn).await?;
    commit_txid(db, txn, txid).await
}

/// The SQL expression of a PostgreSQL transaction's id, for a statement
/// that returns it on the way (`RETURNING …, txid_current()`).
pub const TXID: &str = "txid_current()";

/// [`commit`] for a PostgreSQL transaction whose id the caller already read
/// (with [`TXID`] in one of its statements), saving `commit`'s statement.
///
/// # Errors
/// As [`commit`].
pub async fn commit_txid(db: &DatabaseConnection, txn: DatabaseTransaction, txid: i64) -> Result<(), DbErr> {
    match txn.commit().await {
        Err(err) if err.connection_lost() => {
            record_fault();
            match commit_status(db, txid).await {
                Ok(TxStatus::Committed) => {
                    tracing::warn!(%err, txid, "connection lost during COMMIT; the transaction had committed");
                    Ok(())
                }
                Ok(TxStatus::Aborted) => Err(err),
                Err(why) => Err(DbErr::Custom(format!("{COMMIT_UNKNOWN} ({err}): {why}"))),
            }
        }
        outcome => outcome,
    }
}

/// The id of `txn`'s transaction (assigning one if it has none yet).
async fn current_txid(txn: &DatabaseTransaction) -> Result<i64, DbErr> {
    txn.query_one_raw(Statement::from_string(
        DbBackend::Postgres,
        format!("SELECT {TXID}"),
    ))
    .await?
    .ok_or_else(|| DbErr::Custom("txid_current() returned no row".into()))?
    .try_get_by_index::<i64>(0)
}

/// What became of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    Committed,
    Aborted,
}

/// How long [`commit_status`] waits for a transaction that is still "in
/// progress" (its backend has not finished dying yet) to end.
const IN_PROGRESS_WAIT: Duration = Duration::from_secs(5);

/// Asks PostgreSQL whether transaction `txid` committed, on a fresh
/// connection (retried like a read). A transaction "in progress" is asked
/// about again until it ends: its session is gone, so it will.
///
/// # Errors
/// A description of why the outcome could not be learnt.
pub async fn commit_status(db: &DatabaseConnection, txid: i64) -> Result<TxStatus, String> {
    let deadline = tokio::time::Instant::now() + IN_PROGRESS_WAIT;
    loop {
        let status = retrying("txid_status", || async {
            db.query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT txid_status($1)",
                [txid.into()],
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("txid_status() returned no row".into()))?
            .try_get_by_index::<Option<String>>(0)
        })
        .await
        .map_err(|err| format!("txid_status({txid}) failed: {err}"))?;
        match status.as_deref() {
            Some("committed") => return Ok(TxStatus::Committed),
            Some("aborted") => return Ok(TxStatus::Aborted),
            Some("in progress") if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return Err(format!("txid_status({txid}) is {other:?}")),
        }
    }
}
