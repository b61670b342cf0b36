//! Overload: far more requests at once than one process runs
//! (`MAX_IN_FLIGHT`, default 256) are shed with 503 and `Retry-After`
//! at once instead of queueing until clients time out, the health check
//! still answers, and every order that was accepted exists, none other.
use std::time::{Duration, Instant};

use api::throttle::rules::{Limit, Rate};
use futures::future::join_all;
use serde_json::{Value, json};
use testkit::Backend;

use crate::helpers::{TestApp, roomy_cost_bucket};

const REQUESTS: usize = 2_560;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_times_the_in_flight_bound_is_shed_with_503_and_nothing_accepted_is_lost() {
    // Arrange: default settings, but one customer stands for the many a real
    // burst comes from: the per-customer order limit (30/h) is off, and its
    // query cost bucket (about ten orders at once) roomy, so every request
    // is a real order to run or shed, not a cheap RATE_LIMITED.
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.rate_limits.set(Limit::PlaceOrderUser, Rate::Off);
        config.cost_bucket = roomy_cost_bucket();
    })
    .await;
    let admin = app.admin().await;
    let product = app.create_product(&admin, "LOAD-1", 100, 100_000).await;
    let customer = app.register("load@example.com").await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");

    // Act: ten times as many orders at once as the api runs at once.
    let started = Instant::now();
    let requests = (0..REQUESTS).map(|n| {
        let body = json!({
            "query": "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }",
            "variables": { "input": {
                "lines": [{ "productId": product, "quantity": 1 }],
                "paymentToken": "sandbox_ok",
                "idempotencyKey": format!("load-{n}"),
            }},
        });
        let request = client
            .post(app.url("/graphql"))
            .bearer_auth(&customer.access_token)
            .header("accept", "application/json")
            .json(&body)
            .send();
        async move {
            let response = request.await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body: Value = response.json().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((status, retry_after, body))
        }
    });
    let health = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        client
            .get(app.url("/healthz"))
            .send()
            .await
            .map(|r| r.status().as_u16())
    };
    let (results, health) = tokio::join!(join_all(requests), health);
    let took = started.elapsed();

    // Assert: every request answered (none timed out), shed ones at once
    let mut accepted = 0_u64;
    let mut shed = 0_usize;
    for result in &results {
        let (status, retry_after, body) = result.as_ref().expect("every request is answered");
        match status {
            200 => {
                assert!(body["data"]["placeOrder"]["id"].is_string(), "{body}");
                accepted += 1;
            }
            503 => {
                assert_eq!(retry_after.as_deref(), Some("1"));
                assert_eq!(body["errors"][0]["extensions"]["code"], "OVERLOADED", "{body}");
                shed += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    println!("overload: {REQUESTS} requests in {took:.1?}: {accepted} accepted, {shed} shed");
    assert!(shed > 0, "beyond the bound requests are shed");
    assert!(accepted > 0, "within it they run");
    assert_eq!(health.ok(), Some(200), "the health check answers under load");

    // Nothing accepted is lost, nothing refused was placed.
    let admin_view = app
        .graphql_as(&admin, "{ orders(first: 1) { totalCount } }", json!({}))
        .await;
    assert_eq!(
        admin_view["data"]["orders"]["totalCount"],
        json!(accepted),
        "{admin_view}"
    );
}
