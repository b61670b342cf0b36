//! The Storefront domain model, shared by the `api` and `worker` binaries:
//! the SeaORM tables, the rules that change them, and the job payloads that
//! cross from one process to the other. Business rules live here once;
//! GraphQL resolvers and job handlers are thin adapters over these functions.
//!
//! Layout:
//! - [`tables`]: one SeaORM entity per table, mirroring the migration.
//! - [`accounts`]: users, passwords, refresh tokens, password resets.
//! - [`addresses`]: customers' address books (one default shipping address each).
//! - [`actor`]: who is asking; ownership checks take it.
//! - [`carts`]: guests' and customers' carts, priced on every read; merging at sign-in; expiry.
//! - [`catalog`]: products, the product list, stock rules (reserve, return, adjust).
//! - [`checkout`]: a cart priced for an address, a method and a code, then placed as an order.
//! - [`orders`]: the status state machine, placing, cancelling, fulfilling, reading.
//! - [`payments`]: payment statuses and the gateway (trait + sandbox).
//! - [`shipping`]: shipping zones, their methods and rates, tax rates per country.
//! - [`shop`]: the shop's settings every process reads (the tax mode).
//! - [`text`]: free text a person typed, trimmed and bounded.
//! - [`pricing`]: an order's money (subtotal, discount, shipping, tax, total), computed in one place.
//! - [`notifications`]: email delivery statuses.
//! - [`pagination`]: page sizes and keyset pages.
//! - [`outbox`]: jobs written inside the caller's transaction; the retry schedule; the sweeper's due rows.
//! - [`trace`]: the W3C `traceparent` of a span, stored with each outbox row and followed by the job.
//! - [`discounts`]: discount codes, their limits (one conditional statement each), using and giving back a use.
//! - [`dead_jobs`]: jobs that failed for good, kept for an admin to retry.
//! - [`workers`]: the job runners' heartbeats (who is alive, running what).
//! - [`jobs`]: the job payloads (`SettlePayment`, `SendEmail`) and their stable names.
//! - [`money`]: integer minor units plus currency, checked arithmetic, formatting.
//! - [`db`]: connecting (SQLite WAL + busy timeout, PostgreSQL) and write transactions.
//! - [`error`]: the one error type domain functions return.
pub mod accounts;
pub mod actor;
pub mod addresses;
pub mod carts;
pub mod catalog;
pub mod checkout;
pub mod db;
pub mod dead_jobs;
pub mod discounts;
pub mod error;
pub mod ids;
pub mod jobs;
pub mod money;
pub mod notifications;
pub mod orders;
pub mod outbox;
pub mod pagination;
pub mod payments;
pub mod pricing;
pub mod shipping;
pub mod shop;
pub mod tables;
pub mod text;
pub mod trace;
pub mod workers;

pub use error::DomainError;
