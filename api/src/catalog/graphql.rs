use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use entity::catalog::listing::{ProductCursor, ProductFilter as DomainFilter, ProductOrder as DomainOrder};
use entity::catalog::{NewProduct, ProductKey, ProductPatch, Visibility};
use entity::tables::products;
use serde::{Deserialize, Serialize};

use crate::auth::{optional_user, require_admin};
use crate::errors::{GqlResultExt, client_error, code};
use crate::money::{MoneyView, money};
use crate::pagination::{PageInfo, decode_cursor, encode_cursor};
use crate::state::AppState;
use crate::write_txn;

/// A product of the catalog.
pub struct Product(pub products::Model);

#[Object]
impl Product {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
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

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum ProductOrder {
    #[default]
    Name,
    PriceAsc,
    PriceDesc,
    Newest,
}

impl From<ProductOrder> for DomainOrder {
    fn from(order: ProductOrder) -> Self {
        match order {
            ProductOrder::Name => DomainOrder::Name,
            ProductOrder::PriceAsc => DomainOrder::PriceAsc,
            ProductOrder::PriceDesc => DomainOrder::PriceDesc,
            ProductOrder::Newest => DomainOrder::Newest,
        }
    }
}

/// The cursor's wire form: the sort key of the last row and its id.
#[derive(Serialize, Deserialize)]
#[serde(tag = "o", rename_all = "snake_case")]
enum CursorWire {
    Name { k: String, id: uuid::Uuid },
    Price { k: i64, id: uuid::Uuid },
    Id { id: uuid::Uuid },
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

#[derive(SimpleObject)]
pub struct ProductEdge {
    cursor: String,
    node: Product,
}

/// A page of products. `totalCount` is counted only when asked for.
pub struct ProductConnection {
    edges: Vec<ProductEdge>,
    page_info: PageInfo,
    filter: DomainFilter,
    visibility: Visibility,
}

#[Object]
impl ProductConnection {
    async fn edges(&self) -> &[ProductEdge] {
        &self.edges
    }
    async fn nodes(&self) -> Vec<&Product> {
        self.edges.iter().map(|e| &e.node).collect()
    }
    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }
    /// How many products match the filter, across all pages.
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        let state = ctx.data::<AppState>()?;
        entity::catalog::listing::count_products(&state.db, &self.filter, self.visibility)
            .await
            .or_gql(ctx)
    }
}

/// Customers (and anonymous visitors) see active products; admins see all.
fn visibility(ctx: &Context<'_>) -> async_graphql::Result<Visibility> {
    Ok(match optional_user(ctx)? {
        Some(actor) if actor.is_admin() => Visibility::All,
        _ => Visibility::ActiveOnly,
    })
}

/// Parses a GraphQL `ID` as a UUID, or BAD_USER_INPUT naming the argument.
pub fn parse_id(id: &ID, field: &'static str) -> async_graphql::Result<uuid::Uuid> {
    uuid::Uuid::parse_str(id.as_str())
        .map_err(|_| client_error(code::BAD_USER_INPUT, format!("`{field}` is not a valid id")))
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
            (Some(id), None) => ProductKey::Id(parse_id(&id, "id")?),
            (None, Some(slug)) => ProductKey::Slug(slug),
            _ => {
                return Err(client_error(
                    code::BAD_USER_INPUT,
                    "give exactly one of `id` and `slug`",
                ));
            }
        };
        let state = ctx.data::<AppState>()?;
        let found = entity::catalog::find_product(&state.db, &key, visibility(ctx)?)
            .await
            .or_gql(ctx)?;
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
    ) -> async_graphql::Result<ProductConnection> {
        let state = ctx.data::<AppState>()?;
        let size = entity::paging::page_size(first).or_gql(ctx)?;
        let order: DomainOrder = order_by.unwrap_or_default().into();
        let after: Option<ProductCursor> = after
            .as_deref()
            .map(decode_cursor::<CursorWire>)
            .transpose()?
            .map(Into::into);
        let filter = filter.unwrap_or_default();
        let filter = DomainFilter {
            search: filter.search,
            min_price_minor: filter.min_price_minor,
            max_price_minor: filter.max_price_minor,
            in_stock: filter.in_stock,
            active: filter.active,
        };
        let visibility = visibility(ctx)?;
        let page = entity::catalog::listing::list_products(
            &state.db,
            &filter,
            order,
            after.as_ref(),
            size,
            visibility,
        )
        .await
        .or_gql(ctx)?;
        let edges: Vec<ProductEdge> = page
            .items
            .into_iter()
            .map(|p| ProductEdge {
                cursor: encode_cursor(&CursorWire::from(ProductCursor::after(&p, order))),
                node: Product(p),
            })
            .collect();
        let cursors: Vec<String> = edges.iter().map(|e| e.cursor.clone()).collect();
        Ok(ProductConnection {
            page_info: PageInfo::new(&cursors, page.has_next_page, after.is_some()),
            edges,
            filter,
            visibility,
        })
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
        let product = write_txn(ctx, |txn| Box::pin(entity::catalog::create_product(txn, new))).await?;
        Ok(Product(product))
    }

    /// Admin: changes the given fields of a product.
    async fn update_product(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateProductInput,
    ) -> async_graphql::Result<Product> {
        require_admin(ctx)?;
        let id = parse_id(&id, "id")?;
        let patch = ProductPatch::parse(
            input.name.as_deref(),
            input.description.as_deref(),
            input.price_minor,
            input.active,
        )
        .or_gql(ctx)?;
        let state = ctx.data::<AppState>()?;
        let product = entity::catalog::update_product(&state.db, id, patch)
            .await
            .or_gql(ctx)?;
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
        let id = parse_id(&product_id, "productId")?;
        let product = write_txn(ctx, |txn| {
            Box::pin(async move { entity::catalog::adjust_stock(txn, id, delta, &reason).await })
        })
        .await?;
        Ok(Product(product))
    }
}
