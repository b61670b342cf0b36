//! Redis down while customers order: the orders are accepted (their jobs
//! wait in the outbox) and settle once Redis is back, with no restart of the
//! api or the worker. And Redis losing the jobs it held: they are pushed
//! again as soon as the loss is seen, not after REDISPATCH_AFTER_SECS.
use std::time::{Duration, Instant};

use crate::harness::{Cluster, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_placed_while_redis_is_down_all_settle_once_it_is_back() {
    // Arrange: api + worker on a private Redis, default settings; 20
    // customers, all welcomed
    let (mut cluster, mut redis) =
        Cluster::start_with_private_redis("outage", crate::harness::DEFAULT_SETTINGS).await;
    let mut worker = cluster.start_worker(&[]).await;
    let (api_pid, worker_pid) = (cluster.api.pid(), worker.pid());
    let admin = cluster.admin().await;
    let product = cluster.create_product(&admin, "OUTAGE-1", 100).await;
    let customers = cluster.register_many("outage", 20).await;
    cluster
        .wait_for_mail("Welcome", 20, Duration::from_secs(60))
        .await;

    // Act: Redis dies (no save: it comes back empty); 20 orders come in
    redis.stop().await;
    let placed = futures::future::join_all(
        customers
            .iter()
            .map(|customer| cluster.place_order(customer, &product, "sandbox_ok")),
    )
    .await;
    let orders: Vec<(String, String)> = placed
        .into_iter()
        .zip(&customers)
        .map(|(id, customer)| (id, customer.email.clone()))
        .collect();
    // Give the api's dispatcher and the worker's sweeper time to fail against
    // the dead Redis a few times.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let backlog = entity::outbox::backlog(&cluster.db.conn)
        .await
        .expect("outbox backlog");
    assert!(
        backlog >= 40,
        "the 20 settlements and 20 confirmations wait in the outbox: {backlog}"
    );
    assert_eq!(cluster.count_orders(&admin, "PAID").await, 0);

    redis.restart().await;
    let back = Instant::now();

    // Assert: everything settles and is mailed once, by the same processes
    cluster
        .wait_until_all_paid(&admin, 20, Duration::from_secs(60))
        .await;
    println!(
        "redis outage: all orders PAID {:.1?} after Redis came back",
        back.elapsed()
    );
    // A welcome, a confirmation and a receipt per customer.
    cluster.assert_orders_mailed_once(&orders, 20).await;
    assert!(
        cluster.api.is_running() && worker.is_running(),
        "neither process restarted"
    );
    assert_eq!((cluster.api.pid(), worker.pid()), (api_pid, worker_pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_in_redis_when_it_comes_back_empty_all_run_within_a_minute_each_once() {
    // Arrange: no worker yet, so every job the api pushes waits in Redis;
    // default settings (REDISPATCH_AFTER_SECS is 600).
    let (mut cluster, mut redis) =
        Cluster::start_with_private_redis("redis_data_loss", crate::harness::DEFAULT_SETTINGS).await;
    let admin = cluster.admin().await;
    let product = cluster.create_product(&admin, "LOSS-1", 100).await;
    let customers = cluster.register_many("loss", 10).await;
    let orders = cluster.order_one_each(&customers, &product).await;
    eventually(Duration::from_secs(30), "every job pushed to Redis", || async {
        match entity::outbox::backlog(&cluster.db.conn).await {
            Ok(0) => Ok(()),
            other => Err(format!("not yet pushed: {other:?}")),
        }
    })
    .await;

    // Act: Redis dies without saving and comes back empty; a worker starts.
    redis.stop().await;
    redis.restart().await;
    let back = Instant::now();
    let _worker = cluster.start_worker(&[]).await;

    // Assert: every order PAID within 60 s, every email exactly once
    cluster.wait_until_paid(&orders, Duration::from_secs(60)).await;
    println!(
        "redis data loss: all orders PAID {:.1?} after Redis came back",
        back.elapsed()
    );
    cluster.assert_every_email_once(&orders, customers.len()).await;
}
