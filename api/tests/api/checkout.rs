//! Checkout end to end on the demo shop (variants, zones, VAT included,
//! the WELCOME10 code), with the worker running in-process and a real SMTP
//! server: a guest fills a cart, signs up (the cart comes along), sees the
//! estimate, checks out with an address and the code; the order is PAID and
//! the confirmation email shows the address and the discount.
use serde_json::{Value, json};
use testkit::{Backend, Behaviour, TestSmtp};

use crate::helpers::{Session, TestApp, error_code, on_both_backends};

const CART: &str = "id totalQuantity subtotal { amountMinor }";
const ESTIMATE: &str = "query($id: ID!, $method: ID!, $code: String) {
  cart(id: $id) { estimate(countryCode: \"DE\", shippingMethodId: $method, discountCode: $code) {
    subtotal { amountMinor } discount { amountMinor } shipping { amountMinor }
    tax { amountMinor } taxIncluded total { amountMinor } shippingMethod } }
}";
const CHECKOUT: &str = "mutation($input: CheckoutInput!) {
  checkout(input: $input) {
    order { id status subtotal { amountMinor } discount { amountMinor } shipping { amountMinor }
            tax { amountMinor } taxIncluded total { formatted amountMinor } discountCode shippingMethod
            shippingAddress { fullName line1 city postalCode countryCode }
            lines { sku variantTitle quantity } }
    priceChanges { sku }
  }
}";

fn data<'a>(body: &'a Value, field: &str) -> &'a Value {
    let value = &body["data"][field];
    assert!(!value.is_null(), "{field}: {body}");
    value
}

/// The variant of the demo T-shirt in size M, and the Standard method to DE.
async fn tee_m_and_standard(app: &TestApp) -> (String, String) {
    let tee = app
        .graphql(
            "{ product(slug: \"black-tee\") { variants { id selectedOptions { value } } } }",
            json!({}),
        )
        .await;
    let m = data(&tee, "product")["variants"]
        .as_array()
        .expect("variants")
        .iter()
        .find(|v| v["selectedOptions"][0]["value"] == "M")
        .unwrap_or_else(|| panic!("a size M: {tee}"))["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let methods = app
        .graphql(
            "{ shippingMethods(countryCode: \"DE\", currency: \"EUR\") { id name } }",
            json!({}),
        )
        .await;
    let standard = data(&methods, "shippingMethods")
        .as_array()
        .expect("methods")
        .iter()
        .find(|m| m["name"] == "Standard")
        .unwrap_or_else(|| panic!("Standard: {methods}"))["id"]
        .as_str()
        .expect("id")
        .to_owned();
    (m, standard)
}

fn checkout_input(cart: &str, method: &str, code: Option<&str>, key: &str) -> Value {
    json!({ "input": {
        "cartId": cart,
        "shippingAddress": { "fullName": "Ada Lovelace", "line1": "Unter den Linden 1",
                             "city": "Berlin", "postalCode": "10117", "countryCode": "DE" },
        "shippingMethodId": method,
        "discountCode": code,
        "paymentToken": "sandbox_ok",
        "idempotencyKey": key,
    } })
}

async fn a_guest_fills_a_cart_signs_up_and_checks_out_with_an_address_and_a_code(backend: Backend) {
    let smtp = TestSmtp::start(Behaviour::Accept);
    let app = TestApp::spawn_with_worker(backend, &smtp).await;
    api::seed::seed_demo_catalog(&app.state.db)
        .await
        .expect("the demo shop");
    let (tee_m, standard) = tee_m_and_standard(&app).await;

    // A guest fills a cart: two T-shirts in M, €25.00 each.
    let created = app
        .graphql(
            &format!("mutation($lines: [CartLineInput!]!) {{ cartCreate(input: {{ lines: $lines }}) {{ {CART} }} }}"),
            json!({ "lines": [{ "variantId": tee_m, "quantity": 2 }] }),
        )
        .await;
    let guest_cart = data(&created, "cartCreate")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(guest_cart.starts_with("cart_"), "{created}");

    // ...signs up, bringing the cart along.
    let registered = app
        .graphql(
            &format!(
                "mutation($input: RegisterInput!) {{ register(input: $input) {{
                    accessToken refreshToken user {{ id email }} cart {{ {CART} }} }} }}"
            ),
            json!({ "input": { "email": "ada@example.com", "password": testkit::PASSWORD,
                               "name": "Ada", "cartId": guest_cart } }),
        )
        .await;
    let payload = data(&registered, "register");
    let ada = Session::from_payload(payload);
    assert_eq!(payload["cart"]["totalQuantity"], 2, "{registered}");
    let cart = payload["cart"]["id"]
        .as_str()
        .expect("the customer's cart")
        .to_owned();

    // ...sees what it will cost: 50.00 − 10 % + 4.90, VAT (19 %) included.
    let estimate = app
        .graphql_as(
            &ada,
            ESTIMATE,
            json!({ "id": cart, "method": standard, "code": "welcome10" }),
        )
        .await;
    assert_eq!(
        data(&estimate, "cart")["estimate"],
        json!({ "subtotal": { "amountMinor": 5000 }, "discount": { "amountMinor": 500 },
                "shipping": { "amountMinor": 490 }, "tax": { "amountMinor": 797 },
                "taxIncluded": true, "total": { "amountMinor": 4990 }, "shippingMethod": "Standard" }),
        "{estimate}"
    );

    // ...and checks out: exactly what the estimate said.
    let done = app
        .graphql_as(
            &ada,
            CHECKOUT,
            checkout_input(&cart, &standard, Some("WELCOME10"), "first"),
        )
        .await;
    let checked_out = data(&done, "checkout");
    let order = &checked_out["order"];
    assert_eq!(order["total"]["amountMinor"], 4990, "{done}");
    assert_eq!(order["discount"]["amountMinor"], 500);
    assert_eq!(order["tax"]["amountMinor"], 797);
    assert_eq!(order["taxIncluded"], true);
    assert_eq!(order["discountCode"], "WELCOME10");
    assert_eq!(order["shippingMethod"], "Standard");
    assert_eq!(
        order["shippingAddress"],
        json!({ "fullName": "Ada Lovelace", "line1": "Unter den Linden 1", "city": "Berlin",
                "postalCode": "10117", "countryCode": "DE" })
    );
    assert_eq!(
        order["lines"],
        json!([{ "sku": "DEMO-TEE-BLACK-M", "variantTitle": "M", "quantity": 2 }])
    );
    assert_eq!(checked_out["priceChanges"], json!([]));
    let order_id = order["id"].as_str().expect("id").to_owned();

    // The same key again answers with the same order.
    let again = app
        .graphql_as(
            &ada,
            CHECKOUT,
            checkout_input(&cart, &standard, Some("WELCOME10"), "first"),
        )
        .await;
    assert_eq!(
        data(&again, "checkout")["order"]["id"],
        order_id.as_str(),
        "{again}"
    );

    // The worker settles it...
    let mut status = Value::Null;
    for _ in 0..200 {
        let read = app
            .graphql_as(
                &ada,
                "query($id: ID!) { order(id: $id) { status } }",
                json!({ "id": order_id }),
            )
            .await;
        status = read["data"]["order"]["status"].clone();
        if status == "PAID" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "PAID");

    // ...and the confirmation shows the address and the discount.
    let confirmation = &smtp.wait_for("received", 1).await[0];
    assert_eq!(confirmation.to, "ada@example.com");
    for part in [confirmation.text(), confirmation.html()] {
        for shown in [
            "Black tee — M",
            "Discount (WELCOME10)",
            "-€5.00",
            "Unter den Linden 1",
            "10117 Berlin",
            "€49.90",
        ] {
            assert!(part.contains(shown), "{shown} in {part}");
        }
    }

    // The cart became the order; the code was once per customer.
    let me = app
        .graphql_as(&ada, &format!("{{ me {{ cart {{ {CART} }} }} }}"), json!({}))
        .await;
    assert_eq!(data(&me, "me")["cart"], Value::Null, "{me}");
    let second = app
        .graphql_as(
            &ada,
            &format!("mutation($lines: [CartLineInput!]!) {{ cartCreate(input: {{ lines: $lines }}) {{ {CART} }} }}"),
            json!({ "lines": [{ "variantId": tee_m, "quantity": 1 }] }),
        )
        .await;
    let second_cart = data(&second, "cartCreate")["id"].as_str().expect("id").to_owned();
    let refused = app
        .graphql_as(
            &ada,
            CHECKOUT,
            checkout_input(&second_cart, &standard, Some("WELCOME10"), "second"),
        )
        .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
    assert_eq!(refused["errors"][0]["extensions"]["field"], "discountCode");
}
on_both_backends!(
    guest_to_paid_order,
    a_guest_fills_a_cart_signs_up_and_checks_out_with_an_address_and_a_code
);

async fn checkout_needs_a_customer_and_says_what_is_wrong(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.seed_demo_data = true).await;
    let (tee_m, standard) = tee_m_and_standard(&app).await;
    let created = app
        .graphql(
            &format!("mutation($lines: [CartLineInput!]!) {{ cartCreate(input: {{ lines: $lines }}) {{ {CART} }} }}"),
            json!({ "lines": [{ "variantId": tee_m, "quantity": 1 }] }),
        )
        .await;
    let guest_cart = data(&created, "cartCreate")["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let anonymous = app
        .graphql(CHECKOUT, checkout_input(&guest_cart, &standard, None, "k"))
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous}");

    let grace = app.register("grace@example.com").await;
    let mut nowhere = checkout_input(&guest_cart, &standard, None, "k");
    nowhere["input"]["shippingAddress"]["countryCode"] = json!("JP");
    let body = app.graphql_as(&grace, CHECKOUT, nowhere).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "shippingMethodId");

    let mut no_address = checkout_input(&guest_cart, &standard, None, "k");
    no_address["input"]["shippingAddress"] = Value::Null;
    let body = app.graphql_as(&grace, CHECKOUT, no_address).await;
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "shippingAddress",
        "{body}"
    );

    let body = app
        .graphql_as(
            &grace,
            CHECKOUT,
            checkout_input("cart_nope", &standard, None, "k"),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "cartId", "{body}");

    // placeOrder still works, and says it is deprecated.
    let deprecated = app
        .graphql(
            "{ __type(name: \"Mutation\") { fields(includeDeprecated: true) { name isDeprecated deprecationReason } } }",
            json!({}),
        )
        .await;
    let place_order = deprecated["data"]["__type"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["name"] == "placeOrder")
        .cloned()
        .expect("placeOrder");
    assert_eq!(place_order["isDeprecated"], true);
    assert!(
        place_order["deprecationReason"]
            .as_str()
            .is_some_and(|r| r.contains("checkout")),
        "{place_order}"
    );
}
on_both_backends!(checkout_errors, checkout_needs_a_customer_and_says_what_is_wrong);
