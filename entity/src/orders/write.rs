//! Writing an order, whichever way it was asked for (`placeOrder`'s lines
//! or a checkout's cart): the payment is authorised with the gateway
//! *before* the transaction (no network call holds a database lock); the
//! transaction then writes the order (its money broken down as
//! `crate::pricing` computed it, and what checkout adds: the address, the
//! method, the code's use, the cart gone), the payment, its jobs
//! (settlement, confirmation email) and its lines, and reserves stock.
//! If the transaction fails, the authorisation is voided. The same
//! idempotency key from the same user returns the first order and reserves
//! nothing twice: the unique index on `(user_id, idempotency_key)` decides
//! races between concurrent retries.
//!
//! Every statement is a round trip that 64 concurrent customers queue for
//! (`bench/orders.sh`), and the rows the transaction locks stay locked
//! through each. In the transaction: the order, its payment, its two jobs
//! and all its lines in one statement (`db::batch`: on PostgreSQL one
//! `WITH` of `INSERT`s, which also reads the transaction id the commit
//! needs; on SQLite four `INSERT`s), then per variant one conditional
//! `UPDATE` of stock with its movement (one statement on PostgreSQL: see
//! `catalog::stock`), and COMMIT. Stock is reserved last, in variant id
//! order: a variant's row stays locked only for the end of the
//! transaction, and two orders sharing variants lock them in the same
//! order (they wait for each other; they never deadlock). The lines'
//! foreign keys take only a key-share lock on their variants, which the
//! reserving `UPDATE`s (of other transactions too) do not wait for.
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Alias, Condition, ExprTrait, JoinType, Query};
use sea_orm::{ActiveValue::Set, DatabaseConnection, DatabaseTransaction, QueryTrait, TryIntoModel};

use super::OrderStatus;
use super::place::{IdempotencyKey, PlacedOrder};
use crate::accounts::Email;
use crate::addresses::Address;
use crate::catalog::variants::VariantOf;
use crate::catalog::{Quantity, reserve_stock};
use crate::db::begin_write;
use crate::discounts::{Applicable, DiscountCode};
use crate::error::{DomainError, is_unique_violation};
use crate::ids::{CartId, OrderId, OrderLineId, PaymentId, UserId};
use crate::jobs::{EmailMessage, SendEmail, SettlePayment};
use crate::payments::{GatewayError, PaymentGateway, PaymentStatus, PaymentToken};
use crate::pricing::{TaxMode, Totals};
use crate::shipping::MethodOption;
use crate::tables::{order_lines, orders, outbox, payments, product_variants, users};

/// A line to write: the variant it buys, with its product, as quoted.
#[derive(Debug, Clone)]
pub(crate) struct BoughtLine {
    pub item: VariantOf,
    pub quantity: Quantity,
}

/// What checkout adds to an order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckoutRecord<'a> {
    pub address: &'a Address,
    pub method: &'a MethodOption,
    /// The code and the use to count (in the transaction, after the order row).
    pub discount: Option<(&'a DiscountCode, Applicable)>,
    /// The cart that becomes the order (deleted in the same transaction).
    pub cart: CartId,
}

/// What [`authorize_and_write`] writes, all checked.
pub(crate) struct NewOrder<'a> {
    pub user_id: UserId,
    /// Where the confirmation goes.
    pub email: Email,
    pub idempotency_key: &'a IdempotencyKey,
    pub payment_token: &'a PaymentToken,
    /// One per variant.
    pub lines: &'a [BoughtLine],
    /// The money as `crate::pricing` computed it; `total` is charged.
    pub totals: Totals,
    pub tax_mode: TaxMode,
    pub checkout: Option<CheckoutRecord<'a>>,
}

pub(crate) async fn existing_order(
    db: &DatabaseConnection,
    user_id: UserId,
    key: &IdempotencyKey,
) -> Result<Option<orders::Model>, DomainError> {
    Ok(orders::Entity::find()
        .filter(orders::Column::UserId.eq(user_id))
        .filter(orders::Column::IdempotencyKey.eq(key.as_str()))
        .one(db)
        .await?)
}

/// The customer's email address, and the order they already placed with `key`
/// (read in full only then, which is rare: a retry).
///
/// # Errors
/// [`DomainError::NotFound`] when the user is gone.
pub(crate) async fn customer_and_existing(
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
                .add(Expr::col((orders::Entity, orders::Column::IdempotencyKey)).eq(key.as_str())),
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

/// Authorises `new.totals.total`, writes the order, and voids the
/// authorisation when the write fails (see the module).
///
/// # Errors
/// [`DomainError::PaymentDeclined`], [`DomainError::PaymentUnavailable`]
/// (nothing is written then); what the write refuses
/// ([`DomainError::OutOfStock`], [`DomainError::Conflict`] when a price
/// changed meanwhile, `discountCode` when the code was used up meanwhile).
pub(crate) async fn authorize_and_write(
    db: &DatabaseConnection,
    gateway: &dyn PaymentGateway,
    new: &NewOrder<'_>,
    request_id: Option<String>,
) -> Result<PlacedOrder, DomainError> {
    let authorization = gateway
        .authorize(new.payment_token, new.totals.total)
        .await
        .map_err(declined)?;
    match write_order(db, new, &authorization, request_id).await {
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
                WriteError::DuplicateKey => existing_order(db, new.user_id, new.idempotency_key)
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

async fn write_order(
    db: &DatabaseConnection,
    new: &NewOrder<'_>,
    authorization: &str,
    request_id: Option<String>,
) -> Result<(orders::Model, Vec<product_variants::Model>), WriteError> {
    let now = Utc::now();
    let totals = new.totals;
    let checkout = new.checkout;
    let order = orders::ActiveModel {
        id: Set(OrderId::new()),
        user_id: Set(new.user_id),
        status: Set(OrderStatus::PendingPayment),
        total_minor: Set(totals.total.amount_minor),
        currency: Set(totals.total.currency.code().to_owned()),
        idempotency_key: Set(new.idempotency_key.as_str().to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
        subtotal_minor: Set(totals.subtotal.amount_minor),
        discount_minor: Set(totals.discount.amount_minor),
        shipping_minor: Set(totals.shipping.amount_minor),
        tax_minor: Set(totals.tax.amount_minor),
        tax_mode: Set(new.tax_mode),
        shipping_address: Set(checkout.map(|c| c.address.snapshot())),
        shipping_method_id: Set(checkout.map(|c| c.method.id)),
        shipping_method_name: Set(checkout.map(|c| c.method.name.clone())),
        discount_code: Set(checkout
            .and_then(|c| c.discount)
            .map(|(code, _)| code.as_str().to_owned())),
    };
    let order_row = order.clone();
    let order = order.try_into_model()?;
    let payment_id = PaymentId::new();
    let payment = payments::ActiveModel {
        id: Set(payment_id),
        order_id: Set(order.id),
        status: Set(PaymentStatus::Authorized),
        amount_minor: Set(totals.total.amount_minor),
        currency: Set(totals.total.currency.code().to_owned()),
        token: Set(new.payment_token.as_str().to_owned()),
        authorization_ref: Set(Some(authorization.to_owned())),
        attempts: Set(0),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let jobs = [
        crate::outbox::first_attempt(&SettlePayment {
            payment_id,
            order_id: order.id,
            request_id: request_id.clone(),
        })?,
        crate::outbox::first_attempt(&SendEmail {
            dedupe_key: format!("order-confirmation:{}", order.id),
            to: new.email.clone(),
            message: EmailMessage::OrderConfirmation { order_id: order.id },
            request_id,
        })?,
    ];
    let lines = new.lines.iter().map(|line| {
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
    });
    // The order first: a concurrent call with the same key waits on its
    // unique index and then fails, before it reserves anything.
    let head = vec![
        orders::Entity::insert(order_row).into_query(),
        payments::Entity::insert(payment).into_query(),
        outbox::Entity::insert_many(jobs).into_query(),
        order_lines::Entity::insert_many(lines).into_query(),
    ];
    let txn = begin_write(db).await?;
    let txid = crate::db::batch::insert_all(&txn, head).await.map_err(|e| {
        // The only unique index a fresh order's rows can meet (every other
        // key is a new id): `(user_id, idempotency_key)`.
        if is_unique_violation(&e) {
            WriteError::DuplicateKey
        } else {
            e.into()
        }
    })?;
    if let Some(checkout) = checkout {
        if let Some((_, code)) = checkout.discount {
            crate::discounts::redeem(&txn, &code, new.user_id, order.id, totals.discount).await?;
        }
        crate::carts::delete_cart(&txn, checkout.cart).await?;
    }
    let reserved = reserve_lines(&txn, order.id, new.lines).await?;
    // Resolves a COMMIT whose answer was lost (see `db::retry::commit`).
    match txid {
        Some(txid) => crate::db::retry::commit_txid(db, txn, txid).await?,
        None => crate::db::retry::commit(db, txn).await?,
    }
    Ok((order, reserved))
}

/// Reserves every line's units (one conditional `UPDATE` each, in variant
/// id order), and checks that no price changed since the quote. Returns
/// the variants as reserved, in variant id order.
async fn reserve_lines(
    txn: &DatabaseTransaction,
    order_id: OrderId,
    lines: &[BoughtLine],
) -> Result<Vec<product_variants::Model>, WriteError> {
    let mut by_variant: Vec<&BoughtLine> = lines.iter().collect();
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
