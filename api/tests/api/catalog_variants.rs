//! Variants over GraphQL: `Product.variants` and `options`, the admin's
//! variant mutations, and orders that name a variant.
use serde_json::{Value, json};
use testkit::Backend;

use crate::helpers::{Session, TestApp, error_code, on_both_backends};

const CREATE_VARIANT: &str = "mutation($productId: ID!, $input: CreateVariantInput!) {
  createVariant(productId: $productId, input: $input) { id sku title price { amountMinor } stock active }
}";

const UPDATE_VARIANT: &str = "mutation($id: ID!, $input: UpdateVariantInput!) {
  updateVariant(id: $id, input: $input) { id active price { amountMinor } }
}";

const PRODUCT: &str = "query($id: ID!) {
  product(id: $id) {
    price { amountMinor } stock
    options { name values }
    variants { id sku title selectedOptions { name value } price { amountMinor } stock available
               weightGrams active product { id } }
  }
}";

const PLACE: &str = "mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) {
    id total { amountMinor }
    lines { sku variantTitle quantity unitPrice { amountMinor } variant { id sku } product { id } }
  }
}";

/// A T-shirt in S (€25, 3 on hand), M (€27, none) and an inactive L; its
/// default variant turned off. Returns the product's id and S, M, L's ids.
async fn tee(app: &TestApp, admin: &Session) -> (String, [String; 3]) {
    let product = app.create_product(admin, "TEE", 2_500, 0).await;
    let mut ids = Vec::new();
    for (size, price, stock, active) in [
        ("S", 2_500, 3, true),
        ("M", 2_700, 0, true),
        ("L", 2_500, 9, false),
    ] {
        let input = json!({ "productId": product, "input": {
            "sku": format!("TEE-{size}"), "options": [{ "name": "Size", "value": size }],
            "priceMinor": price, "stock": stock, "weightGrams": 200, "active": active } });
        let body = app.graphql_as(admin, CREATE_VARIANT, input).await;
        let created = &body["data"]["createVariant"];
        assert_eq!(created["title"], size, "{body}");
        ids.push(created["id"].as_str().expect("variant id").to_owned());
    }
    let off = app
        .graphql_as(
            admin,
            UPDATE_VARIANT,
            json!({ "id": product, "input": { "active": false } }),
        )
        .await;
    assert_eq!(off["data"]["updateVariant"]["active"], false, "{off}");
    let [s, m, l] = ids.try_into().expect("three variants");
    (product, [s, m, l])
}

fn skus(variants: &Value) -> Vec<&str> {
    variants
        .as_array()
        .unwrap_or_else(|| panic!("variants: {variants}"))
        .iter()
        .map(|v| v["sku"].as_str().expect("sku"))
        .collect()
}

async fn a_product_shows_its_variants_and_options_to_each_by_their_rights(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (product, [small, ..]) = tee(&app, &admin).await;

    let seen = app.graphql(PRODUCT, json!({ "id": product })).await;
    let as_admin = app.graphql_as(&admin, PRODUCT, json!({ "id": product })).await;

    let shown = &seen["data"]["product"];
    assert_eq!(
        skus(&shown["variants"]),
        ["TEE-S", "TEE-M"],
        "active variants only: {seen}"
    );
    assert_eq!(
        shown["options"],
        json!([{ "name": "Size", "values": ["S", "M"] }])
    );
    assert_eq!(shown["price"]["amountMinor"], 2_500, "the lowest active price");
    assert_eq!(shown["stock"], 3, "the active variants' stock");
    let first = &shown["variants"][0];
    assert_eq!(first["id"], small.as_str());
    assert_eq!(
        first["selectedOptions"],
        json!([{ "name": "Size", "value": "S" }])
    );
    assert_eq!(
        (&first["stock"], &first["available"], &first["weightGrams"]),
        (&json!(3), &json!(true), &json!(200))
    );
    assert_eq!(first["product"]["id"], product.as_str());
    assert_eq!(shown["variants"][1]["available"], false, "M has no stock");
    assert_eq!(
        skus(&as_admin["data"]["product"]["variants"]),
        ["TEE", "TEE-S", "TEE-M", "TEE-L"],
        "admins see every variant"
    );
}
on_both_backends!(
    variants_and_options,
    a_product_shows_its_variants_and_options_to_each_by_their_rights
);

async fn only_admins_change_variants_and_bad_ones_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let customer = app.register("shopper@example.com").await;
    let (product, [small, ..]) = tee(&app, &admin).await;
    let input = |sku: &str, option: &str, value: &str| {
        json!({ "productId": product, "input": {
            "sku": sku, "options": [{ "name": option, "value": value }], "priceMinor": 100 } })
    };

    let forbidden = app
        .graphql_as(&customer, CREATE_VARIANT, input("TEE-XL", "Size", "XL"))
        .await;
    let other_option = app
        .graphql_as(&admin, CREATE_VARIANT, input("TEE-RED", "Colour", "Red"))
        .await;
    let same_size = app
        .graphql_as(&admin, CREATE_VARIANT, input("TEE-S2", "Size", "S"))
        .await;
    let adjusted = app
        .graphql_as(
            &admin,
            "mutation($id: ID!) { adjustVariantStock(variantId: $id, delta: 4, reason: \"delivery\") { stock } }",
            json!({ "id": small }),
        )
        .await;
    let cheaper = app
        .graphql_as(
            &admin,
            UPDATE_VARIANT,
            json!({ "id": small, "input": { "priceMinor": 1_900 } }),
        )
        .await;
    let whole_product_price = app
        .graphql_as(
            &admin,
            "mutation($id: ID!) { updateProduct(id: $id, input: { priceMinor: 100 }) { id } }",
            json!({ "id": product }),
        )
        .await;

    assert_eq!(error_code(&forbidden), "FORBIDDEN");
    assert_eq!(error_code(&other_option), "BAD_USER_INPUT");
    assert_eq!(other_option["errors"][0]["extensions"]["field"], "options");
    assert_eq!(error_code(&same_size), "CONFLICT");
    assert_eq!(adjusted["data"]["adjustVariantStock"]["stock"], 7, "{adjusted}");
    assert_eq!(cheaper["data"]["updateVariant"]["price"]["amountMinor"], 1_900);
    assert_eq!(error_code(&whole_product_price), "BAD_USER_INPUT");
    let read = app.graphql(PRODUCT, json!({ "id": product })).await;
    assert_eq!(
        (
            &read["data"]["product"]["price"]["amountMinor"],
            &read["data"]["product"]["stock"]
        ),
        (&json!(1_900), &json!(7)),
        "the from price and the stock follow at once: {read}"
    );
}
on_both_backends!(
    variant_mutations,
    only_admins_change_variants_and_bad_ones_are_refused
);

async fn an_order_names_the_variant_it_buys_and_keeps_its_sku(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let customer = app.register("buyer@example.com").await;
    let (product, [small, ..]) = tee(&app, &admin).await;
    let order = |variant: Option<&str>, key: &str| {
        json!({ "input": { "lines": [{ "productId": product, "variantId": variant, "quantity": 2 }],
                           "paymentToken": "sandbox_ok", "idempotencyKey": key } })
    };

    let unnamed = app.graphql_as(&customer, PLACE, order(None, "k-1")).await;
    let placed = app.graphql_as(&customer, PLACE, order(Some(&small), "k-2")).await;

    assert_eq!(error_code(&unnamed), "BAD_USER_INPUT");
    assert_eq!(unnamed["errors"][0]["extensions"]["field"], "variantId");
    let line = &placed["data"]["placeOrder"]["lines"][0];
    assert_eq!(line["sku"], "TEE-S", "{placed}");
    assert_eq!(line["variantTitle"], "S");
    assert_eq!(line["variant"]["id"], small.as_str());
    assert_eq!(line["product"]["id"], product.as_str());
    assert_eq!(placed["data"]["placeOrder"]["total"]["amountMinor"], 5_000);
    let read = app.graphql(PRODUCT, json!({ "id": product })).await;
    assert_eq!(read["data"]["product"]["variants"][0]["stock"], 1);
    let too_many = app.graphql_as(&customer, PLACE, order(Some(&small), "k-3")).await;
    assert_eq!(error_code(&too_many), "OUT_OF_STOCK");
}
on_both_backends!(
    order_a_variant,
    an_order_names_the_variant_it_buys_and_keeps_its_sku
);
