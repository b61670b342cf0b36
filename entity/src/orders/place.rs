//! Placing an order: one write transaction that reserves stock for every
//! line, writes the order, its lines (prices snapshotted), its authorised
//! payment and its jobs (settlement, confirmation email) to the outbox.
//!
//! The payment is authorised with the gateway *before* the transaction (no
//! network call holds a database lock); if the transaction then fails, the
//! authorisation is voided. The same idempotency key from the same user
//! returns the first order and reserves nothing twice — the unique index on
//! `(user_id, idempotency_key)` decides races between concurrent retries.
//!
//! Every statement is a round trip that 64 concurrent customers queue for
//! (`bench/orders.sh`), so an order costs as few as its rules allow: one
//! read for the customer's address and an earlier order with the key, one
//! for the variants and their prices; in the transaction the order (which
//! also reads the transaction id the commit needs), the payment, its two
//! jobs, then per variant one conditional `UPDATE` of stock and its
//! movement, all lines in one `INSERT`, and COMMIT. Stock is reserved last,
//! in variant id order: a variant's row stays locked only for the end of
//! the transaction, and two orders sharing variants lock them in the same
//! order (they wait for each other; they never deadlock).
//!
//! A line names a variant, or a product with exactly one active variant
//! (the contract from before variants); lines of the same variant merge.
//! Each order line snapshots the product name, the variant's id, SKU and
//! title, and its unit price.
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Alias, Condition, ExprTrait, JoinType, Query};
use sea_orm::{
    ActiveValue::Set, DatabaseConnection, DatabaseTransaction, DbBackend, QueryTrait, TryIntoModel,
};

use super::OrderStatus;
use crate::accounts::Email;
use crate::catalog::variants::VariantOf;
use crate::catalog::{Quantity, reserve_stock};
use crate::db::begin_write;
use crate::error::{DomainError, is_unique_violation};
use crate::ids::{OrderId, OrderLineId, PaymentId, ProductId, UserId, VariantId};
use crate::jobs::{EmailMessage, SettlePayment};
use crate::money::{Currency, Money};
use crate::payments::{GatewayError, PaymentGateway, PaymentStatus, PaymentToken};
use crate::pricing::TaxMode;
use crate::tables::{order_lines, orders, payments, product_variants, products, users};

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

/// A line with the variant it buys, as quoted.
#[derive(Debug, Clone)]
struct PricedLine {
    item: VariantOf,
    quantity: Quantity,
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
fn merged_lines(lines: Vec<PricedLine>) -> Result<Vec<PricedLine>, DomainError> {
    let mut merged: Vec<PricedLine> = Vec::with_capacity(lines.len());
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

async fn existing_order(
    db: &DatabaseConnection,
    user_id: UserId,
    key: &IdempotencyKey,
) -> Result<Option<orders::Model>, DomainError> {
    Ok(orders::Entity::find()
        .filter(orders::Column::UserId.eq(user_id))
        .filter(orders::Column::IdempotencyKey.eq(key.0.as_str()))
        .one(db)
        .await?)
}

/// The customer's address, and the order they already placed with `key`
/// (read in full only then, which is rare: a retry).
///
/// # Errors
/// [`DomainError::NotFound`] when the user is gone.
async fn customer_and_existing(
    db: &DatabaseConnection,
    user_id: UserId,
    key: &IdempotencyKey,
) -> Result<(Email, Option<orders::Model>), DomainError> {
    let existing = Alias::new("existing_order_id");
    let select = Query::select()
        .column((users::Entity, users::Column::Email))
        .expr_as(Expr::col((orders::Entity, orders::Column::Id)), existing.clone())
        .from(users::Entity)
        .join(
            JoinType::LeftJoin,
            orders::Entity,
            Condition::all()
                .add(
                    Expr::col((orders::Entity, orders::Column::UserId))
                        .equals((users::Entity, users::Column::Id)),
                )
                .add(Expr::col((orders::Entity, orders::Column::IdempotencyKey)).eq(key.0.as_str())),
        )
        .and_where(Expr::col((users::Entity, users::Column::Id)).eq(user_id))
        .to_owned();
    let row = db
        .query_one(&select)
        .await?
        .ok_or(DomainError::NotFound { entity: "user" })?;
    let email = Email::stored(row.try_get::<String>("", users::Column::Email.as_str())?);
    let order = match row.try_get::<Option<OrderId>>("", &existing.to_string())? {
        Some(_) => existing_order(db, user_id, key).await?,
        None => None,
    };
    Ok((email, order))
}

/// Resolves every line to its variant (one statement: the variants named,
/// and every variant of the products named without one, with their
/// products), merges lines of the same variant, and prices the order at
/// current prices, all lines in one currency.
async fn quote(
    db: &DatabaseConnection,
    lines: &[OrderLineRequest],
) -> Result<(Money, Vec<PricedLine>), DomainError> {
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
            Ok(PricedLine {
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

fn declined(err: GatewayError) -> DomainError {
    match err {
        GatewayError::Declined(reason) => DomainError::PaymentDeclined(reason),
        GatewayError::InvalidToken => DomainError::invalid("paymentToken", "unknown payment token"),
        GatewayError::Transient(_) | GatewayError::Timeout | GatewayError::Unavailable { .. } => {
            let why = match err {
                GatewayError::Unavailable { .. } => "it failed repeatedly just now and is not being called",
                GatewayError::Timeout => "it did not answer in time",
                _ => "it failed",
            };
            DomainError::PaymentUnavailable(format!("{why}; no order was placed, try again later"))
        }
    }
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
    let authorization = gateway
        .authorize(&request.payment_token, total)
        .await
        .map_err(declined)?;

    let outcome = write_order(
        db,
        &NewOrder {
            user_id,
            email,
            request: &request,
            lines: &lines,
            total,
            authorization: &authorization,
        },
        request_id,
    )
    .await;
    match outcome {
        Ok((order, reserved)) => Ok(PlacedOrder {
            order,
            created: true,
            reserved,
        }),
        // The connection died during COMMIT and the server could not say
        // whether it committed: the order may exist with this authorisation,
        // so it is not voided (an unused authorisation lapses; voiding a placed
        // order's would be worse). A retry with the same key finds the order,
        // or places it anew.
        Err(WriteError::Domain(DomainError::Database(err))) if crate::db::retry::is_commit_unknown(&err) => {
            Err(DomainError::Database(err))
        }
        Err(err) => {
            if let Err(void_err) = gateway.void(&authorization).await {
                tracing::warn!(error = %void_err, "could not void the authorisation of an order that was not placed");
            }
            match err {
                // A concurrent retry with the same key won: answer with its order.
                WriteError::DuplicateKey => existing_order(db, user_id, &request.idempotency_key)
                    .await?
                    .map(|order| PlacedOrder {
                        order,
                        created: false,
                        reserved: Vec::new(),
                    })
                    .ok_or_else(|| DomainError::Conflict("order is being placed; retry".into())),
                WriteError::Domain(err) => Err(err),
            }
        }
    }
}

enum WriteError {
    DuplicateKey,
    Domain(DomainError),
}

impl<E: Into<DomainError>> From<E> for WriteError {
    fn from(err: E) -> Self {
        WriteError::Domain(err.into())
    }
}

/// What [`write_order`] writes, all checked and authorised.
struct NewOrder<'a> {
    user_id: UserId,
    /// Where the confirmation goes.
    email: Email,
    request: &'a OrderRequest,
    /// One per variant, each with its variant and product as quoted.
    lines: &'a [PricedLine],
    total: Money,
    authorization: &'a str,
}

async fn write_order(
    db: &DatabaseConnection,
    new: &NewOrder<'_>,
    request_id: Option<String>,
) -> Result<(orders::Model, Vec<product_variants::Model>), WriteError> {
    let txn = begin_write(db).await?;
    let now = Utc::now();
    // The order row first: a concurrent call with the same key waits here
    // and then fails on the unique index, before it reserves anything.
    let (order, txid) = insert_order(
        &txn,
        orders::ActiveModel {
            id: Set(OrderId::new()),
            user_id: Set(new.user_id),
            status: Set(OrderStatus::PendingPayment),
            total_minor: Set(new.total.amount_minor),
            currency: Set(new.total.currency.code().to_owned()),
            idempotency_key: Set(new.request.idempotency_key.0.clone()),
            created_at: Set(now),
            updated_at: Set(now),
            subtotal_minor: Set(new.total.amount_minor),
            discount_minor: Set(0),
            shipping_minor: Set(0),
            tax_minor: Set(0),
            tax_mode: Set(TaxMode::Exclusive),
            shipping_address: Set(None),
            shipping_method_id: Set(None),
            shipping_method_name: Set(None),
            discount_code: Set(None),
        },
    )
    .await?;
    let payment = payments::ActiveModel {
        id: Set(PaymentId::new()),
        order_id: Set(order.id),
        status: Set(PaymentStatus::Authorized),
        amount_minor: Set(new.total.amount_minor),
        currency: Set(new.total.currency.code().to_owned()),
        token: Set(new.request.payment_token.as_str().to_owned()),
        authorization_ref: Set(Some(new.authorization.to_owned())),
        attempts: Set(0),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    crate::outbox::enqueue(
        &txn,
        &SettlePayment {
            payment_id: payment.id,
            order_id: order.id,
            request_id: request_id.clone(),
        },
    )
    .await?;
    super::manage::enqueue_email(
        &txn,
        new.email.clone(),
        format!("order-confirmation:{}", order.id),
        EmailMessage::OrderConfirmation { order_id: order.id },
        request_id,
    )
    .await?;
    let reserved = reserve_lines(&txn, order.id, new.lines).await?;
    order_lines::Entity::insert_many(new.lines.iter().map(|line| {
        let VariantOf { variant, product } = &line.item;
        order_lines::ActiveModel {
            id: Set(OrderLineId::new()),
            order_id: Set(order.id),
            product_id: Set(product.id),
            product_name: Set(product.name.clone()),
            variant_id: Set(variant.id),
            sku: Set(variant.sku.clone()),
            variant_title: Set(variant.title.clone()),
            quantity: Set(line.quantity.get()),
            unit_price_minor: Set(variant.price_minor),
            currency: Set(variant.currency.clone()),
        }
    }))
    .exec_without_returning(&txn)
    .await?;
    // Resolves a COMMIT whose answer was lost (see `db::retry::commit`).
    match txid {
        Some(txid) => crate::db::retry::commit_txid(db, txn, txid).await?,
        None => crate::db::retry::commit(db, txn).await?,
    }
    Ok((order, reserved))
}

/// Inserts the order. On PostgreSQL the same statement returns the
/// transaction's id, which `db::retry::commit_txid` needs should the answer
/// to COMMIT be lost (a statement saved on every order).
async fn insert_order(
    txn: &DatabaseTransaction,
    order: orders::ActiveModel,
) -> Result<(orders::Model, Option<i64>), WriteError> {
    let unique = |e: DbErr| {
        if is_unique_violation(&e) {
            WriteError::DuplicateKey
        } else {
            e.into()
        }
    };
    let model = order.clone().try_into_model()?;
    let mut insert = orders::Entity::insert(order);
    let txid = if txn.get_database_backend() == DbBackend::Postgres {
        let statement = insert
            .query()
            .returning(Query::returning().expr(Expr::cust(crate::db::retry::TXID)))
            .to_owned();
        let row = txn
            .query_one(&statement)
            .await
            .map_err(unique)?
            .ok_or_else(|| DbErr::Custom("INSERT … RETURNING gave no row".into()))?;
        Some(row.try_get_by_index::<i64>(0)?)
    } else {
        insert.exec_without_returning(txn).await.map_err(unique)?;
        None
    };
    Ok((model, txid))
}

/// Reserves every line's units (one conditional `UPDATE` each, in variant
/// id order), and checks that no price changed since the quote. Returns
/// the variants as reserved, in variant id order.
async fn reserve_lines(
    txn: &DatabaseTransaction,
    order_id: OrderId,
    lines: &[PricedLine],
) -> Result<Vec<product_variants::Model>, WriteError> {
    let mut by_variant: Vec<&PricedLine> = lines.iter().collect();
    by_variant.sort_by_key(|line| line.item.variant.id);
    let mut reserved = Vec::with_capacity(by_variant.len());
    for line in by_variant {
        let quoted = &line.item.variant;
        let variant = reserve_stock(txn, quoted.id, line.quantity, order_id).await?;
        if variant.price_minor != quoted.price_minor || variant.currency != quoted.currency {
            return Err(
                DomainError::Conflict("a price changed while the order was placed; retry".into()).into(),
            );
        }
        reserved.push(variant);
    }
    Ok(reserved)
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
        let priced = |i: usize, qty: i32| PricedLine {
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
