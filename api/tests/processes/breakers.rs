//! Circuit breakers, with default settings (BREAKER_FAILURES 5,
//! BREAKER_OPEN_MS 10000, AUTHORIZE_TIMEOUT_MS and CAPTURE_TIMEOUT_MS 10000):
//! an SMTP server down for 30 s, a payment gateway whose authorisations
//! hang, and captures that hang. Each breaker opens, nothing accepted is
//! lost or failed, and everything settles once the dependency is back.
use std::time::{Duration, Instant};

use entity::jobs::{Job, SettlePayment};
use entity::notifications::DeliveryStatus;
use entity::tables::{email_deliveries, orders, outbox, product_variants};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::Value;
use testkit::Session;

use crate::harness::{Cluster, DEFAULT_SETTINGS, Process, SlowRelay, eventually};

/// How many log lines of `process` say its `dependency` breaker did `what`
/// ("opened", "closed").
fn transitions(process: &Process, dependency: &str, what: &str) -> usize {
    process
        .output()
        .lines()
        .filter(|line| line.contains(&format!("circuit breaker {what}")) && line.contains(dependency))
        .count()
}

async fn wait_for_transition(process: &Process, dependency: &str, what: &str, within: Duration) {
    eventually(within, &format!("the {dependency} breaker {what}"), || async {
        if transitions(process, dependency, what) > 0 {
            Ok(())
        } else {
            Err("not in the log yet".to_owned())
        }
    })
    .await;
}

/// `circuit_breaker_state{dependency=…}` on `process`'s `/metrics`.
async fn breaker_state(cluster: &Cluster, process: &Process, dependency: &str) -> Option<f64> {
    cluster
        .metric(
            process,
            &format!("circuit_breaker_state{{dependency=\"{dependency}\"}}"),
        )
        .await
}

fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_for_30_seconds_every_email_goes_out_once_afterwards() {
    // Arrange: the worker reaches the SMTP server through a link the test can cut.
    let mut cluster = Cluster::start("breaker_smtp", DEFAULT_SETTINGS).await;
    let mut link = SlowRelay::start(cluster.smtp_port(), Duration::ZERO).await;
    let worker = cluster.start_worker(&[("SMTP_URL", &link.url())]).await;
    let admin = cluster.admin().await;
    let product = cluster.create_product(&admin, "SMTP-DOWN-1", 100).await;
    let customers = cluster.register_many("smtp-down", 10).await;
    cluster
        .wait_for_mail("Welcome", customers.len(), Duration::from_secs(30))
        .await;
    // ...and the worker has heard the server's 250 for each: a link cut
    // between the server's 250 and the worker hearing it would make the
    // worker send that email again (SMTP cannot tell), which is not the
    // outage this test is about.
    eventually(Duration::from_secs(10), "every welcome marked sent", || async {
        let sent = email_deliveries::Entity::find()
            .filter(email_deliveries::Column::Status.eq(DeliveryStatus::Sent))
            .count(&cluster.db.conn)
            .await
            .map_err(|e| e.to_string())?;
        if sent == customers.len() as u64 {
            Ok(())
        } else {
            Err(format!("{sent} sent"))
        }
    })
    .await;

    // Act: SMTP unreachable for 30 s while the customers order
    link.cut();
    let cut = Instant::now();
    let orders = cluster.order_one_each(&customers, &product).await;
    wait_for_transition(&worker, "smtp", "opened", Duration::from_secs(30)).await;
    println!("smtp outage: breaker open {:.1?} after the cut", cut.elapsed());
    let state = breaker_state(&cluster, &worker, "smtp").await;
    assert!(
        matches!(state, Some(s) if s >= 1.0),
        "/metrics shows the breaker open (1) or probing (2): {state:?}"
    );
    tokio::time::sleep_until((cut + Duration::from_secs(30)).into()).await;
    assert!(
        cluster.dead_jobs(&admin).await.is_empty(),
        "nothing failed during the outage"
    );
    link.restore().await;
    let back = Instant::now();

    // Assert: every email exactly once, no dead job, the breaker closed again
    cluster
        .wait_for_mail("Order ", orders.len(), Duration::from_secs(60))
        .await;
    cluster.assert_every_email_once(&orders, customers.len()).await;
    println!(
        "smtp outage: every email sent {:.1?} after SMTP came back",
        back.elapsed()
    );
    assert!(cluster.dead_jobs(&admin).await.is_empty());
    wait_for_transition(&worker, "smtp", "closed", Duration::from_secs(5)).await;
    assert_eq!(breaker_state(&cluster, &worker, "smtp").await, Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_gateway_opens_the_breaker_and_place_order_fails_fast_until_a_probe_closes_it() {
    // Arrange
    let mut cluster = Cluster::start("breaker_gateway", DEFAULT_SETTINGS).await;
    let _worker = cluster.start_worker(&[]).await;
    let admin = cluster.admin().await;
    let product = cluster.create_product(&admin, "HANG-1", 100).await;
    let customers = cluster.register_many("hang", 6).await;

    // Act: five authorisations hang, at once
    let started = Instant::now();
    let (cluster_ref, product_ref) = (&cluster, &product);
    let hung = futures::future::join_all(customers[..5].iter().enumerate().map(|(i, customer)| {
        let (cluster, product, key) = (cluster_ref, product_ref, format!("hang-{i}"));
        async move {
            cluster
                .try_place_order(customer, product, "sandbox_authorize_timeout", &key)
                .await
        }
    }))
    .await;
    let hung_for = started.elapsed();
    for body in &hung {
        assert_eq!(error_code(body), "PAYMENT_UNAVAILABLE", "{body}");
    }
    println!("hanging gateway: the first five orders answered after {hung_for:.1?}");
    wait_for_transition(&cluster.api, "payment_gateway", "opened", Duration::from_secs(5)).await;
    let opened = Instant::now();

    // Assert: while open, an order that would succeed fails at once, and writes nothing
    let buyer = &customers[5];
    let fast = Instant::now();
    let refused = cluster
        .try_place_order(buyer, &product, "sandbox_ok", "after-the-hang")
        .await;
    let refused_in = fast.elapsed();
    assert_eq!(error_code(&refused), "PAYMENT_UNAVAILABLE", "{refused}");
    assert!(
        refused_in < Duration::from_secs(1),
        "refused fast, not after a timeout: {refused_in:?}"
    );
    println!("hanging gateway: placeOrder refused in {refused_in:?} while the breaker is open");
    assert_nothing_written(&cluster, "HANG-1").await;
    assert_eq!(
        breaker_state(&cluster, &cluster.api, "payment_gateway").await,
        Some(1.0),
        "the api's /metrics shows its gateway breaker open"
    );

    // Assert: once the breaker lets a probe through, the same request succeeds and settles
    // Once a second, as a client honouring PAYMENT_UNAVAILABLE would (and
    // within placeOrder's rate limit of 30 an hour).
    let mut order = None;
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let body = cluster
            .try_place_order(buyer, &product, "sandbox_ok", "after-the-hang")
            .await;
        if let Some(id) = body["data"]["placeOrder"]["id"].as_str() {
            order = Some(id.to_owned());
            break;
        }
        assert_eq!(error_code(&body), "PAYMENT_UNAVAILABLE", "{body}");
    }
    let order = order.expect("the breaker let an order through within 25 s");
    println!(
        "hanging gateway: orders accepted again {:.1?} after the breaker opened",
        opened.elapsed()
    );
    cluster
        .wait_until_paid(&[(order, buyer.clone())], Duration::from_secs(30))
        .await;
    assert_eq!(transitions(&cluster.api, "payment_gateway", "closed"), 1);
    assert_eq!(
        breaker_state(&cluster, &cluster.api, "payment_gateway").await,
        Some(0.0)
    );
    let page = cluster.metrics_page(&cluster.api).await;
    for (from, to) in [("closed", "open"), ("open", "half_open"), ("half_open", "closed")] {
        let series = format!(
            "circuit_breaker_transitions_total{{dependency=\"payment_gateway\",from=\"{from}\",to=\"{to}\"}} 1"
        );
        assert!(page.lines().any(|line| line == series), "{series} in\n{page}");
    }
}

/// No order, no outbox row, no stock taken by the refused orders.
async fn assert_nothing_written(cluster: &Cluster, sku: &str) {
    let conn = &cluster.db.conn;
    assert_eq!(orders::Entity::find().count(conn).await.expect("count orders"), 0);
    let settlements = outbox::Entity::find()
        .filter(outbox::Column::JobName.eq(SettlePayment::NAME))
        .count(conn)
        .await
        .expect("count outbox rows");
    assert_eq!(settlements, 0);
    let stock = product_variants::Entity::find()
        .filter(product_variants::Column::Sku.eq(sku))
        .one(conn)
        .await
        .expect("read the product's variant")
        .expect("the variant exists")
        .stock;
    assert_eq!(stock, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_that_hang_postpone_settlements_without_failing_any_and_all_settle_after() {
    // Arrange
    let mut cluster = Cluster::start("breaker_capture", DEFAULT_SETTINGS).await;
    let worker = cluster.start_worker(&[]).await;
    let admin = cluster.admin().await;
    let product = cluster.create_product(&admin, "STALL-1", 100).await;
    let customers = cluster.register_many("stall", 10).await;

    // Act: five captures hang (each settles on its second attempt), and
    // once the breaker is open five more orders come in.
    let mut orders: Vec<(String, Session)> = Vec::new();
    let started = Instant::now();
    for customer in &customers[..5] {
        let order = cluster.place_order(customer, &product, "sandbox_slow").await;
        orders.push((order, customer.clone()));
    }
    wait_for_transition(&worker, "payment_gateway", "opened", Duration::from_secs(30)).await;
    let opened = Instant::now();
    println!(
        "hanging captures: breaker open {:.1?} after the first order",
        started.elapsed()
    );
    assert_eq!(
        breaker_state(&cluster, &worker, "payment_gateway").await,
        Some(1.0),
        "the worker's /metrics shows its gateway breaker open"
    );
    let later = cluster.order_one_each(&customers[5..], &product).await;

    // Assert: their settlements wait without using an attempt
    tokio::time::sleep(Duration::from_secs(2)).await;
    if transitions(&worker, "payment_gateway", "closed") == 0 {
        for (order, customer) in &later {
            let order = cluster.order(&customer.access_token, order).await;
            assert_eq!(order["status"], "PENDING_PAYMENT", "{order}");
            assert_eq!(order["payment"]["attempts"], 0, "postponed, not tried: {order}");
        }
    }
    orders.extend(later);

    // Assert: every order PAID, nothing dead, each capture tried once more at most
    cluster.wait_until_paid(&orders, Duration::from_secs(60)).await;
    println!(
        "hanging captures: every order PAID {:.1?} after the breaker opened",
        opened.elapsed()
    );
    assert!(cluster.dead_jobs(&admin).await.is_empty());
    for (i, (order, customer)) in orders.iter().enumerate() {
        let order = cluster.order(&customer.access_token, order).await;
        let expected = if i < 5 { 2 } else { 1 };
        assert_eq!(order["payment"]["attempts"], expected, "order {i}: {order}");
    }
    wait_for_transition(&worker, "payment_gateway", "closed", Duration::from_secs(5)).await;
    assert_eq!(
        breaker_state(&cluster, &worker, "payment_gateway").await,
        Some(0.0)
    );
    cluster.assert_every_email_once(&orders, customers.len()).await;
}
