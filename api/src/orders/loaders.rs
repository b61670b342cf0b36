//! Batches the to-many edge order → lines: one statement for a whole page
//! of orders. Callers reach these
//! only through an order the viewer was allowed to read.
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use entity::DomainError;
use entity::ids::OrderId;
use entity::tables::order_lines;
use sea_orm::DatabaseConnection;

pub struct OrderLinesLoader(pub DatabaseConnection);

impl Loader<OrderId> for OrderLinesLoader {
    type Value = Vec<order_lines::Model>;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[OrderId]) -> Result<HashMap<OrderId, Self::Value>, Self::Error> {
        crate::metrics::loader_batch("order_lines", keys.len());
        crate::transaction::read(|| entity::orders::lines_by_order_ids(&self.0, keys))
            .await
            .map_err(Arc::new)
    }
}
