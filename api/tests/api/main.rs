//! The api crate's integration tests: one binary, one module per area.

mod accounts;
mod addresses;
mod audit;
mod browser;
mod carts;
mod catalog;
mod catalog_cache;
mod catalog_variants;
mod cors;
mod cost;
mod helpers;
mod http;
mod jobs;
mod limits;
mod machinery;
mod metrics;
mod orders;
mod overload;
mod persisted;
mod playground;
mod rate_limits;
mod refunds;
mod secrets;
mod shipping;
mod subscriptions;
mod web_client;
