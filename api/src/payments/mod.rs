//! Payments over GraphQL: the `Payment` of an order (read through its
//! order, so ownership is the order's) with its refunds, their loaders, and
//! the admin's `refundOrder`.
pub mod graphql;
pub mod loaders;

pub use graphql::{Payment, PaymentStatus, PaymentsMutation};
pub use loaders::{PaymentLoader, RefundsLoader};
