use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use entity::money::{Currency, Money};
use entity::pricing::{BasisPoints, ShippingRate};
use entity::shipping::{self, CountryCode, MethodOption};
use entity::tables::shipping_methods;

use crate::auth::require_admin;
use crate::errors::{GqlResultExt, client_error, code};
use crate::money::{MoneyView, money};
use crate::state::AppState;
use crate::{ids, write_txn};

/// The most countries one zone may list (there are 249).
const MAX_ZONE_COUNTRIES: usize = 250;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ShippingRateKind {
    /// One price per order.
    Flat,
    /// A base price plus a price per started kilogram.
    Weight,
}

/// A way to ship an order and what it costs.
#[derive(SimpleObject)]
pub struct ShippingMethod {
    id: ID,
    name: String,
    kind: ShippingRateKind,
    /// The flat price, or the base of a weight-based rate.
    price: MoneyView,
    /// Per started kilogram; null for a flat rate.
    per_kg: Option<MoneyView>,
}

impl From<MethodOption> for ShippingMethod {
    fn from(option: MethodOption) -> Self {
        let (kind, price, per_kg) = match option.rate {
            ShippingRate::Flat(price) => (ShippingRateKind::Flat, price, None),
            ShippingRate::ByWeight { base, per_kg } => (ShippingRateKind::Weight, base, Some(per_kg.into())),
        };
        Self {
            id: ids::to_gql(option.id),
            name: option.name,
            kind,
            price: price.into(),
            per_kg,
        }
    }
}

impl From<shipping_methods::Model> for ShippingMethod {
    fn from(row: shipping_methods::Model) -> Self {
        let (kind, per_kg) = match row.kind {
            shipping_methods::ShippingMethodKind::Flat => (ShippingRateKind::Flat, None),
            shipping_methods::ShippingMethodKind::Weight => (
                ShippingRateKind::Weight,
                Some(money(row.per_kg_minor, &row.currency)),
            ),
        };
        Self {
            id: ids::to_gql(row.id),
            name: row.name,
            kind,
            price: money(row.price_minor, &row.currency),
            per_kg,
        }
    }
}

/// A named group of countries that share shipping methods.
#[derive(SimpleObject)]
pub struct ShippingZone {
    id: ID,
    name: String,
    country_codes: Vec<String>,
}

/// The tax charged on orders shipped to a country.
#[derive(SimpleObject)]
pub struct TaxRate {
    country_code: String,
    /// 2000 is 20 %.
    rate_basis_points: i32,
    name: String,
}

#[derive(InputObject)]
pub struct ShippingMethodInput {
    zone_id: ID,
    name: String,
    currency: String,
    /// The flat price, or the base of a weight-based rate, in minor units.
    price_minor: i64,
    /// Set for a weight-based rate: the price per started kilogram.
    per_kg_minor: Option<i64>,
}

fn country(ctx: &Context<'_>, field: &'static str, raw: &str) -> async_graphql::Result<CountryCode> {
    CountryCode::parse(field, raw).or_gql(ctx)
}

fn currency(ctx: &Context<'_>, raw: &str) -> async_graphql::Result<Currency> {
    Currency::parse(raw)
        .map_err(entity::DomainError::from)
        .or_gql(ctx)
}

#[derive(Default)]
pub struct ShippingQuery;

#[Object]
impl ShippingQuery {
    /// The methods that ship to `countryCode` (ISO 3166-1 alpha-2) for
    /// orders in `currency`, cheapest first; empty where the shop does not ship.
    /// The shop's settings (public: a storefront needs the tax mode to
    /// label its prices).
    async fn shop(&self, ctx: &Context<'_>) -> async_graphql::Result<Shop> {
        let state = ctx.data::<AppState>()?;
        let tax_mode = entity::shop::tax_mode(&state.db).await.or_gql(ctx)?;
        Ok(Shop {
            tax_mode: tax_mode.into(),
        })
    }

    async fn shipping_methods(
        &self,
        ctx: &Context<'_>,
        country_code: String,
        currency: String,
    ) -> async_graphql::Result<Vec<ShippingMethod>> {
        let country = self::country(ctx, "countryCode", &country_code)?;
        let currency = self::currency(ctx, &currency)?;
        let state = ctx.data::<AppState>()?;
        let options = crate::transaction::read(|| shipping::methods_for(&state.db, country, currency))
            .await
            .or_gql(ctx)?;
        Ok(options.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct ShippingMutation;

#[Object]
impl ShippingMutation {
    /// Admin: a new zone for the given countries; a country already in
    /// another zone is refused (CONFLICT) and nothing is written.
    async fn create_shipping_zone(
        &self,
        ctx: &Context<'_>,
        name: String,
        country_codes: Vec<String>,
    ) -> async_graphql::Result<ShippingZone> {
        require_admin(ctx)?;
        if country_codes.len() > MAX_ZONE_COUNTRIES {
            return Err(client_error(
                code::BAD_USER_INPUT,
                format!("a zone lists at most {MAX_ZONE_COUNTRIES} countries"),
            ));
        }
        let countries = country_codes
            .iter()
            .map(|raw| country(ctx, "countryCodes", raw))
            .collect::<async_graphql::Result<Vec<_>>>()?;
        let zone = write_txn(ctx, |txn| {
            let (name, countries) = (name.clone(), countries.clone());
            Box::pin(async move { shipping::create_zone(txn, &name, &countries).await })
        })
        .await?;
        Ok(ShippingZone {
            id: ids::to_gql(zone.id),
            name: zone.name,
            country_codes: countries.iter().map(ToString::to_string).collect(),
        })
    }

    /// Admin: adds a method to a zone: flat (`priceMinor` only) or
    /// weight-based (`priceMinor` as the base plus `perKgMinor`).
    async fn add_shipping_method(
        &self,
        ctx: &Context<'_>,
        input: ShippingMethodInput,
    ) -> async_graphql::Result<ShippingMethod> {
        require_admin(ctx)?;
        let zone = ids::parse(&input.zone_id, "zoneId")?;
        let currency = currency(ctx, &input.currency)?;
        let price = Money::new(input.price_minor, currency);
        let rate = match input.per_kg_minor {
            None => ShippingRate::Flat(price),
            Some(per_kg) => ShippingRate::ByWeight {
                base: price,
                per_kg: Money::new(per_kg, currency),
            },
        };
        let row = write_txn(ctx, |txn| {
            let name = input.name.clone();
            Box::pin(async move { shipping::add_method(txn, zone, &name, rate).await })
        })
        .await?;
        Ok(row.into())
    }

    /// Admin: sets the tax rate of orders shipped to a country (replacing
    /// any earlier one); countries without one are charged no tax.
    async fn set_tax_rate(
        &self,
        ctx: &Context<'_>,
        country_code: String,
        rate_basis_points: i32,
        name: String,
    ) -> async_graphql::Result<TaxRate> {
        require_admin(ctx)?;
        let country = country(ctx, "countryCode", &country_code)?;
        let rate = BasisPoints::parse("rateBasisPoints", rate_basis_points.into()).or_gql(ctx)?;
        write_txn(ctx, |txn| {
            let name = name.clone();
            Box::pin(async move { shipping::set_tax_rate(txn, country, rate, &name).await })
        })
        .await?;
        Ok(TaxRate {
            country_code: country.to_string(),
            rate_basis_points,
            name: name.trim().to_owned(),
        })
    }

    /// Admin: whether the shop's prices include tax. Orders already placed
    /// keep the mode they were priced in.
    async fn set_tax_mode(&self, ctx: &Context<'_>, tax_mode: TaxMode) -> async_graphql::Result<Shop> {
        require_admin(ctx)?;
        let state = ctx.data::<AppState>()?;
        let tax_mode = entity::shop::set_tax_mode(&state.db, tax_mode.into())
            .await
            .or_gql(ctx)?;
        Ok(Shop {
            tax_mode: tax_mode.into(),
        })
    }
}

/// Whether prices include tax (`INCLUSIVE`, as in the EU) or tax is added
/// at checkout (`EXCLUSIVE`, as in the US).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::pricing::TaxMode")]
pub enum TaxMode {
    Inclusive,
    Exclusive,
}

/// The shop's settings.
#[derive(SimpleObject)]
pub struct Shop {
    tax_mode: TaxMode,
}
