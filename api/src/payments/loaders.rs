//! Batches the edges order → payment and payment → refunds: one statement
//! each for a whole page of orders. Callers reach it only through an order the viewer was allowed
//! to read.
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use entity::DomainError;
use entity::ids::{OrderId, PaymentId};
use entity::tables::{payments, refunds};
use sea_orm::DatabaseConnection;

pub struct PaymentLoader(pub DatabaseConnection);

impl Loader<OrderId> for PaymentLoader {
    type Value = payments::Model;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[OrderId]) -> Result<HashMap<OrderId, Self::Value>, Self::Error> {
        crate::metrics::loader_batch("payment", keys.len());
        crate::transaction::read(|| entity::orders::payments_by_order_ids(&self.0, keys))
            .await
            .map_err(Arc::new)
    }
}

pub struct RefundsLoader(pub DatabaseConnection);

impl Loader<PaymentId> for RefundsLoader {
    type Value = Vec<refunds::Model>;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[PaymentId]) -> Result<HashMap<PaymentId, Self::Value>, Self::Error> {
        crate::metrics::loader_batch("refunds", keys.len());
        crate::transaction::read(|| entity::payments::refund::refunds_by_payment_ids(&self.0, keys))
            .await
            .map_err(Arc::new)
    }
}
