//! Multi-process tests: the real `api` and `worker` binaries as separate
//! processes on PostgreSQL + Redis (one database and one Redis namespace per
//! test), with a real SMTP server inside the test process counting the mail.
//! Processes are killed, signalled and restarted; Redis is stopped and
//! started again; and each test checks that no job was lost and none ran
//! twice where it shows (payments, emails).
//!
//! Layout:
//! - `harness`: finding the binaries, starting them with their output in
//!   `target/process-tests/<test>/`, a slow SMTP link; the GraphQL client,
//!   the private `redis-server` and polling come from `testkit`;
//! - `breakers`: SMTP down, a hanging gateway, hanging captures: circuit
//!   breakers open, nothing fails or is lost, everything settles after;
//! - `catalog_cache`: price and stock changes through one api read through
//!   another at once, 1,000 times, never stale;
//! - `crash`: SIGKILL a worker with jobs in flight;
//! - `completion_crash`: SIGKILL a worker with finished jobs' outcomes
//!   still buffered: they run again, once in effect;
//! - `db_restart`: PostgreSQL restarted while idle and under load: no
//!   request fails, every order settles once;
//! - `outage`: Redis down while orders are placed;
//! - `degraded`: api and worker started while Redis is down;
//! - `scale_out`: 200 orders from concurrent clients over two workers;
//! - `shutdown`: SIGTERM with a job in flight, within and past the deadline;
//! - `subscriptions`: `orderUpdated` heard on another api instance, and
//!   across a Redis restart;
//! - `rate_limits`: one limit shared by two api processes on one Redis;
//! - `embedded`: the api alone with no configuration (SQLite, in-process worker);
//! - `load_balancer`: two apis behind nginx (`deploy/nginx/storefront.conf`),
//!   one of them stopped with SIGTERM while orders flow;
//! - `metrics`: `deploy/` (alerts, dashboard) against both binaries' `/metrics`, checked with promtool;
//! - `traces`: both binaries exporting spans over OTLP/HTTP to a receiver in
//!   the test; one order is one trace from its request to its emails.
//!
//! Needs `DATABASE_URL`, `REDIS_URL`, `REDIS_SERVER_BIN`, nginx and promtool: run through
//! `scripts/test` (or export them as it does).

mod breakers;
mod catalog_cache;
mod completion_crash;
mod crash;
mod db_restart;
mod degraded;
mod embedded;
mod harness;
mod load_balancer;
mod metrics;
mod outage;
mod rate_limits;
mod scale_out;
mod shutdown;
mod subscriptions;
mod traces;
