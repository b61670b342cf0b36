use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::Utc;
use entity::DomainError;
use entity::carts::CartView;
use entity::checkout::{CheckoutRequest, PriceChange, ShipTo, Terms};
use entity::discounts::DiscountCode;
use entity::orders::IdempotencyKey;
use entity::payments::PaymentToken;
use entity::pricing::{TaxMode, Totals};
use entity::shipping::CountryCode;

use crate::addresses::AddressInput;
use crate::auth::require_user;
use crate::errors::{self, GqlResultExt};
use crate::ids;
use crate::money::MoneyView;
use crate::orders::Order;
use crate::state::AppState;
use crate::throttle::rules::{self, Limit};
use crate::transaction::read;

#[derive(InputObject)]
pub struct CheckoutInput {
    /// The cart to buy: a guest cart's token or the customer's cart id.
    cart_id: ID,
    /// Where to ship, typed at checkout; or `shippingAddressId`; with
    /// neither, the customer's default shipping address.
    shipping_address: Option<AddressInput>,
    /// An address from the customer's address book.
    shipping_address_id: Option<ID>,
    /// One of `shippingMethods(countryCode:, currency:)` for the address.
    shipping_method_id: ID,
    discount_code: Option<String>,
    /// A payment method token (the sandbox's: see `PlaceOrderInput`).
    payment_token: String,
    /// Any string of 1-128 visible characters; retrying with the same key
    /// returns the same order.
    idempotency_key: String,
}

/// The order a checkout placed, and the lines that cost another price than
/// the cart showed when they were added.
pub struct CheckoutPayload {
    order: Order,
    price_changes: Vec<PriceChange>,
}

#[Object]
impl CheckoutPayload {
    async fn order(&self) -> &Order {
        &self.order
    }
    /// Lines bought at today's price, which differs from the one the cart
    /// showed; empty when nothing changed.
    async fn price_changes(&self) -> Vec<CheckoutPriceChange<'_>> {
        self.price_changes.iter().map(CheckoutPriceChange).collect()
    }
}

/// A line bought at another price than the cart showed.
pub struct CheckoutPriceChange<'a>(&'a PriceChange);

#[Object(name = "PriceChange")]
impl CheckoutPriceChange<'_> {
    async fn variant_id(&self) -> ID {
        ids::to_gql(self.0.variant_id)
    }
    async fn product_name(&self) -> &str {
        &self.0.product_name
    }
    async fn sku(&self) -> &str {
        &self.0.sku
    }
    async fn price_seen(&self) -> MoneyView {
        self.0.price_seen.into()
    }
    async fn price_paid(&self) -> MoneyView {
        self.0.price_paid.into()
    }
}

/// What a cart would cost shipped to a country by a method, with a code:
/// the same computation checkout charges.
#[derive(SimpleObject)]
pub struct CheckoutEstimate {
    subtotal: MoneyView,
    discount: MoneyView,
    shipping: MoneyView,
    /// Added to the total when `taxIncluded` is false; the part of the
    /// total that is tax when it is true.
    tax: MoneyView,
    tax_included: bool,
    total: MoneyView,
    shipping_method: String,
}

impl CheckoutEstimate {
    fn new(totals: Totals, tax_mode: TaxMode, shipping_method: String) -> Self {
        Self {
            subtotal: totals.subtotal.into(),
            discount: totals.discount.into(),
            shipping: totals.shipping.into(),
            tax: totals.tax.into(),
            tax_included: tax_mode == TaxMode::Inclusive,
            total: totals.total.into(),
            shipping_method,
        }
    }
}

/// `Cart.estimate`: the cart priced for a destination, a method and a code.
///
/// # Errors
/// BAD_USER_INPUT on `cartId` (empty cart), `countryCode`,
/// `shippingMethodId` or `discountCode` (saying why it does not apply);
/// NOT_FOUND for an unknown code.
pub async fn estimate(
    ctx: &Context<'_>,
    cart: &CartView,
    country_code: &str,
    shipping_method_id: &ID,
    discount_code: Option<&str>,
) -> async_graphql::Result<CheckoutEstimate> {
    let Some(currency) = cart.subtotal.map(|s| s.currency) else {
        return Err(DomainError::InvalidInput {
            field: "cartId",
            message: "the cart is empty".to_owned(),
        })
        .or_gql(ctx);
    };
    let country = CountryCode::parse("countryCode", country_code).or_gql(ctx)?;
    let shipping_method = ids::parse(shipping_method_id, "shippingMethodId")?;
    let code = discount_code.map(DiscountCode::parse).transpose().or_gql(ctx)?;
    let terms = Terms {
        country,
        shipping_method,
        discount_code: code.as_ref(),
    };
    let state = ctx.data::<AppState>()?;
    let lines = cart.priced_lines();
    let quote = read(|| entity::checkout::quote(&state.db, &lines, currency, terms, Utc::now()))
        .await
        .or_gql(ctx)?;
    Ok(CheckoutEstimate::new(
        quote.totals,
        quote.tax_mode,
        quote.method.name,
    ))
}

#[derive(Default)]
pub struct CheckoutMutation;

#[Object]
impl CheckoutMutation {
    /// Buys a cart: ships it to an address by a method, with an optional
    /// code, charged `Cart.estimate`'s total at today's prices. Stock is
    /// reserved and the payment authorised at once; the cart is gone
    /// afterwards; settlement and the confirmation email follow as jobs.
    async fn checkout(
        &self,
        ctx: &Context<'_>,
        input: CheckoutInput,
    ) -> async_graphql::Result<CheckoutPayload> {
        let actor = require_user(ctx)?;
        let user = actor.user_id.to_string();
        rules::take(ctx, &[(Limit::PlaceOrderUser, &user)]).await?;
        let cart = crate::carts::cart_key(ctx, &input.cart_id)?;
        let ship_to = match (&input.shipping_address, &input.shipping_address_id) {
            (Some(_), Some(_)) => {
                return Err(DomainError::InvalidInput {
                    field: "shippingAddress",
                    message: "give shippingAddress or shippingAddressId, not both".to_owned(),
                })
                .or_gql(ctx);
            }
            (Some(address), None) => ShipTo::Address(address.parse(ctx)?),
            (None, Some(id)) => ShipTo::Saved(ids::parse(id, "shippingAddressId")?),
            (None, None) => ShipTo::Default,
        };
        let request = CheckoutRequest {
            cart,
            ship_to,
            shipping_method: ids::parse(&input.shipping_method_id, "shippingMethodId")?,
            discount_code: input
                .discount_code
                .as_deref()
                .map(DiscountCode::parse)
                .transpose()
                .or_gql(ctx)?,
            payment_token: PaymentToken::parse(&input.payment_token).or_gql(ctx)?,
            idempotency_key: IdempotencyKey::parse(&input.idempotency_key).or_gql(ctx)?,
        };
        let state = ctx.data::<AppState>()?;
        let request_id = Some(errors::request_id(ctx).to_owned());
        // Safe to run again when the connection died: the idempotency key
        // finds an order that did commit, and one that did not was voided.
        let done = entity::db::retry::retrying("checkout", || {
            entity::checkout::checkout(
                &state.db,
                state.gateway.as_ref(),
                actor.user_id,
                request.clone(),
                request_id.clone(),
            )
        })
        .await
        .or_gql(ctx)?;
        crate::jobs_written(ctx);
        Ok(CheckoutPayload {
            order: Order(done.placed.order),
            price_changes: done.price_changes,
        })
    }
}
