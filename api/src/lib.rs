//! The Storefront GraphQL server: actix-web + async-graphql over the domain
//! rules in `entity`. Resolvers are thin adapters: parse input, check who is
//! asking, call one `entity` function, map the result.
//!
//! Layout:
//! - [`startup`]: `Application::build(config)` — the composition root; `prepare_database` (migrations, demo data).
//! - [`config`]: environment variables into a typed [`config::Config`].
//! - [`cli`]: `serve`, `export-schema`, `create-admin`, `seed`.
//! - [`schema`]: root types merged from the domains, loaders, limits.
//! - [`accounts`], [`addresses`], [`carts`], [`catalog`], [`orders`], [`payments`], [`shipping`], [`discounts`], [`jobs`]: one GraphQL part per domain (types, queries, mutations, loaders).
//! - [`auth`]: JWT access tokens and the per-request viewer.
//! - [`errors`]: the error policy and `extensions.code`.
//! - [`limits`]: how deep and large one document may be (introspection measured apart).
//! - [`validation`]: async-graphql's validation asked without running, and the schema's registry.
//! - [`cost`]: what one document costs, the Shopify way; MAX_COST_EXCEEDED; each client's cost bucket and `extensions.cost`.
//! - [`throttle`]: rate limits shared by every instance (GCRA in Redis, in process without it).
//! - [`metrics`]: GraphQL operations and DataLoader batches for `/metrics` (the page: `http::metrics`).
//! - [`http`]: GraphQL-over-HTTP, the GraphiQL playground, the actix routes.
//! - [`ids`]: GraphQL `ID`s parsed into typed ids, in one place.
//! - [`pagination`], [`money`]: shared GraphQL types.
//! - [`seed`]: the demo catalog. Logging, env helpers and the shutdown signal are the worker crate's (`worker::telemetry`, `worker::env`, `worker::process`).
pub mod accounts;
pub mod addresses;
pub mod auth;
pub mod carts;
pub mod catalog;
pub mod checkout;
pub mod cli;
pub mod config;
pub mod cost;
pub mod discounts;
pub mod errors;
pub mod http;
pub mod ids;
pub mod jobs;
pub mod limits;
pub mod metrics;
pub mod money;
pub mod orders;
pub mod pagination;
pub mod payments;
pub mod schema;
pub mod seed;
pub mod shipping;
pub mod startup;
pub mod state;
pub mod throttle;
mod transaction;
pub mod validation;

pub use transaction::{jobs_written, order_changed, write_txn};
