use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use entity::addresses::{self, Address, AddressFields};
use entity::ids::AddressId;
use entity::tables::addresses as rows;

use crate::auth::require_user;
use crate::errors::GqlResultExt;
use crate::state::AppState;
use crate::{ids, write_txn};

/// A postal address in the signed-in customer's address book.
#[derive(SimpleObject)]
#[graphql(name = "MailingAddress")]
pub struct AddressView {
    id: ID,
    full_name: String,
    line1: String,
    line2: Option<String>,
    city: String,
    postal_code: String,
    region: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    country_code: String,
    phone: Option<String>,
    /// Checkout uses it when no address is given.
    is_default_shipping: bool,
}

impl From<rows::Model> for AddressView {
    fn from(row: rows::Model) -> Self {
        Self {
            id: ids::to_gql(row.id),
            full_name: row.full_name,
            line1: row.line1,
            line2: row.line2,
            city: row.city,
            postal_code: row.postal_code,
            region: row.region,
            country_code: row.country_code,
            phone: row.phone,
            is_default_shipping: row.is_default_shipping,
        }
    }
}

/// The address an order ships to, as checkout copied it: later changes to
/// the address book do not change it.
#[derive(SimpleObject)]
pub struct OrderAddress {
    full_name: String,
    line1: String,
    line2: Option<String>,
    city: String,
    postal_code: String,
    region: Option<String>,
    country_code: String,
    phone: Option<String>,
}

impl From<Address> for OrderAddress {
    fn from(a: Address) -> Self {
        Self {
            full_name: a.full_name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            postal_code: a.postal_code,
            region: a.region,
            country_code: a.country_code,
            phone: a.phone,
        }
    }
}

/// A postal address as typed; checked by `entity::addresses::Address::parse`.
#[derive(InputObject)]
#[graphql(name = "MailingAddressInput")]
pub struct AddressInput {
    full_name: String,
    line1: String,
    line2: Option<String>,
    city: String,
    postal_code: String,
    region: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    country_code: String,
    phone: Option<String>,
}

impl AddressInput {
    /// The checked address, or BAD_USER_INPUT naming the first bad field.
    pub fn parse(&self, ctx: &Context<'_>) -> async_graphql::Result<Address> {
        Address::parse(AddressFields {
            full_name: &self.full_name,
            line1: &self.line1,
            line2: self.line2.as_deref(),
            city: &self.city,
            postal_code: &self.postal_code,
            region: self.region.as_deref(),
            country_code: &self.country_code,
            phone: self.phone.as_deref(),
        })
        .or_gql(ctx)
    }
}

#[derive(Default)]
pub struct AddressesQuery;

#[Object]
impl AddressesQuery {
    /// Your address book, the default shipping address first.
    async fn addresses(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AddressView>> {
        let actor = require_user(ctx)?;
        let state = ctx.data::<AppState>()?;
        let rows = crate::transaction::read(|| addresses::list_addresses(&state.db, actor.user_id))
            .await
            .or_gql(ctx)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct AddressesMutation;

#[Object]
impl AddressesMutation {
    /// Adds an address to your book (at most 20). Your first address, or
    /// one added with `defaultShipping: true`, becomes the default.
    async fn add_address(
        &self,
        ctx: &Context<'_>,
        input: AddressInput,
        default_shipping: Option<bool>,
    ) -> async_graphql::Result<AddressView> {
        let default_shipping = default_shipping.unwrap_or(false);
        let actor = require_user(ctx)?;
        let address = input.parse(ctx)?;
        let row = write_txn(ctx, |txn| {
            let address = address.clone();
            Box::pin(addresses::add_address(
                txn,
                actor.user_id,
                address,
                default_shipping,
            ))
        })
        .await?;
        Ok(row.into())
    }

    /// Replaces one of your addresses; `defaultShipping` true makes it the
    /// default, false stops it being the default, absent leaves that be.
    /// Orders already placed keep the address they were placed with.
    async fn update_address(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: AddressInput,
        default_shipping: Option<bool>,
    ) -> async_graphql::Result<AddressView> {
        let actor = require_user(ctx)?;
        let id: AddressId = ids::parse(&id, "id")?;
        let address = input.parse(ctx)?;
        let row = write_txn(ctx, |txn| {
            let address = address.clone();
            Box::pin(addresses::update_address(
                txn,
                actor.user_id,
                id,
                address,
                default_shipping,
            ))
        })
        .await?;
        Ok(row.into())
    }

    /// Deletes one of your addresses. True when it is gone.
    async fn delete_address(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let actor = require_user(ctx)?;
        let id: AddressId = ids::parse(&id, "id")?;
        write_txn(ctx, |txn| {
            Box::pin(addresses::delete_address(txn, actor.user_id, id))
        })
        .await?;
        Ok(true)
    }
}
