//! Partial refunds: never more than was captured, never a unit twice, the
//! gateway asked once per refund, stock back when asked.
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use entity::DomainError;
use entity::catalog::Quantity;
use entity::db::begin_write;
use entity::jobs::{JobOutcome, RefundPayment, SettlePayment};
use entity::money::Money;
use entity::orders::{IdempotencyKey, OrderLineRequest, OrderRequest, place_order};
use entity::payments::refund::{RefundRequest, RefundScope, complete_refund, request_refund};
use entity::payments::{
    GatewayError, PaymentGateway, PaymentStatus, PaymentToken, SandboxGateway, settle_payment,
};
use entity::tables::refunds::RefundStatus;
use entity::tables::{order_lines, outbox, payments, products, refunds};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use testkit::{Backend, TestDb, on_both_backends};

use crate::helpers::{insert_product, insert_user};

/// The sandbox, counting refunds and the keys they came with; refuses
/// refunds when `refuse` is set.
#[derive(Default)]
struct RefundingGateway {
    sandbox: SandboxGateway,
    refunds: AtomicU32,
    refuse: bool,
}

#[async_trait]
impl PaymentGateway for RefundingGateway {
    async fn authorize(&self, token: &PaymentToken, amount: Money) -> Result<String, GatewayError> {
        self.sandbox.authorize(token, amount).await
    }
    async fn capture(&self, reference: &str, amount: Money, attempt: u32) -> Result<(), GatewayError> {
        self.sandbox.capture(reference, amount, attempt).await
    }
    async fn void(&self, reference: &str) -> Result<(), GatewayError> {
        self.sandbox.void(reference).await
    }
    async fn refund(&self, reference: &str, amount: Money, key: &str) -> Result<(), GatewayError> {
        self.refunds.fetch_add(1, Ordering::SeqCst);
        if self.refuse {
            return Err(GatewayError::Declined("refund refused by the bank".into()));
        }
        self.sandbox.refund(reference, amount, key).await
    }
}

struct Paid {
    order_id: entity::ids::OrderId,
    payment_id: entity::ids::PaymentId,
    line: order_lines::Model,
    product: products::Model,
}

/// A PAID order of 3 units at €19.99 (€59.97), its payment captured.
async fn paid_order(db: &TestDb, gateway: &dyn PaymentGateway) -> Paid {
    let product = insert_product(&db.conn, 10, true).await;
    let user = insert_user(&db.conn, "buyer@example.com").await;
    let request = OrderRequest {
        lines: vec![OrderLineRequest {
            product_id: product.id,
            variant_id: None,
            quantity: Quantity::parse(3).expect("qty"),
        }],
        payment_token: PaymentToken::parse("sandbox_ok").expect("token"),
        idempotency_key: IdempotencyKey::parse("refund-test").expect("key"),
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
    let settle = SettlePayment {
        payment_id: payment.id,
        order_id: placed.order.id,
        request_id: None,
    };
    assert_eq!(
        settle_payment(&db.conn, gateway, &settle).await.expect("settled"),
        JobOutcome::Done
    );
    let line = order_lines::Entity::find()
        .filter(order_lines::Column::OrderId.eq(placed.order.id))
        .one(&db.conn)
        .await
        .expect("query")
        .expect("line");
    let product = products::Entity::find_by_id(product.id)
        .one(&db.conn)
        .await
        .expect("query")
        .expect("product");
    Paid {
        order_id: placed.order.id,
        payment_id: payment.id,
        line,
        product,
    }
}

fn by_amount(paid: &Paid, minor: i64) -> RefundRequest {
    RefundRequest {
        order_id: paid.order_id,
        scope: RefundScope::Amount(minor),
        reason: "goodwill".into(),
        restock: false,
        request_id: None,
    }
}

fn by_lines(paid: &Paid, units: i32, restock: bool) -> RefundRequest {
    RefundRequest {
        order_id: paid.order_id,
        scope: RefundScope::Lines(vec![(paid.line.id, Quantity::parse(units).expect("qty"))]),
        reason: "returned".into(),
        restock,
        request_id: None,
    }
}

async fn in_own_transaction(db: &TestDb, request: &RefundRequest) -> Result<refunds::Model, DomainError> {
    let txn = begin_write(&db.conn).await?;
    let refund = request_refund(&txn, request).await?;
    txn.commit().await?;
    Ok(refund)
}

async fn stock(db: &TestDb, paid: &Paid) -> i32 {
    crate::helpers::variant_stock(&db.conn, crate::helpers::variant_of(paid.product.id)).await
}

fn refused_field(result: Result<refunds::Model, DomainError>) -> &'static str {
    match result {
        Err(DomainError::InvalidInput { field, .. }) => field,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn refunds_by_lines_and_amount_never_exceed_what_was_captured(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let gateway = RefundingGateway::default();
    let paid = paid_order(&db, &gateway).await;
    let stock_after_order = stock(&db, &paid).await;

    let two_units = in_own_transaction(&db, &by_lines(&paid, 2, true))
        .await
        .expect("refund");
    assert_eq!(
        two_units.amount_minor,
        2 * 1999,
        "units at the price they were sold for"
    );
    assert_eq!(two_units.status, RefundStatus::Pending);
    assert_eq!(stock(&db, &paid).await, stock_after_order + 2, "restocked");
    assert_eq!(
        refused_field(in_own_transaction(&db, &by_lines(&paid, 2, false)).await),
        "lines",
        "only one unit is left to refund"
    );
    assert_eq!(
        refused_field(in_own_transaction(&db, &by_amount(&paid, 2000)).await),
        "amountMinor",
        "€19.99 is left, not €20.00"
    );
    assert_eq!(
        refused_field(in_own_transaction(&db, &by_amount(&paid, 0)).await),
        "amountMinor"
    );
    let rest = in_own_transaction(&db, &by_amount(&paid, 1999))
        .await
        .expect("the rest");
    assert_eq!(
        stock(&db, &paid).await,
        stock_after_order + 2,
        "an amount restocks nothing"
    );

    let jobs = outbox::Entity::find()
        .filter(outbox::Column::JobName.eq("refund_payment.v1"))
        .all(&db.conn)
        .await
        .expect("query");
    assert_eq!(jobs.len(), 2, "one job per refund, written with it");

    for refund in [&two_units, &rest] {
        let job = RefundPayment {
            refund_id: refund.id,
            order_id: paid.order_id,
            request_id: None,
        };
        assert_eq!(
            complete_refund(&db.conn, &gateway, &job).await.expect("ran"),
            JobOutcome::Done
        );
        assert_eq!(
            complete_refund(&db.conn, &gateway, &job)
                .await
                .expect("ran again"),
            JobOutcome::Done,
            "a redelivered job is a no-op"
        );
    }
    assert_eq!(
        gateway.refunds.load(Ordering::SeqCst),
        2,
        "the gateway asked once per refund"
    );
    let payment = payments::Entity::find_by_id(paid.payment_id)
        .one(&db.conn)
        .await
        .expect("query")
        .expect("payment");
    assert_eq!(
        payment.status,
        PaymentStatus::Refunded,
        "nothing left: fully refunded"
    );
    let emails = outbox::Entity::find()
        .filter(outbox::Column::JobName.eq("send_email.v1"))
        .all(&db.conn)
        .await
        .expect("query")
        .into_iter()
        .filter(|row| row.payload.to_string().contains("refund_issued"))
        .count();
    assert_eq!(emails, 2, "a refund email per refund");
    assert_eq!(
        refused_field(in_own_transaction(&db, &by_amount(&paid, 1)).await),
        "id",
        "a refunded payment has nothing left"
    );
}
on_both_backends!(
    partial_refunds,
    refunds_by_lines_and_amount_never_exceed_what_was_captured
);

async fn racing_refunds_give_back_at_most_the_captured_amount(backend: Backend) {
    let db = Arc::new(TestDb::migrated(backend).await);
    let gateway = RefundingGateway::default();
    let paid = paid_order(&db, &gateway).await;

    // 10 admins each refund €20.00 of €59.97 at once: two fit.
    let attempts = (0..10).map(|_| {
        let db = Arc::clone(&db);
        let request = by_amount(&paid, 2000);
        tokio::spawn(async move { in_own_transaction(&db, &request).await })
    });
    let outcomes: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("ran"))
        .collect();

    assert_eq!(outcomes.iter().filter(|r| r.is_ok()).count(), 2, "{outcomes:?}");
    let written = refunds::Entity::find()
        .filter(refunds::Column::PaymentId.eq(paid.payment_id))
        .all(&db.conn)
        .await
        .expect("query");
    assert_eq!(written.iter().map(|r| r.amount_minor).sum::<i64>(), 4000);
}
on_both_backends!(
    racing_refunds,
    racing_refunds_give_back_at_most_the_captured_amount
);

async fn a_refused_refund_fails_and_its_amount_can_be_refunded_again(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let refusing = RefundingGateway {
        refuse: true,
        ..RefundingGateway::default()
    };
    let paid = paid_order(&db, &refusing).await;
    let refund = in_own_transaction(&db, &by_amount(&paid, 5997))
        .await
        .expect("refund");
    let job = RefundPayment {
        refund_id: refund.id,
        order_id: paid.order_id,
        request_id: None,
    };

    let outcome = complete_refund(&db.conn, &refusing, &job).await.expect("ran");

    assert!(matches!(outcome, JobOutcome::Fail(_)), "{outcome:?}");
    let stored = refunds::Entity::find_by_id(refund.id)
        .one(&db.conn)
        .await
        .expect("query")
        .expect("refund");
    assert_eq!(stored.status, RefundStatus::Failed);
    assert!(
        stored
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("refused by the bank"))
    );
    in_own_transaction(&db, &by_amount(&paid, 5997))
        .await
        .expect("a failed refund's amount is refundable again");
}
on_both_backends!(
    refused_refund,
    a_refused_refund_fails_and_its_amount_can_be_refunded_again
);
