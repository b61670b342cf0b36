use entity::DomainError;
use entity::addresses::{
    Address, AddressFields, MAX_ADDRESSES, add_address, default_shipping_address, delete_address,
    find_address, list_addresses, update_address,
};
use entity::db::begin_write;
use entity::money::{Currency, Money};
use entity::pricing::{BasisPoints, ShippingRate};
use entity::shipping::{
    CountryCode, add_method, create_zone, destination, methods_for, set_tax_rate, tax_rate,
};
use testkit::{Backend, TestDb, on_both_backends};

use crate::helpers::insert_user;

fn eur(cents: i64) -> Money {
    Money::new(cents, Currency::parse("EUR").expect("EUR"))
}

fn country(code: &str) -> CountryCode {
    CountryCode::parse("countryCode", code).expect("valid country")
}

fn message(err: DomainError) -> String {
    match err {
        DomainError::InvalidInput { field, message } => format!("{field}: {message}"),
        other => other.to_string(),
    }
}

async fn a_method_ships_only_to_its_zones_countries_with_their_tax(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let eu = create_zone(&db.conn, "EU", &[country("de"), country("FR")])
        .await
        .expect("zone");
    let standard = add_method(&db.conn, eu.id, "Standard", ShippingRate::Flat(eur(490)))
        .await
        .expect("method");
    let by_weight = ShippingRate::ByWeight {
        base: eur(300),
        per_kg: eur(150),
    };
    let heavy = add_method(&db.conn, eu.id, "Freight", by_weight)
        .await
        .expect("method");
    set_tax_rate(
        &db.conn,
        country("DE"),
        BasisPoints::parse("rate", 1900).expect("19 %"),
        "MwSt",
    )
    .await
    .expect("tax rate");
    set_tax_rate(
        &db.conn,
        country("DE"),
        BasisPoints::parse("rate", 1600).expect("16 %"),
        "MwSt",
    )
    .await
    .expect("a second call replaces the rate");
    let euro = Currency::parse("EUR").expect("EUR");

    let options = methods_for(&db.conn, country("DE"), euro).await.expect("methods");
    assert_eq!(
        options
            .iter()
            .map(|o| (o.name.as_str(), o.rate))
            .collect::<Vec<_>>(),
        [("Freight", by_weight), ("Standard", ShippingRate::Flat(eur(490)))],
        "cheapest base first"
    );
    let to_germany = destination(&db.conn, standard.id, country("DE"), euro)
        .await
        .expect("ships");
    assert_eq!(to_germany.tax_rate.get(), 1600);
    assert_eq!(to_germany.method.rate, ShippingRate::Flat(eur(490)));
    let to_france = destination(&db.conn, heavy.id, country("FR"), euro)
        .await
        .expect("ships");
    assert_eq!(to_france.tax_rate.get(), 0, "no rate set: no tax");
    assert_eq!(tax_rate(&db.conn, country("FR")).await.expect("rate").get(), 0);

    assert!(
        methods_for(&db.conn, country("US"), euro)
            .await
            .expect("none")
            .is_empty()
    );
    let to_us = destination(&db.conn, standard.id, country("US"), euro)
        .await
        .expect_err("no zone");
    assert_eq!(message(to_us), "shippingMethodId: does not ship to US in EUR");
    let usd = Currency::parse("USD").expect("USD");
    let in_dollars = destination(&db.conn, standard.id, country("DE"), usd)
        .await
        .expect_err("currency");
    assert_eq!(
        message(in_dollars),
        "shippingMethodId: does not ship to DE in USD"
    );

    let txn = begin_write(&db.conn).await.expect("begin");
    let overlap = create_zone(&txn, "Germany", &[country("AT"), country("DE")]).await;
    drop(txn);
    assert!(matches!(overlap, Err(DomainError::Conflict(_))), "{overlap:?}");
    create_zone(&db.conn, "Germany", &[country("AT")])
        .await
        .expect("a refused zone wrote neither its name nor its countries");
    assert!(CountryCode::parse("countryCode", "DEU").is_err());
    assert!(CountryCode::parse("countryCode", "D1").is_err());
}
on_both_backends!(
    zones_methods_and_tax,
    a_method_ships_only_to_its_zones_countries_with_their_tax
);

fn home() -> AddressFields<'static> {
    AddressFields {
        full_name: "Ada Lovelace",
        line1: "12 St James's Square",
        city: "London",
        postal_code: "SW1Y 4JH",
        country_code: "gb",
        ..AddressFields::default()
    }
}

async fn a_customer_keeps_one_default_address_and_sees_only_their_own(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let ada = insert_user(&db.conn, "ada@example.com").await.id;
    let eve = insert_user(&db.conn, "eve@example.com").await.id;
    let address = Address::parse(home()).expect("valid");
    assert_eq!(address.country_code, "GB");

    let first = add_address(&db.conn, ada, address.clone(), false)
        .await
        .expect("added");
    assert!(first.is_default_shipping, "the first address is the default");
    let office = Address::parse(AddressFields {
        line1: "1 Office Park",
        ..home()
    })
    .expect("valid");
    let second = add_address(&db.conn, ada, office.clone(), true)
        .await
        .expect("added");
    let default = default_shipping_address(&db.conn, ada)
        .await
        .expect("read")
        .expect("one");
    assert_eq!(default.id, second.id, "asking for the default moves it");
    let listed: Vec<_> = list_addresses(&db.conn, ada)
        .await
        .expect("list")
        .into_iter()
        .map(|a| (a.id, a.is_default_shipping))
        .collect();
    assert_eq!(listed, [(second.id, true), (first.id, false)]);

    update_address(&db.conn, ada, first.id, address.clone(), Some(true))
        .await
        .expect("updated");
    let default = default_shipping_address(&db.conn, ada)
        .await
        .expect("read")
        .expect("one");
    assert_eq!(default.id, first.id);

    assert!(matches!(
        find_address(&db.conn, eve, first.id).await,
        Err(DomainError::NotFound { .. })
    ));
    assert!(matches!(
        update_address(&db.conn, eve, first.id, office.clone(), None).await,
        Err(DomainError::NotFound { .. })
    ));
    assert!(matches!(
        delete_address(&db.conn, eve, first.id).await,
        Err(DomainError::NotFound { .. })
    ));
    assert!(list_addresses(&db.conn, eve).await.expect("list").is_empty());

    delete_address(&db.conn, ada, first.id).await.expect("deleted");
    assert_eq!(default_shipping_address(&db.conn, ada).await.expect("read"), None);
    assert_eq!(list_addresses(&db.conn, ada).await.expect("list").len(), 1);
}
on_both_backends!(
    address_book,
    a_customer_keeps_one_default_address_and_sees_only_their_own
);

async fn an_address_book_is_bounded_and_its_fields_checked(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let ada = insert_user(&db.conn, "ada@example.com").await.id;
    for _ in 0..MAX_ADDRESSES {
        add_address(&db.conn, ada, Address::parse(home()).expect("valid"), false)
            .await
            .expect("added");
    }
    let full = add_address(&db.conn, ada, Address::parse(home()).expect("valid"), false)
        .await
        .expect_err("full");
    assert_eq!(message(full), "addresses: at most 20 addresses per customer");

    for (fields, expected) in [
        (
            AddressFields {
                full_name: "  ",
                ..home()
            },
            "fullName: must be 1-128 characters on one line",
        ),
        (
            AddressFields {
                city: "Lon\ndon",
                ..home()
            },
            "city: must be 1-64 characters on one line",
        ),
        (
            AddressFields {
                postal_code: "SW1Y;4JH",
                ..home()
            },
            "postalCode: must be letters, digits, spaces or '-'",
        ),
        (
            AddressFields {
                country_code: "Great Britain",
                ..home()
            },
            "countryCode: must be a two-letter ISO 3166-1 country code",
        ),
        (
            AddressFields {
                phone: Some("call me"),
                ..home()
            },
            "phone: must be digits, spaces and + - ( ) . /",
        ),
    ] {
        assert_eq!(message(Address::parse(fields).expect_err("refused")), expected);
    }
    let blank_optional = Address::parse(AddressFields {
        line2: Some("  "),
        phone: Some("+44 20 7946 0000"),
        ..home()
    })
    .expect("valid");
    assert_eq!(blank_optional.line2, None);
}
on_both_backends!(address_limits, an_address_book_is_bounded_and_its_fields_checked);
