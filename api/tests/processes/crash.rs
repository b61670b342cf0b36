//! A worker process SIGKILLed with jobs in flight: another worker process
//! finishes them — no job lost, none run twice.
use std::time::Duration;

use entity::notifications::DeliveryStatus;
use entity::tables::email_deliveries;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::harness::{Cluster, eventually};

/// How long worker A's slow captures hang before timing out; the kill must
/// come well inside it.
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_ATTEMPTS: i64 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_leaves_its_jobs_to_another_worker_which_runs_each_once() {
    // Arrange: api + worker A alone. A's two settlement slots are taken by
    // `sandbox_timeout` captures hanging for CAPTURE_TIMEOUT, so the 20
    // `sandbox_ok` settlements placed next wait behind them (fetched by A
    // or still queued) while their confirmations go out.
    let capture_timeout = CAPTURE_TIMEOUT.as_millis().to_string();
    let max_attempts = MAX_ATTEMPTS.to_string();
    let mut cluster = Cluster::start(
        "crash",
        &[
            ("WORKER_CONCURRENCY", "2"),
            ("CAPTURE_TIMEOUT_MS", &capture_timeout),
            ("JOB_MAX_ATTEMPTS", &max_attempts),
        ],
    )
    .await;
    let mut worker_a = cluster.start_worker(&[]).await;
    let admin = cluster.admin().await;
    let product = cluster.create_product(&admin, "CRASH-1", 100).await;
    let customer = cluster.register("crash@example.com").await;
    cluster.wait_for_mail("Welcome", 1, Duration::from_secs(20)).await;

    let mut slow = Vec::new();
    for _ in 0..2 {
        slow.push(cluster.place_order(&customer, &product, "sandbox_timeout").await);
    }
    eventually(
        Duration::from_secs(10),
        "worker A started both slow captures",
        || async {
            let attempts = payment_attempts(&cluster, &customer.access_token, &slow).await;
            if attempts == [1, 1] {
                Ok(())
            } else {
                Err(format!("attempts {attempts:?}"))
            }
        },
    )
    .await;
    let started_slow = std::time::Instant::now();
    let mut ok = Vec::new();
    for _ in 0..20 {
        ok.push(cluster.place_order(&customer, &product, "sandbox_ok").await);
    }
    // No email is half-sent when A dies: a delivery claimed by a worker that
    // died stays leased to it for two minutes, and its redelivery gives up
    // as "busy" before that (a known gap, not what this test is about).
    eventually(
        Duration::from_secs(10),
        "worker A sent the 22 confirmations",
        || async {
            let sent = email_deliveries::Entity::find()
                .filter(email_deliveries::Column::Template.eq("order_confirmation"))
                .filter(email_deliveries::Column::Status.eq(DeliveryStatus::Sent))
                .count(&cluster.db.conn)
                .await
                .map_err(|e| e.to_string())?;
            if sent == 22 {
                Ok(())
            } else {
                Err(format!("{sent} sent"))
            }
        },
    )
    .await;
    let paid_by_a = cluster.count_orders(&admin, "PAID").await;

    // Act: SIGKILL A in the middle of its captures; then start B.
    worker_a.kill().await;
    eprintln!(
        "worker A killed {:?} into its captures, having settled {paid_by_a} of 20",
        started_slow.elapsed()
    );
    for id in &slow {
        let order = cluster.order(&customer.access_token, id).await;
        assert_eq!(
            order["payment"],
            json!({ "status": "AUTHORIZED", "attempts": 1, "lastError": null }),
            "test premise: A died during the capture of {id}, before it could record its outcome \
             (the kill came {:?} after the captures started; they time out after {CAPTURE_TIMEOUT:?})",
            started_slow.elapsed()
        );
    }
    let worker_b = cluster.start_worker(&[]).await;

    // Assert: B settles every order exactly once and emails each receipt once...
    cluster
        .wait_until_all_paid(&admin, 20, Duration::from_secs(45))
        .await;
    // ...and carries on with A's slow captures where A left them: the
    // interrupted attempt runs again, then the retries, until the job is
    // dead after JOB_MAX_ATTEMPTS attempts of its own.
    let dead = eventually(
        Duration::from_secs(45),
        "both slow settlements dead on worker B",
        || async {
            let dead = cluster.dead_jobs(&admin).await;
            if dead.len() == 2 {
                Ok(dead)
            } else {
                Err(format!("{dead:?}"))
            }
        },
    )
    .await;
    for job in &dead {
        assert_eq!(
            job,
            &json!({ "name": "settle_payment.v1", "attempts": MAX_ATTEMPTS, "lastError": "gateway timed out" })
        );
    }
    for id in &slow {
        let order = cluster.order(&customer.access_token, id).await;
        assert_eq!(order["status"], "PENDING_PAYMENT");
        assert_eq!(
            order["payment"],
            json!({ "status": "AUTHORIZED", "attempts": MAX_ATTEMPTS + 1, "lastError": "gateway timed out" }),
            "one capture cut short by the kill on A, then {MAX_ATTEMPTS} on B"
        );
    }
    for id in &ok {
        let order = cluster.order(&customer.access_token, id).await;
        assert_eq!(
            order,
            json!({ "status": "PAID", "payment": { "status": "SETTLED", "attempts": 1, "lastError": null } }),
            "order {id} captured once"
        );
    }
    cluster
        .wait_for_mail("Payment received", 20, Duration::from_secs(20))
        .await;
    let orders: Vec<(String, String)> = ok.iter().map(|id| (id.clone(), customer.email.clone())).collect();
    cluster.assert_one_confirmation_and_one_receipt(&orders);
    let counts = cluster.mail_by_subject();
    assert_eq!(
        counts.values().sum::<usize>(),
        1 + 2 + 20 + 20,
        "a welcome, two confirmations for the slow orders, 20 confirmations and 20 receipts: {counts:?}"
    );
    assert!(cluster.jobs_finished(&worker_b).await > 0, "B did the work");
}

async fn payment_attempts(cluster: &Cluster, token: &str, ids: &[String]) -> Vec<i64> {
    let mut attempts = Vec::new();
    for id in ids {
        let order: Value = cluster.order(token, id).await;
        attempts.push(order["payment"]["attempts"].as_i64().unwrap_or(-1));
    }
    attempts
}
