//! Payments over GraphQL: the `Payment` of an order (read through its
//! order, so ownership is the order's) and its loader.
pub mod graphql;
pub mod loaders;

pub use graphql::{Payment, PaymentStatus};
pub use loaders::PaymentLoader;
