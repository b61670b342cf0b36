//! The Storefront job runner: settles payments and sends emails from the
//! outbox, on Redis queues (production, 1..N processes) or the SQLite queue
//! (the embedded default, inside the `api` process).
//!
//! Layout:
//! - [`runtime`]: `Worker::build(config).run_until(shutdown)` — the composition root.
//! - [`cli`]: `worker run`.
//! - [`config`]: environment variables into [`config::WorkerConfig`]; the retry policy.
//! - [`env`], [`telemetry`], [`process`]: reading variables, logging, the
//!   runtime and the shutdown signal — shared with the `api` binary.
//! - [`queue`]: apalis-redis / apalis-sqlite behind one small [`queue::JobQueue`].
//! - [`breaker`]: circuit breakers; [`gateway`]: the payment gateway behind
//!   its timeouts and breaker.
//! - [`dispatch`]: outbox → queue in batches, with backpressure; the sweeper.
//! - [`jobs`]: one attempt of a job, its outcome (retry with backoff, dead), one file per job;
//!   [`complete`]: `Done` outcomes written in batches.
//! - [`notifications`]: email templates and the SMTP / file mailer.
//! - [`schedules`]: order expiry on apalis-cron; pruning the outbox.
//! - [`health`]: `/healthz`, `/readyz`, `/metrics`; [`metrics`]: the counters.
pub mod breaker;
pub mod cli;
pub mod complete;
pub mod config;
pub mod dispatch;
pub mod env;
pub mod events;
pub mod gateway;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod notifications;
pub mod process;
pub mod queue;
pub mod runtime;
pub mod schedules;
pub mod telemetry;

pub use runtime::Worker;
