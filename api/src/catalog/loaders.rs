//! Batches product lookups (order lines → products) into one statement.
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use entity::DomainError;
use entity::ids::ProductId;
use entity::tables::products;
use sea_orm::DatabaseConnection;

pub struct ProductLoader(pub DatabaseConnection);

impl Loader<ProductId> for ProductLoader {
    type Value = products::Model;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[ProductId]) -> Result<HashMap<ProductId, Self::Value>, Self::Error> {
        crate::metrics::loader_batch("product", keys.len());
        crate::transaction::read(|| entity::catalog::products_by_ids(&self.0, keys))
            .await
            .map_err(Arc::new)
    }
}
