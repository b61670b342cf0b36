use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use entity::DomainError;
use entity::carts::{
    self, CartKey, CartLineChange, CartLineRequest, CartLineView, CartToken, CartView, OpenCart,
};
use entity::catalog::Quantity;
use entity::ids::{UserId, VariantId};

use async_graphql::dataloader::DataLoader;

use crate::auth::optional_user;
use crate::catalog::{ProductVariant, VariantLoader};
use crate::checkout::CheckoutEstimate;
use crate::errors;
use crate::errors::GqlResultExt;
use crate::money::MoneyView;
use crate::state::AppState;
use crate::transaction::read;
use crate::{ids, write_txn};

/// A cart, priced at today's prices on every read.
pub struct Cart(CartView);

#[Object]
impl Cart {
    /// What to pass as `cartId`: a guest cart's secret token (keep it like
    /// a password: whoever holds it can use the cart), or a customer
    /// cart's id, which works only for that customer, signed in.
    async fn id(&self) -> ID {
        ID(self.0.public_id.clone())
    }
    /// The lines, oldest first.
    async fn lines(&self) -> Vec<CartLine<'_>> {
        self.0.lines.iter().map(CartLine).collect()
    }
    /// Units in the cart.
    async fn total_quantity(&self) -> i32 {
        self.0.total_quantity()
    }
    /// The lines at today's prices, before discounts, shipping and tax;
    /// null while the cart is empty.
    async fn subtotal(&self) -> Option<MoneyView> {
        self.0.subtotal.map(Into::into)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Last change; a cart unchanged for 30 days is deleted.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// What checkout would charge for this cart shipped to `countryCode`
    /// by `shippingMethodId` with `discountCode`, at today's prices.
    async fn estimate(
        &self,
        ctx: &Context<'_>,
        country_code: String,
        shipping_method_id: ID,
        discount_code: Option<String>,
    ) -> async_graphql::Result<CheckoutEstimate> {
        crate::checkout::estimate(
            ctx,
            &self.0,
            &country_code,
            &shipping_method_id,
            discount_code.as_deref(),
        )
        .await
    }
}

/// One variant in a cart, priced today.
pub struct CartLine<'a>(&'a CartLineView);

#[Object]
impl CartLine<'_> {
    async fn variant_id(&self) -> ID {
        ids::to_gql(self.0.variant_id)
    }
    /// The variant as the catalog has it now (null once it is gone).
    async fn variant(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ProductVariant>> {
        let loader = ctx.data::<DataLoader<VariantLoader>>()?;
        Ok(loader
            .load_one(self.0.variant_id)
            .await
            .map_err(|e| errors::loader(ctx, &e))?
            .map(|found| ProductVariant(found.variant)))
    }
    async fn product_id(&self) -> ID {
        ids::to_gql(self.0.product_id)
    }
    async fn product_name(&self) -> &str {
        &self.0.product_name
    }
    async fn variant_title(&self) -> &str {
        &self.0.variant_title
    }
    async fn sku(&self) -> &str {
        &self.0.sku
    }
    async fn quantity(&self) -> i32 {
        self.0.quantity.get()
    }
    /// Today's price of one unit: what checkout charges.
    async fn unit_price(&self) -> MoneyView {
        self.0.unit_price.into()
    }
    /// The price of one unit when the line was last added or changed.
    async fn price_seen(&self) -> MoneyView {
        self.0.price_seen.into()
    }
    /// `unitPrice` differs from `priceSeen`: tell the shopper.
    async fn price_changed(&self) -> bool {
        self.0.price_changed
    }
    /// For sale now with at least `quantity` units in stock (stock is not
    /// held for carts).
    async fn available(&self) -> bool {
        self.0.available
    }
    /// `unitPrice` × `quantity`.
    async fn line_total(&self) -> MoneyView {
        self.0.line_total.into()
    }
}

/// Units of a variant to put in a cart.
#[derive(InputObject)]
pub struct CartLineInput {
    variant_id: ID,
    /// 1 to 1000; added to the units already in the cart (at most 1000 a line).
    #[graphql(default = 1)]
    quantity: i32,
}

/// A line's new quantity.
#[derive(InputObject)]
pub struct CartLineUpdateInput {
    variant_id: ID,
    /// 0 to 1000; 0 removes the line.
    quantity: i32,
}

/// What a new cart starts with.
#[derive(InputObject, Default)]
pub struct CartCreateInput {
    /// Lines to start with.
    lines: Option<Vec<CartLineInput>>,
}

/// A variant id, or BAD_USER_INPUT on `variantId`.
fn variant_id(ctx: &Context<'_>, id: &ID) -> async_graphql::Result<VariantId> {
    id.as_str()
        .parse()
        .map_err(|_| DomainError::InvalidInput {
            field: "variantId",
            message: "is not a valid id".to_owned(),
        })
        .or_gql(ctx)
}

/// The cart `id` names, or BAD_USER_INPUT on `cartId` when it cannot name one.
///
/// # Errors
/// BAD_USER_INPUT on `cartId`.
pub fn cart_key(ctx: &Context<'_>, id: &ID) -> async_graphql::Result<CartKey> {
    CartKey::parse(id.as_str())
        .ok_or_else(|| DomainError::InvalidInput {
            field: "cartId",
            message: "is not a cart id".to_owned(),
        })
        .or_gql(ctx)
}

fn parse_lines(ctx: &Context<'_>, lines: &[CartLineInput]) -> async_graphql::Result<Vec<CartLineRequest>> {
    lines
        .iter()
        .map(|line| {
            Ok(CartLineRequest {
                variant_id: variant_id(ctx, &line.variant_id)?,
                quantity: Quantity::parse(line.quantity).or_gql(ctx)?,
            })
        })
        .collect()
}

fn viewer(ctx: &Context<'_>) -> async_graphql::Result<Option<UserId>> {
    Ok(optional_user(ctx)?.map(|actor| actor.user_id))
}

/// `cart` priced today.
async fn priced(ctx: &Context<'_>, cart: OpenCart) -> async_graphql::Result<Cart> {
    let state = ctx.data::<AppState>()?;
    let view = read(|| carts::read_cart(&state.db, cart.clone()))
        .await
        .or_gql(ctx)?;
    Ok(Cart(view))
}

/// The customer's cart priced today, if they have one (`User.cart`, `AuthPayload.cart`).
pub async fn customer_cart(ctx: &Context<'_>, user: UserId) -> async_graphql::Result<Option<Cart>> {
    let state = ctx.data::<AppState>()?;
    let Some(cart) = read(|| carts::customer_cart(&state.db, user)).await.or_gql(ctx)? else {
        return Ok(None);
    };
    priced(ctx, cart).await.map(Some)
}

/// The guest cart token a sign-in's `cartId` holds; anything else is no
/// token, and merges nothing: signing in never fails because of a cart id.
#[must_use]
pub fn guest_token(cart_id: Option<&ID>) -> Option<CartToken> {
    cart_id.and_then(|id| CartToken::parse(id.as_str()))
}

/// Merges the guest cart `token` names (if any) into `user`'s cart, inside
/// the sign-in's transaction.
///
/// # Errors
/// The database's.
pub async fn merge_guest_cart<C: sea_orm::ConnectionTrait>(
    txn: &C,
    token: Option<CartToken>,
    user: UserId,
) -> Result<(), DomainError> {
    if let Some(token) = token {
        carts::merge_guest_cart(txn, &token, user).await?;
    }
    Ok(())
}

#[derive(Default)]
pub struct CartsQuery;

#[Object]
impl CartsQuery {
    /// A cart by the id `cartCreate` (or `me { cart }`) gave. NOT_FOUND
    /// when there is none or it is another customer's.
    async fn cart(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Cart>> {
        let viewer = viewer(ctx)?;
        let state = ctx.data::<AppState>()?;
        // An id that cannot be a cart's finds nothing, like any other.
        let key = CartKey::parse(id.as_str())
            .ok_or(DomainError::NotFound { entity: "cart" })
            .or_gql(ctx)?;
        let cart = read(|| carts::find_cart(&state.db, &key, viewer))
            .await
            .or_gql(ctx)?;
        priced(ctx, cart).await.map(Some)
    }
}

#[derive(Default)]
pub struct CartsMutation;

#[Object]
impl CartsMutation {
    /// A new cart, optionally with lines. Signed out: a guest cart, whose
    /// `id` is its secret token. Signed in: your cart (a new one, or the
    /// one you have, with the lines added).
    async fn cart_create(
        &self,
        ctx: &Context<'_>,
        input: Option<CartCreateInput>,
    ) -> async_graphql::Result<Cart> {
        let viewer = viewer(ctx)?;
        let lines = parse_lines(
            ctx,
            input.unwrap_or_default().lines.as_deref().unwrap_or_default(),
        )?;
        let cart = write_txn(ctx, |txn| {
            let lines = lines.clone();
            Box::pin(async move { carts::create_cart(txn, viewer, &lines).await })
        })
        .await?;
        priced(ctx, cart).await
    }

    /// Adds units; a variant already in the cart adds to its line.
    /// OUT_OF_STOCK when a line would hold more than is in stock.
    async fn cart_lines_add(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        lines: Vec<CartLineInput>,
    ) -> async_graphql::Result<Cart> {
        let viewer = viewer(ctx)?;
        let key = cart_key(ctx, &cart_id)?;
        let lines = parse_lines(ctx, &lines)?;
        let cart = write_txn(ctx, |txn| {
            let (key, lines) = (key.clone(), lines.clone());
            Box::pin(async move { carts::add_lines(txn, &key, viewer, &lines).await })
        })
        .await?;
        priced(ctx, cart).await
    }

    /// Sets lines' quantities; 0 removes a line.
    async fn cart_lines_update(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        lines: Vec<CartLineUpdateInput>,
    ) -> async_graphql::Result<Cart> {
        let viewer = viewer(ctx)?;
        let key = cart_key(ctx, &cart_id)?;
        let changes = lines
            .iter()
            .map(|line| CartLineChange::parse(variant_id(ctx, &line.variant_id)?, line.quantity).or_gql(ctx))
            .collect::<async_graphql::Result<Vec<_>>>()?;
        let cart = write_txn(ctx, |txn| {
            let (key, changes) = (key.clone(), changes.clone());
            Box::pin(async move { carts::update_lines(txn, &key, viewer, &changes).await })
        })
        .await?;
        priced(ctx, cart).await
    }

    /// Removes the lines of these variants (one not in the cart is ignored).
    async fn cart_lines_remove(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        variant_ids: Vec<ID>,
    ) -> async_graphql::Result<Cart> {
        let viewer = viewer(ctx)?;
        let key = cart_key(ctx, &cart_id)?;
        let variants = variant_ids
            .iter()
            .map(|id| variant_id(ctx, id))
            .collect::<async_graphql::Result<Vec<_>>>()?;
        let cart = write_txn(ctx, |txn| {
            let (key, variants) = (key.clone(), variants.clone());
            Box::pin(async move { carts::remove_lines(txn, &key, viewer, &variants).await })
        })
        .await?;
        priced(ctx, cart).await
    }
}
