//! The catalog cache: products and product-list pages kept in this process,
//! never served stale.
//!
//! How a read stays fresh: every entry was loaded after its loader saw the
//! catalog version `v` (`entity::catalog::version`, bumped in the same
//! transaction as every change of catalog data, by any process). A read
//! looks its entry up, then asks [`CatalogReads::freshness`] for the version and
//! the stock of the products it would serve — a statement that starts after
//! the read began, shared with the reads running at the same time. When the
//! version is still the entry's, no change committed between the entry's
//! load and the read's start: the entry is served, with the stock just
//! read. Otherwise the read loads from the database and caches what it
//! loaded under the version it saw. A change that returned before a read
//! started (on any api instance, or in a worker) is therefore always seen.
//!
//! Stock changes with every order, so it is never cached: it comes with the
//! version, for the few products a read serves (a product's stock is the
//! sum over its active variants, and each variant's stock comes with it).
//! A product's variants are cached beside it once `Product.variants` has
//! loaded them (through a data loader, one statement per batch, after the
//! product's version was read), and served with fresh stock like the
//! product. Lists filtered by stock
//! (`inStock`) depend on it and are not cached either.
//!
//! Authorization: entries are whole rows, inactive products included; the
//! resolvers apply the caller's visibility to what they get, and a cached
//! page is keyed by the visibility it was listed with.
//!
//! `CATALOG_CACHE=off` turns it off (every read goes to the database).
//! Hits, misses and bypasses are counted in
//! `storefront_catalog_cache_total{result}`.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use entity::DomainError;
use entity::catalog::version::Freshness;
use entity::catalog::{ProductKey, Stocked};
use entity::ids::ProductId;
use entity::pagination::Page;
use entity::tables::{product_variants, products};
use metrics::Counter;

use super::Product;
use super::reads::{CatalogReads, PageKey};

/// The most entries (products, slugs and pages together) the cache holds;
/// past it, it starts again empty.
pub const MAX_ENTRIES: usize = 10_000;

/// The products and pages read so far, valid for one catalog version.
pub struct CatalogCache {
    reads: Arc<CatalogReads>,
    store: RwLock<Store>,
    hits: Outcomes,
    misses: Outcomes,
    bypasses: Outcomes,
}

/// How many reads ended one way: this instance's count (for tests and
/// tooling), and the process's metric.
struct Outcomes {
    count: AtomicU64,
    metric: Counter,
}

impl Outcomes {
    fn new(result: &'static str) -> Self {
        Self {
            count: AtomicU64::new(0),
            metric: metrics::counter!("storefront_catalog_cache_total", "result" => result),
        }
    }

    fn increment(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.metric.increment(1);
    }

    fn get(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Reads served so far by one cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Served from the cache (stock read fresh).
    pub hits: u64,
    /// Read from the database and cached.
    pub misses: u64,
    /// Read from the database, not cacheable (lists filtered by stock).
    pub bypasses: u64,
}

/// A page as listed: which products, in order.
struct CachedPage {
    ids: Vec<ProductId>,
    has_next_page: bool,
}

#[derive(Default)]
struct Store {
    /// The catalog version every entry below was loaded under.
    version: i64,
    products: HashMap<ProductId, Arc<products::Model>>,
    /// `None`: no product has this slug.
    slugs: HashMap<String, Option<ProductId>>,
    pages: HashMap<PageKey, Arc<CachedPage>>,
    /// Every variant of a product, as `Product.variants` loaded them.
    variants: HashMap<ProductId, Arc<Vec<product_variants::Model>>>,
}

impl Store {
    /// Whether entries loaded under `version` may be added (emptying the
    /// store when `version` is newer than its own, or when it is full).
    fn admit(&mut self, version: i64, adding: usize) -> bool {
        if version < self.version {
            return false;
        }
        let len = self.products.len() + self.slugs.len() + self.pages.len() + self.variants.len();
        if version > self.version || len + adding > MAX_ENTRIES {
            *self = Store {
                version,
                ..Store::default()
            };
        }
        true
    }

    /// `model` with the stock just read, if the store holds it; with its
    /// variants (their stock just read too) when the store holds them.
    fn fresh(&self, id: ProductId, fresh: &Freshness) -> Option<Product> {
        let model = self.products.get(&id)?;
        let stock = *fresh.stock.get(&id)?;
        let variants = self.variants.get(&id).and_then(|variants| {
            variants
                .iter()
                .map(|variant| {
                    let stock = *fresh.variant_stock.get(&variant.id)?;
                    Some(product_variants::Model {
                        stock,
                        ..variant.clone()
                    })
                })
                .collect::<Option<Vec<_>>>()
        });
        Some(Product::cached(
            products::Model::clone(model),
            fresh.version,
            stock,
            variants,
        ))
    }
}

impl CatalogCache {
    #[must_use]
    pub fn new(reads: Arc<CatalogReads>) -> Self {
        Self {
            reads,
            store: RwLock::default(),
            hits: Outcomes::new("hit"),
            misses: Outcomes::new("miss"),
            bypasses: Outcomes::new("bypass"),
        }
    }

    #[must_use]
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.get(),
            misses: self.misses.get(),
            bypasses: self.bypasses.get(),
        }
    }

    fn store(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn store_mut(&self) -> std::sync::RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// One product by id or slug, inactive or not (the caller applies its
    /// visibility), with its current stock when served from the cache
    /// (loaded with the product's other fields otherwise).
    ///
    /// # Errors
    /// [`DomainError::Database`].
    pub async fn product(&self, key: &ProductKey) -> Result<Option<Product>, DomainError> {
        // What the store knows of `key`: `Some(None)` that no such slug exists.
        let (version, known) = {
            let store = self.store();
            let known = match key {
                ProductKey::Id(id) => store.products.contains_key(id).then_some(Some(*id)),
                ProductKey::Slug(slug) => store.slugs.get(slug).copied(),
            };
            (store.version, known)
        };
        let ids: &[ProductId] = match &known {
            Some(Some(id)) => std::slice::from_ref(id),
            _ => &[],
        };
        let fresh = self.reads.freshness(ids).await?;
        if fresh.version == version {
            match known {
                Some(None) => {
                    self.hits.increment();
                    return Ok(None);
                }
                Some(Some(id)) => {
                    if let Some(model) = self.store().fresh(id, &fresh) {
                        self.hits.increment();
                        return Ok(Some(model));
                    }
                }
                None => {}
            }
        }
        self.misses.increment();
        let found = self.reads.product(key).await?;
        let version = fresh.version;
        let mut store = self.store_mut();
        if store.admit(fresh.version, 2) {
            if let Some(Stocked { product: model, .. }) = &found {
                store.slugs.insert(model.slug.clone(), Some(model.id));
                store.products.insert(model.id, Arc::new(model.clone()));
            } else if let ProductKey::Slug(slug) = key {
                store.slugs.insert(slug.clone(), None);
            }
        }
        Ok(found.map(|stocked| Product::loaded(stocked, version)))
    }

    /// One page of the product list, as `entity::catalog::listing::list_products`
    /// lists it, with current stock (read beside a cached page, loaded with
    /// the products' other fields otherwise).
    ///
    /// # Errors
    /// As `list_products`.
    pub async fn page(&self, key: PageKey) -> Result<Page<Product>, DomainError> {
        if key.filter.in_stock.is_some() {
            self.bypasses.increment();
            return Ok(self.reads.page(&key).await?.map(Product::from));
        }
        let (version, cached) = {
            let store = self.store();
            (store.version, store.pages.get(&key).cloned())
        };
        let ids = cached.as_ref().map_or(&[][..], |page| &page.ids[..]);
        let fresh = self.reads.freshness(ids).await?;
        if let Some(page) = cached.filter(|_| fresh.version == version) {
            let items: Option<Vec<_>> = {
                let store = self.store();
                page.ids.iter().map(|id| store.fresh(*id, &fresh)).collect()
            };
            if let Some(items) = items {
                self.hits.increment();
                return Ok(Page {
                    items,
                    has_next_page: page.has_next_page,
                });
            }
        }
        self.misses.increment();
        let page = self.reads.page(&key).await?;
        let version = fresh.version;
        let mut store = self.store_mut();
        if store.admit(fresh.version, page.items.len() + 1) {
            for Stocked { product: model, .. } in &page.items {
                store.products.insert(model.id, Arc::new(model.clone()));
            }
            let ids = page.items.iter().map(|stocked| stocked.product.id).collect();
            store.pages.insert(
                key,
                Arc::new(CachedPage {
                    ids,
                    has_next_page: page.has_next_page,
                }),
            );
        }
        Ok(page.map(|stocked| Product::loaded(stocked, version)))
    }

    /// Keeps the variants of `product` that `Product.variants` loaded after
    /// the product was read under catalog `version` (so they are at least
    /// as new as it): served with the product while the version holds.
    pub fn remember_variants(&self, version: i64, product: ProductId, variants: &[product_variants::Model]) {
        let mut store = self.store_mut();
        if store.version == version && store.admit(version, 1) {
            store.variants.insert(product, Arc::new(variants.to_vec()));
        }
    }
}
