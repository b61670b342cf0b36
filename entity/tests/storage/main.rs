//! Storage tests: every test runs on SQLite and on PostgreSQL, each with a
//! database of its own (`testkit::TestDb`); `connections` restarts a
//! private PostgreSQL (`testkit::PrivatePostgres`).
mod accounts;
mod carts;
mod catalog;
mod checkout;
mod connections;
mod discounts;
mod helpers;
mod jobs;
mod migrations;
mod orders;
mod outbox;
mod refunds;
mod shipping;
mod variants;
