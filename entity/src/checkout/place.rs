//! Checking out: a customer's cart becomes an order, shipped to an address
//! by a method, with an optional code, charged what [`super::quote`] says.
//!
//! Reads first (the customer and an earlier order under the key; the cart,
//! its lines and variants; the method, tax rate, tax mode and code), then
//! `crate::orders::write`: the payment authorised outside any transaction,
//! and one transaction that writes the order with its breakdown and a copy
//! of the address, counts the code's use (one conditional statement per
//! limit, so a limit holds under any concurrency), deletes the cart,
//! reserves the stock and writes the lines. A line whose price changed
//! since it went into the cart is bought at today's price, and the answer
//! says so ([`CheckedOut::price_changes`]).
use chrono::Utc;
use sea_orm::DatabaseConnection;

use super::quote::{Terms, quote};
use crate::addresses::{self, Address};
use crate::carts::{CartKey, cart_currency, cart_items, find_cart};
use crate::catalog::Quantity;
use crate::discounts::DiscountCode;
use crate::error::DomainError;
use crate::ids::{AddressId, ShippingMethodId, UserId, VariantId};
use crate::money::Money;
use crate::orders::write::{
    BoughtLine, CheckoutRecord, NewOrder, authorize_and_write, customer_and_existing,
};
use crate::orders::{IdempotencyKey, PlacedOrder};
use crate::payments::{PaymentGateway, PaymentToken};

/// Where the order ships.
#[derive(Debug, Clone)]
pub enum ShipTo {
    /// An address typed at checkout.
    Address(Address),
    /// One from the customer's address book.
    Saved(AddressId),
    /// The customer's default shipping address.
    Default,
}

#[derive(Debug, Clone)]
pub struct CheckoutRequest {
    pub cart: CartKey,
    pub ship_to: ShipTo,
    pub shipping_method: ShippingMethodId,
    pub discount_code: Option<DiscountCode>,
    pub payment_token: PaymentToken,
    pub idempotency_key: IdempotencyKey,
}

/// A line bought at another price than the one the cart showed when it
/// was filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceChange {
    pub variant_id: VariantId,
    pub product_name: String,
    pub sku: String,
    pub price_seen: Money,
    pub price_paid: Money,
}

/// The outcome of [`checkout`].
#[derive(Debug, Clone)]
pub struct CheckedOut {
    pub placed: PlacedOrder,
    /// Empty when every line cost what the cart showed (and on a retry).
    pub price_changes: Vec<PriceChange>,
}

/// Places the order a cart holds, for `user_id`; the same idempotency key
/// returns the order placed first.
///
/// # Errors
/// [`DomainError::NotFound`] for a cart that is not the customer's (or a
/// guest cart whose token is wrong), one already bought, or an unknown
/// saved address;
/// [`DomainError::InvalidInput`] on `cartId` (empty, or a line no longer
/// for sale), `shippingAddress`, `shippingMethodId`, `discountCode`;
/// [`DomainError::OutOfStock`]; [`DomainError::PaymentDeclined`];
/// [`DomainError::PaymentUnavailable`]; [`DomainError::Conflict`] when a
/// price changed while the order was placed.
pub async fn checkout(
    db: &DatabaseConnection,
    gateway: &dyn PaymentGateway,
    user_id: UserId,
    request: CheckoutRequest,
    request_id: Option<String>,
) -> Result<CheckedOut, DomainError> {
    let (email, existing) = customer_and_existing(db, user_id, &request.idempotency_key).await?;
    if let Some(order) = existing {
        return Ok(CheckedOut {
            placed: PlacedOrder {
                order,
                created: false,
                reserved: Vec::new(),
            },
            price_changes: Vec::new(),
        });
    }
    let address = ship_to(db, user_id, request.ship_to.clone()).await?;
    let cart = find_cart(db, &request.cart, Some(user_id)).await?.row;
    let items = cart_items(db, cart.id).await?;
    let Some(currency) = cart_currency(&cart, items.len()) else {
        // No lines may mean a checkout of this cart committed between the
        // two reads (it deletes the cart): that cart is gone, not empty.
        find_cart(db, &request.cart, Some(user_id)).await?;
        return Err(DomainError::invalid("cartId", "the cart is empty"));
    };
    let mut lines = Vec::with_capacity(items.len());
    let mut priced = Vec::with_capacity(items.len());
    let mut price_changes = Vec::new();
    for (row, item) in items {
        if !item.buyable() || item.variant.currency != currency.code() {
            return Err(DomainError::invalid(
                "cartId",
                format!(
                    "{} is no longer for sale; remove it from the cart",
                    item.product.name
                ),
            ));
        }
        let quantity = Quantity::parse(row.quantity)?;
        let line = item.priced(quantity)?;
        let price_seen = Money::new(row.unit_price_minor_seen, currency);
        if line.unit_price != price_seen {
            price_changes.push(PriceChange {
                variant_id: row.variant_id,
                product_name: item.product.name.clone(),
                sku: item.variant.sku.clone(),
                price_seen,
                price_paid: line.unit_price,
            });
        }
        priced.push(line);
        lines.push(BoughtLine { item, quantity });
    }
    let terms = Terms {
        country: address.country()?,
        shipping_method: request.shipping_method,
        discount_code: request.discount_code.as_ref(),
    };
    let quoted = quote(db, &priced, currency, terms, Utc::now()).await?;
    let new = NewOrder {
        user_id,
        email,
        idempotency_key: &request.idempotency_key,
        payment_token: &request.payment_token,
        lines: &lines,
        totals: quoted.totals,
        tax_mode: quoted.tax_mode,
        checkout: Some(CheckoutRecord {
            address: &address,
            method: &quoted.method,
            discount: request.discount_code.as_ref().zip(quoted.discount),
            cart: cart.id,
        }),
    };
    let placed = authorize_and_write(db, gateway, &new, request_id).await?;
    Ok(CheckedOut {
        price_changes: if placed.created { price_changes } else { Vec::new() },
        placed,
    })
}

/// The address the order ships to.
async fn ship_to(db: &DatabaseConnection, user_id: UserId, ship_to: ShipTo) -> Result<Address, DomainError> {
    match ship_to {
        ShipTo::Address(address) => Ok(address),
        ShipTo::Saved(id) => Ok(addresses::find_address(db, user_id, id).await?.into()),
        ShipTo::Default => addresses::default_shipping_address(db, user_id)
            .await?
            .map(Address::from)
            .ok_or_else(|| {
                DomainError::invalid(
                    "shippingAddress",
                    "give an address: there is no default shipping address",
                )
            }),
    }
}
