//! The Storefront domain model, shared by the `api` and `worker` binaries:
//! the SeaORM tables, the rules that change them, and the job payloads that
//! cross from one process to the other. Business rules live here once;
//! GraphQL resolvers and job handlers are thin adapters over these functions.
//!
//! Layout:
//! - [`tables`]: one SeaORM entity per table, mirroring the migration.
//! - [`accounts`]: roles and parsed account input ([`accounts::Email`]).
//! - [`catalog`]: stock rules — reserve, return, adjust — and [`catalog::Quantity`].
//! - [`orders`]: the order status state machine and its compare-and-set transition.
//! - [`payments`], [`notifications`]: payment and email delivery statuses.
//! - [`outbox`]: writing a job inside the caller's transaction.
//! - [`jobs`]: the job payloads (`SettlePayment`, `SendEmail`) and their stable names.
//! - [`money`]: integer minor units plus currency, checked arithmetic, formatting.
//! - [`db`]: connecting (SQLite WAL + busy timeout, PostgreSQL) and write transactions.
//! - [`error`]: the one error type domain functions return.
//! - `testing` (feature `testing`): a fresh database per test on either backend.
pub mod accounts;
pub mod catalog;
pub mod db;
pub mod error;
pub mod ids;
pub mod jobs;
pub mod money;
pub mod notifications;
pub mod orders;
pub mod outbox;
pub mod payments;
pub mod tables;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::DomainError;
