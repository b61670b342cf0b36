//! Catalog: products, their parsed input, and the stock rules.
//!
//! Layout:
//! - this module: [`Quantity`], [`Sku`], [`Slug`], [`NewProduct`], [`ProductPatch`],
//!   creating, updating and finding products;
//! - [`stock`]: reserve, return and adjust a variant's stock (one movement
//!   row per change);
//! - [`listing`]: the keyset-paginated, filtered product list;
//! - [`variants`]: what a customer buys: reading variants with their
//!   products, creating and changing them, the product's from price;
//! - [`version`]: the catalog version every change of catalog data bumps,
//!   and the fresh stock a cached read takes beside it.
//!
//! Customers never see inactive products: every read takes a [`Visibility`].
use std::collections::HashMap;

use chrono::Utc;
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{FromQueryResult, QuerySelect, Select};

use crate::error::DomainError;
use crate::ids::{ProductId, VariantId};
use crate::money::Currency;
use crate::tables::{product_variants, products};

pub mod listing;
pub mod stock;
pub mod variants;
pub mod version;

pub use stock::{
    AdjustmentReason, StockDelta, StockReason, adjust_stock, adjust_variant_stock, reserve_stock,
    return_stock,
};
pub use variants::{NewVariant, VariantPatch, create_variant, update_variant};

/// The most units one order line may ask for.
pub const MAX_LINE_QUANTITY: i32 = 1_000;

/// A number of units on an order line: 1..=[`MAX_LINE_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(i32);

impl Quantity {
    /// # Errors
    /// [`DomainError::InvalidInput`] on `quantity` outside 1..=1000.
    pub fn parse(value: i32) -> Result<Self, DomainError> {
        if (1..=MAX_LINE_QUANTITY).contains(&value) {
            Ok(Self(value))
        } else {
            Err(DomainError::invalid(
                "quantity",
                format!("must be between 1 and {MAX_LINE_QUANTITY}"),
            ))
        }
    }

    #[must_use]
    pub fn get(self) -> i32 {
        self.0
    }
}

/// Whether a read may return inactive products (admins) or not (everyone else).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    ActiveOnly,
    All,
}

/// A stock keeping unit: 1–64 of `A–Z 0–9 - _ .`, stored upper-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sku(String);

impl Sku {
    /// # Errors
    /// [`DomainError::InvalidInput`] on `sku`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let sku = raw.trim().to_ascii_uppercase();
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if sku.is_empty() || sku.len() > 64 || !sku.chars().all(ok_char) {
            return Err(DomainError::invalid(
                "sku",
                "must be 1-64 letters, digits, '-', '_' or '.'",
            ));
        }
        Ok(Self(sku))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A URL slug: 1–128 of `a–z 0–9 -`, not starting or ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// # Errors
    /// [`DomainError::InvalidInput`] on `slug`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let slug = raw.trim();
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if slug.is_empty()
            || slug.len() > 128
            || !slug.chars().all(ok_char)
            || slug.starts_with('-')
            || slug.ends_with('-')
        {
            return Err(DomainError::invalid(
                "slug",
                "must be 1-128 lower-case letters, digits and inner '-'",
            ));
        }
        Ok(Self(slug.to_owned()))
    }
}

fn product_name(raw: &str) -> Result<String, DomainError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(DomainError::invalid("name", "must be 1-200 characters"));
    }
    Ok(name.to_owned())
}

fn description(raw: &str) -> Result<String, DomainError> {
    if raw.chars().count() > 10_000 {
        return Err(DomainError::invalid(
            "description",
            "must be at most 10000 characters",
        ));
    }
    Ok(raw.trim().to_owned())
}

/// A price in minor units (cents): never negative. The currency travels
/// beside it (a product has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(i64);

impl Price {
    /// # Errors
    /// [`DomainError::InvalidInput`] on `field` for a negative amount.
    pub fn parse(field: &'static str, minor: i64) -> Result<Self, DomainError> {
        if minor < 0 {
            return Err(DomainError::invalid(field, "must not be negative"));
        }
        Ok(Self(minor))
    }

    #[must_use]
    pub fn minor(self) -> i64 {
        self.0
    }
}

/// The most units of one variant the shop keeps on hand.
pub const MAX_STOCK: i32 = 1_000_000;

/// A product to create, parsed from an admin's input.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub sku: Sku,
    pub slug: Slug,
    pub name: String,
    pub description: String,
    pub price: Price,
    pub currency: Currency,
    pub stock: i32,
    pub active: bool,
}

impl NewProduct {
    /// # Errors
    /// [`DomainError::InvalidInput`] naming the first field that fails.
    #[expect(clippy::too_many_arguments, reason = "mirrors the GraphQL input one to one")]
    pub fn parse(
        sku: &str,
        slug: &str,
        name: &str,
        description_text: &str,
        price_minor: i64,
        currency: &str,
        stock: i32,
        active: bool,
    ) -> Result<Self, DomainError> {
        if !(0..=MAX_STOCK).contains(&stock) {
            return Err(DomainError::invalid(
                "stock",
                format!("must be between 0 and {MAX_STOCK}"),
            ));
        }
        Ok(Self {
            sku: Sku::parse(sku)?,
            slug: Slug::parse(slug)?,
            name: product_name(name)?,
            description: description(description_text)?,
            price: Price::parse("priceMinor", price_minor)?,
            currency: Currency::parse(currency)
                .map_err(|e| DomainError::invalid("currency", e.to_string()))?,
            stock,
            active,
        })
    }
}

/// The fields an admin may change on a product; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub price: Option<Price>,
    pub active: Option<bool>,
}

impl ProductPatch {
    /// # Errors
    /// [`DomainError::InvalidInput`] naming the first field that fails.
    pub fn parse(
        name: Option<&str>,
        description_text: Option<&str>,
        price_minor: Option<i64>,
        active: Option<bool>,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            name: name.map(product_name).transpose()?,
            description: description_text.map(description).transpose()?,
            price: price_minor.map(|p| Price::parse("priceMinor", p)).transpose()?,
            active,
        })
    }
}

/// Creates a product with one default variant (the product's id, SKU,
/// price and stock: stock lives on variants only); its opening stock is recorded as a movement, and the
/// catalog version goes up. Call inside a transaction.
///
/// # Errors
/// [`DomainError::Conflict`] when the sku or slug is taken.
pub async fn create_product<C: ConnectionTrait>(
    conn: &C,
    new: NewProduct,
) -> Result<products::Model, DomainError> {
    let now = Utc::now();
    version::bump(conn).await?;
    let product = products::ActiveModel {
        id: Set(ProductId::new()),
        sku: Set(new.sku.0),
        slug: Set(new.slug.0),
        name: Set(new.name),
        description: Set(new.description),
        price_minor: Set(new.price.minor()),
        currency: Set(new.currency.code().to_owned()),
        active: Set(new.active),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await
    .map_err(|e| DomainError::conflict_if_unique(e, "a product with this sku or slug already exists"))?;
    let variant = product_variants::ActiveModel {
        id: Set(VariantId(product.id.into_uuid())),
        product_id: Set(product.id),
        sku: Set(product.sku.clone()),
        title: Set(variants::DEFAULT_TITLE.to_owned()),
        option_values: Set("[]".into()),
        price_minor: Set(product.price_minor),
        currency: Set(product.currency.clone()),
        stock: Set(new.stock),
        weight_grams: Set(0),
        active: Set(product.active),
        position: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await
    .map_err(|e| DomainError::conflict_if_unique(e, "a variant with this sku already exists"))?;
    variants::opening_stock(conn, &variant).await?;
    Ok(product)
}

/// Applies `patch` to a product, and bumps the catalog version. Call
/// inside a transaction (the two must commit together). A price is the
/// price of the product's one variant (and so its from price).
///
/// # Errors
/// [`DomainError::NotFound`] for an unknown product;
/// [`DomainError::InvalidInput`] on `priceMinor` for a product with several
/// variants (their prices are set one by one).
pub async fn update_product<C: ConnectionTrait>(
    conn: &C,
    id: ProductId,
    patch: ProductPatch,
) -> Result<products::Model, DomainError> {
    fn set<T: Into<sea_orm::Value>>(value: Option<T>) -> sea_orm::ActiveValue<T> {
        value.map_or(NotSet, Set)
    }
    if let Some(price) = patch.price {
        let variants: Vec<VariantId> = product_variants::Entity::find()
            .select_only()
            .column(product_variants::Column::Id)
            .filter(product_variants::Column::ProductId.eq(id))
            .limit(2)
            .into_tuple()
            .all(conn)
            .await?;
        match variants.as_slice() {
            [] => return Err(DomainError::NotFound { entity: "product" }),
            [only] => {
                product_variants::Entity::update_many()
                    .col_expr(product_variants::Column::PriceMinor, Expr::value(price.minor()))
                    .col_expr(product_variants::Column::UpdatedAt, Expr::value(Utc::now()))
                    .filter(product_variants::Column::Id.eq(*only))
                    .exec(conn)
                    .await?;
            }
            _ => {
                return Err(DomainError::invalid(
                    "priceMinor",
                    "the product has several variants: set prices per variant",
                ));
            }
        }
    }
    let change = products::ActiveModel {
        id: Set(id),
        name: set(patch.name),
        description: set(patch.description),
        price_minor: set(patch.price.map(Price::minor)),
        active: set(patch.active),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    version::bump(conn).await?;
    match change.update(conn).await {
        Ok(product) => Ok(product),
        Err(DbErr::RecordNotUpdated | DbErr::RecordNotFound(_)) => {
            Err(DomainError::NotFound { entity: "product" })
        }
        Err(e) => Err(e.into()),
    }
}

/// How a client names one product.
#[derive(Debug, Clone)]
pub enum ProductKey {
    Id(ProductId),
    Slug(String),
}

impl ProductKey {
    /// Whether this key names `product`.
    #[must_use]
    pub fn names(&self, product: &products::Model) -> bool {
        match self {
            Self::Id(id) => product.id == *id,
            Self::Slug(slug) => product.slug == *slug,
        }
    }
}

/// A product and its stock (the sum over its active variants), read by
/// one statement: a product read costs one round trip, not one for the
/// row and one for the stock.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Stocked {
    #[sea_orm(nested)]
    pub product: products::Model,
    stock: i64,
}

impl Stocked {
    /// Units on hand, as `Product.stock` shows them.
    #[must_use]
    pub fn stock(&self) -> i32 {
        i32::try_from(self.stock).unwrap_or(i32::MAX)
    }
}

/// `query` with each product's stock as a column (`Stocked`):
/// `COALESCE((SELECT SUM(stock) FROM product_variants WHERE product_id =
/// products.id AND active), 0)`, on the variants' product index.
fn stocked(query: Select<products::Entity>) -> sea_orm::Selector<sea_orm::SelectModel<Stocked>> {
    use sea_orm::sea_query::{ExprTrait, Func, Query};
    let sum = Query::select()
        .expr(Func::sum(Expr::col((
            product_variants::Entity,
            product_variants::Column::Stock,
        ))))
        .from(product_variants::Entity)
        .and_where(
            Expr::col((product_variants::Entity, product_variants::Column::ProductId))
                .equals((products::Entity, products::Column::Id)),
        )
        .and_where(Expr::col((product_variants::Entity, product_variants::Column::Active)).eq(true))
        .to_owned();
    let stock = Func::coalesce([Expr::SubQuery(None, Box::new(sum.into())), Expr::val(0_i64)]);
    query
        .column_as(Expr::from(stock), "stock")
        .into_model::<Stocked>()
}

/// The most keys one statement of [`find_products`] asks for (of ids and
/// of slugs each): well under both databases' parameter limits.
pub const KEYS_PER_STATEMENT: usize = 1_000;

/// The products `keys` name (by id or slug), inactive ones included (the
/// caller applies its visibility), each with its stock: one statement for
/// up to [`KEYS_PER_STATEMENT`] ids and as many slugs. A key that names no
/// product has no row.
///
/// # Errors
/// [`DomainError::Database`] only.
pub async fn find_products<C: ConnectionTrait>(
    conn: &C,
    keys: &[ProductKey],
) -> Result<Vec<Stocked>, DomainError> {
    use sea_orm::Condition;
    let mut ids = Vec::new();
    let mut slugs = Vec::new();
    for key in keys {
        match key {
            ProductKey::Id(id) => ids.push(*id),
            ProductKey::Slug(slug) => slugs.push(slug.as_str()),
        }
    }
    ids.sort_unstable();
    ids.dedup();
    slugs.sort_unstable();
    slugs.dedup();
    let (mut ids, mut slugs) = (ids.chunks(KEYS_PER_STATEMENT), slugs.chunks(KEYS_PER_STATEMENT));
    let mut found = Vec::new();
    loop {
        let which = match (ids.next(), slugs.next()) {
            (None, None) => return Ok(found),
            (ids, slugs) => Condition::any()
                .add_option(ids.map(|ids| products::Column::Id.is_in(ids.iter().copied())))
                .add_option(slugs.map(|slugs| products::Column::Slug.is_in(slugs.iter().copied()))),
        };
        found.extend(stocked(products::Entity::find().filter(which)).all(conn).await?);
    }
}

/// Products by id in one statement, for data loaders. Inactive products are
/// included: an order keeps showing what was bought.
///
/// # Errors
/// [`DomainError::Database`] only.
pub async fn products_by_ids<C: ConnectionTrait>(
    conn: &C,
    ids: &[ProductId],
) -> Result<HashMap<ProductId, products::Model>, DomainError> {
    let rows = products::Entity::find()
        .filter(products::Column::Id.is_in(ids.iter().copied()))
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|p| (p.id, p)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_and_slugs_are_checked_and_normalised() {
        assert_eq!(Sku::parse(" tee-01 ").map(|s| s.0).ok(), Some("TEE-01".into()));
        assert!(Sku::parse("").is_err() && Sku::parse("has space").is_err());
        assert_eq!(Slug::parse("blue-tee").map(|s| s.0).ok(), Some("blue-tee".into()));
        for bad in ["", "Blue", "-tee", "tee-", "a b", "ü"] {
            assert!(Slug::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn new_products_name_the_first_bad_field() {
        let field = |r: Result<NewProduct, DomainError>| match r {
            Err(DomainError::InvalidInput { field, .. }) => field,
            other => panic!("expected invalid input, got {other:?}"),
        };
        assert_eq!(
            field(NewProduct::parse("S", "s", "N", "", -1, "EUR", 1, true)),
            "priceMinor"
        );
        assert_eq!(
            field(NewProduct::parse("S", "s", "N", "", 1, "XYZ", 1, true)),
            "currency"
        );
        assert_eq!(
            field(NewProduct::parse("S", "s", " ", "", 1, "EUR", 1, true)),
            "name"
        );
        assert_eq!(
            field(NewProduct::parse("S", "s", "N", "", 1, "EUR", -1, true)),
            "stock"
        );
        assert!(NewProduct::parse("S", "s", "N", "", 0, "eur", 0, false).is_ok());
    }
}
