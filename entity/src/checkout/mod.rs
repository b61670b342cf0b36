//! Checkout: a cart becomes an order. [`quote`] prices it (the lines at
//! today's prices, shipping to the address by the chosen method, the code,
//! tax in the shop's mode) through `crate::pricing`, the one place money is
//! added up; [`checkout`] places it.
pub mod place;
pub mod quote;

pub use place::{CheckedOut, CheckoutRequest, PriceChange, ShipTo, checkout};
pub use quote::{Quote, Terms, quote};
