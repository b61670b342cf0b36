//! Running a domain write in one transaction from a resolver.
use async_graphql::Context;
use entity::DomainError;
use futures::future::BoxFuture;
use sea_orm::DatabaseTransaction;

use crate::errors::GqlResultExt;
use crate::state::AppState;

/// Runs `work` inside a write transaction (`BEGIN IMMEDIATE` on SQLite) and
/// commits it; an error rolls everything back and becomes a GraphQL error.
///
/// # Errors
/// The domain error of `work`, or INTERNAL when the database fails.
pub async fn write_txn<T, F>(ctx: &Context<'_>, work: F) -> async_graphql::Result<T>
where
    F: for<'c> FnOnce(&'c DatabaseTransaction) -> BoxFuture<'c, Result<T, DomainError>>,
    T: Send,
{
    let state = ctx.data::<AppState>()?;
    let txn = entity::db::begin_write(&state.db)
        .await
        .map_err(DomainError::from)
        .or_gql(ctx)?;
    let value = work(&txn).await.or_gql(ctx)?;
    txn.commit().await.map_err(DomainError::from).or_gql(ctx)?;
    Ok(value)
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
