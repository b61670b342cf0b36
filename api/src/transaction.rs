//! Running a domain write in one transaction, or a read, from a resolver,
//! retried on a fresh connection when the pooled one turns out dead
//! ([`entity::db::retry`]).
use std::future::Future;

use async_graphql::Context;
use entity::DomainError;
use entity::db::lost::ConnectionLost;
use futures::future::BoxFuture;
use sea_orm::DatabaseTransaction;

use crate::errors::GqlResultExt;
use crate::state::AppState;

/// Runs `work` inside a write transaction (`BEGIN IMMEDIATE` on SQLite) and
/// commits it; an error rolls everything back and becomes a GraphQL error.
/// When the connection dies, the whole transaction runs again on a fresh
/// one, so `work` may run more than once: it must only touch the database.
///
/// # Errors
/// The domain error of `work`, or INTERNAL when the database fails.
pub async fn write_txn<T, F>(ctx: &Context<'_>, work: F) -> async_graphql::Result<T>
where
    F: for<'c> Fn(&'c DatabaseTransaction) -> BoxFuture<'c, Result<T, DomainError>>,
    T: Send,
{
    let state = ctx.data::<AppState>()?;
    entity::db::retry::write(&state.db, "write transaction", work)
        .await
        .or_gql(ctx)
}

/// Runs `read` (a statement or a few, outside any transaction), again on a
/// fresh connection when its connection died.
///
/// # Errors
/// The last attempt's error.
pub async fn read<T, E, F, Fut>(read: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: ConnectionLost + std::fmt::Debug,
{
    entity::db::retry::retrying("read", read).await
}

/// Tells the dispatcher that outbox rows were just committed, so they are
/// pushed to the queue at once instead of waiting for the sweeper.
pub fn jobs_written(ctx: &Context<'_>) {
    if let Ok(state) = ctx.data::<AppState>() {
        state.kicker.kick();
    }
}

/// Tells `orderUpdated` subscribers (on every api instance) that an order
/// just committed a change.
pub async fn order_changed(ctx: &Context<'_>, order_id: entity::ids::OrderId) {
    if let Ok(state) = ctx.data::<AppState>() {
        state.events.publish(order_id).await;
    }
}
