//! Carts over GraphQL: guests by token, customers by sign-in, merged at login.
use serde_json::{Value, json};
use testkit::Backend;

use crate::helpers::{TestApp, error_code, on_both_backends};

const CART: &str = "id totalQuantity subtotal { amountMinor currency }
  lines { variantId productId productName variantTitle sku quantity
          unitPrice { amountMinor } priceSeen { amountMinor } priceChanged available lineTotal { amountMinor } }";

fn create() -> String {
    format!("mutation($input: CartCreateInput) {{ cartCreate(input: $input) {{ {CART} }} }}")
}

fn add() -> String {
    format!(
        "mutation($cartId: ID!, $lines: [CartLineInput!]!) {{ cartLinesAdd(cartId: $cartId, lines: $lines) {{ {CART} }} }}"
    )
}

fn read() -> String {
    format!("query($id: ID!) {{ cart(id: $id) {{ {CART} }} }}")
}

fn lines(pairs: &[(&str, i64)]) -> Value {
    pairs
        .iter()
        .map(|(variant, quantity)| json!({ "variantId": variant, "quantity": quantity }))
        .collect()
}

/// `(variantId, quantity)` of each line of `cart`.
fn quantities(cart: &Value) -> Vec<(String, i64)> {
    cart["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("a cart: {cart}"))
        .iter()
        .map(|line| {
            (
                line["variantId"].as_str().expect("id").to_owned(),
                line["quantity"].as_i64().expect("quantity"),
            )
        })
        .collect()
}

async fn a_guest_creates_a_cart_adds_lines_and_reads_it_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let tea = app.create_product(&admin, "TEA-1", 450, 20).await;
    let cup = app.create_product(&admin, "CUP-1", 1_200, 5).await;

    let created = app
        .graphql(&create(), json!({ "input": { "lines": lines(&[(&tea, 2)]) } }))
        .await;
    let cart = &created["data"]["cartCreate"];
    let id = cart["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a cart: {created}"))
        .to_owned();
    assert!(id.starts_with("cart_"), "a guest cart's id is its token: {id}");
    let added = app
        .graphql(
            &add(),
            json!({ "cartId": id, "lines": lines(&[(&cup, 1), (&tea, 1)]) }),
        )
        .await;
    assert_eq!(
        quantities(&added["data"]["cartLinesAdd"]),
        [(tea.clone(), 3), (cup.clone(), 1)],
        "{added}"
    );

    app.graphql(&read(), json!({ "id": id })).await;
    let before = app.statements();
    let read_back = app.graphql(&read(), json!({ "id": id })).await;
    let statements = app.statements() - before;

    let cart = &read_back["data"]["cart"];
    assert_eq!(cart["totalQuantity"], 4, "{read_back}");
    assert_eq!(
        cart["subtotal"],
        json!({ "amountMinor": 3 * 450 + 1_200, "currency": "EUR" })
    );
    let line = &cart["lines"][0];
    assert_eq!(
        line["productId"],
        tea.as_str(),
        "the default variant has its product's id"
    );
    assert_eq!(line["sku"], "TEA-1");
    assert_eq!(line["unitPrice"]["amountMinor"], 450);
    assert_eq!(line["priceSeen"]["amountMinor"], 450);
    assert_eq!(
        (line["priceChanged"].as_bool(), line["available"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(line["lineTotal"]["amountMinor"], 1_350);
    assert!(
        statements <= 3,
        "a cart, its lines and their variants: {statements} statements"
    );

    let removed = app
        .graphql(
            "mutation($cartId: ID!, $ids: [ID!]!) { cartLinesRemove(cartId: $cartId, variantIds: $ids) { totalQuantity } }",
            json!({ "cartId": id, "ids": [cup] }),
        )
        .await;
    assert_eq!(
        removed["data"]["cartLinesRemove"]["totalQuantity"], 3,
        "{removed}"
    );
    let updated = app
        .graphql(
            "mutation($cartId: ID!, $lines: [CartLineUpdateInput!]!) { cartLinesUpdate(cartId: $cartId, lines: $lines) { totalQuantity subtotal { amountMinor } } }",
            json!({ "cartId": id, "lines": lines(&[(&tea, 0)]) }),
        )
        .await;
    assert_eq!(
        updated["data"]["cartLinesUpdate"],
        json!({ "totalQuantity": 0, "subtotal": null }),
        "{updated}"
    );
}
on_both_backends!(guest_cart, a_guest_creates_a_cart_adds_lines_and_reads_it_back);

async fn a_customers_cart_is_not_found_by_anyone_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let tea = app.create_product(&admin, "TEA-1", 450, 20).await;
    let ada = app.register("ada@example.com").await;
    let eve = app.register("eve@example.com").await;
    let created = app
        .graphql_as(
            &ada,
            &create(),
            json!({ "input": { "lines": lines(&[(&tea, 1)]) } }),
        )
        .await;
    let id = created["data"]["cartCreate"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a cart: {created}"))
        .to_owned();
    assert!(
        !id.starts_with("cart_"),
        "a customer's cart is named by its id, no secret: {id}"
    );

    let mine = app
        .graphql_as(&ada, "{ me { cart { id totalQuantity } } }", json!({}))
        .await;
    assert_eq!(
        mine["data"]["me"]["cart"],
        json!({ "id": id, "totalQuantity": 1 }),
        "{mine}"
    );
    let theirs = app.graphql_as(&eve, &read(), json!({ "id": id })).await;
    assert_eq!(error_code(&theirs), "NOT_FOUND", "{theirs}");
    let anonymous = app.graphql(&read(), json!({ "id": id })).await;
    assert_eq!(error_code(&anonymous), "NOT_FOUND");
    let hijack = app
        .graphql_as(
            &eve,
            &add(),
            json!({ "cartId": id, "lines": lines(&[(&tea, 1)]) }),
        )
        .await;
    assert_eq!(error_code(&hijack), "NOT_FOUND");
    let none = app.graphql_as(&eve, "{ me { cart { id } } }", json!({})).await;
    assert_eq!(none["data"]["me"]["cart"], Value::Null);
}
on_both_backends!(
    customer_cart_privacy,
    a_customers_cart_is_not_found_by_anyone_else
);

async fn signing_in_with_a_guest_cart_merges_it_into_the_customers_cart(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let tea = app.create_product(&admin, "TEA-1", 450, 20).await;
    let cup = app.create_product(&admin, "CUP-1", 1_200, 5).await;
    let ada = app.register("ada@example.com").await;
    app.graphql_as(
        &ada,
        &create(),
        json!({ "input": { "lines": lines(&[(&tea, 1)]) } }),
    )
    .await;
    let guest = app
        .graphql(
            &create(),
            json!({ "input": { "lines": lines(&[(&tea, 2), (&cup, 1)]) } }),
        )
        .await;
    let guest_id = guest["data"]["cartCreate"]["id"].as_str().expect("id").to_owned();

    let login = app
        .graphql(
            &format!("mutation($input: LoginInput!) {{ login(input: $input) {{ accessToken cart {{ {CART} }} }} }}"),
            json!({ "input": { "email": "ada@example.com", "password": testkit::PASSWORD, "cartId": guest_id } }),
        )
        .await;

    assert_eq!(
        quantities(&login["data"]["login"]["cart"]),
        [(tea.clone(), 3), (cup.clone(), 1)],
        "quantities summed: {login}"
    );
    let gone = app.graphql(&read(), json!({ "id": guest_id })).await;
    assert_eq!(error_code(&gone), "NOT_FOUND", "the guest cart is merged away");

    let guest = app
        .graphql(&create(), json!({ "input": { "lines": lines(&[(&cup, 2)]) } }))
        .await;
    let guest_id = guest["data"]["cartCreate"]["id"].as_str().expect("id").to_owned();
    let register = app
        .graphql(
            &format!("mutation($input: RegisterInput!) {{ register(input: $input) {{ cart {{ {CART} }} }} }}"),
            json!({ "input": { "email": "bob@example.com", "password": testkit::PASSWORD, "name": "Bob", "cartId": guest_id } }),
        )
        .await;
    assert_eq!(
        quantities(&register["data"]["register"]["cart"]),
        [(cup.clone(), 2)],
        "a new customer's cart is the guest cart: {register}"
    );
    let login = app
        .graphql(
            "mutation($input: LoginInput!) { login(input: $input) { cart { totalQuantity } } }",
            json!({ "input": { "email": "ada@example.com", "password": testkit::PASSWORD, "cartId": guest_id } }),
        )
        .await;
    assert_eq!(
        login["data"]["login"]["cart"]["totalQuantity"], 4,
        "someone else's cart merges nothing: {login}"
    );
}
on_both_backends!(
    login_merges_guest_cart,
    signing_in_with_a_guest_cart_merges_it_into_the_customers_cart
);

async fn bad_cart_input_is_refused_with_the_field_named(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let tea = app.create_product(&admin, "TEA-1", 450, 2).await;
    let created = app.graphql(&create(), json!({})).await;
    let id = created["data"]["cartCreate"]["id"]
        .as_str()
        .expect("an empty cart")
        .to_owned();
    let field = |body: &Value| {
        body["errors"][0]["extensions"]["field"]
            .as_str()
            .map(str::to_owned)
    };

    for (cart_id, lines, expected) in [
        (id.as_str(), lines(&[(&tea, 0)]), "quantity"),
        (id.as_str(), lines(&[(&tea, 1_001)]), "quantity"),
        (id.as_str(), lines(&[("not-an-id", 1)]), "variantId"),
        (id.as_str(), lines(&[]), "lines"),
        ("not-a-cart", lines(&[(&tea, 1)]), "cartId"),
    ] {
        let refused = app
            .graphql(&add(), json!({ "cartId": cart_id, "lines": lines }))
            .await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
        assert_eq!(field(&refused).as_deref(), Some(expected), "{refused}");
    }
    let too_many = app
        .graphql(&add(), json!({ "cartId": id, "lines": lines(&[(&tea, 3)]) }))
        .await;
    assert_eq!(error_code(&too_many), "OUT_OF_STOCK", "{too_many}");
    assert_eq!(too_many["errors"][0]["extensions"]["available"], 2);
    assert_eq!(
        too_many["errors"][0]["extensions"]["variantId"].as_str(),
        Some(tea.as_str()),
        "names the variant that ran short"
    );
    let unknown = app
        .graphql(
            &read(),
            json!({ "id": "cart_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }),
        )
        .await;
    assert_eq!(error_code(&unknown), "NOT_FOUND");
}
on_both_backends!(bad_input, bad_cart_input_is_refused_with_the_field_named);
