//! Variants: what a customer buys. A product has one or more; each has its
//! own SKU, price, stock, weight, active flag and option values.
//!
//! A variant can be bought when it and its product are both active.
//!
//! Rules for an admin's variants ([`create_variant`], [`update_variant`]):
//! - every variant of a product that has options names the same options,
//!   in the same order (at most [`MAX_OPTIONS`]); the option-less default
//!   variant `createProduct` makes is exempt, so options can be added to a
//!   product after it was created;
//! - no two variants of a product have the same option values (so a
//!   product has at most one option-less variant);
//! - a variant's price is in its product's currency; the product's
//!   `price_minor` is its "from price", the lowest price among its active
//!   variants, set in the same transaction as every variant change that
//!   can move it (a new variant, a price, an active flag), so the product
//!   list sorts and pages by price on one indexed column;
//! - every change bumps the catalog version in the same transaction.
use std::collections::HashMap;

use chrono::Utc;
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::QueryOrder;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use serde::{Deserialize, Serialize};

use super::{MAX_STOCK, Price, Quantity, Sku, version};
use crate::error::DomainError;
use crate::ids::{ProductId, StockMovementId, VariantId};
use crate::money::Money;
use crate::pricing::PricedLine;
use crate::tables::{product_variants, products, stock_movements};
use crate::text::one_line;

/// The title of a variant without options (a product sold in one variant).
pub const DEFAULT_TITLE: &str = "Default";

/// One option value of a variant, e.g. Size = M.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionValue {
    pub name: String,
    pub value: String,
}

/// A variant's option values as stored (JSON text); a malformed value
/// reads as none rather than failing a read.
#[must_use]
pub fn option_values(variant: &product_variants::Model) -> Vec<OptionValue> {
    serde_json::from_str(&variant.option_values).unwrap_or_default()
}

/// A variant with its product.
#[derive(Debug, Clone)]
pub struct VariantOf {
    pub variant: product_variants::Model,
    pub product: products::Model,
}

impl VariantOf {
    /// Whether a customer may put it in a cart or an order.
    #[must_use]
    pub fn buyable(&self) -> bool {
        self.variant.active && self.product.active
    }

    /// `quantity` units at the variant's price now, as `crate::pricing`
    /// takes a line.
    ///
    /// # Errors
    /// [`DomainError::Money`] for a stored currency that is not supported.
    pub fn priced(&self, quantity: Quantity) -> Result<PricedLine, DomainError> {
        Ok(PricedLine {
            unit_price: Money::from_parts(self.variant.price_minor, &self.variant.currency)?,
            quantity,
            unit_weight_grams: u32::try_from(self.variant.weight_grams).unwrap_or(0),
        })
    }
}

/// The variants asked for with their products, in one statement; unknown
/// ids are simply absent.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn variants_by_ids<C: ConnectionTrait>(
    conn: &C,
    ids: &[VariantId],
) -> Result<HashMap<VariantId, VariantOf>, DomainError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = product_variants::Entity::find()
        .filter(product_variants::Column::Id.is_in(ids.iter().copied()))
        .find_also_related(products::Entity)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(variant, product)| product.map(|product| (variant.id, VariantOf { variant, product })))
        .collect())
}

/// Every variant of the products asked for, by product, in position order,
/// in one statement.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn variants_of_products<C: ConnectionTrait>(
    conn: &C,
    ids: &[ProductId],
) -> Result<HashMap<ProductId, Vec<product_variants::Model>>, DomainError> {
    let mut by_product: HashMap<ProductId, Vec<product_variants::Model>> = HashMap::new();
    if ids.is_empty() {
        return Ok(by_product);
    }
    let rows = product_variants::Entity::find()
        .filter(product_variants::Column::ProductId.is_in(ids.iter().copied()))
        .order_by_asc(product_variants::Column::ProductId)
        .order_by_asc(product_variants::Column::Position)
        .order_by_asc(product_variants::Column::Id)
        .all(conn)
        .await?;
    for row in rows {
        by_product.entry(row.product_id).or_default().push(row);
    }
    Ok(by_product)
}

/// Each product's stock, the sum over its active variants, in one
/// statement; a product without an active variant is absent (no stock).
///
/// # Errors
/// [`DomainError::Database`].
pub async fn stock_of_products<C: ConnectionTrait>(
    conn: &C,
    ids: &[ProductId],
) -> Result<HashMap<ProductId, i32>, DomainError> {
    use sea_orm::QuerySelect;
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(ProductId, Option<i64>)> = product_variants::Entity::find()
        .select_only()
        .column(product_variants::Column::ProductId)
        .column_as(product_variants::Column::Stock.sum(), "stock")
        .filter(product_variants::Column::ProductId.is_in(ids.iter().copied()))
        .filter(product_variants::Column::Active.eq(true))
        .group_by(product_variants::Column::ProductId)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, stock)| (id, i32::try_from(stock.unwrap_or(0)).unwrap_or(i32::MAX)))
        .collect())
}

/// The most options (Size, Colour, …) a product's variants may have.
pub const MAX_OPTIONS: usize = 3;
/// The heaviest variant, in grams.
pub const MAX_WEIGHT_GRAMS: i32 = 1_000_000;

fn weight(grams: i32) -> Result<i32, DomainError> {
    if !(0..=MAX_WEIGHT_GRAMS).contains(&grams) {
        return Err(DomainError::invalid(
            "weightGrams",
            format!("must be between 0 and {MAX_WEIGHT_GRAMS}"),
        ));
    }
    Ok(grams)
}

/// Parses an admin's option values: at most [`MAX_OPTIONS`], names of 1–50
/// and values of 1–100 characters on one line, no name twice.
///
/// # Errors
/// [`DomainError::InvalidInput`] on `options`.
pub fn parse_options(raw: &[(String, String)]) -> Result<Vec<OptionValue>, DomainError> {
    if raw.len() > MAX_OPTIONS {
        return Err(DomainError::invalid(
            "options",
            format!("at most {MAX_OPTIONS} options"),
        ));
    }
    let mut options: Vec<OptionValue> = Vec::with_capacity(raw.len());
    for (name, value) in raw {
        let name = one_line("options", name, 50)?;
        let value = one_line("options", value, 100)?;
        if options.iter().any(|o| o.name.eq_ignore_ascii_case(&name)) {
            return Err(DomainError::invalid("options", format!("{name} is named twice")));
        }
        options.push(OptionValue { name, value });
    }
    Ok(options)
}

/// A variant to add to a product, parsed from an admin's input.
#[derive(Debug, Clone)]
pub struct NewVariant {
    pub sku: Sku,
    pub title: String,
    pub options: Vec<OptionValue>,
    pub price: Price,
    pub stock: i32,
    pub weight_grams: i32,
    pub active: bool,
}

impl NewVariant {
    /// A blank `title` becomes the option values joined by " / " (or
    /// "Default" without options).
    ///
    /// # Errors
    /// [`DomainError::InvalidInput`] naming the first field that fails.
    pub fn parse(
        sku: &str,
        title: Option<&str>,
        options: &[(String, String)],
        price_minor: i64,
        stock: i32,
        weight_grams: i32,
        active: bool,
    ) -> Result<Self, DomainError> {
        let options = parse_options(options)?;
        let title = match crate::text::optional_line("title", title, 200)? {
            Some(title) => title,
            None if options.is_empty() => DEFAULT_TITLE.to_owned(),
            None => options
                .iter()
                .map(|o| o.value.as_str())
                .collect::<Vec<_>>()
                .join(" / "),
        };
        if !(0..=MAX_STOCK).contains(&stock) {
            return Err(DomainError::invalid(
                "stock",
                format!("must be between 0 and {MAX_STOCK}"),
            ));
        }
        Ok(Self {
            sku: Sku::parse(sku)?,
            title,
            options,
            price: Price::parse("priceMinor", price_minor)?,
            stock,
            weight_grams: weight(weight_grams)?,
            active,
        })
    }
}

/// The fields an admin may change on a variant; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct VariantPatch {
    pub title: Option<String>,
    pub price: Option<Price>,
    pub weight_grams: Option<i32>,
    pub active: Option<bool>,
}

impl VariantPatch {
    /// # Errors
    /// [`DomainError::InvalidInput`] naming the first field that fails.
    pub fn parse(
        title: Option<&str>,
        price_minor: Option<i64>,
        weight_grams: Option<i32>,
        active: Option<bool>,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            title: title.map(|t| one_line("title", t, 200)).transpose()?,
            price: price_minor.map(|p| Price::parse("priceMinor", p)).transpose()?,
            weight_grams: weight_grams.map(weight).transpose()?,
            active,
        })
    }
}

fn names(options: &[OptionValue]) -> Vec<String> {
    options.iter().map(|o| o.name.to_lowercase()).collect()
}

fn same_values(a: &[OptionValue], b: &[OptionValue]) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| {
            b.iter()
                .any(|y| x.name.eq_ignore_ascii_case(&y.name) && x.value.eq_ignore_ascii_case(&y.value))
        })
}

/// Adds a variant to a product (its opening stock recorded as a movement),
/// keeps the product's from price, and bumps the catalog version. Call
/// inside a transaction.
///
/// # Errors
/// [`DomainError::NotFound`] for an unknown product;
/// [`DomainError::InvalidInput`] on `options` when they name other options
/// than the product's other variants; [`DomainError::Conflict`] when the
/// SKU is taken or another variant has the same option values.
pub async fn create_variant<C: ConnectionTrait>(
    conn: &C,
    product_id: ProductId,
    new: NewVariant,
) -> Result<product_variants::Model, DomainError> {
    let product = products::Entity::find_by_id(product_id)
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound { entity: "product" })?;
    let siblings = variants_of_products(conn, &[product_id])
        .await?
        .remove(&product_id)
        .unwrap_or_default();
    let sibling_options: Vec<Vec<OptionValue>> = siblings.iter().map(option_values).collect();
    if let Some(reference) = sibling_options.iter().find(|o| !o.is_empty())
        && names(reference) != names(&new.options)
    {
        let expected: Vec<&str> = reference.iter().map(|o| o.name.as_str()).collect();
        return Err(DomainError::invalid(
            "options",
            format!(
                "must name the product's options in order: {}",
                expected.join(", ")
            ),
        ));
    }
    if sibling_options.iter().any(|o| same_values(o, &new.options)) {
        return Err(DomainError::Conflict(
            "the product has a variant with these option values".into(),
        ));
    }
    let now = Utc::now();
    version::bump(conn).await?;
    let variant = product_variants::ActiveModel {
        id: Set(VariantId::new()),
        product_id: Set(product_id),
        sku: Set(new.sku.as_str().to_owned()),
        title: Set(new.title),
        option_values: Set(serde_json::to_string(&new.options)?),
        price_minor: Set(new.price.minor()),
        currency: Set(product.currency),
        stock: Set(new.stock),
        weight_grams: Set(new.weight_grams),
        active: Set(new.active),
        position: Set(siblings.iter().map(|v| v.position + 1).max().unwrap_or(0)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await
    .map_err(|e| DomainError::conflict_if_unique(e, "a variant with this sku already exists"))?;
    opening_stock(conn, &variant).await?;
    refresh_from_price(conn, product_id).await?;
    Ok(variant)
}

/// Records a new variant's opening stock as a movement (none for zero).
pub(crate) async fn opening_stock<C: ConnectionTrait>(
    conn: &C,
    variant: &product_variants::Model,
) -> Result<(), DomainError> {
    if variant.stock > 0 {
        stock_movements::ActiveModel {
            id: Set(StockMovementId::new()),
            product_id: Set(variant.product_id),
            variant_id: Set(variant.id),
            order_id: Set(None),
            delta: Set(variant.stock),
            stock_after: Set(variant.stock),
            reason: Set("opening stock".into()),
            created_at: Set(variant.created_at),
        }
        .insert(conn)
        .await?;
    }
    Ok(())
}

/// Applies `patch` to a variant, keeps its product's from price, and bumps
/// the catalog version. Call inside a transaction.
///
/// # Errors
/// [`DomainError::NotFound`] for an unknown variant.
pub async fn update_variant<C: ConnectionTrait>(
    conn: &C,
    id: VariantId,
    patch: VariantPatch,
) -> Result<product_variants::Model, DomainError> {
    fn set<T: Into<sea_orm::Value>>(value: Option<T>) -> sea_orm::ActiveValue<T> {
        value.map_or(NotSet, Set)
    }
    let moves_price = patch.price.is_some() || patch.active.is_some();
    let change = product_variants::ActiveModel {
        id: Set(id),
        title: set(patch.title),
        price_minor: set(patch.price.map(Price::minor)),
        weight_grams: set(patch.weight_grams),
        active: set(patch.active),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    version::bump(conn).await?;
    let variant = match change.update(conn).await {
        Ok(variant) => variant,
        Err(DbErr::RecordNotUpdated | DbErr::RecordNotFound(_)) => {
            return Err(DomainError::NotFound { entity: "variant" });
        }
        Err(e) => return Err(e.into()),
    };
    if moves_price {
        refresh_from_price(conn, variant.product_id).await?;
    }
    Ok(variant)
}

/// Sets a product's `price_minor` to the lowest price among its active
/// variants (left as it is when none is active): one `UPDATE`.
pub(crate) async fn refresh_from_price<C: ConnectionTrait>(
    conn: &C,
    product_id: ProductId,
) -> Result<(), DomainError> {
    products::Entity::update_many()
        .col_expr(
            products::Column::PriceMinor,
            Expr::cust(
                "COALESCE((SELECT MIN(v.price_minor) FROM product_variants v \
                 WHERE v.product_id = products.id AND v.active), products.price_minor)",
            ),
        )
        .col_expr(products::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(products::Column::Id.eq(product_id))
        .exec(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn options_are_bounded_and_named_once() {
        assert!(parse_options(&pairs(&[("Size", "M"), ("Colour", "Red")])).is_ok());
        assert!(parse_options(&pairs(&[("Size", "M"), ("size", "L")])).is_err());
        assert!(parse_options(&pairs(&[("A", "1"), ("B", "1"), ("C", "1"), ("D", "1")])).is_err());
        assert!(parse_options(&pairs(&[("", "M")])).is_err());
        assert!(parse_options(&pairs(&[("Size", &"x".repeat(101))])).is_err());
    }

    #[test]
    fn a_blank_title_is_made_from_the_option_values() {
        let variant = NewVariant::parse(
            "t-m-red",
            None,
            &pairs(&[("Size", "M"), ("Colour", "Red")]),
            100,
            1,
            200,
            true,
        )
        .expect("valid");
        assert_eq!(
            (variant.title.as_str(), variant.sku.as_str()),
            ("M / Red", "T-M-RED")
        );
        let default = NewVariant::parse("t", Some(" "), &[], 100, 1, 0, true).expect("valid");
        assert_eq!(default.title, "Default");
        assert!(NewVariant::parse("t", None, &[], 100, 1, -1, true).is_err());
    }

    #[test]
    fn option_values_compare_without_case_or_order() {
        let a = parse_options(&pairs(&[("Size", "M"), ("Colour", "Red")])).expect("valid");
        let b = parse_options(&pairs(&[("colour", "red"), ("size", "m")])).expect("valid");
        assert!(same_values(&a, &b));
        assert!(same_values(&[], &[]));
        assert!(!same_values(&a, &b[..1]));
    }
}
