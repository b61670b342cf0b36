//! Where the shop ships and what it charges there: shipping zones (named
//! groups of countries, each country in at most one), their methods (flat
//! or weight-based rates), and the tax rate of each destination country.
//! [`destination`] answers checkout's question — may this method ship to
//! this country, at what rate, with which tax — in one place; the money
//! itself is [`crate::pricing`]'s.
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, QueryOrder};

use crate::error::DomainError;
use crate::ids::{ShippingMethodId, ShippingZoneId};
use crate::money::{Currency, Money};
use crate::pricing::{BasisPoints, ShippingRate};
use crate::tables::shipping_methods::{self, ShippingMethodKind};
use crate::tables::{shipping_zone_countries, shipping_zones, tax_rates};
use crate::text::one_line;

/// An ISO 3166-1 alpha-2 country code, upper-case (`DE`, `US`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// # Errors
    /// [`DomainError::InvalidInput`] on `field` unless two letters.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, DomainError> {
        match raw.trim().to_ascii_uppercase().as_bytes() {
            &[a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(Self([a, b])),
            _ => Err(DomainError::invalid(
                field,
                "must be a two-letter ISO 3166-1 country code",
            )),
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        // Two ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl std::fmt::Display for CountryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sets (or replaces) the tax rate of orders shipped to `country`.
///
/// # Errors
/// [`DomainError::InvalidInput`] on `name` unless 1–64 characters.
pub async fn set_tax_rate<C: ConnectionTrait>(
    conn: &C,
    country: CountryCode,
    rate: BasisPoints,
    name: &str,
) -> Result<(), DomainError> {
    let name = one_line("name", name, 64)?;
    tax_rates::Entity::insert(tax_rates::ActiveModel {
        country_code: Set(country.as_str().to_owned()),
        rate_basis_points: Set(i32::try_from(rate.get()).unwrap_or(i32::MAX)),
        name: Set(name),
    })
    .on_conflict(
        OnConflict::column(tax_rates::Column::CountryCode)
            .update_columns([tax_rates::Column::RateBasisPoints, tax_rates::Column::Name])
            .to_owned(),
    )
    .exec(conn)
    .await?;
    Ok(())
}

/// The tax rate for `country`: 0 where the shop has set none.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn tax_rate<C: ConnectionTrait>(
    conn: &C,
    country: CountryCode,
) -> Result<BasisPoints, DomainError> {
    let row = tax_rates::Entity::find_by_id(country.as_str().to_owned())
        .one(conn)
        .await?;
    row.map_or(Ok(BasisPoints::parse("taxRate", 0)?), |row| {
        BasisPoints::parse("taxRate", row.rate_basis_points.into())
    })
}

/// Creates a zone for `countries`. Call inside a write transaction (a
/// refused country must not leave the zone half made).
///
/// # Errors
/// [`DomainError::InvalidInput`] for an empty name or country list;
/// [`DomainError::Conflict`] when the name is taken or a country is already
/// in another zone (nothing is written then).
pub async fn create_zone<C: ConnectionTrait>(
    txn: &C,
    name: &str,
    countries: &[CountryCode],
) -> Result<shipping_zones::Model, DomainError> {
    let name = one_line("name", name, 64)?;
    if countries.is_empty() {
        return Err(DomainError::invalid(
            "countries",
            "must name at least one country",
        ));
    }
    let zone = shipping_zones::ActiveModel {
        id: Set(ShippingZoneId::new()),
        name: Set(name),
        created_at: Set(Utc::now()),
    }
    .insert(txn)
    .await
    .map_err(|e| DomainError::conflict_if_unique(e, "a shipping zone with this name already exists"))?;
    shipping_zone_countries::Entity::insert_many(countries.iter().map(|country| {
        shipping_zone_countries::ActiveModel {
            country_code: Set(country.as_str().to_owned()),
            zone_id: Set(zone.id),
        }
    }))
    .exec(txn)
    .await
    .map_err(|e| DomainError::conflict_if_unique(e, "a country is already in another shipping zone"))?;
    Ok(zone)
}

/// Adds an active method to `zone`.
///
/// # Errors
/// [`DomainError::InvalidInput`] for an empty name, a negative price or
/// mixed currencies; [`DomainError::NotFound`] for an unknown zone.
pub async fn add_method<C: ConnectionTrait>(
    conn: &C,
    zone: ShippingZoneId,
    name: &str,
    rate: ShippingRate,
) -> Result<shipping_methods::Model, DomainError> {
    let name = one_line("name", name, 64)?;
    let (kind, price, per_kg) = match rate {
        ShippingRate::Flat(price) => (ShippingMethodKind::Flat, price, Money::zero(price.currency)),
        ShippingRate::ByWeight { base, per_kg } => (ShippingMethodKind::Weight, base, per_kg),
    };
    if price.currency != per_kg.currency {
        return Err(DomainError::invalid(
            "rate",
            "base and per-kg prices must share a currency",
        ));
    }
    if price.amount_minor < 0 || per_kg.amount_minor < 0 {
        return Err(DomainError::invalid("rate", "must not be negative"));
    }
    if shipping_zones::Entity::find_by_id(zone)
        .one(conn)
        .await?
        .is_none()
    {
        return Err(DomainError::NotFound {
            entity: "shipping zone",
        });
    }
    Ok(shipping_methods::ActiveModel {
        id: Set(ShippingMethodId::new()),
        zone_id: Set(zone),
        name: Set(name),
        kind: Set(kind),
        price_minor: Set(price.amount_minor),
        per_kg_minor: Set(per_kg.amount_minor),
        currency: Set(price.currency.code().to_owned()),
        active: Set(true),
        created_at: Set(Utc::now()),
    }
    .insert(conn)
    .await?)
}

/// A method a customer may pick for a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodOption {
    pub id: ShippingMethodId,
    pub name: String,
    pub rate: ShippingRate,
}

/// The active methods that ship to `country` in `currency`, cheapest base first.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn methods_for<C: ConnectionTrait>(
    conn: &C,
    country: CountryCode,
    currency: Currency,
) -> Result<Vec<MethodOption>, DomainError> {
    let Some(zone) = zone_of(conn, country).await? else {
        return Ok(Vec::new());
    };
    Ok(shipping_methods::Entity::find()
        .filter(shipping_methods::Column::ZoneId.eq(zone))
        .filter(shipping_methods::Column::Active.eq(true))
        .filter(shipping_methods::Column::Currency.eq(currency.code()))
        .order_by_asc(shipping_methods::Column::PriceMinor)
        .order_by_asc(shipping_methods::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| option(&row, currency))
        .collect())
}

/// What checkout needs to price an order shipped to `country` by `method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub method: MethodOption,
    pub tax_rate: BasisPoints,
}

/// The chosen method's rate, if it ships to `country` in `currency`, and
/// the country's tax rate.
///
/// # Errors
/// [`DomainError::InvalidInput`] on `shippingMethodId` when the method is
/// unknown, switched off, or does not ship there in that currency.
pub async fn destination<C: ConnectionTrait>(
    conn: &C,
    method: ShippingMethodId,
    country: CountryCode,
    currency: Currency,
) -> Result<Destination, DomainError> {
    let row = shipping_methods::Entity::find_by_id(method)
        .filter(shipping_methods::Column::Active.eq(true))
        .one(conn)
        .await?;
    let zone = zone_of(conn, country).await?;
    let Some(row) = row.filter(|row| Some(row.zone_id) == zone && row.currency == currency.code()) else {
        return Err(DomainError::invalid(
            "shippingMethodId",
            format!("does not ship to {country} in {currency}"),
        ));
    };
    Ok(Destination {
        method: option(&row, currency),
        tax_rate: tax_rate(conn, country).await?,
    })
}

async fn zone_of<C: ConnectionTrait>(
    conn: &C,
    country: CountryCode,
) -> Result<Option<ShippingZoneId>, DomainError> {
    Ok(
        shipping_zone_countries::Entity::find_by_id(country.as_str().to_owned())
            .one(conn)
            .await?
            .map(|row| row.zone_id),
    )
}

fn option(row: &shipping_methods::Model, currency: Currency) -> MethodOption {
    let price = Money::new(row.price_minor, currency);
    let rate = match row.kind {
        ShippingMethodKind::Flat => ShippingRate::Flat(price),
        ShippingMethodKind::Weight => ShippingRate::ByWeight {
            base: price,
            per_kg: Money::new(row.per_kg_minor, currency),
        },
    };
    MethodOption {
        id: row.id,
        name: row.name.clone(),
        rate,
    }
}
