//! A worker process SIGKILLed with finished jobs whose outcomes are still
//! buffered in its completer (`worker::complete`): nothing is lost. The
//! rows stay unfinished, the reaper pushes them again, and another worker
//! runs each once more as the no-op its handler makes it — every order
//! settled once, every email sent once.
use std::time::Duration;

use entity::tables::outbox;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

use crate::harness::{Cluster, eventually};

const ORDERS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_with_buffered_outcomes_leaves_them_to_run_again_once_in_effect() {
    // Arrange: worker A never writes its batch of outcomes (a flush
    // interval of an hour and a batch larger than the test's jobs), so
    // every job it finishes stays buffered.
    let mut cluster = Cluster::start("completion_crash", &[]).await;
    let mut worker_a = cluster
        .start_worker(&[("COMPLETION_FLUSH_MS", "3600000"), ("COMPLETION_BATCH", "1000")])
        .await;
    let admin = cluster.admin().await;
    let product = cluster.create_product(&admin, "BUFFERED-1", 100).await;
    let customer = cluster.register("buffered@example.com").await;
    let mut orders = Vec::new();
    for _ in 0..ORDERS {
        orders.push(cluster.place_order(&customer, &product, "sandbox_ok").await);
    }
    cluster
        .wait_until_all_paid(&admin, ORDERS, Duration::from_secs(60))
        .await;
    cluster
        .wait_for_mail("Payment received", ORDERS, Duration::from_secs(60))
        .await;
    cluster
        .wait_for_mail("received", 2 * ORDERS, Duration::from_secs(30))
        .await;
    cluster.wait_for_mail("Welcome", 1, Duration::from_secs(30)).await;
    // The welcome, and per order its confirmation, settlement and receipt.
    let rows = 1 + 3 * ORDERS as u64;
    let unfinished = unfinished_rows(&cluster).await;
    assert_eq!(
        (total_rows(&cluster).await, unfinished),
        (rows, rows),
        "test premise: A ran every job and recorded none of them; {}",
        cluster.job_summary().await
    );

    // Act: SIGKILL A; B takes over with the default completer. Its reaper
    // pushes rows dispatched 3 s ago that never completed (the default,
    // 10 minutes, is the time to wait for a lost queue in production).
    worker_a.kill().await;
    let worker_b = cluster.start_worker(&[("REDISPATCH_AFTER_SECS", "3")]).await;

    // Assert: every row completes, through B running the jobs again...
    eventually(Duration::from_secs(90), "every outbox row completed", || async {
        match unfinished_rows(&cluster).await {
            0 => Ok(()),
            left => Err(format!("{left} unfinished; {}", cluster.job_summary().await)),
        }
    })
    .await;
    assert_eq!(total_rows(&cluster).await, rows, "no retry, no new job");
    assert!(
        cluster.jobs_finished(&worker_b).await >= rows,
        "B ran A's jobs again"
    );
    // ...as no-ops: each payment captured once, each email sent once.
    for id in &orders {
        assert_eq!(
            cluster.order(&customer.access_token, id).await,
            json!({ "status": "PAID", "payment": { "status": "SETTLED", "attempts": 1, "lastError": null } }),
            "order {id} captured once"
        );
    }
    let recipients: Vec<(String, String)> = orders
        .iter()
        .map(|id| (id.clone(), customer.email.clone()))
        .collect();
    cluster.assert_orders_mailed_once(&recipients, 1).await;
    assert!(cluster.dead_jobs(&admin).await.is_empty());
}

async fn total_rows(cluster: &Cluster) -> u64 {
    outbox::Entity::find()
        .count(&cluster.db.conn)
        .await
        .expect("count outbox rows")
}

async fn unfinished_rows(cluster: &Cluster) -> u64 {
    outbox::Entity::find()
        .filter(outbox::Column::CompletedAt.is_null())
        .count(&cluster.db.conn)
        .await
        .expect("count unfinished outbox rows")
}
