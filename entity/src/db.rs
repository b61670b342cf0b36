//! Connecting to the database the same way from every process.
//!
//! SQLite is shared by SeaORM and the SQLite job queue, possibly from two
//! processes, so every connection runs in WAL mode with a busy timeout and
//! foreign keys on, and write transactions start with `BEGIN IMMEDIATE`
//! ([`begin_write`]): a deferred transaction that reads first and writes later
//! can fail at once with "database is locked" instead of waiting its turn.
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

/// How long a SQLite writer waits for another before giving up.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens a pool on `url` (`postgres://…` or `sqlite://path?mode=rwc`).
///
/// # Errors
/// The driver's error when the database cannot be reached or opened.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(max_connections)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        // Checking each connection on every acquire costs ~15% throughput
        // (measured with bench/api.sh); a broken connection surfaces as an error instead.
        .test_before_acquire(false)
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
