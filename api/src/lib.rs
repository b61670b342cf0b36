//! The Storefront GraphQL server: actix-web + async-graphql over the domain
//! rules in `entity`. Resolvers are thin adapters: parse input, check who is
//! asking, call one `entity` function, map the result.
//!
//! Layout:
//! - [`startup`]: `Application::build(config)` — the composition root; the only module that knows actix.
//! - [`config`]: environment variables into a typed [`config::Config`].
//! - [`cli`]: `serve`, `export-schema`, `create-admin`, `seed`.
//! - [`schema`]: root types merged from the domains, loaders, limits.
//! - [`accounts`], [`catalog`], [`orders`], [`jobs`]: one GraphQL part per domain (types, queries, mutations, loaders).
//! - [`auth`]: JWT access tokens and the per-request viewer.
//! - [`errors`]: the error policy and `extensions.code`.
//! - [`http`]: GraphQL-over-HTTP and the GraphiQL playground.
//! - [`pagination`], [`money`]: shared GraphQL types.
//! - [`seed`]: the demo catalog; [`telemetry`]: logging.
pub mod accounts;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod errors;
pub mod http;
pub mod jobs;
pub mod money;
pub mod orders;
pub mod pagination;
pub mod schema;
pub mod seed;
pub mod startup;
pub mod state;
pub mod telemetry;
mod transaction;

pub use transaction::{jobs_written, write_txn};
