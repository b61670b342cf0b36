//! PostgreSQL restarted under the api and its workers, with default
//! settings: the pools' connections all die (57P01), and no request that
//! meets one fails. Restarted while idle, then a burst of `placeOrder`;
//! restarted while orders flow. Every accepted order ends PAID with one
//! confirmation and one receipt. The measured figures are printed
//! (`--nocapture`) and quoted in README.
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::Session;

use crate::harness::{Cluster, DEFAULT_SETTINGS};

/// Places one order under a fresh key; `Ok(id)` when accepted, else the body.
async fn try_order(cluster: &Cluster, customer: &Session, product: &str) -> Result<String, Value> {
    let key = uuid::Uuid::now_v7().to_string();
    let body = cluster
        .try_place_order(customer, product, "sandbox_ok", &key)
        .await;
    match body["data"]["placeOrder"]["id"].as_str() {
        Some(id) => Ok(id.to_owned()),
        None => Err(body),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_after_an_idle_restart_all_succeeds() {
    // Arrange: api + worker on a private PostgreSQL; the pools warmed by 10
    // concurrent orders, all settled
    let mut cluster = Cluster::start_on_private_postgres("db_restart_idle", DEFAULT_SETTINGS).await;
    let _worker = cluster.start_worker(&[]).await;
    let admin = cluster.admin().await;
    let product = cluster.create_product(&admin, "PGRESTART-1", 1_000).await;
    let customers = cluster.register_many("pg-idle", 10).await;
    let warm = futures::future::join_all(customers.iter().map(|c| try_order(&cluster, c, &product))).await;
    let mut orders: Vec<(String, String)> = warm
        .into_iter()
        .zip(&customers)
        .map(|(placed, c)| (placed.expect("an order before the restart"), c.email.clone()))
        .collect();
    cluster
        .wait_until_all_paid(&admin, orders.len(), Duration::from_secs(60))
        .await;
    cluster.assert_orders_mailed_once(&orders, 10).await;

    // Act: a fast restart while idle; 2 s later a burst of 10
    let down_for = cluster.postgres.as_mut().expect("a private server").restart();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let burst = futures::future::join_all(customers.iter().map(|c| async {
        let sent = Instant::now();
        (try_order(&cluster, c, &product).await, sent.elapsed())
    }))
    .await;
    let burst_took = started.elapsed();

    // Assert: none failed, and they all settle
    let slowest = burst.iter().map(|(_, took)| *took).max().unwrap_or_default();
    let failed: Vec<&Value> = burst
        .iter()
        .filter_map(|(placed, _)| placed.as_ref().err())
        .collect();
    println!(
        "idle restart: PostgreSQL down for {down_for:?}; burst of 10 placeOrder 2 s later: \
         {} failed, slowest answer {slowest:?}, whole burst {burst_took:?}",
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "no placeOrder fails after the restart: {failed:?}"
    );
    orders.extend(
        burst
            .into_iter()
            .zip(&customers)
            .filter_map(|((placed, _), c)| Some((placed.ok()?, c.email.clone()))),
    );
    cluster
        .wait_until_all_paid(&admin, orders.len(), Duration::from_secs(60))
        .await;
    cluster.assert_orders_mailed_once(&orders, 10).await;
}

/// One `placeOrder` of the load: when it was sent (from the start of the
/// load), how long it took, and what came back.
struct Sent {
    at: Duration,
    took: Duration,
    outcome: Result<String, Value>,
    email: String,
}

const CLIENTS: usize = 20;
/// Each client's pace: one order per this, within the default `placeOrder`
/// limit per user (30 an hour).
const PACE: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_placed_through_a_restart_all_succeed_and_settle_once() {
    // Arrange: api + 2 workers on a private PostgreSQL, 20 customers
    let mut cluster = Cluster::start_on_private_postgres("db_restart_load", DEFAULT_SETTINGS).await;
    let _worker_1 = cluster.start_worker(&[]).await;
    let _worker_2 = cluster.start_worker(&[]).await;
    let admin = cluster.admin().await;
    let product = cluster.create_product(&admin, "PGRESTART-2", 10_000).await;
    let customers = cluster.register_many("pg-load", CLIENTS).await;
    let mut server = cluster.postgres.take().expect("a private server");

    // Act: 20 clients order at a steady pace for 9 s; PostgreSQL restarts at 3 s
    let load_started = Instant::now();
    let load_for = Duration::from_secs(9);
    let load = futures::future::join_all(customers.iter().map(|customer| {
        let (cluster, product) = (&cluster, &product);
        async move {
            let mut sent = Vec::new();
            while load_started.elapsed() < load_for {
                let at = load_started.elapsed();
                let outcome = try_order(cluster, customer, product).await;
                sent.push(Sent {
                    at,
                    took: load_started.elapsed().saturating_sub(at),
                    outcome,
                    email: customer.email.clone(),
                });
                tokio::time::sleep(PACE).await;
            }
            sent
        }
    }));
    let restart = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let at = load_started.elapsed();
        // A blocking call: move it off the runtime thread the load runs on.
        let (server, down_for) = tokio::task::spawn_blocking(move || {
            let down_for = server.restart();
            (server, down_for)
        })
        .await
        .expect("restart PostgreSQL");
        (server, at, down_for)
    };
    let (sent, (server, restart_at, down_for)) = tokio::join!(load, restart);
    cluster.postgres = Some(server);
    let sent: Vec<Sent> = sent.into_iter().flatten().collect();

    // Assert: no request sent from 1 s after the restart began failed
    let failed: Vec<&Sent> = sent.iter().filter(|s| s.outcome.is_err()).collect();
    let overlapping = sent
        .iter()
        .filter(|s| s.at <= restart_at + down_for && s.at + s.took >= restart_at);
    let slowest = overlapping.map(|s| s.took).max().unwrap_or_default();
    let answered_normally_from = sent
        .iter()
        .filter(|s| s.at >= restart_at + down_for)
        .map(|s| s.at + s.took)
        .min()
        .map(|first| first.saturating_sub(restart_at));
    println!(
        "restart under load: {} placeOrder over {load_for:?}, PostgreSQL down for {down_for:?} from {restart_at:?}; \
         {} failed ({:?}); slowest answer overlapping the restart {slowest:?}; first order sent after the \
         server was back answered {answered_normally_from:?} after the restart began",
        sent.len(),
        failed.len(),
        failed.iter().map(|s| (s.at, &s.outcome)).collect::<Vec<_>>()
    );
    let late_failures: Vec<_> = failed
        .iter()
        .filter(|s| s.at >= restart_at + Duration::from_secs(1))
        .map(|s| (s.at, &s.outcome))
        .collect();
    assert!(
        late_failures.is_empty(),
        "a request sent 1 s after the restart failed: {late_failures:?}"
    );
    // Stricter: requests in flight during the restart are retried too
    // (without the retry policy, 20 of them failed with INTERNAL here).
    assert!(
        failed.is_empty(),
        "no placeOrder failed at all: {} did",
        failed.len()
    );
    assert!(
        sent.iter().any(|s| s.at < restart_at) && sent.iter().any(|s| s.at > restart_at + down_for),
        "orders flowed before and after the restart"
    );

    // Every accepted order is PAID, confirmed and receipted once.
    let orders: Vec<(String, String)> = sent
        .iter()
        .filter_map(|s| Some((s.outcome.as_ref().ok()?.clone(), s.email.clone())))
        .collect();
    cluster
        .wait_until_all_paid(&admin, orders.len(), Duration::from_secs(60))
        .await;
    cluster.assert_orders_mailed_once(&orders, CLIENTS).await;
}
