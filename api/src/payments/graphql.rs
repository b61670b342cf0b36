use async_graphql::{Enum, ID, Object};
use entity::tables::payments;

use crate::ids;
use crate::money::{MoneyView, money};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::payments::PaymentStatus")]
pub enum PaymentStatus {
    Authorized,
    Settled,
    Failed,
    Voided,
    Refunded,
}

/// The payment of an order: authorised at order time, settled by a job.
pub struct Payment(pub payments::Model);

#[Object]
impl Payment {
    async fn id(&self) -> ID {
        ids::to_gql(self.0.id)
    }
    async fn status(&self) -> PaymentStatus {
        self.0.status.into()
    }
    async fn amount(&self) -> MoneyView {
        money(self.0.amount_minor, &self.0.currency)
    }
    /// Capture attempts so far.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// Why the last capture attempt failed, if it did.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
}
