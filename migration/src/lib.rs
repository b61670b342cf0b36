//! Schema migrations for Storefront, written once with sea-query so the same
//! migration runs on SQLite (the embedded default) and on PostgreSQL.
//!
//! Layout:
//! - [`m20261123_000001_schema`]: every table of the domain, with foreign keys,
//!   an index for each foreign key and each filter/sort column, CHECK
//!   constraints and unique constraints.
//! - [`m20261202_000001_token_version`]: `users.token_version`, which ends a
//!   user's access tokens at once (sign out everywhere, password reset).
//! - [`m20261202_000002_worker_heartbeats`]: `worker_heartbeats`, the job runners' heartbeats.
//! - [`m20261207_000001_outbox_indexes`]: the outbox's indexes fitted to the
//!   dispatcher's, the reaper's and the pruner's queries (partial indexes).
//! - [`m20261207_000002_outbox_traceparent`]: `outbox.traceparent`, the trace
//!   context a job's span continues.
//! - [`m20261207_000003_discounts`]: discount codes, uses per customer and
//!   redemptions per order.
//! - [`m20261207_000004_shipping_and_addresses`]: shipping zones, their
//!   countries and methods, tax rates per country, customers' addresses.
//! - [`m20261207_000005_refunds`]: partial refunds and their lines.
//! - [`m20261208_000001_catalog_version`]: `catalog_version`, the counter the
//!   api's catalog cache checks on every read.
//! - [`m20261209_000001_product_variants`]: `product_variants`, every
//!   existing product carried over as one variant with the product's id.
//! - [`m20261209_000002_variant_stock`]: stock lives on variants only
//!   (`products.stock` dropped); stock movements and order lines name their
//!   variant, lines snapshot its SKU and title.
//! - [`m20261209_000003_carts`]: `carts` (found by the hash of their secret
//!   token; at most one per customer) and `cart_lines` (one per variant).
//! - [`m20261209_000004_order_checkout`]: what an order keeps of its
//!   checkout (money broken down, address, method, code); `shop_settings`.
pub use sea_orm_migration::prelude::*;

mod m20261123_000001_schema;
mod m20261202_000001_token_version;
mod m20261202_000002_worker_heartbeats;
mod m20261207_000001_outbox_indexes;
mod m20261207_000002_outbox_traceparent;
mod m20261207_000003_discounts;
mod m20261207_000004_shipping_and_addresses;
mod m20261207_000005_refunds;
mod m20261208_000001_catalog_version;
mod m20261209_000001_product_variants;
mod m20261209_000002_variant_stock;
mod m20261209_000003_carts;
mod m20261209_000004_order_checkout;

/// The list of migrations, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_schema::Migration),
            Box::new(m20261202_000001_token_version::Migration),
            Box::new(m20261202_000002_worker_heartbeats::Migration),
            Box::new(m20261207_000001_outbox_indexes::Migration),
            Box::new(m20261207_000002_outbox_traceparent::Migration),
            Box::new(m20261207_000003_discounts::Migration),
            Box::new(m20261207_000004_shipping_and_addresses::Migration),
            Box::new(m20261207_000005_refunds::Migration),
            Box::new(m20261208_000001_catalog_version::Migration),
            Box::new(m20261209_000001_product_variants::Migration),
            Box::new(m20261209_000002_variant_stock::Migration),
            Box::new(m20261209_000003_carts::Migration),
            Box::new(m20261209_000004_order_checkout::Migration),
        ]
    }
}
