//! Catalog over GraphQL: the `Product` and `ProductVariant` types, the
//! product list and the admin mutations. Rules live in `entity::catalog`; this is the adapter.
//!
//! Layout:
//! - [`graphql`]: the GraphQL types, queries and mutations;
//! - [`cache`]: the in-process catalog cache the queries read through
//!   (`CATALOG_CACHE`), never stale;
//! - [`reads`]: the product, page and catalog-version reads, each shared
//!   by the reads running at the same time ([`shared`]);
//! - [`loaders`]: order lines → products and variants, products → variants
//!   and stock, one statement per batch.
pub mod cache;
pub mod graphql;
pub mod loaders;
pub mod reads;
pub mod shared;

pub use cache::CatalogCache;
pub use graphql::{CatalogMutation, CatalogQuery, Product, ProductVariant};
pub use loaders::{ProductLoader, ProductStockLoader, ProductVariantsLoader, VariantLoader};
pub use reads::CatalogReads;
