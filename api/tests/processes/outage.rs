//! Redis down while customers order: the orders are accepted (their jobs
//! wait in the outbox) and settle once Redis is back, with no restart of the
//! api or the worker.
use std::time::Duration;

use crate::harness::{Cluster, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_placed_while_redis_is_down_all_settle_once_it_is_back() {
    // Arrange: api + worker on a private Redis; 20 customers, all welcomed
    let (mut cluster, mut redis) = Cluster::start_with_private_redis("outage", &[]).await;
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

    // Assert: everything settles and is mailed once, by the same processes
    eventually(Duration::from_secs(60), "all 20 orders PAID", || async {
        let paid = cluster.count_orders(&admin, "PAID").await;
        if paid == 20 {
            Ok(())
        } else {
            Err(format!("{paid} paid"))
        }
    })
    .await;
    cluster
        .wait_for_mail("Payment received", 20, Duration::from_secs(30))
        .await;
    cluster.wait_for_mail("Order ", 20, Duration::from_secs(30)).await;
    cluster.assert_one_confirmation_and_one_receipt(&orders);
    assert_eq!(
        cluster.mail().len(),
        20 * 3,
        "a welcome, a confirmation and a receipt per customer: {:?}",
        cluster.mail_by_subject()
    );
    assert!(
        cluster.api.is_running() && worker.is_running(),
        "neither process restarted"
    );
    assert_eq!((cluster.api.pid(), worker.pid()), (api_pid, worker_pid));
}
