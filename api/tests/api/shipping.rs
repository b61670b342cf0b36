//! Shipping zones, methods, tax rates and discount codes over GraphQL: the
//! admin sets them up; anyone sees the methods that ship to a country.
use serde_json::{Value, json};
use testkit::Backend;

use crate::helpers::{TestApp, error_code, on_both_backends};

const ZONE: &str = "mutation($name: String!, $countries: [String!]!) {
  createShippingZone(name: $name, countryCodes: $countries) { id name countryCodes }
}";
const METHOD: &str = "mutation($input: ShippingMethodInput!) {
  addShippingMethod(input: $input) { id name kind price { formatted } perKg { formatted } }
}";
const METHODS: &str = "query($country: String!) {
  shippingMethods(countryCode: $country, currency: \"EUR\") { name kind price { formatted } perKg { formatted } }
}";

fn names(body: &Value) -> Vec<&str> {
    body["data"]["shippingMethods"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {body}"))
        .iter()
        .map(|m| m["name"].as_str().expect("name"))
        .collect()
}

async fn an_admin_sets_up_where_the_shop_ships_and_everyone_sees_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let customer = app.register("ada@example.com").await;

    let denied = app
        .graphql_as(&customer, ZONE, json!({ "name": "EU", "countries": ["DE"] }))
        .await;
    assert_eq!(error_code(&denied), "FORBIDDEN");

    let zone = app
        .graphql_as(&admin, ZONE, json!({ "name": "EU", "countries": ["de", "FR"] }))
        .await;
    assert_eq!(
        zone["data"]["createShippingZone"]["countryCodes"],
        json!(["DE", "FR"]),
        "{zone}"
    );
    let zone_id = zone["data"]["createShippingZone"]["id"].clone();
    let flat = app
        .graphql_as(
            &admin,
            METHOD,
            json!({ "input": { "zoneId": zone_id, "name": "Standard", "currency": "EUR", "priceMinor": 490 } }),
        )
        .await;
    assert_eq!(flat["data"]["addShippingMethod"]["kind"], "FLAT", "{flat}");
    let freight = app
        .graphql_as(
            &admin,
            METHOD,
            json!({ "input": { "zoneId": zone_id, "name": "Freight", "currency": "EUR", "priceMinor": 300, "perKgMinor": 150 } }),
        )
        .await;
    assert_eq!(
        freight["data"]["addShippingMethod"]["perKg"]["formatted"], "€1.50",
        "{freight}"
    );

    let to_germany = app.graphql(METHODS, json!({ "country": "DE" })).await;
    assert_eq!(
        names(&to_germany),
        ["Freight", "Standard"],
        "cheapest first: {to_germany}"
    );
    assert_eq!(to_germany["data"]["shippingMethods"][1]["perKg"], Value::Null);
    let to_us = app.graphql(METHODS, json!({ "country": "US" })).await;
    assert_eq!(names(&to_us), Vec::<&str>::new(), "the shop does not ship there");
    let bad = app.graphql(METHODS, json!({ "country": "Germany" })).await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    assert_eq!(bad["errors"][0]["extensions"]["field"], "countryCode");

    let overlap = app
        .graphql_as(&admin, ZONE, json!({ "name": "DACH", "countries": ["AT", "DE"] }))
        .await;
    assert_eq!(error_code(&overlap), "CONFLICT", "{overlap}");

    let tax = "mutation($rate: Int!) { setTaxRate(countryCode: \"de\", rateBasisPoints: $rate, name: \"MwSt\") { countryCode rateBasisPoints } }";
    let set = app.graphql_as(&admin, tax, json!({ "rate": 1900 })).await;
    assert_eq!(
        set["data"]["setTaxRate"],
        json!({ "countryCode": "DE", "rateBasisPoints": 1900 })
    );
    let too_high = app.graphql_as(&admin, tax, json!({ "rate": 10_001 })).await;
    assert_eq!(error_code(&too_high), "BAD_USER_INPUT");
    assert_eq!(
        error_code(&app.graphql_as(&customer, tax, json!({ "rate": 0 })).await),
        "FORBIDDEN"
    );
}
on_both_backends!(
    zones_methods_and_tax,
    an_admin_sets_up_where_the_shop_ships_and_everyone_sees_it
);

async fn an_admin_creates_discount_codes_once_each(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let customer = app.register("ada@example.com").await;
    let create = "mutation($input: DiscountCodeInput!) {
      createDiscountCode(input: $input) { code kind value minimumSubtotal { formatted } usageLimit timesUsed active }
    }";
    let input = json!({
        "code": "welcome10", "kind": "PERCENTAGE", "value": 1000, "currency": "EUR",
        "minimumSubtotalMinor": 2000, "usageLimit": 100, "perCustomerLimit": 1
    });

    let denied = app.graphql_as(&customer, create, json!({ "input": input })).await;
    assert_eq!(error_code(&denied), "FORBIDDEN");
    let created = app.graphql_as(&admin, create, json!({ "input": input })).await;
    assert_eq!(
        created["data"]["createDiscountCode"],
        json!({
            "code": "WELCOME10", "kind": "PERCENTAGE", "value": 1000,
            "minimumSubtotal": { "formatted": "€20.00" }, "usageLimit": 100, "timesUsed": 0, "active": true
        }),
        "{created}"
    );
    let again = app.graphql_as(&admin, create, json!({ "input": input })).await;
    assert_eq!(error_code(&again), "CONFLICT");

    let mut over = input.clone();
    over["code"] = json!("ALL-FREE");
    over["value"] = json!(10_001);
    let refused = app.graphql_as(&admin, create, json!({ "input": over })).await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    assert_eq!(refused["errors"][0]["extensions"]["field"], "value", "{refused}");
}
on_both_backends!(discount_codes, an_admin_creates_discount_codes_once_each);

/// The tax mode: anyone reads it (a storefront labels its prices with it),
/// only an admin sets it.
async fn only_an_admin_sets_the_tax_mode(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let customer = app.register("ada@example.com").await;
    const SET: &str = "mutation($mode: TaxMode!) { setTaxMode(taxMode: $mode) { taxMode } }";
    const READ: &str = "{ shop { taxMode } }";

    assert_eq!(
        app.graphql(READ, json!({})).await["data"]["shop"]["taxMode"],
        "EXCLUSIVE"
    );
    let denied = app
        .graphql_as(&customer, SET, json!({ "mode": "INCLUSIVE" }))
        .await;
    assert_eq!(error_code(&denied), "FORBIDDEN");
    let set = app.graphql_as(&admin, SET, json!({ "mode": "INCLUSIVE" })).await;
    assert_eq!(set["data"]["setTaxMode"]["taxMode"], "INCLUSIVE", "{set}");
    assert_eq!(
        app.graphql(READ, json!({})).await["data"]["shop"]["taxMode"],
        "INCLUSIVE"
    );
}
on_both_backends!(tax_mode, only_an_admin_sets_the_tax_mode);

/// A fresh demo shop ships somewhere: zones with methods, tax rates, prices
/// that include VAT, and the demo code; seeding again adds nothing twice.
async fn the_demo_shop_ships_with_tax_and_a_code(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.seed_demo_data = true).await;
    api::seed::seed_demo_catalog(&app.state.db)
        .await
        .expect("seeding again changes nothing");

    let germany = app.graphql(METHODS, json!({ "country": "DE" })).await;
    assert_eq!(names(&germany), ["Standard", "Express"], "{germany}");
    let nowhere = app.graphql(METHODS, json!({ "country": "JP" })).await;
    assert!(names(&nowhere).is_empty(), "{nowhere}");
    let shop = app.graphql("{ shop { taxMode } }", json!({})).await;
    assert_eq!(shop["data"]["shop"]["taxMode"], "INCLUSIVE", "{shop}");

    let code = entity::discounts::DiscountCode::parse(api::seed::DEMO_CODE).expect("code");
    let applies = entity::discounts::applicable(
        &app.state.db,
        &code,
        entity::money::Money::new(2_500, entity::money::Currency::parse("EUR").expect("EUR")),
        chrono::Utc::now(),
    )
    .await
    .expect("the demo code applies to €25");
    assert_eq!(applies.per_customer_limit, Some(1));
}
on_both_backends!(demo_shop, the_demo_shop_ships_with_tax_and_a_code);
