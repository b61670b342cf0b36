//! The GraphQL schema: root types merged from one part per domain, the
//! data loaders, and the switches. Knows nothing about HTTP.
//!
//! It has no extensions, so async-graphql resolves fields directly: depth,
//! cost and operation metrics are checked around `execute` by the
//! transport (`http::operation`), on the request's one parse.
use async_graphql::dataloader::DataLoader;
use async_graphql::{MergedObject, MergedSubscription, Schema, SchemaBuilder};

use crate::accounts::{AccountsMutation, AccountsQuery};
use crate::addresses::{AddressesMutation, AddressesQuery};
use crate::carts::{CartsMutation, CartsQuery};
use crate::catalog::{
    CatalogMutation, CatalogQuery, ProductLoader, ProductStockLoader, ProductVariantsLoader, VariantLoader,
};
use crate::checkout::CheckoutMutation;
use crate::cost::BucketSettings;
use crate::discounts::DiscountsMutation;
use crate::jobs::{JobsMutation, JobsQuery};
use crate::orders::{OrderLinesLoader, OrdersMutation, OrdersQuery, OrdersSubscription};
use crate::payments::{PaymentLoader, PaymentsMutation, RefundsLoader};
use crate::shipping::{ShippingMutation, ShippingQuery};
use crate::state::AppState;

#[derive(MergedObject, Default)]
pub struct Query(
    AccountsQuery,
    AddressesQuery,
    CartsQuery,
    CatalogQuery,
    OrdersQuery,
    ShippingQuery,
    JobsQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    AccountsMutation,
    AddressesMutation,
    CartsMutation,
    CatalogMutation,
    OrdersMutation,
    CheckoutMutation,
    PaymentsMutation,
    ShippingMutation,
    DiscountsMutation,
    JobsMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(OrdersSubscription);

pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// Limits that keep one request from costing the server too much (the
/// transport applies the first three, the schema the switches).
#[derive(Debug, Clone, Copy)]
pub struct SchemaLimits {
    pub max_depth: usize,
    /// `MAX_QUERY_COST`: costlier documents are refused (see `cost`).
    pub max_query_cost: u64,
    /// `COST_BUCKET_SIZE`, `COST_RESTORE_RATE`: what each client's
    /// documents are paid from (see `cost::bucket`).
    pub cost_bucket: BucketSettings,
    pub introspection: bool,
    /// "Did you mean …?" in validation errors: off in production, where
    /// they would describe a schema whose introspection is off.
    pub suggestions: bool,
}

pub(crate) fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query::default(), Mutation::default(), Subscription::default())
}

/// The schema serving requests against `state`.
///
/// Loaders are shared by all requests (they cache nothing), so concurrent
/// requests batch together as well as the fields of one request.
#[must_use]
pub fn build(state: AppState, limits: SchemaLimits) -> AppSchema {
    let schema = builder()
        .data(DataLoader::new(ProductLoader(state.db.clone()), tokio::spawn))
        .data(DataLoader::new(
            ProductStockLoader(state.db.clone()),
            tokio::spawn,
        ))
        .data(DataLoader::new(
            ProductVariantsLoader(state.db.clone()),
            tokio::spawn,
        ))
        .data(DataLoader::new(VariantLoader(state.db.clone()), tokio::spawn))
        .data(DataLoader::new(OrderLinesLoader(state.db.clone()), tokio::spawn))
        .data(DataLoader::new(PaymentLoader(state.db.clone()), tokio::spawn))
        .data(DataLoader::new(RefundsLoader(state.db.clone()), tokio::spawn))
        .data(state);
    finish(schema, limits)
}

/// `schema` with the introspection and suggestion switches of `limits`.
pub(crate) fn finish(
    mut schema: SchemaBuilder<Query, Mutation, Subscription>,
    limits: SchemaLimits,
) -> AppSchema {
    if !limits.introspection {
        schema = schema.disable_introspection();
    }
    if !limits.suggestions {
        schema = schema.disable_suggestions();
    }
    schema.finish()
}

/// The SDL of the schema, as written to `schema.graphql`.
#[must_use]
pub fn sdl() -> String {
    builder().finish().sdl()
}
