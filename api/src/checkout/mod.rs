//! Checkout over GraphQL: `checkout` (a signed-in customer's cart becomes
//! an order) and `Cart.estimate` (what it would cost). Rules live in
//! `entity::checkout`; this is the adapter.
pub mod graphql;

pub use graphql::{CheckoutEstimate, CheckoutMutation, estimate};
