use serde_json::{Value, json};
use testkit::Backend;

use crate::helpers::{TestApp, error_code, on_both_backends};

const PAGE: &str = "query($first: Int, $after: String, $filter: ProductFilter, $orderBy: ProductOrder) {
  products(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { sku name price { amountMinor currency formatted } stock active } }
  }
}";

fn skus(body: &Value) -> Vec<String> {
    body["data"]["products"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {body}"))
        .iter()
        .map(|e| e["node"]["sku"].as_str().expect("sku").to_owned())
        .collect()
}

async fn products_page_by_keyset_with_filters_and_orders(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    for (sku, price, stock) in [
        ("A-1", 500, 3),
        ("B-2", 1500, 0),
        ("C-3", 1000, 7),
        ("D-4", 2500, 1),
        ("E-5", 1000, 2),
    ] {
        app.create_product(&admin, sku, price, stock).await;
    }

    let first = app.graphql(PAGE, json!({ "first": 2 })).await;
    assert_eq!(skus(&first), ["A-1", "B-2"], "by name");
    assert_eq!(first["data"]["products"]["totalCount"], 5);
    assert_eq!(first["data"]["products"]["pageInfo"]["hasNextPage"], true);
    let cursor = first["data"]["products"]["pageInfo"]["endCursor"].clone();
    let second = app.graphql(PAGE, json!({ "first": 2, "after": cursor })).await;
    assert_eq!(skus(&second), ["C-3", "D-4"]);
    assert_eq!(second["data"]["products"]["pageInfo"]["hasPreviousPage"], true);
    let last = app
        .graphql(
            PAGE,
            json!({ "first": 2, "after": second["data"]["products"]["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(skus(&last), ["E-5"]);
    assert_eq!(last["data"]["products"]["pageInfo"]["hasNextPage"], false);

    let by_price = app.graphql(PAGE, json!({ "orderBy": "PRICE_DESC" })).await;
    assert_eq!(
        skus(&by_price),
        ["D-4", "B-2", "E-5", "C-3", "A-1"],
        "ties broken by id, newest first when descending"
    );
    let page1 = app
        .graphql(PAGE, json!({ "orderBy": "PRICE_ASC", "first": 2 }))
        .await;
    let page2 = app
        .graphql(PAGE, json!({ "orderBy": "PRICE_ASC", "first": 3, "after": page1["data"]["products"]["pageInfo"]["endCursor"] }))
        .await;
    assert_eq!(
        [skus(&page1), skus(&page2)].concat(),
        ["A-1", "C-3", "E-5", "B-2", "D-4"]
    );
    let newest = app
        .graphql(PAGE, json!({ "orderBy": "NEWEST", "first": 1 }))
        .await;
    assert_eq!(skus(&newest), ["E-5"]);

    let filtered = app
        .graphql(
            PAGE,
            json!({ "filter": { "minPriceMinor": 1000, "maxPriceMinor": 1500, "inStock": true } }),
        )
        .await;
    assert_eq!(skus(&filtered), ["C-3", "E-5"]);
    assert_eq!(filtered["data"]["products"]["totalCount"], 2);
    let search = app
        .graphql(PAGE, json!({ "filter": { "search": "product d" } }))
        .await;
    assert_eq!(skus(&search), ["D-4"], "search is case-insensitive");
    let literal = app.graphql(PAGE, json!({ "filter": { "search": "%" } })).await;
    assert_eq!(skus(&literal), Vec::<String>::new(), "wildcards are literal");

    let money = &first["data"]["products"]["edges"][0]["node"]["price"];
    assert_eq!(
        money,
        &json!({ "amountMinor": 500, "currency": "EUR", "formatted": "€5.00" })
    );
}
on_both_backends!(listing, products_page_by_keyset_with_filters_and_orders);

async fn page_size_and_cursor_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    app.create_product(&admin, "ONLY-1", 100, 1).await;

    let capped = app.graphql(PAGE, json!({ "first": 100_000 })).await;
    assert_eq!(skus(&capped).len(), 1, "a huge page is capped, not an error");
    assert_eq!(
        error_code(&app.graphql(PAGE, json!({ "first": -1 })).await),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        error_code(&app.graphql(PAGE, json!({ "after": "garbage" })).await),
        "BAD_USER_INPUT"
    );
    let name_cursor = capped["data"]["products"]["pageInfo"]["endCursor"].clone();
    let mixed = app
        .graphql(PAGE, json!({ "after": name_cursor, "orderBy": "NEWEST" }))
        .await;
    assert_eq!(
        error_code(&mixed),
        "BAD_USER_INPUT",
        "a cursor of another order is refused"
    );
}
on_both_backends!(pagination_errors, page_size_and_cursor_errors);

async fn customers_never_see_inactive_products(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let hidden = app.create_product(&admin, "HIDDEN-1", 100, 1).await;
    app.create_product(&admin, "SHOWN-1", 100, 1).await;
    let update = "mutation($id: ID!) { updateProduct(id: $id, input: { active: false, name: \"Retired\" }) { active name } }";
    let updated = app.graphql_as(&admin, update, json!({ "id": hidden })).await;
    assert_eq!(
        updated["data"]["updateProduct"],
        json!({ "active": false, "name": "Retired" })
    );

    let customer = app.register("shopper@example.com").await;
    let visible = app
        .graphql_as(&customer, PAGE, json!({ "filter": { "active": false } }))
        .await;
    assert_eq!(
        skus(&visible),
        ["SHOWN-1"],
        "the active filter is ignored for customers"
    );
    let by_id = "query($id: ID, $slug: String) { product(id: $id, slug: $slug) { sku } }";
    assert_eq!(
        app.graphql(by_id, json!({ "id": hidden })).await["data"]["product"],
        json!(null)
    );
    assert_eq!(
        app.graphql(by_id, json!({ "slug": "hidden-1" })).await["data"]["product"],
        json!(null)
    );
    assert_eq!(
        app.graphql(by_id, json!({ "slug": "shown-1" })).await["data"]["product"]["sku"],
        "SHOWN-1"
    );

    let for_admin = app
        .graphql_as(&admin, PAGE, json!({ "filter": { "active": false } }))
        .await;
    assert_eq!(skus(&for_admin), ["HIDDEN-1"]);
    assert_eq!(
        app.graphql_as(&admin, by_id, json!({ "id": hidden })).await["data"]["product"]["sku"],
        "HIDDEN-1"
    );
    assert_eq!(
        error_code(&app.graphql(by_id, json!({})).await),
        "BAD_USER_INPUT",
        "id or slug is required"
    );
}
on_both_backends!(visibility, customers_never_see_inactive_products);

async fn admin_mutations_check_role_and_input(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let customer = app.register("not-admin@example.com").await;
    let id = app.create_product(&admin, "STOCKED-1", 100, 2).await;
    let create = "mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }";
    let input = |sku: &str, currency: &str| {
        json!({ "input": {
            "sku": sku, "slug": sku.to_lowercase(), "name": "N", "description": "", "priceMinor": 1, "currency": currency, "stock": 0
        }})
    };

    assert_eq!(
        error_code(&app.graphql_as(&customer, create, input("X-1", "EUR")).await),
        "FORBIDDEN"
    );
    assert_eq!(
        error_code(&app.graphql(create, input("X-1", "EUR")).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        error_code(&app.graphql_as(&admin, create, input("STOCKED-1", "EUR")).await),
        "CONFLICT"
    );
    assert_eq!(
        error_code(&app.graphql_as(&admin, create, input("X-2", "XYZ")).await),
        "BAD_USER_INPUT"
    );

    let adjust = "mutation($id: ID!, $d: Int!) { adjustStock(productId: $id, delta: $d, reason: \"count\") { stock } }";
    assert_eq!(
        app.graphql_as(&admin, adjust, json!({ "id": id, "d": 5 })).await["data"]["adjustStock"]["stock"],
        7
    );
    let below = app.graphql_as(&admin, adjust, json!({ "id": id, "d": -8 })).await;
    assert_eq!(error_code(&below), "OUT_OF_STOCK");
    assert_eq!(below["errors"][0]["extensions"]["available"], 7);
    assert_eq!(
        error_code(
            &app.graphql_as(&customer, adjust, json!({ "id": id, "d": 1 }))
                .await
        ),
        "FORBIDDEN"
    );
    let missing = app
        .graphql_as(
            &admin,
            adjust,
            json!({ "id": uuid::Uuid::now_v7().to_string(), "d": 1 }),
        )
        .await;
    assert_eq!(error_code(&missing), "NOT_FOUND");
    let update = "mutation($id: ID!) { updateProduct(id: $id, input: { priceMinor: -1 }) { id } }";
    assert_eq!(
        error_code(&app.graphql_as(&admin, update, json!({ "id": id })).await),
        "BAD_USER_INPUT"
    );
    let update_missing = "mutation($id: ID!) { updateProduct(id: $id, input: { name: \"x\" }) { id } }";
    let body = app
        .graphql_as(
            &admin,
            update_missing,
            json!({ "id": uuid::Uuid::now_v7().to_string() }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
}
on_both_backends!(admin_mutations, admin_mutations_check_role_and_input);
