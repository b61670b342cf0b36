//! Checkout's money from stored rules: the zone's method, the country's
//! tax rate, a code and the shop's tax mode, to the cent.
use chrono::{Duration, Utc};
use entity::DomainError;
use entity::catalog::Quantity;
use entity::checkout::{Terms, quote};
use entity::discounts::{DiscountCode, NewDiscount, create_discount};
use entity::money::{Currency, Money};
use entity::pricing::{BasisPoints, DiscountValue, PricedLine, ShippingRate, TaxMode};
use entity::shipping::{CountryCode, add_method, create_zone, set_tax_rate};
use testkit::{Backend, TestDb, on_both_backends};

fn euro() -> Currency {
    Currency::parse("EUR").expect("EUR")
}

fn eur(cents: i64) -> Money {
    Money::new(cents, euro())
}

fn country(code: &str) -> CountryCode {
    CountryCode::parse("countryCode", code).expect("valid country")
}

fn line(cents: i64, quantity: i32, grams: u32) -> PricedLine {
    PricedLine {
        unit_price: eur(cents),
        quantity: Quantity::parse(quantity).expect("quantity"),
        unit_weight_grams: grams,
    }
}

async fn totals_follow_the_zone_the_tax_rate_the_code_and_the_tax_mode(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let eu = create_zone(&db.conn, "EU", &[country("DE")]).await.expect("zone");
    let standard = add_method(&db.conn, eu.id, "Standard", ShippingRate::Flat(eur(490)))
        .await
        .expect("method");
    set_tax_rate(
        &db.conn,
        country("DE"),
        BasisPoints::parse("rate", 1900).expect("19 %"),
        "MwSt",
    )
    .await
    .expect("tax");
    create_discount(
        &db.conn,
        NewDiscount {
            code: DiscountCode::parse("TENOFF").expect("code"),
            value: DiscountValue::Percentage(BasisPoints::parse("value", 1000).expect("10 %")),
            currency: euro(),
            minimum_subtotal_minor: 0,
            starts_at: Utc::now() - Duration::hours(1),
            ends_at: None,
            usage_limit: None,
            per_customer_limit: None,
        },
    )
    .await
    .expect("code");
    let code = DiscountCode::parse("tenoff").expect("code");
    let lines = [line(1250, 2, 300), line(800, 1, 500)];
    let terms = Terms {
        country: country("DE"),
        shipping_method: standard.id,
        discount_code: Some(&code),
    };

    // Exclusive (the default): 33.00 − 3.30 + 4.90 = 34.60, tax 19 % = 6.574 → 6.57.
    let exclusive = quote(&db.conn, &lines, euro(), terms, Utc::now())
        .await
        .expect("quote");
    assert_eq!(exclusive.tax_mode, TaxMode::Exclusive);
    let t = exclusive.totals;
    assert_eq!(
        (t.subtotal, t.discount, t.shipping, t.tax, t.total),
        (eur(3300), eur(330), eur(490), eur(657), eur(4117))
    );
    assert!(exclusive.discount.is_some());
    assert_eq!(exclusive.method.name, "Standard");

    // Inclusive: the same 34.60 holds 34.60 − 34.60 / 1.19 = 5.52 of tax.
    entity::shop::set_tax_mode(&db.conn, TaxMode::Inclusive)
        .await
        .expect("mode");
    let inclusive = quote(&db.conn, &lines, euro(), terms, Utc::now())
        .await
        .expect("quote");
    let t = inclusive.totals;
    assert_eq!(
        (t.subtotal, t.discount, t.shipping, t.tax, t.total),
        (eur(3300), eur(330), eur(490), eur(552), eur(3460))
    );

    // A method that does not ship there, and an unknown code, say so.
    let elsewhere = Terms {
        country: country("US"),
        ..terms
    };
    assert!(matches!(
        quote(&db.conn, &lines, euro(), elsewhere, Utc::now()).await,
        Err(DomainError::InvalidInput {
            field: "shippingMethodId",
            ..
        })
    ));
    let unknown = DiscountCode::parse("NOPE").expect("code");
    let with_unknown = Terms {
        discount_code: Some(&unknown),
        ..terms
    };
    assert!(matches!(
        quote(&db.conn, &lines, euro(), with_unknown, Utc::now()).await,
        Err(DomainError::NotFound { .. })
    ));
}
on_both_backends!(
    totals,
    totals_follow_the_zone_the_tax_rate_the_code_and_the_tax_mode
);
