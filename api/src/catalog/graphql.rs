use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use entity::catalog::listing::{ProductCursor, ProductFilter as DomainFilter, ProductOrder as DomainOrder};
use entity::catalog::variants::{OptionValue, VariantOf, option_values};
use entity::catalog::{
    AdjustmentReason, NewProduct, NewVariant, ProductKey, ProductPatch, StockDelta, Stocked, VariantPatch,
    Visibility,
};
use entity::ids::ProductId;
use entity::tables::{product_variants, products};
use serde::{Deserialize, Serialize};

use super::loaders::{ProductLoader, ProductStockLoader, ProductVariantsLoader};
use super::reads::PageKey;
use crate::auth::{optional_user, require_admin};
use crate::errors::{self, GqlResultExt, client_error, code};
use crate::ids;
use crate::money::{MoneyView, money};
use crate::pagination::{Connection, ConnectionNode, decode_after, encode_cursor};
use crate::state::AppState;
use crate::write_txn;

/// A product of the catalog, and its stock when it was read beside it (a
/// catalog read reads it in the same statement; the catalog cache reads it
/// fresh with the version); else `Product.stock` loads it.
pub struct Product {
    row: products::Model,
    stock: Option<i32>,
    /// Every variant, served by the catalog cache with fresh stock.
    variants: Option<Vec<product_variants::Model>>,
    /// The catalog version the row was read under, when read through the
    /// cache: the variants loaded for it may be cached under it.
    version: Option<i64>,
}

impl From<Stocked> for Product {
    fn from(stocked: Stocked) -> Self {
        let stock = stocked.stock();
        Self::with_stock(stocked.product, stock)
    }
}

impl Product {
    #[must_use]
    pub fn new(row: products::Model) -> Self {
        Self {
            row,
            stock: None,
            variants: None,
            version: None,
        }
    }

    #[must_use]
    pub fn with_stock(row: products::Model, stock: i32) -> Self {
        Self {
            stock: Some(stock),
            ..Self::new(row)
        }
    }

    /// Read (with its stock) through the catalog cache under `version`,
    /// not served from it.
    #[must_use]
    pub fn loaded(stocked: Stocked, version: i64) -> Self {
        Self {
            version: Some(version),
            ..Self::from(stocked)
        }
    }

    /// Served from the catalog cache, with stock read fresh.
    #[must_use]
    pub fn cached(
        row: products::Model,
        version: i64,
        stock: i32,
        variants: Option<Vec<product_variants::Model>>,
    ) -> Self {
        Self {
            row,
            stock: Some(stock),
            variants,
            version: Some(version),
        }
    }

    #[must_use]
    pub fn row(&self) -> &products::Model {
        &self.row
    }

    /// The product's variants the caller may see (admins: all; everyone
    /// else: active ones), in position order.
    async fn visible_variants(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<product_variants::Model>> {
        let visibility = visibility(ctx)?;
        let variants = match &self.variants {
            Some(cached) => cached.clone(),
            None => {
                let loader = ctx.data::<DataLoader<ProductVariantsLoader>>()?;
                let loaded = loader
                    .load_one(self.row.id)
                    .await
                    .map_err(|e| errors::loader(ctx, &e))?
                    .unwrap_or_default();
                if let (Some(version), Some(cache)) = (self.version, &ctx.data::<AppState>()?.catalog) {
                    cache.remember_variants(version, self.row.id, &loaded);
                }
                loaded
            }
        };
        Ok(variants
            .into_iter()
            .filter(|v| visibility == Visibility::All || v.active)
            .collect())
    }
}

#[Object]
impl Product {
    async fn id(&self) -> ID {
        ids::to_gql(self.row.id)
    }
    async fn sku(&self) -> &str {
        &self.row.sku
    }
    async fn slug(&self) -> &str {
        &self.row.slug
    }
    async fn name(&self) -> &str {
        &self.row.name
    }
    async fn description(&self) -> &str {
        &self.row.description
    }
    /// The lowest price among the product's active variants ("from").
    async fn price(&self) -> MoneyView {
        money(self.row.price_minor, &self.row.currency)
    }
    /// Units on hand: the sum over the product's active variants.
    async fn stock(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        if let Some(stock) = self.stock {
            return Ok(stock);
        }
        let loader = ctx.data::<DataLoader<ProductStockLoader>>()?;
        Ok(loader
            .load_one(self.row.id)
            .await
            .map_err(|e| errors::loader(ctx, &e))?
            .unwrap_or(0))
    }
    /// Inactive products are visible to admins only.
    async fn active(&self) -> bool {
        self.row.active
    }
    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.row.created_at
    }
    /// What a customer buys: every product has at least one variant.
    /// Inactive variants are listed to admins only.
    async fn variants(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ProductVariant>> {
        Ok(self
            .visible_variants(ctx)
            .await?
            .into_iter()
            .map(ProductVariant)
            .collect())
    }
    /// The options the product's variants choose among (e.g. Size: S, M,
    /// L), in the order they first appear; empty for a product without
    /// options.
    async fn options(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ProductOption>> {
        let mut options: Vec<ProductOption> = Vec::new();
        for variant in self.visible_variants(ctx).await? {
            for OptionValue { name, value } in option_values(&variant) {
                let index = match options.iter().position(|o| o.name == name) {
                    Some(index) => index,
                    None => {
                        options.push(ProductOption {
                            name,
                            values: Vec::new(),
                        });
                        options.len() - 1
                    }
                };
                if !options[index].values.contains(&value) {
                    options[index].values.push(value);
                }
            }
        }
        Ok(options)
    }
}

/// One option of a product and the values its variants take.
#[derive(SimpleObject)]
pub struct ProductOption {
    name: String,
    values: Vec<String>,
}

/// One option value of a variant, e.g. Size = M.
#[derive(SimpleObject)]
pub struct SelectedOption {
    name: String,
    value: String,
}

/// A buyable version of a product, with its own SKU, price and stock.
pub struct ProductVariant(pub product_variants::Model);

#[Object]
impl ProductVariant {
    async fn id(&self) -> ID {
        ids::to_gql(self.0.id)
    }
    async fn sku(&self) -> &str {
        &self.0.sku
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn selected_options(&self) -> Vec<SelectedOption> {
        option_values(&self.0)
            .into_iter()
            .map(|OptionValue { name, value }| SelectedOption { name, value })
            .collect()
    }
    async fn price(&self) -> MoneyView {
        money(self.0.price_minor, &self.0.currency)
    }
    /// Units on hand.
    async fn stock(&self) -> i32 {
        self.0.stock
    }
    /// Active and in stock.
    async fn available(&self) -> bool {
        self.0.active && self.0.stock > 0
    }
    async fn weight_grams(&self) -> i32 {
        self.0.weight_grams
    }
    /// Inactive variants are visible to admins only.
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn product(&self, ctx: &Context<'_>) -> async_graphql::Result<Product> {
        let loader = ctx.data::<DataLoader<ProductLoader>>()?;
        loader
            .load_one(self.0.product_id)
            .await
            .map_err(|e| errors::loader(ctx, &e))?
            .map(Product::new)
            .ok_or_else(|| client_error(code::NOT_FOUND, "product not found"))
    }
}

/// Narrows the product list; every field given must match.
#[derive(InputObject, Default)]
pub struct ProductFilter {
    /// Case-insensitive text in the name or description.
    search: Option<String>,
    min_price_minor: Option<i64>,
    max_price_minor: Option<i64>,
    /// true: only products with stock; false: only sold-out ones.
    in_stock: Option<bool>,
    /// Admins only (false lists inactive products); ignored for everyone else.
    active: Option<bool>,
}

impl TryFrom<ProductFilter> for DomainFilter {
    type Error = entity::DomainError;

    fn try_from(filter: ProductFilter) -> Result<Self, Self::Error> {
        DomainFilter::parse(
            filter.search.as_deref(),
            filter.min_price_minor,
            filter.max_price_minor,
            filter.in_stock,
            filter.active,
        )
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
#[graphql(remote = "DomainOrder")]
pub enum ProductOrder {
    #[default]
    Name,
    PriceAsc,
    PriceDesc,
    Newest,
}

/// The cursor's wire form: the sort key of the last row and its id.
#[derive(Serialize, Deserialize)]
#[serde(tag = "o", rename_all = "snake_case")]
enum CursorWire {
    Name { k: String, id: ProductId },
    Price { k: i64, id: ProductId },
    Id { id: ProductId },
}

impl From<ProductCursor> for CursorWire {
    fn from(cursor: ProductCursor) -> Self {
        match cursor {
            ProductCursor::Name(k, id) => CursorWire::Name { k, id },
            ProductCursor::Price(k, id) => CursorWire::Price { k, id },
            ProductCursor::Id(id) => CursorWire::Id { id },
        }
    }
}

impl From<CursorWire> for ProductCursor {
    fn from(wire: CursorWire) -> Self {
        match wire {
            CursorWire::Name { k, id } => ProductCursor::Name(k, id),
            CursorWire::Price { k, id } => ProductCursor::Price(k, id),
            CursorWire::Id { id } => ProductCursor::Id(id),
        }
    }
}

impl ConnectionNode for Product {
    const CONNECTION: &'static str = "ProductConnection";
    const EDGE: &'static str = "ProductEdge";
}

/// Customers (and anonymous visitors) see active products; admins see all.
fn visibility(ctx: &Context<'_>) -> async_graphql::Result<Visibility> {
    Ok(match optional_user(ctx)? {
        Some(actor) if actor.is_admin() => Visibility::All,
        _ => Visibility::ActiveOnly,
    })
}

#[derive(Default)]
pub struct CatalogQuery;

#[Object]
impl CatalogQuery {
    /// One product by `id` or `slug` (exactly one of them).
    async fn product(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        slug: Option<String>,
    ) -> async_graphql::Result<Option<Product>> {
        let key = match (id, slug) {
            (Some(id), None) => ProductKey::Id(ids::parse(&id, "id")?),
            (None, Some(slug)) => ProductKey::Slug(slug),
            _ => {
                return Err(client_error(
                    code::BAD_USER_INPUT,
                    "give exactly one of `id` and `slug`",
                ));
            }
        };
        let state = ctx.data::<AppState>()?;
        let visibility = visibility(ctx)?;
        let found = match &state.catalog {
            Some(cache) => cache.product(&key).await.or_gql(ctx)?,
            None => state
                .catalog_reads
                .product(&key)
                .await
                .or_gql(ctx)?
                .map(Product::from),
        };
        Ok(found.filter(|product| visibility == Visibility::All || product.row.active))
    }

    /// The catalog, a page at a time (`first` defaults to 20, at most 100).
    async fn products(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ProductFilter>,
        order_by: Option<ProductOrder>,
    ) -> async_graphql::Result<Connection<Product>> {
        let size = entity::pagination::page_size(first).or_gql(ctx)?;
        let order: DomainOrder = order_by.unwrap_or_default().into();
        let after: Option<ProductCursor> = decode_after::<CursorWire>(after.as_deref())?.map(Into::into);
        let filter = DomainFilter::try_from(filter.unwrap_or_default()).or_gql(ctx)?;
        let visibility = visibility(ctx)?;
        let state = ctx.data::<AppState>()?;
        let key = PageKey {
            filter: filter.clone(),
            order,
            after: after.clone(),
            size,
            visibility,
        };
        let page = match &state.catalog {
            Some(cache) => cache.page(key).await,
            None => state
                .catalog_reads
                .page(&key)
                .await
                .map(|page| page.map(Product::from)),
        }
        .or_gql(ctx)?;
        Ok(Connection::new(
            page,
            after.is_some(),
            |p| encode_cursor(&CursorWire::from(ProductCursor::after(&p.row, order))),
            |p| p,
            move |db| {
                let filter = filter.clone();
                async move { entity::catalog::listing::count_products(&db, &filter, visibility).await }
            },
        ))
    }
}

#[derive(InputObject)]
pub struct CreateProductInput {
    sku: String,
    slug: String,
    name: String,
    description: String,
    price_minor: i64,
    currency: String,
    stock: i32,
    #[graphql(default = true)]
    active: bool,
}

#[derive(InputObject)]
pub struct UpdateProductInput {
    name: Option<String>,
    description: Option<String>,
    price_minor: Option<i64>,
    active: Option<bool>,
}

/// One option value of a new variant, e.g. `{ name: "Size", value: "M" }`.
#[derive(InputObject)]
pub struct SelectedOptionInput {
    name: String,
    value: String,
}

#[derive(InputObject)]
pub struct CreateVariantInput {
    sku: String,
    /// Blank: the option values joined by " / ".
    title: Option<String>,
    /// At most 3; the same option names as the product's other variants.
    #[graphql(default)]
    options: Vec<SelectedOptionInput>,
    /// In the product's currency.
    price_minor: i64,
    #[graphql(default)]
    stock: i32,
    #[graphql(default)]
    weight_grams: i32,
    #[graphql(default = true)]
    active: bool,
}

#[derive(InputObject)]
pub struct UpdateVariantInput {
    title: Option<String>,
    price_minor: Option<i64>,
    weight_grams: Option<i32>,
    active: Option<bool>,
}

#[derive(Default)]
pub struct CatalogMutation;

#[Object]
impl CatalogMutation {
    /// Admin: adds a product; its opening stock is recorded as a movement.
    async fn create_product(
        &self,
        ctx: &Context<'_>,
        input: CreateProductInput,
    ) -> async_graphql::Result<Product> {
        require_admin(ctx)?;
        let new = NewProduct::parse(
            &input.sku,
            &input.slug,
            &input.name,
            &input.description,
            input.price_minor,
            &input.currency,
            input.stock,
            input.active,
        )
        .or_gql(ctx)?;
        let stock = if new.active { new.stock } else { 0 };
        let product = write_txn(ctx, |txn| {
            Box::pin(entity::catalog::create_product(txn, new.clone()))
        })
        .await?;
        Ok(Product::with_stock(product, stock))
    }

    /// Admin: changes the given fields of a product.
    // In one transaction with the catalog version: no catalog cache serves
    // the old fields once this returned.
    async fn update_product(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateProductInput,
    ) -> async_graphql::Result<Product> {
        require_admin(ctx)?;
        let id = ids::parse(&id, "id")?;
        let patch = ProductPatch::parse(
            input.name.as_deref(),
            input.description.as_deref(),
            input.price_minor,
            input.active,
        )
        .or_gql(ctx)?;
        let product = write_txn(ctx, |txn| {
            Box::pin(entity::catalog::update_product(txn, id, patch.clone()))
        })
        .await?;
        Ok(Product::new(product))
    }

    /// Admin: changes stock by `delta` (never below zero), recording why.
    /// For a product with one variant; use `adjustVariantStock` otherwise.
    async fn adjust_stock(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        delta: i32,
        reason: String,
    ) -> async_graphql::Result<Product> {
        require_admin(ctx)?;
        let id = ids::parse(&product_id, "productId")?;
        let delta = StockDelta::parse(delta).or_gql(ctx)?;
        let reason = AdjustmentReason::parse(&reason).or_gql(ctx)?;
        let VariantOf { variant, product } = write_txn(ctx, |txn| {
            let reason = reason.clone();
            Box::pin(async move { entity::catalog::adjust_stock(txn, id, delta, reason).await })
        })
        .await?;
        let stock = if variant.active { variant.stock } else { 0 };
        Ok(Product::with_stock(product, stock))
    }

    /// Admin: adds a variant to a product. Its options name the same
    /// options as the product's other variants, with values no other
    /// variant has; its opening stock is recorded as a movement.
    async fn create_variant(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        input: CreateVariantInput,
    ) -> async_graphql::Result<ProductVariant> {
        require_admin(ctx)?;
        let product_id = ids::parse(&product_id, "productId")?;
        let options: Vec<(String, String)> = input.options.into_iter().map(|o| (o.name, o.value)).collect();
        let new = NewVariant::parse(
            &input.sku,
            input.title.as_deref(),
            &options,
            input.price_minor,
            input.stock,
            input.weight_grams,
            input.active,
        )
        .or_gql(ctx)?;
        let variant = write_txn(ctx, |txn| {
            Box::pin(entity::catalog::create_variant(txn, product_id, new.clone()))
        })
        .await?;
        Ok(ProductVariant(variant))
    }

    /// Admin: changes the given fields of a variant.
    async fn update_variant(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateVariantInput,
    ) -> async_graphql::Result<ProductVariant> {
        require_admin(ctx)?;
        let id = ids::parse(&id, "id")?;
        let patch = VariantPatch::parse(
            input.title.as_deref(),
            input.price_minor,
            input.weight_grams,
            input.active,
        )
        .or_gql(ctx)?;
        let variant = write_txn(ctx, |txn| {
            Box::pin(entity::catalog::update_variant(txn, id, patch.clone()))
        })
        .await?;
        Ok(ProductVariant(variant))
    }

    /// Admin: changes a variant's stock by `delta` (never below zero),
    /// recording why.
    async fn adjust_variant_stock(
        &self,
        ctx: &Context<'_>,
        variant_id: ID,
        delta: i32,
        reason: String,
    ) -> async_graphql::Result<ProductVariant> {
        require_admin(ctx)?;
        let id = ids::parse(&variant_id, "variantId")?;
        let delta = StockDelta::parse(delta).or_gql(ctx)?;
        let reason = AdjustmentReason::parse(&reason).or_gql(ctx)?;
        let variant = write_txn(ctx, |txn| {
            let reason = reason.clone();
            Box::pin(async move { entity::catalog::adjust_variant_stock(txn, id, delta, reason).await })
        })
        .await?;
        Ok(ProductVariant(variant))
    }
}
