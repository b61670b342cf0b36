//! Checkout: its money from stored rules (the zone's method, the country's
//! tax rate, a code, the shop's tax mode) to the cent; a cart becoming an
//! order; today's price for a line whose price changed; the code's limit
//! and the variant's stock under concurrent checkouts.
use chrono::{Duration, Utc};
use entity::DomainError;
use entity::catalog::Quantity;
use entity::checkout::{Terms, quote};
use entity::discounts::{DiscountCode, NewDiscount, create_discount};
use entity::money::{Currency, Money};
use entity::pricing::{BasisPoints, DiscountValue, PricedLine, ShippingRate, TaxMode};
use entity::shipping::{CountryCode, add_method, create_zone, set_tax_rate};
use std::sync::Arc;

use entity::actor::Actor;
use entity::addresses::{Address, AddressFields};
use entity::carts::{CartKey, CartLineRequest, create_cart, find_cart};
use entity::catalog::variants::{VariantPatch, update_variant};
use entity::checkout::{CheckedOut, CheckoutRequest, ShipTo, checkout};
use entity::ids::{CartId, ShippingMethodId, UserId, VariantId};
use entity::orders::{IdempotencyKey, cancel_order};
use entity::payments::{PaymentToken, SandboxGateway};
use entity::tables::{discount_codes, order_lines, orders, payments};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use testkit::{Backend, TestDb, on_both_backends};

use crate::helpers::{insert_product, insert_user, variant_of, variant_stock};

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
    let shop = shop(&db, 10, None).await;
    let code = DiscountCode::parse("tenoff").expect("code");
    let lines = [line(1250, 2, 300), line(800, 1, 500)];
    let terms = Terms {
        country: country("DE"),
        shipping_method: shop.standard,
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

/// A shop that ships to Germany (Standard, €4.90 flat; 19 % VAT), a
/// product whose one variant costs €19.99 with `stock` units, and a
/// 10 %-off code with at most `limit` uses.
struct Shop {
    variant: VariantId,
    standard: ShippingMethodId,
}

async fn shop(db: &TestDb, stock: i32, limit: Option<i32>) -> Shop {
    let eu = create_zone(&db.conn, "Germany", &[country("DE")])
        .await
        .expect("zone");
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
            usage_limit: limit,
            per_customer_limit: None,
        },
    )
    .await
    .expect("code");
    let product = insert_product(&db.conn, stock, true).await;
    Shop {
        variant: variant_of(product.id),
        standard: standard.id,
    }
}

fn berlin() -> Address {
    Address::parse(AddressFields {
        full_name: "Ada Lovelace",
        line1: "Unter den Linden 1",
        city: "Berlin",
        postal_code: "10117",
        country_code: "de",
        ..AddressFields::default()
    })
    .expect("valid address")
}

/// A customer with a cart holding `quantity` units of the shop's variant.
async fn customer_with_cart(db: &TestDb, shop: &Shop, email: &str, quantity: i32) -> (UserId, CartId) {
    let user = insert_user(&db.conn, email).await.id;
    let line = CartLineRequest {
        variant_id: shop.variant,
        quantity: Quantity::parse(quantity).expect("quantity"),
    };
    let cart = create_cart(&db.conn, Some(user), &[line]).await.expect("cart");
    (user, cart.row.id)
}

fn request(shop: &Shop, cart: CartId, code: Option<&str>, key: &str) -> CheckoutRequest {
    CheckoutRequest {
        cart: CartKey::Id(cart),
        ship_to: ShipTo::Address(berlin()),
        shipping_method: shop.standard,
        discount_code: code.map(|c| DiscountCode::parse(c).expect("code")),
        payment_token: PaymentToken::parse("sandbox_ok").expect("token"),
        idempotency_key: IdempotencyKey::parse(key).expect("key"),
    }
}

async fn check_out(db: &TestDb, user: UserId, request: CheckoutRequest) -> Result<CheckedOut, DomainError> {
    checkout(&db.conn, &SandboxGateway::default(), user, request, None).await
}

async fn a_cart_becomes_an_order_with_its_money_its_address_and_its_code(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let shop = shop(&db, 10, None).await;
    let (user, cart) = customer_with_cart(&db, &shop, "ada@example.com", 2).await;

    let done = check_out(&db, user, request(&shop, cart, Some("tenoff"), "k1"))
        .await
        .expect("checked out");

    // 2 × 19.99 = 39.98; −10 % = 4.00; + 4.90; 19 % of 40.88 = 7.77.
    let order = &done.placed.order;
    assert_eq!(
        (
            order.subtotal_minor,
            order.discount_minor,
            order.shipping_minor,
            order.tax_minor,
            order.total_minor
        ),
        (3998, 400, 490, 777, 4865)
    );
    assert_eq!(order.tax_mode, TaxMode::Exclusive);
    assert_eq!(
        Address::from_snapshot(order.shipping_address.as_deref()),
        Some(berlin())
    );
    assert_eq!(order.shipping_method_name.as_deref(), Some("Standard"));
    assert_eq!(order.discount_code.as_deref(), Some("TENOFF"));
    assert!(done.price_changes.is_empty());
    assert_eq!(variant_stock(&db.conn, shop.variant).await, 8);
    let payment = payments::Entity::find()
        .filter(payments::Column::OrderId.eq(order.id))
        .one(&db.conn)
        .await
        .expect("query")
        .expect("a payment");
    assert_eq!(payment.amount_minor, 4865, "the total is what is charged");
    assert!(
        matches!(
            find_cart(&db.conn, &CartKey::Id(cart), Some(user)).await,
            Err(DomainError::NotFound { .. })
        ),
        "the cart became the order"
    );

    let again = check_out(&db, user, request(&shop, cart, Some("TENOFF"), "k1"))
        .await
        .expect("a retry");
    assert!(!again.placed.created);
    assert_eq!(
        again.placed.order.id, order.id,
        "the same key answers with the same order"
    );

    cancel_order(&db.conn, Actor::system(), order.id, None)
        .await
        .expect("cancelled");
    assert_eq!(variant_stock(&db.conn, shop.variant).await, 10, "stock back");
    let code = discount_codes::Entity::find()
        .one(&db.conn)
        .await
        .expect("q")
        .expect("code");
    assert_eq!(code.times_used, 0, "the code's use back");

    let (other, empty) = customer_with_cart(&db, &shop, "grace@example.com", 1).await;
    entity::carts::remove_lines(&db.conn, &CartKey::Id(empty), Some(other), &[shop.variant])
        .await
        .expect("emptied");
    assert!(matches!(
        check_out(&db, other, request(&shop, empty, None, "k2")).await,
        Err(DomainError::InvalidInput { field: "cartId", .. })
    ));
}
on_both_backends!(
    cart_to_order,
    a_cart_becomes_an_order_with_its_money_its_address_and_its_code
);

async fn a_line_whose_price_changed_is_bought_at_todays_price_and_said_so(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let shop = shop(&db, 10, None).await;
    let (user, cart) = customer_with_cart(&db, &shop, "ada@example.com", 1).await;
    update_variant(
        &db.conn,
        shop.variant,
        VariantPatch::parse(None, Some(2499), None, None).expect("patch"),
    )
    .await
    .expect("price up");

    let done = check_out(&db, user, request(&shop, cart, None, "k1"))
        .await
        .expect("checked out");

    assert_eq!(done.placed.order.subtotal_minor, 2499);
    let [change] = done.price_changes.as_slice() else {
        panic!("one price change: {:?}", done.price_changes);
    };
    assert_eq!((change.price_seen, change.price_paid), (eur(1999), eur(2499)));
    let line = order_lines::Entity::find()
        .one(&db.conn)
        .await
        .expect("q")
        .expect("line");
    assert_eq!(line.unit_price_minor, 2499);
}
on_both_backends!(
    price_changed,
    a_line_whose_price_changed_is_bought_at_todays_price_and_said_so
);

/// `n` customers with a cart each, checking out at once; the outcomes.
async fn race(
    db: &Arc<TestDb>,
    shop: &Arc<Shop>,
    n: usize,
    code: Option<&'static str>,
) -> Vec<Result<CheckedOut, DomainError>> {
    let mut carts = Vec::with_capacity(n);
    for i in 0..n {
        carts.push(customer_with_cart(db, shop, &format!("c{i}@example.com"), 1).await);
    }
    let attempts = carts.into_iter().map(|(user, cart)| {
        let (db, shop) = (Arc::clone(db), Arc::clone(shop));
        tokio::spawn(async move { check_out(&db, user, request(&shop, cart, code, "race")).await })
    });
    futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("task ran"))
        .collect()
}

async fn a_code_limited_to_ten_is_carried_by_exactly_ten_of_100_concurrent_checkouts(backend: Backend) {
    let db = Arc::new(TestDb::migrated(backend).await);
    let shop = Arc::new(shop(&db, 1_000, Some(10)).await);

    let outcomes = race(&db, &shop, 100, Some("TENOFF")).await;

    let placed = outcomes.iter().filter(|o| o.is_ok()).count();
    let refused = outcomes
        .iter()
        .filter(|o| {
            matches!(
                o,
                Err(DomainError::InvalidInput {
                    field: "discountCode",
                    ..
                })
            )
        })
        .count();
    assert_eq!(
        (placed, refused),
        (10, 90),
        "{:?}",
        outcomes.iter().find(|o| o.is_err())
    );
    let carrying = orders::Entity::find()
        .filter(orders::Column::DiscountCode.eq("TENOFF"))
        .all(&db.conn)
        .await
        .expect("orders");
    assert_eq!(carrying.len(), 10);
    assert_eq!(
        variant_stock(&db.conn, shop.variant).await,
        990,
        "losers reserved nothing"
    );
}
on_both_backends!(
    code_limit,
    a_code_limited_to_ten_is_carried_by_exactly_ten_of_100_concurrent_checkouts
);

async fn variant_stock_never_goes_negative_under_fifty_concurrent_checkouts(backend: Backend) {
    let db = Arc::new(TestDb::migrated(backend).await);
    let shop = Arc::new(shop(&db, 10, None).await);

    let outcomes = race(&db, &shop, 50, None).await;

    let placed = outcomes.iter().filter(|o| o.is_ok()).count();
    let sold_out = outcomes
        .iter()
        .filter(|o| matches!(o, Err(DomainError::OutOfStock { .. })))
        .count();
    assert_eq!(
        (placed, sold_out),
        (10, 40),
        "{:?}",
        outcomes.iter().find(|o| o.is_err())
    );
    assert_eq!(variant_stock(&db.conn, shop.variant).await, 0);
}
on_both_backends!(
    variant_stock,
    variant_stock_never_goes_negative_under_fifty_concurrent_checkouts
);

/// A cart is bought once: two checkouts of it at once under different
/// keys place one order; the other is refused and reserves nothing.
async fn a_cart_checked_out_twice_at_once_becomes_one_order(backend: Backend) {
    let db = Arc::new(TestDb::migrated(backend).await);
    let shop = Arc::new(shop(&db, 10, None).await);
    let (user, cart) = customer_with_cart(&db, &shop, "ada@example.com", 2).await;

    let attempts = ["first", "second"].map(|key| {
        let (db, shop) = (Arc::clone(&db), Arc::clone(&shop));
        tokio::spawn(async move { check_out(&db, user, request(&shop, cart, None, key)).await })
    });
    let outcomes: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("task ran"))
        .collect();

    let placed = outcomes.iter().filter(|o| o.is_ok()).count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Err(DomainError::Conflict(_) | DomainError::NotFound { .. })))
        .count();
    assert_eq!((placed, refused), (1, 1), "{outcomes:?}");
    assert_eq!(
        orders::Entity::find().all(&db.conn).await.expect("orders").len(),
        1
    );
    assert_eq!(variant_stock(&db.conn, shop.variant).await, 8, "reserved once");
}
on_both_backends!(
    cart_bought_once,
    a_cart_checked_out_twice_at_once_becomes_one_order
);
