use async_graphql::{Context, Enum, ID, InputObject, Object};
use entity::catalog::listing::{ProductCursor, ProductFilter as DomainFilter, ProductOrder as DomainOrder};
use entity::catalog::{AdjustmentReason, NewProduct, ProductKey, ProductPatch, StockDelta, Visibility};
use entity::ids::ProductId;
use entity::tables::products;
use serde::{Deserialize, Serialize};

use crate::auth::{optional_user, require_admin};
use crate::errors::{GqlResultExt, client_error, code};
use crate::ids;
use crate::money::{MoneyView, money};
use crate::pagination::{Connection, ConnectionNode, decode_after, encode_cursor};
use crate::state::AppState;
use crate::transaction::read;
use crate::write_txn;

/// A product of the catalog.
pub struct Product(pub products::Model);

#[Object]
impl Product {
    async fn id(&self) -> ID {
        ids::to_gql(self.0.id)
    }
    async fn sku(&self) -> &str {
        &self.0.sku
    }
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn price(&self) -> MoneyView {
        money(self.0.price_minor, &self.0.currency)
    }
    /// Units on hand.
    async fn stock(&self) -> i32 {
        self.0.stock
    }
    /// Inactive products are visible to admins only.
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.created_at
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
            Some(cache) => cache
                .product(&key)
                .await
                .or_gql(ctx)?
                .filter(|product| visibility == Visibility::All || product.active),
            None => read(|| entity::catalog::find_product(&state.db, &key, visibility))
                .await
                .or_gql(ctx)?,
        };
        Ok(found.map(Product))
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
        let page = match &state.catalog {
            Some(cache) => cache.page(&filter, order, after.as_ref(), size, visibility).await,
            None => {
                read(|| {
                    entity::catalog::listing::list_products(
                        &state.db,
                        &filter,
                        order,
                        after.as_ref(),
                        size,
                        visibility,
                    )
                })
                .await
            }
        }
        .or_gql(ctx)?;
        Ok(Connection::new(
            page,
            after.is_some(),
            |p| encode_cursor(&CursorWire::from(ProductCursor::after(p, order))),
            Product,
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
        let product = write_txn(ctx, |txn| {
            Box::pin(entity::catalog::create_product(txn, new.clone()))
        })
        .await?;
        Ok(Product(product))
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
        Ok(Product(product))
    }

    /// Admin: changes stock by `delta` (never below zero), recording why.
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
        let product = write_txn(ctx, |txn| {
            let reason = reason.clone();
            Box::pin(async move { entity::catalog::adjust_stock(txn, id, delta, reason).await })
        })
        .await?;
        Ok(Product(product))
    }
}
