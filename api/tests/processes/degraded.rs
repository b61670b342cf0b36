//! Started while Redis is down: the api and the worker come up anyway
//! (alive, not ready, saying which dependency is down), orders are accepted
//! into the outbox, and once Redis starts every order is paid and mailed
//! without a restart. Default settings: no shortened timeout or interval.
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Cluster, DEFAULT_SETTINGS};

async fn readyz(client: &reqwest::Client, url: String) -> (u16, Value) {
    let response = client.get(url).send().await.expect("GET /readyz");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_worker_start_with_redis_down_and_orders_settle_once_it_starts() {
    // Arrange: Redis is not running when the api and the worker start.
    let (mut cluster, mut redis) = Cluster::start_with_redis_down("degraded", DEFAULT_SETTINGS).await;
    let worker = cluster.start_worker_ready_at("/healthz", &[]).await;
    let http = reqwest::Client::new();
    let down = json!({ "database": "ok", "queue": "down" });
    assert_eq!(
        readyz(&http, cluster.api.url("/readyz")).await,
        (503, down.clone())
    );
    assert_eq!(readyz(&http, worker.url("/readyz")).await, (503, down));

    // Act: customers order while Redis is down; then Redis starts.
    let admin = cluster.admin().await;
    let product = cluster.create_product(&admin, "DEGRADED-1", 100).await;
    let customers = cluster.register_many("degraded", 5).await;
    let orders = cluster.order_one_each(&customers, &product).await;
    redis.restart().await;
    let redis_started = Instant::now();

    // Assert: ready, every order PAID within 60 s, each email once
    cluster.wait_until_paid(&orders, Duration::from_secs(60)).await;
    println!(
        "degraded start: all orders PAID {:.1?} after Redis started",
        redis_started.elapsed()
    );
    let up = json!({ "database": "ok", "queue": "ok" });
    assert_eq!(readyz(&http, cluster.api.url("/readyz")).await, (200, up.clone()));
    assert_eq!(readyz(&http, worker.url("/readyz")).await, (200, up));
    cluster.assert_every_email_once(&orders, customers.len()).await;
}
