//! Batches product lookups (order lines → products) into one statement.
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use entity::DomainError;
use entity::tables::products;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

pub struct ProductLoader(pub DatabaseConnection);

impl Loader<Uuid> for ProductLoader {
    type Value = products::Model;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        entity::catalog::products_by_ids(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}
