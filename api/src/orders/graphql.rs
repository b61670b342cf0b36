use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, ID, InputObject, Object};
use entity::catalog::Quantity;
use entity::ids::OrderId;
use entity::orders::{IdempotencyKey, OrderLineRequest, OrderRequest};
use entity::payments::PaymentToken;
use entity::tables::{order_lines, orders};

use entity::addresses::Address;

use crate::addresses::OrderAddress;
use crate::auth::{require_admin, require_user};
use crate::catalog::{Product, ProductLoader, ProductVariant, VariantLoader};
use crate::errors::{self, GqlResultExt, client_error, code};
use crate::ids;
use crate::money::{MoneyView, money};
use crate::orders::loaders::OrderLinesLoader;
use crate::pagination::{Connection, ConnectionNode, decode_after, encode_cursor};
use crate::payments::{Payment, PaymentLoader};
use crate::state::AppState;
use crate::throttle::rules::{self, Limit};
use crate::transaction::read;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::orders::OrderStatus")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    Fulfilled,
    PaymentFailed,
    Cancelled,
}

/// An order; only its owner and admins can reach it.
pub struct Order(pub orders::Model);

#[Object]
impl Order {
    async fn id(&self) -> ID {
        ids::to_gql(self.0.id)
    }
    async fn status(&self) -> OrderStatus {
        self.0.status.into()
    }
    async fn lines(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<OrderLine>> {
        let loader = ctx.data::<DataLoader<OrderLinesLoader>>()?;
        let lines = loader
            .load_one(self.0.id)
            .await
            .map_err(|e| errors::loader(ctx, &e))?;
        Ok(lines.unwrap_or_default().into_iter().map(OrderLine).collect())
    }
    /// The goods at the prices charged (before the discount).
    async fn subtotal(&self) -> MoneyView {
        money(self.0.subtotal_minor, &self.0.currency)
    }
    /// What a discount code took off the goods.
    async fn discount(&self) -> MoneyView {
        money(self.0.discount_minor, &self.0.currency)
    }
    async fn shipping(&self) -> MoneyView {
        money(self.0.shipping_minor, &self.0.currency)
    }
    /// Added to the total when `taxIncluded` is false; the part of the
    /// total that is tax when it is true.
    async fn tax(&self) -> MoneyView {
        money(self.0.tax_minor, &self.0.currency)
    }
    /// Whether the prices included tax when the order was placed.
    async fn tax_included(&self) -> bool {
        self.0.tax_mode == entity::pricing::TaxMode::Inclusive
    }
    /// Subtotal − discount + shipping (+ tax unless included).
    async fn total(&self) -> MoneyView {
        money(self.0.total_minor, &self.0.currency)
    }
    /// Where it ships (orders placed through `checkout`).
    async fn shipping_address(&self) -> Option<OrderAddress> {
        Address::from_snapshot(self.0.shipping_address.as_deref()).map(OrderAddress::from)
    }
    /// The shipping method's name as it was at checkout.
    async fn shipping_method(&self) -> Option<&str> {
        self.0.shipping_method_name.as_deref()
    }
    /// The discount code it used.
    async fn discount_code(&self) -> Option<&str> {
        self.0.discount_code.as_deref()
    }
    async fn payment(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Payment>> {
        let loader = ctx.data::<DataLoader<PaymentLoader>>()?;
        Ok(loader
            .load_one(self.0.id)
            .await
            .map_err(|e| errors::loader(ctx, &e))?
            .map(Payment))
    }
    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.created_at
    }
}

/// A line of an order, priced as it was when the order was placed.
pub struct OrderLine(order_lines::Model);

#[Object]
impl OrderLine {
    /// Names the line in `refundOrder`.
    async fn id(&self) -> ID {
        ids::to_gql(self.0.id)
    }
    async fn product(&self, ctx: &Context<'_>) -> async_graphql::Result<Product> {
        let loader = ctx.data::<DataLoader<ProductLoader>>()?;
        let product = loader
            .load_one(self.0.product_id)
            .await
            .map_err(|e| errors::loader(ctx, &e))?;
        product
            .map(Product::new)
            .ok_or_else(|| client_error(code::NOT_FOUND, "product not found"))
    }
    /// The variant bought (null should it no longer exist).
    async fn variant(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ProductVariant>> {
        let loader = ctx.data::<DataLoader<VariantLoader>>()?;
        Ok(loader
            .load_one(self.0.variant_id)
            .await
            .map_err(|e| errors::loader(ctx, &e))?
            .map(|found| ProductVariant(found.variant)))
    }
    /// The variant's SKU when the order was placed.
    async fn sku(&self) -> &str {
        &self.0.sku
    }
    /// The variant's title when the order was placed.
    async fn variant_title(&self) -> &str {
        &self.0.variant_title
    }
    async fn quantity(&self) -> i32 {
        self.0.quantity
    }
    async fn unit_price(&self) -> MoneyView {
        money(self.0.unit_price_minor, &self.0.currency)
    }
    async fn subtotal(&self) -> MoneyView {
        money(
            self.0.unit_price_minor.saturating_mul(i64::from(self.0.quantity)),
            &self.0.currency,
        )
    }
}

impl ConnectionNode for Order {
    const CONNECTION: &'static str = "OrderConnection";
    const EDGE: &'static str = "OrderEdge";
}

#[derive(InputObject)]
pub struct OrderLineInput {
    product_id: ID,
    /// The variant to buy; may be left out for a product with one variant.
    variant_id: Option<ID>,
    /// 1 to 1000.
    quantity: i32,
}

#[derive(InputObject)]
pub struct PlaceOrderInput {
    lines: Vec<OrderLineInput>,
    /// A payment method token; the sandbox accepts `sandbox_ok`,
    /// `sandbox_declined`, `sandbox_capture_declined`, `sandbox_flaky`, `sandbox_timeout`,
    /// `sandbox_slow`, `sandbox_authorize_timeout`.
    payment_token: String,
    /// Any string of 1-128 visible characters; retrying with the same key
    /// returns the same order.
    idempotency_key: String,
}

#[derive(Default)]
pub struct OrdersQuery;

#[Object]
impl OrdersQuery {
    /// One of your orders (any order for an admin); null when there is none you may see.
    async fn order(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Order>> {
        let actor = require_user(ctx)?;
        let Some(id) = ids::lookup::<OrderId>(&id) else {
            return Ok(None);
        };
        let state = ctx.data::<AppState>()?;
        Ok(read(|| entity::orders::find_order(&state.db, actor, id))
            .await
            .or_gql(ctx)?
            .map(Order))
    }

    /// Your orders (all orders for an admin), newest first.
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        status: Option<OrderStatus>,
    ) -> async_graphql::Result<Connection<Order>> {
        let actor = require_user(ctx)?;
        let state = ctx.data::<AppState>()?;
        let size = entity::pagination::page_size(first).or_gql(ctx)?;
        let after: Option<OrderId> = decode_after(after.as_deref())?;
        let status: Option<entity::orders::OrderStatus> = status.map(Into::into);
        let page = read(|| entity::orders::list_orders(&state.db, actor, status, after, size))
            .await
            .or_gql(ctx)?;
        Ok(Connection::new(
            page,
            after.is_some(),
            |o| encode_cursor(&o.id),
            Order,
            move |db| async move { entity::orders::count_orders(&db, actor, status).await },
        ))
    }
}

#[derive(Default)]
pub struct OrdersMutation;

#[Object]
impl OrdersMutation {
    /// Places an order: stock is reserved and the payment authorised at once;
    /// settlement and the confirmation email follow as jobs. The total is
    /// the lines only (no shipping, tax or code).
    #[graphql(
        deprecation = "Use cartCreate and checkout: they add an address, shipping, tax and discount codes. placeOrder keeps working until at least 2027-06-01."
    )]
    async fn place_order(&self, ctx: &Context<'_>, input: PlaceOrderInput) -> async_graphql::Result<Order> {
        let actor = require_user(ctx)?;
        let user = actor.user_id.to_string();
        rules::take(ctx, &[(Limit::PlaceOrderUser, &user)]).await?;
        let lines = input
            .lines
            .iter()
            .map(|line| {
                Ok(OrderLineRequest {
                    product_id: ids::parse(&line.product_id, "productId")?,
                    variant_id: line
                        .variant_id
                        .as_ref()
                        .map(|id| ids::parse(id, "variantId"))
                        .transpose()?,
                    quantity: Quantity::parse(line.quantity).or_gql(ctx)?,
                })
            })
            .collect::<async_graphql::Result<Vec<_>>>()?;
        let request = OrderRequest {
            lines,
            payment_token: PaymentToken::parse(&input.payment_token).or_gql(ctx)?,
            idempotency_key: IdempotencyKey::parse(&input.idempotency_key).or_gql(ctx)?,
        };
        let state = ctx.data::<AppState>()?;
        let request_id = Some(errors::request_id(ctx).to_owned());
        // Safe to run again when the connection died: the idempotency key
        // finds an order that did commit, and one that did not was voided.
        let placed = entity::db::retry::retrying("placeOrder", || {
            entity::orders::place_order(
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
        Ok(Order(placed.order))
    }

    /// Cancels one of your orders (any order for an admin) while it is
    /// pending or paid: stock goes back, the payment is voided or refunded.
    async fn cancel_order(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Order> {
        let actor = require_user(ctx)?;
        let id = ids::parse(&id, "id")?;
        let state = ctx.data::<AppState>()?;
        let request_id = Some(errors::request_id(ctx).to_owned());
        let order = entity::orders::cancel_order(&state.db, actor, id, request_id)
            .await
            .or_gql(ctx)?;
        crate::jobs_written(ctx);
        crate::order_changed(ctx, order.id).await;
        Ok(Order(order))
    }

    /// Admin: marks a paid order as shipped; its customer is emailed that it
    /// is on its way (with the address, for a checkout order).
    async fn fulfill_order(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Order> {
        let actor = require_admin(ctx)?;
        let id = ids::parse(&id, "id")?;
        let state = ctx.data::<AppState>()?;
        let request_id = Some(errors::request_id(ctx).to_owned());
        let order = entity::orders::fulfill_order(&state.db, actor, id, request_id)
            .await
            .or_gql(ctx)?;
        crate::jobs_written(ctx);
        crate::order_changed(ctx, order.id).await;
        Ok(Order(order))
    }
}
