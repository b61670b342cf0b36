//! Telling a dead connection from a failed statement, and keeping the
//! pool's other dead connections from being handed out.
//!
//! When PostgreSQL restarts (or a proxy drops its connections), every idle
//! connection in the pool dies with it, but the pool does not know: it does
//! not ping on acquire (that costs ~15% throughput). So the first statement
//! that meets a dead connection records the time of the fault, and the
//! pool's `before_acquire` hook ([`created_before_last_fault`]) drops every
//! connection opened before it: an atomic compare, no round trip.
//!
//! The fault time is process-wide rather than per pool: a fault seen on one
//! pool makes the others open a few fresh connections too, which is cheap,
//! and keeps the error sites free of pool plumbing.
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::sqlx::postgres::PgDatabaseError;
use sea_orm::{DbErr, RuntimeErr};

use crate::DomainError;

/// An error that may say the connection under it died.
pub trait ConnectionLost {
    /// Whether the connection died (the server restarted, terminated the
    /// session or the socket broke), as opposed to the statement failing on
    /// a live connection: only the former is worth retrying elsewhere.
    fn connection_lost(&self) -> bool;
}

impl ConnectionLost for DbErr {
    fn connection_lost(&self) -> bool {
        match self {
            DbErr::Conn(RuntimeErr::SqlxError(err))
            | DbErr::Exec(RuntimeErr::SqlxError(err))
            | DbErr::Query(RuntimeErr::SqlxError(err)) => sqlx_connection_lost(err),
            _ => false,
        }
    }
}

impl ConnectionLost for DomainError {
    fn connection_lost(&self) -> bool {
        matches!(self, DomainError::Database(err) if err.connection_lost())
    }
}

fn sqlx_connection_lost(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match err {
        // The socket broke, or the server closed it (EOF).
        Error::Io(_) => true,
        Error::Database(db) => db
            .try_downcast_ref::<PgDatabaseError>()
            .is_some_and(|pg| is_lost_sqlstate(pg.code())),
        Error::Protocol(message) => {
            let message = message.to_ascii_lowercase();
            message.contains("connection closed") || message.contains("broken pipe")
        }
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs that end the session: `57P01` admin_shutdown (a
/// fast shutdown or `pg_terminate_backend`), `57P02` crash_shutdown,
/// `57P03` cannot_connect_now (starting up or shutting down) and class
/// `08` connection exceptions.
fn is_lost_sqlstate(code: &str) -> bool {
    matches!(code, "57P01" | "57P02" | "57P03") || code.starts_with("08")
}

/// Nanoseconds after [`epoch`] of the last fault seen; 0 when none was.
static LAST_FAULT: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos_since_epoch(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

/// Records that a connection was found dead just now: every connection
/// opened before this moment is suspect and will not be handed out again.
pub fn record_fault() {
    // +1: a fault in the very first nanosecond is still a fault.
    LAST_FAULT.fetch_max(nanos_since_epoch(Instant::now()) + 1, Ordering::Relaxed);
}

/// Whether a pooled connection of age `age` was opened before the last
/// recorded fault (the pool's `before_acquire` drops it then).
#[must_use]
pub fn created_before_last_fault(age: Duration) -> bool {
    let fault = LAST_FAULT.load(Ordering::Relaxed);
    if fault == 0 {
        return false;
    }
    let opened = Instant::now().checked_sub(age).unwrap_or_else(epoch);
    nanos_since_epoch(opened) < fault
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ending_sqlstates_are_lost_and_query_errors_are_not() {
        for code in ["57P01", "57P02", "57P03", "08006", "08003", "08P01"] {
            assert!(is_lost_sqlstate(code), "{code}");
        }
        // unique_violation, serialization_failure, query_canceled (statement_timeout), syntax error.
        for code in ["23505", "40001", "57014", "42601"] {
            assert!(!is_lost_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn io_errors_are_lost_and_ordinary_errors_are_not() {
        let io = DbErr::Exec(RuntimeErr::SqlxError(std::sync::Arc::new(
            sea_orm::sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
        )));
        assert!(io.connection_lost());
        assert!(DomainError::Database(io).connection_lost());
        assert!(!DbErr::RecordNotFound("x".into()).connection_lost());
        let row = DbErr::Query(RuntimeErr::SqlxError(std::sync::Arc::new(
            sea_orm::sqlx::Error::RowNotFound,
        )));
        assert!(!row.connection_lost());
        assert!(!DomainError::Forbidden.connection_lost());
    }

    #[test]
    fn a_fault_condemns_older_connections_only() {
        let old = Duration::from_secs(3_600);
        record_fault();
        assert!(created_before_last_fault(old));
        std::thread::sleep(Duration::from_millis(2));
        assert!(
            !created_before_last_fault(Duration::ZERO),
            "opened after the fault"
        );
    }
}
