//! The product list: filters, three sort orders, keyset pagination.
//!
//! A cursor is the sort key of the last row seen plus its id, so the next
//! page is `WHERE (key, id) > (cursor)` on an index — no OFFSET, stable while
//! rows are inserted. `id` is a UUID v7 and so orders rows by creation time.
//!
//! Prices and stock live on variants: a price range matches a product when
//! one of its active variants is in range, `inStock` when one of them has
//! stock (`EXISTS` over `product_variants`, on its product index). Sorting
//! by price sorts by the product's from price (`products.price_minor`, the
//! lowest active variant price, kept by `catalog::variants`), so keyset
//! pages stay on one indexed column.
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query, SelectStatement};
use sea_orm::{Condition, PaginatorTrait, QueryOrder, QuerySelect, Select};

use super::{Price, Visibility};
use crate::error::DomainError;
use crate::ids::ProductId;
use crate::pagination::Page;
use crate::tables::{product_variants, products};

/// Text to find in a product's name or description: trimmed, 1 to 100
/// characters (a blank search is no search).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchTerm(String);

impl SearchTerm {
    /// `None` for a blank term.
    ///
    /// # Errors
    /// [`DomainError::InvalidInput`] on `search` for a term over 100 characters.
    pub fn parse(raw: &str) -> Result<Option<Self>, DomainError> {
        let term = raw.trim();
        if term.is_empty() {
            return Ok(None);
        }
        if term.chars().count() > 100 {
            return Err(DomainError::invalid("search", "must be at most 100 characters"));
        }
        Ok(Some(Self(term.to_owned())))
    }
}

/// What a client may filter the list by; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ProductFilter {
    /// Case-insensitive text in the name or description.
    pub search: Option<SearchTerm>,
    pub min_price: Option<Price>,
    pub max_price: Option<Price>,
    /// `true`: only products with an active variant in stock; `false`:
    /// only sold-out ones.
    pub in_stock: Option<bool>,
    /// Admins only: `false` lists inactive products. Ignored for customers.
    pub active: Option<bool>,
}

impl ProductFilter {
    /// Parses a client's filter.
    ///
    /// # Errors
    /// [`DomainError::InvalidInput`] on `search` for a term over 100
    /// characters, on `minPriceMinor` / `maxPriceMinor` for a negative bound.
    pub fn parse(
        search: Option<&str>,
        min_price_minor: Option<i64>,
        max_price_minor: Option<i64>,
        in_stock: Option<bool>,
        active: Option<bool>,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            search: search.map(SearchTerm::parse).transpose()?.flatten(),
            min_price: min_price_minor
                .map(|p| Price::parse("minPriceMinor", p))
                .transpose()?,
            max_price: max_price_minor
                .map(|p| Price::parse("maxPriceMinor", p))
                .transpose()?,
            in_stock,
            active,
        })
    }
}

/// The sort orders the list offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProductOrder {
    #[default]
    Name,
    PriceAsc,
    PriceDesc,
    Newest,
}

/// Where the previous page ended, in the terms of its sort order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProductCursor {
    Name(String, ProductId),
    Price(i64, ProductId),
    Id(ProductId),
}

impl ProductCursor {
    /// The cursor that points just after `product` in `order`.
    #[must_use]
    pub fn after(product: &products::Model, order: ProductOrder) -> Self {
        match order {
            ProductOrder::Name => Self::Name(product.name.clone(), product.id),
            ProductOrder::PriceAsc | ProductOrder::PriceDesc => Self::Price(product.price_minor, product.id),
            ProductOrder::Newest => Self::Id(product.id),
        }
    }
}

fn escape_like(term: &str) -> String {
    let mut out = String::with_capacity(term.len() + 2);
    out.push('%');
    for c in term.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// `SELECT 1 FROM product_variants WHERE product_id = products.id AND
/// active`, for `EXISTS` filters over a product's variants.
fn active_variants() -> SelectStatement {
    Query::select()
        .expr(Expr::val(1))
        .from(product_variants::Entity)
        .and_where(
            Expr::col((product_variants::Entity, product_variants::Column::ProductId))
                .equals((products::Entity, products::Column::Id)),
        )
        .and_where(Expr::col((product_variants::Entity, product_variants::Column::Active)).eq(true))
        .to_owned()
}

fn filtered(filter: &ProductFilter, visibility: Visibility) -> Select<products::Entity> {
    let mut query = products::Entity::find();
    let active = match visibility {
        Visibility::ActiveOnly => Some(true),
        Visibility::All => filter.active,
    };
    if let Some(active) = active {
        query = query.filter(products::Column::Active.eq(active));
    }
    if let Some(SearchTerm(term)) = &filter.search {
        let pattern = escape_like(term);
        let like = |col: products::Column| {
            Expr::expr(Func::lower(Expr::col(col))).like(LikeExpr::new(pattern.clone()).escape('\\'))
        };
        query = query.filter(
            Condition::any()
                .add(like(products::Column::Name))
                .add(like(products::Column::Description)),
        );
    }
    if filter.min_price.is_some() || filter.max_price.is_some() {
        let mut priced = active_variants();
        if let Some(min) = filter.min_price {
            priced.and_where(
                Expr::col((product_variants::Entity, product_variants::Column::PriceMinor)).gte(min.minor()),
            );
        }
        if let Some(max) = filter.max_price {
            priced.and_where(
                Expr::col((product_variants::Entity, product_variants::Column::PriceMinor)).lte(max.minor()),
            );
        }
        query = query.filter(Expr::exists(priced));
    }
    if let Some(in_stock) = filter.in_stock {
        let mut stocked = active_variants();
        stocked.and_where(Expr::col((product_variants::Entity, product_variants::Column::Stock)).gt(0));
        let exists = Expr::exists(stocked);
        query = query.filter(if in_stock { exists } else { exists.not() });
    }
    query
}

/// One page of products after `after`, `size` long at most, each with
/// its stock.
///
/// # Errors
/// [`DomainError::InvalidInput`] on `after` for a cursor of another sort order.
pub async fn list_products<C: ConnectionTrait>(
    conn: &C,
    filter: &ProductFilter,
    order: ProductOrder,
    after: Option<&ProductCursor>,
    size: u64,
    visibility: Visibility,
) -> Result<Page<super::Stocked>, DomainError> {
    use products::Column::{Id, Name, PriceMinor};
    let mut query = filtered(filter, visibility);
    let wrong_cursor = || DomainError::invalid("after", "cursor belongs to another sort order");
    query = match (order, after) {
        (_, None) => query,
        (ProductOrder::Name, Some(ProductCursor::Name(name, id))) => query.filter(
            Condition::any()
                .add(Name.gt(name.as_str()))
                .add(Condition::all().add(Name.eq(name.as_str())).add(Id.gt(*id))),
        ),
        (ProductOrder::PriceAsc, Some(ProductCursor::Price(price, id))) => query.filter(
            Condition::any()
                .add(PriceMinor.gt(*price))
                .add(Condition::all().add(PriceMinor.eq(*price)).add(Id.gt(*id))),
        ),
        (ProductOrder::PriceDesc, Some(ProductCursor::Price(price, id))) => query.filter(
            Condition::any()
                .add(PriceMinor.lt(*price))
                .add(Condition::all().add(PriceMinor.eq(*price)).add(Id.lt(*id))),
        ),
        (ProductOrder::Newest, Some(ProductCursor::Id(id))) => query.filter(Id.lt(*id)),
        _ => return Err(wrong_cursor()),
    };
    query = match order {
        ProductOrder::Name => query.order_by_asc(Name).order_by_asc(Id),
        ProductOrder::PriceAsc => query.order_by_asc(PriceMinor).order_by_asc(Id),
        ProductOrder::PriceDesc => query.order_by_desc(PriceMinor).order_by_desc(Id),
        ProductOrder::Newest => query.order_by_desc(Id),
    };
    let rows = super::stocked(query.limit(size + 1)).all(conn).await?;
    Ok(Page::from_overfetch(rows, size))
}

/// How many products match the filter (for `totalCount`).
///
/// # Errors
/// [`DomainError::Database`] only.
pub async fn count_products<C: ConnectionTrait>(
    conn: &C,
    filter: &ProductFilter,
    visibility: Visibility,
) -> Result<u64, DomainError> {
    Ok(filtered(filter, visibility).count(conn).await?)
}

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn search_terms_match_literally() {
        assert_eq!(escape_like("Tee"), "%tee%");
        assert_eq!(escape_like("100%_\\"), "%100\\%\\_\\\\%");
    }
}
