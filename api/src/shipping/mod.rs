//! Shipping and tax over GraphQL: the methods that ship to a country
//! (public), and the admin's zones, methods and tax rates. Rules live in
//! `entity::shipping`; this is the adapter.
pub mod graphql;

pub use graphql::{ShippingMutation, ShippingQuery};
