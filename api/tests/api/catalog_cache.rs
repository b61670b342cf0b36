//! The catalog cache (`CATALOG_CACHE`, on by default): repeated reads are
//! served from it, and every kind of change — price, description, active
//! flag, stock through an order or an adjustment, a change committed by
//! another process — is seen by the very next read, by id, by slug and in
//! the list. On SQLite the app runs as embedded mode does, without Redis.
use api::catalog::cache::CacheStats;
use api::cost::BucketSettings;
use entity::catalog::ProductPatch;
use entity::ids::ProductId;
use sea_orm::TransactionTrait;
use serde_json::{Value, json};
use testkit::Backend;

use crate::helpers::{Session, TestApp, on_both_backends};

const FIELDS: &str = "id slug name description price { amountMinor } stock active";

/// What a client reads of product `id` (slug `slug`) three ways: by id, by
/// slug, and its node in the first page of the list (null when absent).
async fn three_reads(app: &TestApp, who: Option<&Session>, id: &str, slug: &str) -> [Value; 3] {
    let query = format!(
        "query($id: ID!, $slug: String!) {{
           byId: product(id: $id) {{ {FIELDS} }}
           bySlug: product(slug: $slug) {{ {FIELDS} }}
           products(first: 50) {{ edges {{ node {{ {FIELDS} }} }} }}
         }}"
    );
    let token = who.map(|session| session.access_token.as_str());
    let body = app.post(token, &query, json!({ "id": id, "slug": slug })).await;
    assert!(body["errors"].is_null(), "{body}");
    let listed = body["data"]["products"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {body}"))
        .iter()
        .map(|edge| edge["node"].clone())
        .find(|node| node["id"] == id)
        .unwrap_or(Value::Null);
    [
        body["data"]["byId"].clone(),
        body["data"]["bySlug"].clone(),
        listed,
    ]
}

/// Asserts that all three reads show `field` as `expected`.
async fn all_read(app: &TestApp, who: Option<&Session>, id: &str, field: &str, expected: &Value) {
    for (how, product) in ["by id", "by slug", "listed"]
        .iter()
        .zip(three_reads(app, who, id, "cached-1").await)
    {
        assert_eq!(&product[field], expected, "{field} read {how}: {product}");
    }
}

fn stats(app: &TestApp) -> CacheStats {
    app.state
        .catalog
        .as_ref()
        .expect("the cache is on by default")
        .stats()
}

async fn update(app: &TestApp, admin: &Session, id: &str, input: Value) {
    let body = app
        .graphql_as(
            admin,
            "mutation($id: ID!, $input: UpdateProductInput!) { updateProduct(id: $id, input: $input) { id } }",
            json!({ "id": id, "input": input }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
}

/// `customer` orders `quantity` of product `id` (paid in the sandbox).
async fn order(app: &TestApp, customer: &Session, id: &str, quantity: i32) {
    let placed = app
        .graphql_as(
            customer,
            "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }",
            json!({ "input": {
                "lines": [{ "productId": id, "quantity": quantity }],
                "paymentToken": "sandbox_ok",
                "idempotencyKey": uuid::Uuid::now_v7().to_string(),
            } }),
        )
        .await;
    assert!(placed["errors"].is_null(), "{placed}");
}

async fn every_change_is_seen_by_the_next_read(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let customer = app.register("reader@example.com").await;
    let id = app.create_product(&admin, "CACHED-1", 1000, 10).await;
    app.create_product(&admin, "OTHER-1", 500, 3).await;

    // Repeated reads are served from the cache.
    all_read(&app, None, &id, "stock", &json!(10)).await;
    let before = stats(&app);
    all_read(&app, None, &id, "stock", &json!(10)).await;
    let after = stats(&app);
    assert_eq!(after.hits - before.hits, 3, "{before:?} → {after:?}");
    assert_eq!(after.misses, before.misses, "{before:?} → {after:?}");

    // Price.
    update(&app, &admin, &id, json!({ "priceMinor": 1234 })).await;
    all_read(&app, None, &id, "price", &json!({ "amountMinor": 1234 })).await;
    // Description.
    update(&app, &admin, &id, json!({ "description": "Now in blue" })).await;
    all_read(&app, None, &id, "description", &json!("Now in blue")).await;

    // Stock through an order, then through an admin's adjustment.
    order(&app, &customer, &id, 3).await;
    all_read(&app, None, &id, "stock", &json!(7)).await;
    let adjusted = app
        .graphql_as(
            &admin,
            "mutation($id: ID!) { adjustStock(productId: $id, delta: 5, reason: \"recount\") { stock } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(adjusted["data"]["adjustStock"]["stock"], 12, "{adjusted}");
    all_read(&app, None, &id, "stock", &json!(12)).await;
    // Stock changes do not empty the cache.
    let before = stats(&app);
    all_read(&app, None, &id, "stock", &json!(12)).await;
    assert_eq!(
        stats(&app).hits - before.hits,
        3,
        "stock is read beside cached rows"
    );

    // Active: customers and visitors stop seeing it at once, admins still do.
    update(&app, &admin, &id, json!({ "active": false })).await;
    for who in [None, Some(&customer)] {
        let reads = three_reads(&app, who, &id, "cached-1").await;
        assert_eq!(reads, [Value::Null, Value::Null, Value::Null], "inactive, hidden");
    }
    all_read(&app, Some(&admin), &id, "active", &json!(false)).await;
    let hidden_again = three_reads(&app, Some(&customer), &id, "cached-1").await;
    assert_eq!(
        hidden_again,
        [Value::Null, Value::Null, Value::Null],
        "after an admin's read"
    );
    update(&app, &admin, &id, json!({ "active": true })).await;
    all_read(&app, Some(&customer), &id, "active", &json!(true)).await;

    // A change committed by another process (a worker, another api): only
    // the database is shared.
    let product_id: ProductId = id.parse().expect("a product id");
    let txn = app.state.db.begin().await.expect("begin");
    entity::catalog::update_product(
        &txn,
        product_id,
        ProductPatch::parse(Some("Renamed elsewhere"), None, None, None).expect("a patch"),
    )
    .await
    .expect("updated");
    txn.commit().await.expect("commit");
    all_read(&app, None, &id, "name", &json!("Renamed elsewhere")).await;

    // A slug nobody has is cached as absent, until a product takes it.
    let missing = "query { product(slug: \"later-1\") { sku } }";
    assert_eq!(
        app.graphql(missing, json!({})).await["data"]["product"],
        Value::Null
    );
    assert_eq!(
        app.graphql(missing, json!({})).await["data"]["product"],
        Value::Null
    );
    app.create_product(&admin, "LATER-1", 100, 1).await;
    assert_eq!(
        app.graphql(missing, json!({})).await["data"]["product"]["sku"],
        "LATER-1"
    );
}
on_both_backends!(every_change_is_seen, every_change_is_seen_by_the_next_read);

async fn lists_filtered_by_stock_follow_every_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let customer = app.register("last-one@example.com").await;
    let id = app.create_product(&admin, "LAST-1", 1000, 1).await;
    let in_stock = "{ products(filter: { inStock: true }) { edges { node { sku } } } }";
    let listed = app.graphql(in_stock, json!({})).await;
    assert_eq!(listed["data"]["products"]["edges"][0]["node"]["sku"], "LAST-1");

    order(&app, &customer, &id, 1).await;
    let listed = app.graphql(in_stock, json!({})).await;
    assert_eq!(
        listed["data"]["products"]["edges"],
        json!([]),
        "sold out: {listed}"
    );
    assert!(
        stats(&app).bypasses >= 2,
        "lists filtered by stock are not cached"
    );
}
on_both_backends!(stock_filtered_lists, lists_filtered_by_stock_follow_every_order);

async fn with_the_cache_off_reads_go_to_the_database(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.catalog_cache = false).await;
    assert!(app.state.catalog.is_none());
    let admin = app.admin().await;
    let id = app.create_product(&admin, "CACHED-1", 1000, 10).await;
    all_read(&app, None, &id, "price", &json!({ "amountMinor": 1000 })).await;
    update(&app, &admin, &id, json!({ "priceMinor": 900, "active": false })).await;
    let hidden = three_reads(&app, None, &id, "cached-1").await;
    assert_eq!(hidden, [Value::Null, Value::Null, Value::Null]);
    all_read(&app, Some(&admin), &id, "price", &json!({ "amountMinor": 900 })).await;
}
on_both_backends!(cache_off, with_the_cache_off_reads_go_to_the_database);

/// Without the cache, concurrent product reads share statements
/// (`api::catalog::reads`): 64 reads at once by slug and 64 listings cost
/// fewer statements than reads, and each still sees the price set before it began.
async fn concurrent_reads_share_statements_and_see_every_change(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.catalog_cache = false;
        // 128 reads at once from one client: more than its query cost
        // bucket holds by default.
        config.cost_bucket = BucketSettings::new(100_000, 100_000.0).expect("valid settings");
    })
    .await;
    let admin = app.admin().await;
    let id = app.create_product(&admin, "SHARED-1", 1000, 10).await;
    let by_slug = "{ product(slug: \"shared-1\") { price { amountMinor } stock } }";
    let listing = "{ products(first: 20) { edges { node { id price { amountMinor } } } } }";
    for price in [1100, 1200] {
        update(&app, &admin, &id, json!({ "priceMinor": price })).await;
        let before = app.statements();
        let reads = (0..64)
            .flat_map(|_| [by_slug, listing])
            .map(|query| app.graphql(query, json!({})));
        let answers = futures::future::join_all(reads).await;
        let statements = app.statements() - before;
        for body in &answers {
            assert!(body["errors"].is_null(), "{body}");
            let product = body["data"]["products"]["edges"]
                .as_array()
                .and_then(|edges| edges.iter().find(|edge| edge["node"]["id"] == id.as_str()))
                .map_or(&body["data"]["product"], |edge| &edge["node"]);
            assert_eq!(product["price"]["amountMinor"], price, "{body}");
        }
        assert!(
            statements < 128,
            "128 reads at once, {statements} statements: concurrent reads share them"
        );
    }
}
on_both_backends!(
    shared_reads,
    concurrent_reads_share_statements_and_see_every_change
);

async fn variants_are_served_beside_their_product_with_stock_read_fresh(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let id = app.create_product(&admin, "CACHED-V", 1000, 4).await;
    let query = "query($id: ID!) { product(id: $id) { stock variants { sku stock price { amountMinor } } } }";
    let read = || async {
        let before = app.statements();
        let body = app.graphql(query, json!({ "id": id })).await;
        assert!(body["errors"].is_null(), "{body}");
        (body["data"]["product"].clone(), app.statements() - before)
    };

    let (first, _) = read().await;
    let (second, statements) = read().await;
    app.graphql_as(
        &admin,
        "mutation($id: ID!) { adjustVariantStock(variantId: $id, delta: -1, reason: \"broken\") { stock } }",
        json!({ "id": id }),
    )
    .await;
    let (after_stock, statements_after_stock) = read().await;
    app.graphql_as(
        &admin,
        "mutation($id: ID!) { updateVariant(id: $id, input: { priceMinor: 800 }) { id } }",
        json!({ "id": id }),
    )
    .await;
    let (after_price, _) = read().await;

    assert_eq!(first, second);
    assert_eq!(second["variants"][0]["stock"], 4);
    assert_eq!(statements, 1, "only the version and stock are read");
    assert_eq!(
        (&after_stock["stock"], &after_stock["variants"][0]["stock"]),
        (&json!(3), &json!(3))
    );
    assert_eq!(statements_after_stock, 1, "a stock change keeps the cache");
    assert_eq!(after_price["variants"][0]["price"]["amountMinor"], 800);
}
on_both_backends!(
    cached_variants,
    variants_are_served_beside_their_product_with_stock_read_fresh
);
