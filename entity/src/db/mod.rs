//! Connecting to the database the same way from every process.
//!
//! SQLite is shared by SeaORM and the SQLite job queue, possibly from two
//! processes, so every connection runs in WAL mode with a busy timeout and
//! foreign keys on, and write transactions start with `BEGIN IMMEDIATE`
//! ([`begin_write`]): a deferred transaction that reads first and writes later
//! can fail at once with "database is locked" instead of waiting its turn.
//!
//! PostgreSQL connections can die under the pool (a server restart): see
//! [`lost`] for how the pool stops handing them out and [`retry`] for how
//! work that met one is retried.
pub mod batch;
pub mod lost;
pub mod retry;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

/// How long a SQLite writer waits for another before giving up.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How a pool is sized and how long it lets things wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// `DATABASE_ACQUIRE_TIMEOUT_MS` (default 10000): the longest a caller
    /// waits for a connection, including while the server (re)starts.
    pub acquire_timeout: Duration,
    /// `DATABASE_STATEMENT_TIMEOUT_MS` (default 30000): PostgreSQL's
    /// `statement_timeout`, set on every connection (0 turns it off).
    pub statement_timeout: Duration,
    /// `DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS` (default 60000): PostgreSQL's
    /// `idle_in_transaction_session_timeout` (0 turns it off): a session
    /// that sits in an open transaction that long is ended, its locks freed.
    pub idle_in_transaction_timeout: Duration,
}

impl PoolSettings {
    /// The defaults, with `max_connections`.
    #[must_use]
    pub const fn new(max_connections: u32) -> Self {
        Self {
            max_connections,
            acquire_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(30),
            idle_in_transaction_timeout: Duration::from_secs(60),
        }
    }
}

/// Opens a pool on `url` (`postgres://…` or `sqlite://path?mode=rwc`) with
/// default settings ([`PoolSettings::new`]).
///
/// # Errors
/// The driver's error when the database cannot be reached or opened.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, &PoolSettings::new(max_connections)).await
}

/// Opens a pool on `url` with `settings`.
///
/// # Errors
/// The driver's error when the database cannot be reached or opened.
pub async fn connect_with(url: &str, settings: &PoolSettings) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url);
    let idle_in_transaction = settings.idle_in_transaction_timeout.as_millis();
    options
        .max_connections(settings.max_connections)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(settings.acquire_timeout)
        // Checking each connection on every acquire costs ~15% throughput
        // (measured with bench/api.sh). Instead, a connection opened before
        // the last dead one was seen is dropped here: an atomic compare.
        .test_before_acquire(false)
        .map_sqlx_postgres_before_acquire(|_conn, meta| {
            Box::pin(async move { Ok(!lost::created_before_last_fault(meta.age)) })
        })
        .statement_timeout(settings.statement_timeout)
        .map_sqlx_postgres_opts(move |opts| {
            opts.options([("idle_in_transaction_session_timeout", idle_in_transaction)])
        })
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            opts.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
        });
    Database::connect(options).await
}

/// The URL of the SQLite file `file`, created on first use.
#[must_use]
pub fn sqlite_url(file: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", file.display())
}

/// Begins a transaction that will write: `BEGIN IMMEDIATE` on SQLite (takes
/// the write lock up front, waiting up to the busy timeout), a plain
/// `BEGIN` on PostgreSQL.
///
/// # Errors
/// The driver's error when no connection or lock can be had.
pub async fn begin_write<C: TransactionTrait<Transaction = DatabaseTransaction>>(
    db: &C,
) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}
