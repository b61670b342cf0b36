//! SIGTERM to a worker with a job in flight: it takes no new job, lets the
//! running one finish within `SHUTDOWN_DEADLINE_SECS` and exits 0; a job
//! still running at the deadline is left un-acked and another worker runs it.
use std::time::{Duration, Instant};

use entity::notifications::DeliveryStatus;
use entity::tables::email_deliveries;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::harness::{Cluster, SlowRelay, eventually};

/// Each reply of the SMTP server reaches the worker this late, so one email
/// takes a few seconds to send.
const SMTP_DELAY: Duration = Duration::from_millis(600);

async fn delivery(cluster: &Cluster, dedupe_key: &str) -> Option<email_deliveries::Model> {
    email_deliveries::Entity::find()
        .filter(email_deliveries::Column::DedupeKey.eq(dedupe_key))
        .one(&cluster.db.conn)
        .await
        .expect("read email_deliveries")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_running_job_finish_then_the_worker_exits_zero() {
    // Arrange: a worker whose mail goes over a slow link
    let deadline = Duration::from_secs(10);
    let deadline_secs = deadline.as_secs().to_string();
    let mut cluster = Cluster::start(
        "shutdown_within_deadline",
        &[("SHUTDOWN_DEADLINE_SECS", &deadline_secs)],
    )
    .await;
    let relay = SlowRelay::start(cluster.smtp_port(), SMTP_DELAY).await;
    let mut worker = cluster.start_worker(&[("SMTP_URL", &relay.url())]).await;
    let admin = cluster.admin().await;
    let product = cluster.create_product(&admin, "TERM-1", 10).await;
    let customer = cluster.register("term@example.com").await;
    cluster.wait_for_mail("Welcome", 1, Duration::from_secs(30)).await;
    let order = cluster.place_order(&customer, &product, "sandbox_ok").await;
    let confirmation = format!("order-confirmation:{order}");
    eventually(
        Duration::from_secs(10),
        "the worker is sending the confirmation",
        || async {
            match delivery(&cluster, &confirmation).await {
                Some(row) if row.status == DeliveryStatus::Pending && row.claimed_until.is_some() => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;

    // Act
    let signalled = Instant::now();
    worker.terminate();
    let status = worker.exit_status(deadline + Duration::from_secs(5)).await;

    // Assert: exit 0 within the deadline, after finishing the email
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(took < deadline, "exited {took:?} after SIGTERM");
    let row = delivery(&cluster, &confirmation).await.expect("the delivery row");
    assert_eq!(row.status, DeliveryStatus::Sent, "sent before exiting: {row:?}");
    let subject = format!("Order {order} received");
    assert_eq!(
        cluster.mail().iter().filter(|(s, _)| *s == subject).count(),
        1,
        "the confirmation arrived once"
    );
    assert!(
        worker.output().contains("worker stopped"),
        "the worker logged a clean stop"
    );

    // What it had not taken (the receipt, perhaps) another worker does.
    let _next = cluster.start_worker(&[]).await;
    eventually(Duration::from_secs(20), "the order PAID", || async {
        let found = cluster.order(&customer.access_token, &order).await;
        if found["status"] == "PAID" {
            Ok(())
        } else {
            Err(found.to_string())
        }
    })
    .await;
    cluster
        .wait_for_mail("Payment received", 1, Duration::from_secs(20))
        .await;
    cluster.assert_one_confirmation_and_one_receipt(&[(order, customer.email.clone())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_still_running_at_the_shutdown_deadline_is_finished_by_another_worker() {
    // Arrange: a 2 s shutdown deadline and captures that take 5 s
    let mut cluster = Cluster::start(
        "shutdown_past_deadline",
        &[
            ("SHUTDOWN_DEADLINE_SECS", "2"),
            ("CAPTURE_TIMEOUT_MS", "5000"),
            ("JOB_MAX_ATTEMPTS", "1"),
        ],
    )
    .await;
    let mut worker_a = cluster.start_worker(&[]).await;
    let admin = cluster.admin().await;
    let product = cluster.create_product(&admin, "TERM-2", 10).await;
    let customer = cluster.register("late@example.com").await;
    let order = cluster.place_order(&customer, &product, "sandbox_timeout").await;
    eventually(Duration::from_secs(10), "A started the capture", || async {
        let found = cluster.order(&customer.access_token, &order).await;
        if found["payment"]["attempts"] == 1 {
            Ok(())
        } else {
            Err(found.to_string())
        }
    })
    .await;

    // Act
    let signalled = Instant::now();
    worker_a.terminate();
    let status = worker_a.exit_status(Duration::from_secs(10)).await;

    // Assert: exit 0 at the deadline, the attempt cut off and not recorded...
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(
        took >= Duration::from_millis(1_500) && took < Duration::from_secs(5),
        "exited {took:?} after SIGTERM, at the 2 s deadline"
    );
    let found = cluster.order(&customer.access_token, &order).await;
    assert_eq!(
        found["payment"],
        json!({ "status": "AUTHORIZED", "attempts": 1, "lastError": null }),
        "A gave the attempt up without an outcome"
    );
    assert!(cluster.dead_jobs(&admin).await.is_empty());

    // ...and worker B runs it again once A counts as gone: with
    // JOB_MAX_ATTEMPTS=1 that attempt is the last, so the job is dead.
    let _worker_b = cluster.start_worker(&[]).await;
    let dead = eventually(Duration::from_secs(45), "B ran the job", || async {
        let dead = cluster.dead_jobs(&admin).await;
        if dead.is_empty() {
            Err("no dead job yet".to_owned())
        } else {
            Ok(dead)
        }
    })
    .await;
    assert_eq!(
        dead,
        [json!({ "name": "settle_payment.v1", "attempts": 1, "lastError": "gateway timed out" })]
    );
    let found = cluster.order(&customer.access_token, &order).await;
    assert_eq!(
        found["payment"],
        json!({ "status": "AUTHORIZED", "attempts": 2, "lastError": "gateway timed out" }),
        "one capture cut off on A, one timed out on B"
    );
}
