//! Batches catalog lookups into one statement per batch: order lines →
//! products and → variants, products → their variants and their stock.
//! Nothing is cached across batches, so stock read here is current.
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use entity::DomainError;
use entity::catalog::variants::VariantOf;
use entity::ids::{ProductId, VariantId};
use entity::tables::{product_variants, products};
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

/// A product's stock: the sum over its active variants (absent: none).
pub struct ProductStockLoader(pub DatabaseConnection);

impl Loader<ProductId> for ProductStockLoader {
    type Value = i32;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[ProductId]) -> Result<HashMap<ProductId, Self::Value>, Self::Error> {
        crate::metrics::loader_batch("product_stock", keys.len());
        crate::transaction::read(|| entity::catalog::variants::stock_of_products(&self.0, keys))
            .await
            .map_err(Arc::new)
    }
}

/// Every variant of a product, in position order (inactive ones included:
/// the resolver applies the caller's visibility).
pub struct ProductVariantsLoader(pub DatabaseConnection);

impl Loader<ProductId> for ProductVariantsLoader {
    type Value = Vec<product_variants::Model>;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[ProductId]) -> Result<HashMap<ProductId, Self::Value>, Self::Error> {
        crate::metrics::loader_batch("product_variants", keys.len());
        crate::transaction::read(|| entity::catalog::variants::variants_of_products(&self.0, keys))
            .await
            .map_err(Arc::new)
    }
}

/// A variant with its product (order line → variant).
pub struct VariantLoader(pub DatabaseConnection);

impl Loader<VariantId> for VariantLoader {
    type Value = VariantOf;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[VariantId]) -> Result<HashMap<VariantId, Self::Value>, Self::Error> {
        crate::metrics::loader_batch("variant", keys.len());
        crate::transaction::read(|| entity::catalog::variants::variants_by_ids(&self.0, keys))
            .await
            .map_err(Arc::new)
    }
}
