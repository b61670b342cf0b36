//! Orders over GraphQL: placing, cancelling and fulfilling
//! orders, and reading them with ownership enforced in the query.
pub mod graphql;
pub mod loaders;
pub mod subscription;

pub use graphql::{Order, OrdersMutation, OrdersQuery};
pub use loaders::OrderLinesLoader;
pub use subscription::OrdersSubscription;
