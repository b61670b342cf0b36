//! Writing an order, whichever way it was asked for (`placeOrder`'s lines
//! or a checkout's cart): the payment is authorised with the gateway
//! *before* the transaction (no network call holds a database lock); the
//! transaction then writes the order (its money broken down as
//! `crate::pricing` computed it, and what checkout adds: the address, the
//! method, the code's use, the cart gone), the payment, its jobs
//! (settlement, confirmation email), reserves stock and writes the lines.
//! If the transaction fails, the authorisation is voided. The same
//! idempotency key from the same user returns the first order and reserves
//! nothing twice: the unique index on `(user_id, idempotency_key)` decides
//! races between concurrent retries.
//!
//! Every statement is a round trip that 64 concurrent customers queue for
//! (`bench/orders.sh`): in the transaction the order (which also reads the
//! transaction id the commit needs), the payment, its two jobs, then per
//! variant one conditional `UPDATE` of stock and its movement, all lines
//! in one `INSERT`, and COMMIT. Stock is reserved last, in variant id
//! order: a variant's row stays locked only for the end of the
//! transaction, and two orders sharing variants lock them in the same
//! order (they wait for each other; they never deadlock).
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Alias, Condition, ExprTrait, JoinType, Query};
use sea_orm::{
    ActiveValue::Set, DatabaseConnection, DatabaseTransaction, DbBackend, QueryTrait, TryIntoModel,
};

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
use crate::jobs::{EmailMessage, SettlePayment};
use crate::payments::{GatewayError, PaymentGateway, PaymentStatus, PaymentToken};
use crate::pricing::{TaxMode, Totals};
use crate::shipping::MethodOption;
use crate::tables::{order_lines, orders, payments, product_variants, users};

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
    let txn = begin_write(db).await?;
    let now = Utc::now();
    let totals = new.totals;
    let checkout = new.checkout;
    // The order row first: a concurrent call with the same key waits here
    // and then fails on the unique index, before it reserves anything.
    let (order, txid) = insert_order(
        &txn,
        orders::ActiveModel {
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
        },
    )
    .await?;
    let payment = payments::ActiveModel {
        id: Set(PaymentId::new()),
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
    if let Some(checkout) = checkout {
        if let Some((_, code)) = checkout.discount {
            crate::discounts::redeem(&txn, &code, new.user_id, order.id, totals.discount).await?;
        }
        crate::carts::delete_cart(&txn, checkout.cart).await?;
    }
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
