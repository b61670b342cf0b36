//! Two worker processes share the work of 200 orders placed by concurrent
//! clients: every order is settled, confirmed and receipted exactly once.
use std::time::Duration;

use crate::harness::Cluster;

const CUSTOMERS: usize = 10;
const ORDERS_EACH: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_settle_200_concurrent_orders_each_exactly_once() {
    // Arrange
    let mut cluster = Cluster::start("scale_out", &[]).await;
    let worker_1 = cluster.start_worker(&[]).await;
    let worker_2 = cluster.start_worker(&[]).await;
    let admin = cluster.admin().await;
    let product = cluster.create_product(&admin, "SCALE-1", 1_000).await;
    let customers = cluster.register_many("scale", CUSTOMERS).await;

    // Act: each customer is a client placing its orders one after another,
    // all customers at once
    let placed = futures::future::join_all(customers.iter().map(|customer| {
        let (cluster, product) = (&cluster, &product);
        async move {
            let mut ids = Vec::with_capacity(ORDERS_EACH);
            for _ in 0..ORDERS_EACH {
                ids.push(cluster.place_order(customer, product, "sandbox_ok").await);
            }
            ids.into_iter()
                .map(|id| (id, customer.email.clone()))
                .collect::<Vec<_>>()
        }
    }))
    .await;
    let orders: Vec<(String, String)> = placed.into_iter().flatten().collect();
    let total = CUSTOMERS * ORDERS_EACH;
    assert_eq!(orders.len(), total);

    // Assert
    cluster
        .wait_until_all_paid(&admin, total, Duration::from_secs(60))
        .await;
    cluster.assert_orders_mailed_once(&orders, CUSTOMERS).await;
    let (done_1, done_2) = (
        cluster.jobs_finished(&worker_1).await,
        cluster.jobs_finished(&worker_2).await,
    );
    eprintln!("jobs finished: worker 1 {done_1}, worker 2 {done_2}");
    assert!(
        done_1 > 0 && done_2 > 0,
        "both workers took part: {done_1} and {done_2} jobs"
    );
    assert_eq!(
        done_1 + done_2,
        u64::try_from(CUSTOMERS + 3 * total).unwrap_or(u64::MAX),
        "one run per job: welcomes, settlements, confirmations, receipts"
    );
}
