//! The demo shop's shipping, tax and code: a German shop (prices include
//! VAT) that ships to Germany, the rest of a small EU zone, the UK and the
//! US, with the countries' VAT rates, and the code `WELCOME10`. Each part
//! that exists already (a zone by name, a code) is left as it is.
use chrono::Utc;
use entity::DomainError;
use entity::discounts::{DiscountCode, NewDiscount, create_discount};
use entity::money::{Currency, Money};
use entity::pricing::{BasisPoints, DiscountValue, ShippingRate, TaxMode};
use entity::shipping::{CountryCode, add_method, create_zone, set_tax_rate};
use sea_orm::DatabaseConnection;

/// A method: name, base price, price per started kg (0: a flat rate).
type Method = (&'static str, i64, i64);

/// Zones: name, countries, and methods.
const ZONES: &[(&str, &[&str], &[Method])] = &[
    ("Germany", &["DE"], &[("Standard", 490, 0), ("Express", 790, 150)]),
    (
        "EU",
        &["AT", "BE", "ES", "FR", "IT", "NL"],
        &[("Standard", 990, 0), ("Tracked", 1_290, 100)],
    ),
    ("United Kingdom", &["GB"], &[("International", 1_290, 0)]),
    ("United States", &["US"], &[("International", 1_990, 0)]),
];

/// VAT per country, in basis points (the US has none set: no tax).
const TAX_RATES: &[(&str, i64, &str)] = &[
    ("DE", 1_900, "MwSt"),
    ("AT", 2_000, "USt"),
    ("BE", 2_100, "TVA"),
    ("ES", 2_100, "IVA"),
    ("FR", 2_000, "TVA"),
    ("IT", 2_200, "IVA"),
    ("NL", 2_100, "BTW"),
    ("GB", 2_000, "VAT"),
];

/// The demo code: 10 % off a subtotal of €20 or more, once per customer.
pub const DEMO_CODE: &str = "WELCOME10";

/// Seeds zones, methods, tax rates, the tax mode and the demo code.
///
/// # Errors
/// [`DomainError`] when the database fails.
pub async fn seed_shipping(db: &DatabaseConnection) -> Result<(), DomainError> {
    let euro = Currency::parse("EUR")?;
    let eur = |minor| Money::new(minor, euro);
    for (name, countries, methods) in ZONES {
        let countries = countries
            .iter()
            .map(|c| CountryCode::parse("countryCode", c))
            .collect::<Result<Vec<_>, _>>()?;
        // A zone and its methods together, or nothing.
        let txn = entity::db::begin_write(db).await?;
        let zone = match create_zone(&txn, name, &countries).await {
            Ok(zone) => zone,
            Err(DomainError::Conflict(_)) => continue,
            Err(err) => return Err(err),
        };
        for (method, base, per_kg) in *methods {
            let rate = if *per_kg == 0 {
                ShippingRate::Flat(eur(*base))
            } else {
                ShippingRate::ByWeight {
                    base: eur(*base),
                    per_kg: eur(*per_kg),
                }
            };
            add_method(&txn, zone.id, method, rate).await?;
        }
        txn.commit().await?;
    }
    for (country, rate, name) in TAX_RATES {
        set_tax_rate(
            db,
            CountryCode::parse("countryCode", country)?,
            BasisPoints::parse("rate", *rate)?,
            name,
        )
        .await?;
    }
    entity::shop::set_tax_mode(db, TaxMode::Inclusive).await?;
    let welcome = NewDiscount {
        code: DiscountCode::parse(DEMO_CODE)?,
        value: DiscountValue::Percentage(BasisPoints::parse("value", 1_000)?),
        currency: euro,
        minimum_subtotal_minor: 2_000,
        starts_at: Utc::now(),
        ends_at: None,
        usage_limit: None,
        per_customer_limit: Some(1),
    };
    match create_discount(db, welcome).await {
        Ok(_) | Err(DomainError::Conflict(_)) => Ok(()),
        Err(err) => Err(err),
    }
}
