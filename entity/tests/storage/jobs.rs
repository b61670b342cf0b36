//! The rules behind the worker's jobs: settlement, email delivery claims,
//! the outbox's due rows and dead jobs.
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use entity::accounts::Email;
use entity::actor::Actor;
use entity::catalog::Quantity;
use entity::ids::{OrderId, PaymentId};
use entity::jobs::{
    EmailMessage, Envelope, Job, JobOutcome, QueueName, ReleasePayment, SendEmail, SettlePayment,
};
use entity::money::Money;
use entity::notifications::{Claim, claim_delivery, delivery_failed, delivery_sent};
use entity::orders::{IdempotencyKey, OrderLineRequest, OrderRequest, OrderStatus, place_order};
use entity::payments::{
    GatewayError, PaymentGateway, PaymentStatus, PaymentToken, SandboxGateway, release_payment,
    settle_payment, tokens,
};
use entity::tables::{orders, outbox, payments, products};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use testkit::{Backend, TestDb};

use crate::helpers::{insert_product, insert_user};
use testkit::on_both_backends;

/// The sandbox, counting captures.
#[derive(Default)]
struct CountingGateway {
    sandbox: SandboxGateway,
    captures: AtomicU32,
    refunds: AtomicU32,
}

#[async_trait]
impl PaymentGateway for CountingGateway {
    async fn authorize(&self, token: &PaymentToken, amount: Money) -> Result<String, GatewayError> {
        self.sandbox.authorize(token, amount).await
    }
    async fn capture(&self, reference: &str, amount: Money, attempt: u32) -> Result<(), GatewayError> {
        self.captures.fetch_add(1, Ordering::SeqCst);
        self.sandbox.capture(reference, amount, attempt).await
    }
    async fn void(&self, reference: &str) -> Result<(), GatewayError> {
        self.sandbox.void(reference).await
    }
    async fn refund(&self, reference: &str, amount: Money, key: &str) -> Result<(), GatewayError> {
        self.refunds.fetch_add(1, Ordering::SeqCst);
        self.sandbox.refund(reference, amount, key).await
    }
}

struct Placed {
    order: orders::Model,
    payment: payments::Model,
    product: products::Model,
    user: Actor,
}

async fn placed_order(db: &TestDb, gateway: &dyn PaymentGateway, token: &str) -> Placed {
    let product = insert_product(&db.conn, 5, true).await;
    let user = insert_user(
        &db.conn,
        &format!("{}@example.com", uuid::Uuid::now_v7().simple()),
    )
    .await;
    let request = OrderRequest {
        lines: vec![OrderLineRequest {
            product_id: product.id,
            variant_id: None,
            quantity: Quantity::parse(2).expect("qty"),
        }],
        payment_token: PaymentToken::parse(token).expect("token"),
        idempotency_key: IdempotencyKey::parse("k").expect("key"),
    };
    let placed = place_order(&db.conn, gateway, user.id, request, None)
        .await
        .expect("placed");
    let payment = payments::Entity::find()
        .filter(payments::Column::OrderId.eq(placed.order.id))
        .one(&db.conn)
        .await
        .expect("query")
        .expect("payment");
    Placed {
        order: placed.order,
        payment,
        product,
        user: Actor {
            user_id: user.id,
            role: user.role,
        },
    }
}

fn job(placed: &Placed) -> SettlePayment {
    SettlePayment {
        payment_id: placed.payment.id,
        order_id: placed.order.id,
        request_id: None,
    }
}

async fn state(db: &TestDb, placed: &Placed) -> (OrderStatus, PaymentStatus, i32, Option<String>, i32) {
    let order = orders::Entity::find_by_id(placed.order.id)
        .one(&db.conn)
        .await
        .expect("q")
        .expect("order");
    let payment = payments::Entity::find_by_id(placed.payment.id)
        .one(&db.conn)
        .await
        .expect("q")
        .expect("payment");
    let stock = crate::helpers::variant_stock(&db.conn, crate::helpers::variant_of(placed.product.id)).await;
    (
        order.status,
        payment.status,
        payment.attempts,
        payment.last_error,
        stock,
    )
}

async fn emails_queued(db: &TestDb, template: &str) -> usize {
    let rows = outbox::Entity::find().all(&db.conn).await.expect("outbox");
    rows.into_iter()
        .filter_map(|r| serde_json::from_value::<SendEmail>(r.payload).ok())
        .filter(|job| job.message.template() == template)
        .count()
}

const TIMEOUT: Duration = Duration::from_millis(200);
const HOUR: Duration = Duration::from_secs(3600);

async fn each_sandbox_token_settles_as_documented(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    // The sandbox's own hang stands in for the adapter's timeout.
    let gateway = SandboxGateway {
        timeout_after: TIMEOUT,
    };

    let ok = placed_order(&db, &gateway, tokens::OK).await;
    assert_eq!(
        settle_payment(&db.conn, &gateway, &job(&ok))
            .await
            .expect("settle"),
        JobOutcome::Done
    );
    assert_eq!(
        state(&db, &ok).await,
        (OrderStatus::Paid, PaymentStatus::Settled, 1, None, 3)
    );
    assert_eq!(emails_queued(&db, "payment_receipt").await, 1);
    let again = settle_payment(&db.conn, &gateway, &job(&ok))
        .await
        .expect("settle");
    assert_eq!(again, JobOutcome::Done, "settling a settled payment is a no-op");
    assert_eq!(state(&db, &ok).await.2, 1, "and is not another attempt");

    let declined = placed_order(&db, &gateway, tokens::CAPTURE_DECLINED).await;
    assert_eq!(
        settle_payment(&db.conn, &gateway, &job(&declined))
            .await
            .expect("settle"),
        JobOutcome::Done
    );
    let (order, payment, attempts, error, stock) = state(&db, &declined).await;
    assert_eq!(
        (order, payment, attempts, stock),
        (OrderStatus::PaymentFailed, PaymentStatus::Failed, 1, 5)
    );
    assert!(error.unwrap_or_default().contains("declined"));
    assert_eq!(emails_queued(&db, "payment_failed").await, 1);

    let flaky = placed_order(&db, &gateway, tokens::FLAKY).await;
    for attempt in 1..=2 {
        let outcome = settle_payment(&db.conn, &gateway, &job(&flaky))
            .await
            .expect("settle");
        assert!(
            matches!(outcome, JobOutcome::Retry(_)),
            "attempt {attempt}: {outcome:?}"
        );
        assert_eq!(state(&db, &flaky).await.2, attempt);
    }
    assert_eq!(
        settle_payment(&db.conn, &gateway, &job(&flaky))
            .await
            .expect("settle"),
        JobOutcome::Done
    );
    assert_eq!(state(&db, &flaky).await.0, OrderStatus::Paid);

    let slow = placed_order(&db, &gateway, tokens::TIMEOUT).await;
    let outcome = settle_payment(&db.conn, &gateway, &job(&slow))
        .await
        .expect("settle");
    assert_eq!(outcome, JobOutcome::Retry("gateway timed out".into()));
    let (order, payment, attempts, error, _) = state(&db, &slow).await;
    assert_eq!(
        (order, payment, attempts, error.as_deref()),
        (
            OrderStatus::PendingPayment,
            PaymentStatus::Authorized,
            1,
            Some("gateway timed out")
        )
    );
}
on_both_backends!(settlement_tokens, each_sandbox_token_settles_as_documented);

/// Runs the `release_payment.v1` job the cancellation of `placed` wrote to
/// the outbox, as the worker would.
async fn release(db: &TestDb, gateway: &dyn PaymentGateway, placed: &Placed) -> JobOutcome {
    let row = outbox::Entity::find()
        .filter(outbox::Column::JobName.eq(ReleasePayment::NAME))
        .all(&db.conn)
        .await
        .expect("outbox")
        .into_iter()
        .find(|row| row.payload["order_id"] == serde_json::json!(placed.order.id))
        .expect("the cancellation wrote a release job");
    let job: ReleasePayment = serde_json::from_value(row.payload).expect("payload");
    release_payment(&db.conn, gateway, &job).await.expect("release")
}

async fn a_cancelled_order_is_never_captured_and_a_late_capture_is_refunded(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let gateway = CountingGateway::default();

    let waiting = placed_order(&db, &gateway, tokens::OK).await;
    entity::orders::cancel_order(&db.conn, waiting.user, waiting.order.id, None)
        .await
        .expect("cancel");
    assert_eq!(release(&db, &gateway, &waiting).await, JobOutcome::Done);
    assert_eq!(
        settle_payment(&db.conn, &gateway, &job(&waiting))
            .await
            .expect("settle"),
        JobOutcome::Done
    );
    assert_eq!(
        gateway.captures.load(Ordering::SeqCst),
        0,
        "a cancelled order is never captured"
    );
    assert_eq!(state(&db, &waiting).await.1, PaymentStatus::Voided);

    let settled = placed_order(&db, &gateway, tokens::OK).await;
    settle_payment(&db.conn, &gateway, &job(&settled))
        .await
        .expect("settle");
    let cancelled = entity::orders::cancel_order(&db.conn, settled.user, settled.order.id, None).await;
    assert_eq!(
        cancelled.expect("cancel after capture").status,
        OrderStatus::Cancelled
    );
    assert_eq!(release(&db, &gateway, &settled).await, JobOutcome::Done);
    assert_eq!(
        release(&db, &gateway, &settled).await,
        JobOutcome::Done,
        "a redelivered release is a no-op"
    );
    assert_eq!(state(&db, &settled).await.1, PaymentStatus::Refunded);
    assert_eq!(gateway.refunds.load(Ordering::SeqCst), 1);
    assert_eq!(emails_queued(&db, "order_cancelled").await, 2);
}
on_both_backends!(
    settlement_races,
    a_cancelled_order_is_never_captured_and_a_late_capture_is_refunded
);

async fn one_email_per_dedupe_key(backend: Backend) {
    let db = Arc::new(TestDb::migrated(backend).await);
    let email = SendEmail {
        dedupe_key: "welcome:1".into(),
        to: Email::parse("ada@example.com").expect("valid"),
        message: EmailMessage::Welcome { name: "Ada".into() },
        request_id: None,
    };

    let claims = (0..10).map(|_| {
        let (db, email) = (Arc::clone(&db), email.clone());
        tokio::spawn(async move {
            claim_delivery(&db.conn, &email, Duration::from_secs(60))
                .await
                .expect("claim")
        })
    });
    let claims: Vec<Claim> = futures::future::join_all(claims)
        .await
        .into_iter()
        .map(|r| r.expect("ran"))
        .collect();
    assert_eq!(
        claims.iter().filter(|c| matches!(c, Claim::Send(_))).count(),
        1,
        "one sender at a time"
    );
    assert!(
        claims
            .iter()
            .all(|c| matches!(c, Claim::Send(_) | Claim::Busy { .. }))
    );
    let lease_ends = chrono::Utc::now() + chrono::Duration::seconds(60);
    for claim in &claims {
        if let Claim::Busy { until } = claim {
            let off = (*until - lease_ends).num_seconds().abs();
            assert!(
                off <= 5,
                "a busy claim says when the holder's lease ends: {until}"
            );
        }
    }

    delivery_failed(&db.conn, &email.dedupe_key, "450 try later", false)
        .await
        .expect("failed");
    assert!(
        matches!(
            claim_delivery(&db.conn, &email, Duration::from_secs(60))
                .await
                .expect("claim"),
            Claim::Send(_)
        ),
        "a transient failure may be retried"
    );
    delivery_sent(&db.conn, &email.dedupe_key).await.expect("sent");
    assert_eq!(
        claim_delivery(&db.conn, &email, Duration::from_secs(60))
            .await
            .expect("claim"),
        Claim::AlreadySent
    );
}
on_both_backends!(email_claims, one_email_per_dedupe_key);

async fn retries_wait_in_the_outbox_and_dead_jobs_come_back(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let first = entity::outbox::enqueue(
        &db.conn,
        &SettlePayment {
            payment_id: PaymentId(uuid::Uuid::nil()),
            order_id: OrderId(uuid::Uuid::nil()),
            request_id: None,
        },
    )
    .await
    .expect("enqueue");

    let grace = Duration::from_secs(3);
    let claim = |grace, lost_after| entity::outbox::claim_due(&db.conn, grace, lost_after, 10, None);
    assert!(
        claim(grace, HOUR).await.expect("claim").is_empty(),
        "the api pushes fresh rows itself"
    );
    let swept = claim(Duration::ZERO, HOUR).await.expect("claim");
    assert_eq!(
        swept.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![first.id],
        "left over after the grace: swept"
    );
    assert!(swept[0].dispatched_at.is_some(), "claimed rows come back marked");
    assert!(
        claim(Duration::ZERO, HOUR).await.expect("claim").is_empty(),
        "a claimed row is not claimed again"
    );

    entity::outbox::release_claim(&db.conn, &[first.id], "redis: connection refused")
        .await
        .expect("release");
    let again = claim(Duration::ZERO, HOUR).await.expect("claim");
    assert_eq!(again.len(), 1, "a row whose push failed is due again at once");
    assert_eq!(
        (again[0].dispatch_attempts, again[0].last_error.as_deref()),
        (1, Some("redis: connection refused"))
    );

    let envelope = entity::outbox::envelope(&first);
    let lost = claim(grace, Duration::ZERO).await.expect("claim");
    assert_eq!(
        lost.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![first.id],
        "dispatched, never completed: pushed again"
    );
    assert_eq!(
        entity::outbox::complete_many(&db.conn, &[first.id, first.id])
            .await
            .expect("complete"),
        1
    );
    let completed_at = |db: &TestDb| {
        let conn = db.conn.clone();
        async move {
            outbox::Entity::find_by_id(first.id)
                .one(&conn)
                .await
                .expect("read")
                .expect("row")
                .completed_at
        }
    };
    let first_completion = completed_at(&db).await;
    assert!(first_completion.is_some());
    tokio::time::sleep(Duration::from_millis(5)).await;
    entity::outbox::complete_many(&db.conn, &[first.id])
        .await
        .expect("complete again");
    assert_eq!(
        completed_at(&db).await,
        first_completion,
        "a redelivered job's completion keeps the first"
    );
    assert!(claim(grace, Duration::ZERO).await.expect("claim").is_empty());
    let later = entity::outbox::enqueue_retry(&db.conn, &envelope, Duration::from_secs(60))
        .await
        .expect("retry");
    let soon = entity::outbox::enqueue_retry(&db.conn, &envelope, Duration::ZERO)
        .await
        .expect("retry");
    let email = entity::outbox::enqueue_retry(
        &db.conn,
        &Envelope {
            job_name: SendEmail::NAME.to_owned(),
            ..envelope.clone()
        },
        Duration::ZERO,
    )
    .await
    .expect("retry");
    let emails: Vec<_> = entity::outbox::claim_due(&db.conn, grace, HOUR, 10, Some(QueueName::Emails))
        .await
        .expect("claim emails")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        emails,
        vec![email.id],
        "a claim for one queue takes only its jobs"
    );
    let due: Vec<_> = claim(grace, HOUR)
        .await
        .expect("claim")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        due,
        vec![soon.id],
        "a retry is due after its backoff, with no grace"
    );
    assert_eq!((later.attempt, soon.attempt), (2, 2));
    assert_eq!(
        entity::outbox::backlog(&db.conn).await.expect("backlog"),
        1,
        "the retry not due yet; the claimed ones are dispatched"
    );

    let dead = entity::dead_jobs::bury(&db.conn, &entity::outbox::envelope(&soon), "gateway timed out")
        .await
        .expect("bury");
    let page = entity::dead_jobs::list(&db.conn, None, 10).await.expect("list");
    assert_eq!(
        page.items.iter().map(|d| (d.id, d.attempts)).collect::<Vec<_>>(),
        vec![(dead.id, 2)]
    );
    let txn = entity::db::begin_write(&db.conn).await.expect("begin");
    let revived = entity::dead_jobs::retry(&txn, dead.id).await.expect("retry");
    txn.commit().await.expect("commit");
    assert_eq!(
        (revived.attempt, revived.job_name.as_str()),
        (1, "settle_payment.v1")
    );
    assert!(matches!(
        entity::dead_jobs::retry(&db.conn, dead.id).await,
        Err(entity::DomainError::NotFound { .. })
    ));
}
on_both_backends!(
    outbox_and_dead_jobs,
    retries_wait_in_the_outbox_and_dead_jobs_come_back
);
