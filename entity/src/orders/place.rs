//! `placeOrder`: an order from lines the client lists (the contract from
//! before carts; `crate::checkout` places one from a cart). Its total is
//! the lines at current prices, without shipping, tax or a code; the
//! write is `super::write`'s, which every order takes.
//!
//! A line names a variant, or a product with exactly one active variant
//! (the contract from before variants); lines of the same variant merge.
//! Each order line snapshots the product name, the variant's id, SKU and
//! title, and its unit price. Two reads come before the write: the
//! customer's email with an earlier order under the key, and the variants
//! with their prices.
use sea_orm::DatabaseConnection;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Condition;

use super::write::{BoughtLine, NewOrder, authorize_and_write, customer_and_existing};
use crate::catalog::Quantity;
use crate::catalog::variants::VariantOf;
use crate::error::DomainError;
use crate::ids::{ProductId, UserId, VariantId};
use crate::money::{Currency, Money};
use crate::payments::{PaymentGateway, PaymentToken};
use crate::pricing::{TaxMode, Totals};
use crate::tables::{orders, product_variants, products};

/// The most lines one order may have.
pub const MAX_LINES: usize = 50;

/// A client-chosen key that makes `placeOrder` safe to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// # Errors
    /// [`DomainError::InvalidInput`] on `idempotencyKey` unless 1–128 visible ASCII characters.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.is_empty() || raw.len() > 128 || !raw.chars().all(|c| c.is_ascii_graphic()) {
            return Err(DomainError::invalid(
                "idempotencyKey",
                "must be 1-128 visible ASCII characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One line as a customer asks for it: a variant of a product, or a
/// product that has exactly one active variant (`variant_id` left out, the
/// contract from before variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderLineRequest {
    pub product_id: ProductId,
    pub variant_id: Option<VariantId>,
    pub quantity: Quantity,
}

#[derive(Debug, Clone)]
pub struct OrderRequest {
    pub lines: Vec<OrderLineRequest>,
    pub payment_token: PaymentToken,
    pub idempotency_key: IdempotencyKey,
}

/// The outcome of [`place_order`].
#[derive(Debug, Clone)]
pub struct PlacedOrder {
    pub order: orders::Model,
    /// `false` when an earlier call with the same key had placed it.
    pub created: bool,
    /// The variants whose stock this call reserved, as its commit left
    /// them (stock included), in variant id order; empty when `created` is
    /// false.
    pub reserved: Vec<product_variants::Model>,
}

/// Checks the number of lines (before they are merged).
fn line_count(lines: &[OrderLineRequest]) -> Result<(), DomainError> {
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(DomainError::invalid(
            "lines",
            format!("must have 1 to {MAX_LINES} lines"),
        ));
    }
    Ok(())
}

/// Merges lines that buy the same variant into one each, keeping
/// first-seen order.
fn merged_lines(lines: Vec<BoughtLine>) -> Result<Vec<BoughtLine>, DomainError> {
    let mut merged: Vec<BoughtLine> = Vec::with_capacity(lines.len());
    for line in lines {
        if let Some(existing) = merged
            .iter_mut()
            .find(|l| l.item.variant.id == line.item.variant.id)
        {
            existing.quantity = Quantity::parse(existing.quantity.get() + line.quantity.get())?;
        } else {
            merged.push(line);
        }
    }
    Ok(merged)
}

/// The variant a line buys, among `found` (variants with their products).
///
/// # Errors
/// [`DomainError::NotFound`] for an unknown or inactive product or variant,
/// or a variant of another product; [`DomainError::InvalidInput`] on
/// `variantId` for a product with several active variants and no variant
/// named.
fn resolve(line: &OrderLineRequest, found: &[VariantOf]) -> Result<VariantOf, DomainError> {
    let of_product = || found.iter().filter(|v| v.product.id == line.product_id);
    let product_active = of_product().next().is_some_and(|v| v.product.active);
    if !product_active {
        return Err(DomainError::NotFound { entity: "product" });
    }
    if let Some(variant_id) = line.variant_id {
        return of_product()
            .find(|v| v.variant.id == variant_id && v.variant.active)
            .cloned()
            .ok_or(DomainError::NotFound { entity: "variant" });
    }
    let mut buyable = of_product().filter(|v| v.buyable());
    match (buyable.next(), buyable.next()) {
        (Some(only), None) => Ok(only.clone()),
        (None, _) => Err(DomainError::NotFound { entity: "product" }),
        (Some(_), Some(_)) => Err(DomainError::invalid(
            "variantId",
            "the product has several variants: choose a variant",
        )),
    }
}

/// Resolves every line to its variant (one statement: the variants named,
/// and every variant of the products named without one, with their
/// products), merges lines of the same variant, and prices the order at
/// current prices, all lines in one currency.
async fn quote(
    db: &DatabaseConnection,
    lines: &[OrderLineRequest],
) -> Result<(Money, Vec<BoughtLine>), DomainError> {
    let named: Vec<VariantId> = lines.iter().filter_map(|l| l.variant_id).collect();
    let whole: Vec<ProductId> = lines.iter().map(|l| l.product_id).collect();
    let found: Vec<VariantOf> = product_variants::Entity::find()
        .filter(
            Condition::any()
                .add(product_variants::Column::Id.is_in(named))
                .add(product_variants::Column::ProductId.is_in(whole)),
        )
        .find_also_related(products::Entity)
        .all(db)
        .await?
        .into_iter()
        .filter_map(|(variant, product)| product.map(|product| VariantOf { variant, product }))
        .collect();
    let resolved = lines
        .iter()
        .map(|line| {
            Ok(BoughtLine {
                item: resolve(line, &found)?,
                quantity: line.quantity,
            })
        })
        .collect::<Result<Vec<_>, DomainError>>()?;
    let priced = merged_lines(resolved)?;
    let currency = Currency::parse(&priced[0].item.variant.currency)?;
    let mut total = Money::zero(currency);
    for line in &priced {
        let unit = Money::from_parts(line.item.variant.price_minor, &line.item.variant.currency)?;
        total = total
            .checked_add(unit.checked_mul(i64::from(line.quantity.get()))?)
            .map_err(|_| DomainError::invalid("lines", "all products of an order must be in one currency"))?;
    }
    Ok((total, priced))
}

/// Places an order for `user_id`, or returns the one already placed with the
/// same idempotency key.
///
/// # Errors
/// [`DomainError::InvalidInput`] for bad lines, key or token;
/// [`DomainError::NotFound`] for an unknown or inactive product;
/// [`DomainError::OutOfStock`]; [`DomainError::PaymentDeclined`];
/// [`DomainError::PaymentUnavailable`] when the gateway failed, hung or its
/// circuit breaker is open (nothing is written then);
/// [`DomainError::Conflict`] when a price changed while the order was placed.
pub async fn place_order(
    db: &DatabaseConnection,
    gateway: &dyn PaymentGateway,
    user_id: UserId,
    request: OrderRequest,
    request_id: Option<String>,
) -> Result<PlacedOrder, DomainError> {
    line_count(&request.lines)?;
    let (email, existing) = customer_and_existing(db, user_id, &request.idempotency_key).await?;
    if let Some(order) = existing {
        return Ok(PlacedOrder {
            order,
            created: false,
            reserved: Vec::new(),
        });
    }
    let (total, lines) = quote(db, &request.lines).await?;
    let new = NewOrder {
        user_id,
        email,
        idempotency_key: &request.idempotency_key,
        payment_token: &request.payment_token,
        lines: &lines,
        totals: Totals {
            subtotal: total,
            discount: Money::zero(total.currency),
            shipping: Money::zero(total.currency),
            tax: Money::zero(total.currency),
            total,
        },
        tax_mode: TaxMode::Exclusive,
        checkout: None,
    };
    authorize_and_write(db, gateway, &new, request_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(product: u128, variants: &[(u128, bool)]) -> Vec<VariantOf> {
        let now = chrono::Utc::now();
        let product = products::Model {
            id: ProductId(Uuid::from_u128(product)),
            sku: "P".into(),
            slug: "p".into(),
            name: "P".into(),
            description: String::new(),
            price_minor: 100,
            currency: "EUR".into(),
            active: true,
            created_at: now,
            updated_at: now,
        };
        variants
            .iter()
            .map(|&(id, active)| VariantOf {
                variant: product_variants::Model {
                    id: VariantId(Uuid::from_u128(id)),
                    product_id: product.id,
                    sku: format!("V{id}"),
                    title: "V".into(),
                    option_values: "[]".into(),
                    price_minor: 100,
                    currency: "EUR".into(),
                    stock: 5,
                    weight_grams: 0,
                    active,
                    position: 0,
                    created_at: now,
                    updated_at: now,
                },
                product: product.clone(),
            })
            .collect()
    }

    fn line(product: u128, variant: Option<u128>, qty: i32) -> OrderLineRequest {
        OrderLineRequest {
            product_id: ProductId(Uuid::from_u128(product)),
            variant_id: variant.map(|v| VariantId(Uuid::from_u128(v))),
            quantity: Quantity::parse(qty).expect("qty"),
        }
    }

    #[test]
    fn a_line_without_a_variant_needs_a_product_with_one_active_variant() {
        let single = found(1, &[(11, true), (12, false)]);
        let picked = resolve(&line(1, None, 1), &single).expect("one active variant");
        assert_eq!(picked.variant.id, VariantId(Uuid::from_u128(11)));
        let several = found(2, &[(21, true), (22, true)]);
        assert!(matches!(
            resolve(&line(2, None, 1), &several),
            Err(DomainError::InvalidInput {
                field: "variantId",
                ..
            })
        ));
        assert!(resolve(&line(2, Some(22), 1), &several).is_ok());
        assert!(matches!(
            resolve(&line(1, Some(12), 1), &single),
            Err(DomainError::NotFound { entity: "variant" })
        ));
        assert!(
            matches!(
                resolve(&line(1, Some(21), 1), &[single, several].concat()),
                Err(DomainError::NotFound { .. })
            ),
            "a variant of another product"
        );
        assert!(matches!(
            resolve(&line(3, None, 1), &[]),
            Err(DomainError::NotFound { entity: "product" })
        ));
    }

    #[test]
    fn lines_of_one_variant_merge_into_one() {
        let items = found(1, &[(11, true), (12, true)]);
        let priced = |i: usize, qty: i32| BoughtLine {
            item: items[i].clone(),
            quantity: Quantity::parse(qty).expect("qty"),
        };
        let merged = merged_lines(vec![priced(0, 2), priced(1, 1), priced(0, 3)]).expect("valid");
        let quantities: Vec<i32> = merged.iter().map(|l| l.quantity.get()).collect();
        assert_eq!(quantities, vec![5, 1]);
        assert!(
            merged_lines(vec![priced(0, 600), priced(0, 600)]).is_err(),
            "merged quantity is still capped"
        );
        assert!(line_count(&[]).is_err());
    }

    #[test]
    fn idempotency_keys_are_short_visible_ascii() {
        assert!(IdempotencyKey::parse("order-2026-11-23-001").is_ok());
        for bad in ["", "has space", &"k".repeat(129), "ключ"] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }
}
