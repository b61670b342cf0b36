//! The catalog reads product queries make, each shared with the reads
//! running at the same time ([`SharedReads`]): products by id or slug (one
//! statement for every key of a batch), list pages (one statement per
//! distinct page of a batch) and the catalog cache's read barrier (the
//! catalog version and the stock of the products a cached read would
//! serve, `entity::catalog::version::freshness`). Every answer comes from
//! a statement that started after the read began: sharing saves
//! statements, it never serves an older value. With `CATALOG_CACHE=off`
//! product queries read here directly; with the cache, its barrier and its
//! misses do.
use std::collections::HashMap;
use std::sync::Arc;

use entity::DomainError;
use entity::catalog::listing::{ProductCursor, ProductFilter, ProductOrder};
use entity::catalog::version::Freshness;
use entity::catalog::{ProductKey, Stocked, Visibility};
use entity::ids::ProductId;
use entity::pagination::Page;
use sea_orm::{DatabaseConnection, DbErr};

use super::shared::{SharedReads, again};
use crate::transaction::read;

/// One page of the product list, as a client asked for it.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct PageKey {
    pub filter: ProductFilter,
    pub order: ProductOrder,
    pub after: Option<ProductCursor>,
    pub size: u64,
    pub visibility: Visibility,
}

/// A batch's pages, each with its own outcome (one bad page fails only
/// the reads that asked for it).
type Pages = HashMap<PageKey, Result<Page<Stocked>, Arc<DomainError>>>;

pub struct CatalogReads {
    products: Arc<SharedReads<ProductKey, Vec<Stocked>>>,
    pages: Arc<SharedReads<PageKey, Pages>>,
    freshness: Arc<SharedReads<ProductId, Freshness>>,
}

impl CatalogReads {
    #[must_use]
    pub fn new(db: &DatabaseConnection) -> Self {
        Self {
            products: on(db, "products", |db, keys: Vec<ProductKey>| async move {
                read(|| entity::catalog::find_products(&db, &keys)).await
            }),
            pages: on(db, "a product page", |db, keys| async move {
                Ok(list_pages(&db, keys).await)
            }),
            freshness: on(
                db,
                "the catalog version",
                |db, mut ids: Vec<ProductId>| async move {
                    ids.sort_unstable();
                    ids.dedup();
                    read(|| entity::catalog::version::freshness(&db, &ids)).await
                },
            ),
        }
    }

    /// The product `key` names, inactive or not (the caller applies its
    /// visibility), with its stock.
    ///
    /// # Errors
    /// [`DomainError::Database`].
    pub async fn product(&self, key: &ProductKey) -> Result<Option<Stocked>, DomainError> {
        let found = self.products.read([key.clone()]).await?;
        Ok(found.iter().find(|stocked| key.names(&stocked.product)).cloned())
    }

    /// One page of the product list, as
    /// `entity::catalog::listing::list_products` lists it.
    ///
    /// # Errors
    /// As `list_products`.
    pub async fn page(&self, key: &PageKey) -> Result<Page<Stocked>, DomainError> {
        let pages = self.pages.read([key.clone()]).await?;
        match pages.get(key) {
            Some(Ok(page)) => Ok(page.clone()),
            Some(Err(error)) => Err(again("a product page", error)),
            None => Err(DbErr::Custom("reading a product page: not in its batch".into()).into()),
        }
    }

    /// The catalog version and the stock of `ids`, read by a statement
    /// that started after this call.
    ///
    /// # Errors
    /// [`DomainError::Database`].
    pub async fn freshness(&self, ids: &[ProductId]) -> Result<Arc<Freshness>, DomainError> {
        self.freshness.read(ids.iter().copied()).await
    }
}

/// Shared reads of `what`, each batch answered by `load` on `db`.
fn on<K, V, F, Fut>(db: &DatabaseConnection, what: &'static str, load: F) -> Arc<SharedReads<K, V>>
where
    K: Send + 'static,
    V: Send + Sync + 'static,
    F: Fn(DatabaseConnection, Vec<K>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<V, DomainError>> + Send + 'static,
{
    let db = db.clone();
    SharedReads::new(what, move |keys| load(db.clone(), keys))
}

/// Each distinct page of `keys`, one statement each, run concurrently.
async fn list_pages(db: &DatabaseConnection, mut keys: Vec<PageKey>) -> Pages {
    let mut distinct = std::collections::HashSet::with_capacity(keys.len());
    keys.retain(|key| distinct.insert(key.clone()));
    let listed = futures::future::join_all(keys.iter().map(|key| {
        read(|| {
            entity::catalog::listing::list_products(
                db,
                &key.filter,
                key.order,
                key.after.as_ref(),
                key.size,
                key.visibility,
            )
        })
    }))
    .await;
    keys.into_iter()
        .zip(listed)
        .map(|(key, page)| (key, page.map_err(Arc::new)))
        .collect()
}
