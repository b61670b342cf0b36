//! Placing an order: one write transaction that reserves stock for every
//! line, writes the order, its lines (prices snapshotted), its authorised
//! payment and its jobs (settlement, confirmation email) to the outbox.
//!
//! The payment is authorised with the gateway *before* the transaction (no
//! network call holds a database lock); if the transaction then fails, the
//! authorisation is voided. The same idempotency key from the same user
//! returns the first order and reserves nothing twice — the unique index on
//! `(user_id, idempotency_key)` decides races between concurrent retries.
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, DatabaseConnection};

use super::OrderStatus;
use crate::catalog::{Quantity, reserve_stock};
use crate::db::begin_write;
use crate::error::{DomainError, is_unique_violation};
use crate::ids::{OrderId, OrderLineId, PaymentId, ProductId, UserId};
use crate::jobs::{EmailMessage, SettlePayment};
use crate::money::{Currency, Money};
use crate::payments::{GatewayError, PaymentGateway, PaymentStatus, PaymentToken};
use crate::tables::{order_lines, orders, payments, products};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderLineRequest {
    pub product_id: ProductId,
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
}

/// Merges repeated products into one line each, keeping first-seen order.
fn merged_lines(lines: &[OrderLineRequest]) -> Result<Vec<OrderLineRequest>, DomainError> {
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(DomainError::invalid(
            "lines",
            format!("must have 1 to {MAX_LINES} lines"),
        ));
    }
    let mut merged: Vec<OrderLineRequest> = Vec::with_capacity(lines.len());
    for line in lines {
        if let Some(existing) = merged.iter_mut().find(|l| l.product_id == line.product_id) {
            existing.quantity = Quantity::parse(existing.quantity.get() + line.quantity.get())?;
        } else {
            merged.push(*line);
        }
    }
    Ok(merged)
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

/// The order's total at current prices, all lines in one currency.
async fn quote(
    db: &DatabaseConnection,
    lines: &[OrderLineRequest],
) -> Result<(Money, Vec<products::Model>), DomainError> {
    let ids: Vec<ProductId> = lines.iter().map(|l| l.product_id).collect();
    let found = crate::catalog::products_by_ids(db, &ids).await?;
    let mut priced = Vec::with_capacity(lines.len());
    for line in lines {
        match found.get(&line.product_id) {
            Some(p) if p.active => priced.push(p.clone()),
            _ => return Err(DomainError::NotFound { entity: "product" }),
        }
    }
    let currency = Currency::parse(&priced[0].currency)?;
    let mut total = Money::zero(currency);
    for (line, product) in lines.iter().zip(&priced) {
        let unit = Money::from_parts(product.price_minor, &product.currency)?;
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
    let lines = merged_lines(&request.lines)?;
    if let Some(order) = existing_order(db, user_id, &request.idempotency_key).await? {
        return Ok(PlacedOrder {
            order,
            created: false,
        });
    }
    let (total, quoted) = quote(db, &lines).await?;
    let authorization = gateway
        .authorize(&request.payment_token, total)
        .await
        .map_err(declined)?;

    let outcome = write_order(
        db,
        user_id,
        &request,
        &lines,
        &quoted,
        total,
        &authorization,
        request_id,
    )
    .await;
    match outcome {
        Ok(order) => Ok(PlacedOrder { order, created: true }),
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

#[expect(clippy::too_many_arguments, reason = "one private step of place_order")]
async fn write_order(
    db: &DatabaseConnection,
    user_id: UserId,
    request: &OrderRequest,
    lines: &[OrderLineRequest],
    quoted: &[products::Model],
    total: Money,
    authorization: &str,
    request_id: Option<String>,
) -> Result<orders::Model, WriteError> {
    let txn = begin_write(db).await?;
    let now = Utc::now();
    // The order row first: a concurrent call with the same key waits here
    // and then fails on the unique index, before it reserves anything.
    let order = orders::ActiveModel {
        id: Set(OrderId::new()),
        user_id: Set(user_id),
        status: Set(OrderStatus::PendingPayment),
        total_minor: Set(total.amount_minor),
        currency: Set(total.currency.code().to_owned()),
        idempotency_key: Set(request.idempotency_key.0.clone()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            WriteError::DuplicateKey
        } else {
            e.into()
        }
    })?;

    for (line, quoted) in lines.iter().zip(quoted) {
        let product = reserve_stock(&txn, line.product_id, line.quantity, order.id).await?;
        if product.price_minor != quoted.price_minor || product.currency != quoted.currency {
            return Err(
                DomainError::Conflict("a price changed while the order was placed; retry".into()).into(),
            );
        }
        order_lines::ActiveModel {
            id: Set(OrderLineId::new()),
            order_id: Set(order.id),
            product_id: Set(product.id),
            product_name: Set(product.name.clone()),
            quantity: Set(line.quantity.get()),
            unit_price_minor: Set(product.price_minor),
            currency: Set(product.currency.clone()),
        }
        .insert(&txn)
        .await?;
    }
    let payment = payments::ActiveModel {
        id: Set(PaymentId::new()),
        order_id: Set(order.id),
        status: Set(PaymentStatus::Authorized),
        amount_minor: Set(total.amount_minor),
        currency: Set(total.currency.code().to_owned()),
        token: Set(request.payment_token.as_str().to_owned()),
        authorization_ref: Set(Some(authorization.to_owned())),
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
    super::manage::email_customer(
        &txn,
        &order,
        format!("order-confirmation:{}", order.id),
        EmailMessage::OrderConfirmation { order_id: order.id },
        request_id,
    )
    .await?;
    // Resolves a COMMIT whose answer was lost (see `db::retry::commit`).
    crate::db::retry::commit(db, txn).await?;
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: u128, qty: i32) -> OrderLineRequest {
        OrderLineRequest {
            product_id: ProductId(Uuid::from_u128(id)),
            quantity: Quantity::parse(qty).expect("qty"),
        }
    }

    #[test]
    fn repeated_products_merge_into_one_line() {
        let merged = merged_lines(&[line(1, 2), line(2, 1), line(1, 3)]).expect("valid");
        assert_eq!(merged, vec![line(1, 5), line(2, 1)]);
        assert!(merged_lines(&[]).is_err());
        assert!(
            merged_lines(&[line(1, 600), line(1, 600)]).is_err(),
            "merged quantity is still capped"
        );
    }

    #[test]
    fn idempotency_keys_are_short_visible_ascii() {
        assert!(IdempotencyKey::parse("order-2026-11-23-001").is_ok());
        for bad in ["", "has space", &"k".repeat(129), "ключ"] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }
}
