//! Orders placed over HTTP, settled and emailed by the worker running inside
//! the api (SQLite queue on SQLite; Redis queue on PostgreSQL), with a real
//! SMTP server receiving the mail.
use std::time::Duration;

use entity::jobs::{Job, SendEmail, SettlePayment};
use entity::tables::outbox;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use testkit::Backend;
use testkit::{Behaviour, Parsed, TestSmtp};

use crate::helpers::{Session, TestApp, error_code, on_both_backends};

pub(crate) struct Shop {
    pub(crate) app: TestApp,
    pub(crate) smtp: TestSmtp,
    pub(crate) admin: Session,
    pub(crate) customer: Session,
    pub(crate) product: String,
}

/// An app with its worker in-process (`TestApp::spawn_with_worker`) and
/// mail to a test SMTP server.
pub(crate) async fn shop(backend: Backend) -> Shop {
    let smtp = TestSmtp::start(Behaviour::Accept);
    let app = TestApp::spawn_with_worker(backend, &smtp).await;
    let admin = app.admin().await;
    let product = app.create_product(&admin, "JOB-1", 1234, 50).await;
    let customer = app.register("buyer@example.com").await;
    Shop {
        app,
        smtp,
        admin,
        customer,
        product,
    }
}

const ORDER: &str = "query($id: ID!) { order(id: $id) { status payment { status attempts lastError } } }";

impl Shop {
    pub(crate) async fn place(&self, token: &str, key: &str) -> Value {
        let input = json!({ "input": {
            "lines": [{ "productId": self.product, "quantity": 2 }], "paymentToken": token, "idempotencyKey": key } });
        self.app
            .graphql_as(
                &self.customer,
                "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }",
                input,
            )
            .await
    }

    pub(crate) async fn order_id(&self, token: &str) -> String {
        let body = self.place(token, token).await;
        body["data"]["placeOrder"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("placed: {body}"))
            .to_owned()
    }

    pub(crate) async fn order(&self, id: &str) -> Value {
        self.app
            .graphql_as(&self.customer, ORDER, json!({ "id": id }))
            .await["data"]["order"]
            .clone()
    }

    /// Polls the order until `done` holds (20 s at most).
    pub(crate) async fn wait_for(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..200 {
            let order = self.order(id).await;
            if done(&order) {
                return order;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "order {id} never reached the expected state: {}",
            self.order(id).await
        );
    }

    /// Emails received so far, parsed, with the given subject fragment.
    pub(crate) fn mail(&self, subject: &str) -> Vec<Parsed> {
        self.smtp.about(subject)
    }

    pub(crate) async fn wait_for_mail(&self, subject: &str, count: usize) -> Vec<Parsed> {
        self.smtp.wait_for(subject, count).await
    }
}

async fn each_sandbox_token_runs_end_to_end(backend: Backend) {
    let shop = shop(backend).await;
    shop.wait_for_mail("Welcome", 1).await;

    let ok = shop.order_id("sandbox_ok").await;
    let paid = shop.wait_for(&ok, |o| o["status"] == "PAID").await;
    assert_eq!(
        paid["payment"],
        json!({ "status": "SETTLED", "attempts": 1, "lastError": null })
    );
    let receipt = &shop.wait_for_mail("Payment received", 1).await[0];
    assert_eq!(receipt.to, "buyer@example.com");
    assert!(
        receipt.text().contains("€24.68"),
        "the receipt shows the total: {}",
        receipt.text()
    );
    assert!(
        receipt.html().contains(&format!("/orders/{ok}")),
        "and links to the order"
    );
    let confirmation = &shop.wait_for_mail("Order ", 1).await[0];
    assert!(
        confirmation.text().contains("€12.34"),
        "unit price on the confirmation"
    );

    let declined = shop.place("sandbox_declined", "declined").await;
    assert_eq!(error_code(&declined), "PAYMENT_DECLINED");

    let failed = shop.order_id("sandbox_capture_declined").await;
    let order = shop.wait_for(&failed, |o| o["status"] == "PAYMENT_FAILED").await;
    assert_eq!(order["payment"]["status"], "FAILED");
    shop.wait_for_mail("Payment failed", 1).await;

    let flaky = shop.order_id("sandbox_flaky").await;
    let order = shop.wait_for(&flaky, |o| o["status"] == "PAID").await;
    assert_eq!(
        order["payment"]["attempts"], 3,
        "two transient failures, then settled"
    );

    let slow = shop.order_id("sandbox_timeout").await;
    let dead = "{ deadJobs(first: 10) { totalCount edges { node { id name attempts lastError } } } }";
    let mut body = Value::Null;
    for _ in 0..200 {
        body = shop.app.graphql_as(&shop.admin, dead, json!({})).await;
        // totalCount is counted lazily, by its own statement: wait for the
        // page itself to hold the dead job.
        if body["data"]["deadJobs"]["edges"][0]["node"]["attempts"].is_i64() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let node = &body["data"]["deadJobs"]["edges"][0]["node"];
    assert_eq!(
        (node["name"].as_str(), node["attempts"].as_i64()),
        (Some("settle_payment.v1"), Some(3)),
        "{body}"
    );
    let order = shop.order(&slow).await;
    assert_eq!(order["status"], "PENDING_PAYMENT");
    assert_eq!(
        order["payment"],
        json!({ "status": "AUTHORIZED", "attempts": 3, "lastError": "gateway timed out" })
    );

    let retry = "mutation($id: ID!) { retryDeadJob(id: $id) }";
    let forbidden = shop
        .app
        .graphql_as(&shop.customer, retry, json!({ "id": node["id"] }))
        .await;
    assert_eq!(error_code(&forbidden), "FORBIDDEN");
    let retried = shop
        .app
        .graphql_as(&shop.admin, retry, json!({ "id": node["id"] }))
        .await;
    assert_eq!(retried["data"]["retryDeadJob"], true, "{retried}");
    shop.wait_for(&slow, |o| o["payment"]["attempts"].as_i64() >= Some(4))
        .await;

    // Emails go out on their own jobs: wait for the second receipt, then
    // make sure there is no third.
    shop.wait_for_mail("Payment received", 2).await;
    assert_eq!(
        shop.mail("Payment received").len(),
        2,
        "ok and flaky: one receipt each"
    );
    assert_eq!(shop.mail("Welcome").len(), 1);
}
on_both_backends!(sandbox_tokens, each_sandbox_token_runs_end_to_end);

async fn a_redelivered_job_captures_once_and_emails_once(backend: Backend) {
    let shop = shop(backend).await;
    let id = shop.order_id("sandbox_ok").await;
    shop.wait_for(&id, |o| o["status"] == "PAID").await;
    shop.wait_for_mail("Payment received", 1).await;

    // Deliver both of the order's first jobs again, as a crashed worker's
    // redelivery would.
    let rows = outbox::Entity::find()
        .filter(outbox::Column::JobName.is_in([SettlePayment::NAME, SendEmail::NAME]))
        .all(&shop.app.state.db)
        .await
        .expect("outbox");
    let txn = entity::db::begin_write(&shop.app.state.db).await.expect("begin");
    for row in rows {
        entity::outbox::enqueue_raw(&txn, &row.job_name, row.payload)
            .await
            .expect("again");
    }
    txn.commit().await.expect("commit");
    shop.app.state.kicker.kick();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let order = shop.order(&id).await;
    assert_eq!(order["payment"]["attempts"], 1, "no second capture");
    assert_eq!(shop.mail("Payment received").len(), 1, "no second receipt");
    assert_eq!(shop.mail("Order ").len(), 1, "no second confirmation");
    assert_eq!(shop.mail("Welcome").len(), 1);
}
on_both_backends!(redelivery, a_redelivered_job_captures_once_and_emails_once);
