//! Catalog over GraphQL: the `Product` type, the product list and the admin
//! mutations. Rules live in `entity::catalog`; this is the adapter.
pub mod graphql;
pub mod loaders;

pub use graphql::{CatalogMutation, CatalogQuery, Product};
pub use loaders::ProductLoader;
