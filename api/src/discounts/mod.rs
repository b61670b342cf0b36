//! Discount codes over GraphQL: the admin creates them. Rules live in
//! `entity::discounts`; this is the adapter.
pub mod graphql;

pub use graphql::DiscountsMutation;
