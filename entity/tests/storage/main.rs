//! Storage tests: every test runs on SQLite and on PostgreSQL, each with a
//! database of its own (`testkit::TestDb`).
mod accounts;
mod catalog;
mod helpers;
mod jobs;
mod migrations;
mod orders;
mod outbox;
