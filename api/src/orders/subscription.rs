//! `orderUpdated(id)`: the order now, then again each time its status or
//! its payment's status changes, until nothing more can happen to it.
//!
//! The watcher subscribes to the process's order events *before* its first
//! read, so no change can fall between the two; an event only says "re-read
//! order X", and the re-read goes through the same ownership-checked query
//! as `order(id)`. Besides events, the watcher re-reads every
//! [`REREAD_EVERY`], and at once after the event listener reconnected to
//! Redis or the watcher fell behind: a missed event delays an update, it
//! never loses the final state.
use std::time::Duration;

use async_graphql::{Context, ID, Subscription};
use entity::actor::Actor;
use entity::ids::OrderId;
use entity::orders::OrderState;
use futures::{Stream, StreamExt as _};
use tokio::sync::broadcast::error::RecvError;
use worker::events::OrderSignal;

use super::graphql::Order;
use crate::auth::require_user;
use crate::errors::{GqlResultExt, client_error, code};
use crate::ids;
use crate::state::AppState;

/// How often a watcher re-reads its order when no event came.
const REREAD_EVERY: Duration = Duration::from_secs(15);

#[derive(Default)]
pub struct OrdersSubscription;

#[Subscription]
impl OrdersSubscription {
    /// One of your orders (any order for an admin): its state now, then
    /// again each time its status or its payment's status changes; the
    /// stream completes once the order is fulfilled, its payment failed, or
    /// it was cancelled and its payment released. Needs `Authorization` in
    /// the socket's `connection_init` payload.
    async fn order_updated(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<impl Stream<Item = Order> + use<>> {
        let actor = require_user(ctx)?;
        let not_found = || client_error(code::NOT_FOUND, "order not found");
        let order_id = ids::lookup::<OrderId>(&id).ok_or_else(not_found)?;
        let app = ctx.data::<AppState>()?.clone();
        let signals = app.events.subscribe();
        let (order, state) = entity::orders::find_order_state(&app.db, actor, order_id)
            .await
            .or_gql(ctx)?
            .ok_or_else(not_found)?;
        let watch = Watch {
            app,
            actor,
            order_id,
            signals,
        };
        let first = if state.is_final() {
            Step::Done
        } else {
            Step::Watching(state)
        };
        Ok(
            futures::stream::once(async move { Order(order) }).chain(futures::stream::unfold(
                (first, watch),
                |(step, mut watch)| async move {
                    let Step::Watching(last) = step else {
                        return None;
                    };
                    let (order, now) = watch.next_change(last).await?;
                    let next = if now.is_final() {
                        Step::Done
                    } else {
                        Step::Watching(now)
                    };
                    Some((Order(order), (next, watch)))
                },
            )),
        )
    }
}

enum Step {
    Watching(OrderState),
    Done,
}

struct Watch {
    app: AppState,
    actor: Actor,
    order_id: OrderId,
    signals: tokio::sync::broadcast::Receiver<OrderSignal>,
}

impl Watch {
    /// Waits until the order's state differs from `last`; `None` when the
    /// order can no longer be read (gone) or the events stopped.
    async fn next_change(&mut self, last: OrderState) -> Option<(entity::tables::orders::Model, OrderState)> {
        // The periodic re-read is due REREAD_EVERY after the last re-read,
        // however many events about other orders come meanwhile.
        let mut due = tokio::time::Instant::now() + REREAD_EVERY;
        loop {
            let reread = match tokio::time::timeout_at(due, self.signals.recv()).await {
                Ok(Ok(OrderSignal::Changed(id))) => id == self.order_id,
                Ok(Ok(OrderSignal::Resync) | Err(RecvError::Lagged(_))) | Err(_) => true,
                Ok(Err(RecvError::Closed)) => return None,
            };
            if !reread {
                continue;
            }
            due = tokio::time::Instant::now() + REREAD_EVERY;
            match entity::orders::find_order_state(&self.app.db, self.actor, self.order_id).await {
                Ok(Some((order, now))) if now != last => return Some((order, now)),
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(error) => {
                    tracing::warn!(order_id = %self.order_id, %error, "orderUpdated: re-reading the order failed; will try again");
                }
            }
        }
    }
}
