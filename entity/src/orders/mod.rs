//! Orders: the status state machine and the one function that moves an order
//! along it; placing ([`place`]), cancelling and fulfilling ([`manage`]) and
//! reading ([`queries`]) orders.
//!
//! ```text
//! PENDING_PAYMENT ──► PAID ──► FULFILLED
//!        │   │          │
//!        │   └─► PAYMENT_FAILED
//!        └──────────────┴──► CANCELLED
//! ```
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;

use crate::error::DomainError;
use crate::ids::OrderId;
use crate::tables::orders;
pub use crate::tables::orders::OrderStatus;

pub mod manage;
pub mod place;
pub mod queries;
pub(crate) mod write;

pub use manage::{cancel_order, expire_unpaid_orders, fulfill_order};
pub use place::{IdempotencyKey, OrderLineRequest, OrderRequest, PlacedOrder, place_order};
pub use queries::{
    OrderDetails, OrderState, count_orders, find_order, find_order_state, lines_by_order_ids, list_orders,
    order_details, payments_by_order_ids,
};

impl OrderStatus {
    /// The statuses an order may move to `self` from.
    #[must_use]
    pub fn allowed_from(self) -> &'static [OrderStatus] {
        use OrderStatus::{Cancelled, Fulfilled, Paid, PaymentFailed, PendingPayment};
        match self {
            PendingPayment => &[],
            Paid | PaymentFailed => &[PendingPayment],
            Fulfilled => &[Paid],
            Cancelled => &[PendingPayment, Paid],
        }
    }

    /// Whether the state machine allows `self → next`.
    #[must_use]
    pub fn can_become(self, next: OrderStatus) -> bool {
        next.allowed_from().contains(&self)
    }

    /// Checks `self → next` without touching the database.
    ///
    /// # Errors
    /// [`DomainError::IllegalTransition`] when the machine does not allow it.
    pub fn transition_to(self, next: OrderStatus) -> Result<OrderStatus, DomainError> {
        if self.can_become(next) {
            Ok(next)
        } else {
            Err(DomainError::IllegalTransition { from: self, to: next })
        }
    }
}

/// Moves an order to `next` as one compare-and-set statement, so two racing
/// callers (a cancellation and a settlement, say) can never both win: the
/// `UPDATE` only matches while the order is still in a status that may become
/// `next`.
///
/// # Errors
/// [`DomainError::NotFound`] for an unknown order, [`DomainError::IllegalTransition`]
/// (carrying the status the order really has) when the move is not allowed.
pub async fn transition<C: ConnectionTrait>(
    conn: &C,
    order_id: OrderId,
    next: OrderStatus,
) -> Result<orders::Model, DomainError> {
    let allowed = next.allowed_from();
    let updated = orders::Entity::update_many()
        .col_expr(orders::Column::Status, Expr::value(next.as_str()))
        .col_expr(orders::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(orders::Column::Id.eq(order_id))
        .filter(orders::Column::Status.is_in(allowed.iter().map(|s| s.as_str())))
        .exec_with_returning(conn)
        .await?;
    if let Some(order) = updated.into_iter().next() {
        return Ok(order);
    }
    let current = orders::Entity::find_by_id(order_id)
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound { entity: "order" })?;
    Err(DomainError::IllegalTransition {
        from: current.status,
        to: next,
    })
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::{self, Cancelled, Fulfilled, Paid, PaymentFailed, PendingPayment};
    use sea_orm::Iterable;

    const LEGAL: &[(OrderStatus, OrderStatus)] = &[
        (PendingPayment, Paid),
        (PendingPayment, PaymentFailed),
        (PendingPayment, Cancelled),
        (Paid, Fulfilled),
        (Paid, Cancelled),
    ];

    #[test]
    fn every_pair_of_statuses_is_legal_exactly_when_the_design_says_so() {
        let mut checked = 0;
        for from in OrderStatus::iter() {
            for to in OrderStatus::iter() {
                let legal = LEGAL.contains(&(from, to));
                assert_eq!(from.can_become(to), legal, "{from} -> {to}");
                match from.transition_to(to) {
                    Ok(next) => {
                        assert!(legal, "{from} -> {to} must be refused");
                        assert_eq!(next, to);
                    }
                    Err(err) => {
                        assert!(!legal, "{from} -> {to} must be allowed");
                        assert_eq!(err.to_string(), format!("an order cannot go from {from} to {to}"));
                    }
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 25);
    }

    #[test]
    fn terminal_statuses_go_nowhere() {
        for terminal in [Fulfilled, PaymentFailed, Cancelled] {
            assert!(
                OrderStatus::iter().all(|to| !terminal.can_become(to)),
                "{terminal}"
            );
        }
    }
}
