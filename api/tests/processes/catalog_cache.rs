//! Two api processes, each with its catalog cache: a price change and a
//! stock change (an admin's adjustment, every tenth one an order) made
//! through one are read through the other the moment the mutation
//! returned, 1,000 times — by slug and in the list, not once stale.
use serde_json::{Value, json};
use testkit::GraphqlClient;

use crate::harness::Cluster;

const ROUNDS: i64 = 1_000;

const READ: &str = "query($slug: String!) {
  product(slug: $slug) { id price { amountMinor } stock }
  products(first: 5) { edges { node { id price { amountMinor } stock } } }
}";

/// `(price, stock)` of `id` read through `api` by slug and in the list.
async fn read(api: &GraphqlClient, id: &str) -> [(Value, Value); 2] {
    let body = api.post(None, READ, json!({ "slug": "fresh-1" })).await;
    let by_slug = &body["data"]["product"];
    let listed = body["data"]["products"]["edges"]
        .as_array()
        .and_then(|edges| {
            edges
                .iter()
                .map(|edge| &edge["node"])
                .find(|node| node["id"] == id)
        })
        .unwrap_or_else(|| panic!("the product is listed: {body}"));
    [by_slug, listed].map(|node| (node["price"]["amountMinor"].clone(), node["stock"].clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_through_one_api_are_read_through_the_other_at_once() {
    // Arrange
    let overrides = [
        ("COST_RESTORE_RATE", "1000000"),
        ("RATE_LIMIT_PLACE_ORDER_USER", "1000/1m"),
    ];
    let mut cluster = Cluster::start("catalog_cache", &overrides).await;
    let reader_process = cluster.start_api("api-2").await;
    let reader = GraphqlClient::new(format!("http://127.0.0.1:{}", reader_process.port));
    let admin = cluster.admin().await;
    let customer = cluster.register("cache-reader@example.com").await;
    let id = cluster.create_product(&admin, "FRESH-1", 1_000_000).await;
    let mut stock = 1_000_000;
    read(&reader, &id).await;

    // Act
    let mut stale = Vec::new();
    for round in 0..ROUNDS {
        let price = 1_000 + round;
        let updated = cluster
            .graphql(
                Some(&admin.access_token),
                "mutation($id: ID!, $price: Int!) { updateProduct(id: $id, input: { priceMinor: $price }) { price { amountMinor } } }",
                json!({ "id": id, "price": price }),
            )
            .await;
        assert_eq!(
            updated["data"]["updateProduct"]["price"]["amountMinor"], price,
            "{updated}"
        );
        for (price_read, _) in read(&reader, &id).await {
            if price_read != price {
                stale.push(format!("round {round}: price {price_read}, not {price}"));
            }
        }

        if round % 10 == 0 {
            cluster.place_order(&customer, &id, "sandbox_ok").await;
            stock -= 1;
        } else {
            let adjusted = cluster
                .graphql(
                    Some(&admin.access_token),
                    "mutation($id: ID!) { adjustStock(productId: $id, delta: -1, reason: \"cache test\") { stock } }",
                    json!({ "id": id }),
                )
                .await;
            stock -= 1;
            assert_eq!(adjusted["data"]["adjustStock"]["stock"], stock, "{adjusted}");
        }
        for (_, stock_read) in read(&reader, &id).await {
            if stock_read != stock {
                stale.push(format!("round {round}: stock {stock_read}, not {stock}"));
            }
        }
    }

    // Assert
    assert!(
        stale.is_empty(),
        "{} stale reads: {:#?}",
        stale.len(),
        &stale[..stale.len().min(20)]
    );
    let hits = cluster
        .metric(&reader_process, "storefront_catalog_cache_total{result=\"hit\"}")
        .await
        .unwrap_or(0.0);
    assert!(
        hits >= 1_000.0,
        "reads after a stock change are served from the second api's cache ({hits} hits)"
    );
}
