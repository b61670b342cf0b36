//! The product list: filters, three sort orders, keyset pagination.
//!
//! A cursor is the sort key of the last row seen plus its id, so the next
//! page is `WHERE (key, id) > (cursor)` on an index — no OFFSET, stable while
//! rows are inserted. `id` is a UUID v7 and so orders rows by creation time.
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{Condition, PaginatorTrait, QueryOrder, QuerySelect, Select};

use super::Visibility;
use crate::error::DomainError;
use crate::paging::Page;
use crate::tables::products;

/// What a client may filter the list by; every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct ProductFilter {
    /// Case-insensitive text in the name or description.
    pub search: Option<String>,
    pub min_price_minor: Option<i64>,
    pub max_price_minor: Option<i64>,
    /// `true`: only products with stock; `false`: only sold-out ones.
    pub in_stock: Option<bool>,
    /// Admins only: `false` lists inactive products. Ignored for customers.
    pub active: Option<bool>,
}

/// The sort orders the list offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProductOrder {
    #[default]
    Name,
    PriceAsc,
    PriceDesc,
    Newest,
}

/// Where the previous page ended, in the terms of its sort order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductCursor {
    Name(String, Uuid),
    Price(i64, Uuid),
    Id(Uuid),
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

fn filtered(filter: &ProductFilter, visibility: Visibility) -> Result<Select<products::Entity>, DomainError> {
    let mut query = products::Entity::find();
    let active = match visibility {
        Visibility::ActiveOnly => Some(true),
        Visibility::All => filter.active,
    };
    if let Some(active) = active {
        query = query.filter(products::Column::Active.eq(active));
    }
    if let Some(term) = filter.search.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        if term.chars().count() > 100 {
            return Err(DomainError::invalid("search", "must be at most 100 characters"));
        }
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
    if let Some(min) = filter.min_price_minor {
        query = query.filter(products::Column::PriceMinor.gte(min));
    }
    if let Some(max) = filter.max_price_minor {
        query = query.filter(products::Column::PriceMinor.lte(max));
    }
    match filter.in_stock {
        Some(true) => query = query.filter(products::Column::Stock.gt(0)),
        Some(false) => query = query.filter(products::Column::Stock.eq(0)),
        None => {}
    }
    Ok(query)
}

/// One page of products after `after`, `size` long at most.
///
/// # Errors
/// [`DomainError::InvalidInput`] on `after` for a cursor of another sort
/// order, on `search` for a search term over 100 characters.
pub async fn list_products<C: ConnectionTrait>(
    conn: &C,
    filter: &ProductFilter,
    order: ProductOrder,
    after: Option<&ProductCursor>,
    size: u64,
    visibility: Visibility,
) -> Result<Page<products::Model>, DomainError> {
    use products::Column::{Id, Name, PriceMinor};
    let mut query = filtered(filter, visibility)?;
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
    let rows = query.limit(size + 1).all(conn).await?;
    Ok(Page::from_overfetch(rows, size))
}

/// How many products match the filter (for `totalCount`).
///
/// # Errors
/// As [`list_products`].
pub async fn count_products<C: ConnectionTrait>(
    conn: &C,
    filter: &ProductFilter,
    visibility: Visibility,
) -> Result<u64, DomainError> {
    Ok(filtered(filter, visibility)?.count(conn).await?)
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
