//! Variants: what a customer buys. A product has one or more; each has its
//! own SKU, price, stock, weight, active flag and option values.
//!
//! A variant can be bought when it and its product are both active.
use std::collections::HashMap;

use sea_orm::QueryOrder;
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{ProductId, VariantId};
use crate::tables::{product_variants, products};

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
