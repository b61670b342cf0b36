use std::sync::Arc;

use entity::DomainError;
use entity::orders::{OrderStatus, transition};
use entity::tables::orders;
use sea_orm::{EntityTrait, Iterable};
use testkit::{Backend, TestDb};

use crate::helpers::{insert_order, insert_user};
use testkit::on_both_backends;

async fn stored_status(db: &TestDb, id: entity::ids::OrderId) -> OrderStatus {
    orders::Entity::find_by_id(id)
        .one(&db.conn)
        .await
        .expect("query")
        .expect("exists")
        .status
}

async fn every_transition_is_applied_or_refused_in_the_database(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let user = insert_user(&db.conn, "buyer@example.com").await;
    for from in OrderStatus::iter() {
        for to in OrderStatus::iter() {
            let order = insert_order(&db.conn, user.id, from).await;
            let result = transition(&db.conn, order.id, to).await;
            if from.can_become(to) {
                let updated = result.unwrap_or_else(|e| panic!("{from} -> {to} must succeed: {e}"));
                assert_eq!(updated.status, to);
                assert_eq!(stored_status(&db, order.id).await, to);
            } else {
                assert!(
                    matches!(result, Err(DomainError::IllegalTransition { from: f, to: t }) if f == from && t == to),
                    "{from} -> {to} must be refused"
                );
                assert_eq!(
                    stored_status(&db, order.id).await,
                    from,
                    "a refused move writes nothing"
                );
            }
        }
    }
    let missing = transition(&db.conn, entity::ids::OrderId::new(), OrderStatus::Paid).await;
    assert!(matches!(missing, Err(DomainError::NotFound { entity: "order" })));
}
on_both_backends!(
    transitions,
    every_transition_is_applied_or_refused_in_the_database
);

async fn racing_outcomes_for_one_order_have_exactly_one_winner(backend: Backend) {
    let db = Arc::new(TestDb::migrated(backend).await);
    let user = insert_user(&db.conn, "racer@example.com").await;
    let order = insert_order(&db.conn, user.id, OrderStatus::PendingPayment).await;

    let attempts = (0..20).map(|i| {
        let db = Arc::clone(&db);
        let to = if i % 2 == 0 {
            OrderStatus::Paid
        } else {
            OrderStatus::PaymentFailed
        };
        tokio::spawn(async move { transition(&db.conn, order.id, to).await.map(|o| o.status) })
    });
    let results: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("ran"))
        .collect();

    let winners: Vec<OrderStatus> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
    assert_eq!(
        winners.len(),
        1,
        "settled and failed cannot both happen: {results:?}"
    );
    assert_eq!(stored_status(&db, order.id).await, winners[0]);
    assert!(
        results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(DomainError::IllegalTransition { .. })))
    );
}
on_both_backends!(
    racing_transitions,
    racing_outcomes_for_one_order_have_exactly_one_winner
);

mod placing {
    use std::sync::Arc;

    use entity::DomainError;
    use entity::catalog::Quantity;
    use entity::ids::{ProductId, UserId};
    use entity::orders::{IdempotencyKey, OrderLineRequest, OrderRequest, PlacedOrder, place_order};
    use entity::payments::{PaymentStatus, PaymentToken, SandboxGateway};
    use entity::tables::{order_lines, outbox, payments, stock_movements};
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
    use testkit::{Backend, TestDb, on_both_backends};

    use crate::helpers::{insert_product, insert_user};

    fn request(lines: &[(ProductId, i32)], key: &str) -> OrderRequest {
        OrderRequest {
            lines: lines
                .iter()
                .map(|&(product_id, quantity)| OrderLineRequest {
                    product_id,
                    variant_id: None,
                    quantity: Quantity::parse(quantity).expect("quantity"),
                })
                .collect(),
            payment_token: PaymentToken::parse("sandbox_ok").expect("token"),
            idempotency_key: IdempotencyKey::parse(key).expect("key"),
        }
    }

    async fn place(
        db: &TestDb,
        user_id: UserId,
        lines: &[(ProductId, i32)],
        key: &str,
    ) -> Result<PlacedOrder, DomainError> {
        place_order(
            &db.conn,
            &SandboxGateway::default(),
            user_id,
            request(lines, key),
            None,
        )
        .await
    }

    async fn stock(db: &TestDb, id: ProductId) -> i32 {
        crate::helpers::variant_stock(&db.conn, crate::helpers::variant_of(id)).await
    }

    async fn an_order_writes_its_lines_in_request_order_its_payment_and_two_jobs(backend: Backend) {
        let db = TestDb::migrated(backend).await;
        let user = insert_user(&db.conn, "buyer@example.com").await;
        let first = insert_product(&db.conn, 10, true).await;
        let second = insert_product(&db.conn, 10, true).await;
        // Asked for in the reverse of product id order (ids are time-ordered).
        let lines = [(second.id, 3), (first.id, 1), (second.id, 1)];

        let placed = place(&db, user.id, &lines, "k-1").await.expect("placed");

        assert!(placed.created);
        assert_eq!(placed.order.total_minor, 5 * 1999);
        let stored: Vec<(ProductId, i32)> = order_lines::Entity::find()
            .filter(order_lines::Column::OrderId.eq(placed.order.id))
            .order_by_asc(order_lines::Column::Id)
            .all(&db.conn)
            .await
            .expect("lines")
            .into_iter()
            .map(|l| (l.product_id, l.quantity))
            .collect();
        assert_eq!(
            stored,
            vec![(second.id, 4), (first.id, 1)],
            "merged, in the order asked"
        );
        let reserved: Vec<(ProductId, i32)> =
            placed.reserved.iter().map(|v| (v.product_id, v.stock)).collect();
        assert_eq!(
            reserved,
            vec![(first.id, 9), (second.id, 6)],
            "stock as committed, by variant id"
        );
        assert_eq!((stock(&db, first.id).await, stock(&db, second.id).await), (9, 6));
        let movements = stock_movements::Entity::find()
            .filter(stock_movements::Column::OrderId.eq(placed.order.id))
            .count(&db.conn)
            .await
            .expect("movements");
        assert_eq!(movements, 2);
        let payment = payments::Entity::find()
            .filter(payments::Column::OrderId.eq(placed.order.id))
            .one(&db.conn)
            .await
            .expect("query")
            .expect("payment");
        assert_eq!(
            (payment.status, payment.amount_minor),
            (PaymentStatus::Authorized, 5 * 1999)
        );
        let jobs: Vec<(String, serde_json::Value)> = outbox::Entity::find()
            .order_by_asc(outbox::Column::Id)
            .all(&db.conn)
            .await
            .expect("outbox")
            .into_iter()
            .map(|row| (row.job_name, row.payload))
            .collect();
        assert_eq!(jobs.len(), 2, "{jobs:?}");
        assert_eq!(jobs[0].0, "settle_payment.v1");
        assert_eq!(jobs[1].0, "send_email.v1");
        assert_eq!(
            jobs[1].1["to"], "buyer@example.com",
            "the confirmation goes to the customer"
        );
    }
    on_both_backends!(
        writes,
        an_order_writes_its_lines_in_request_order_its_payment_and_two_jobs
    );

    async fn the_same_key_returns_the_first_order_and_reserves_nothing_twice(backend: Backend) {
        let db = TestDb::migrated(backend).await;
        let user = insert_user(&db.conn, "buyer@example.com").await;
        let other = insert_user(&db.conn, "other@example.com").await;
        let product = insert_product(&db.conn, 10, true).await;

        let first = place(&db, user.id, &[(product.id, 2)], "same")
            .await
            .expect("placed");
        let again = place(&db, user.id, &[(product.id, 2)], "same")
            .await
            .expect("answered");
        let someone_else = place(&db, other.id, &[(product.id, 2)], "same")
            .await
            .expect("placed");

        assert!(first.created && !again.created && someone_else.created);
        assert_eq!(again.order.id, first.order.id);
        assert!(again.reserved.is_empty());
        assert_ne!(someone_else.order.id, first.order.id, "keys are per customer");
        assert_eq!(stock(&db, product.id).await, 6);
        let gone = place(&db, UserId::new(), &[(product.id, 1)], "k").await;
        assert!(
            matches!(gone, Err(DomainError::NotFound { entity: "user" })),
            "{gone:?}"
        );
    }
    on_both_backends!(
        idempotency,
        the_same_key_returns_the_first_order_and_reserves_nothing_twice
    );

    /// The order's rows are written in one statement on PostgreSQL and the
    /// reservation with its movement in another: each movement says what
    /// its `UPDATE` did, and an order refused for its last line's stock
    /// leaves no trace (no order, payment, job, line, movement, reservation).
    async fn an_order_refused_for_stock_writes_nothing_and_a_placed_one_records_each_movement(
        backend: Backend,
    ) {
        let db = TestDb::migrated(backend).await;
        let user = insert_user(&db.conn, "buyer@example.com").await;
        let plenty = insert_product(&db.conn, 10, true).await;
        let scarce = insert_product(&db.conn, 1, true).await;

        let refused = place(&db, user.id, &[(plenty.id, 2), (scarce.id, 2)], "too-many").await;
        let placed = place(&db, user.id, &[(plenty.id, 2), (scarce.id, 1)], "enough")
            .await
            .expect("placed");

        assert!(
            matches!(
                refused,
                Err(DomainError::OutOfStock {
                    requested: 2,
                    available: 1,
                    ..
                })
            ),
            "{refused:?}"
        );
        assert_eq!((stock(&db, plenty.id).await, stock(&db, scarce.id).await), (8, 0));
        let count = |n: u64, what: &str| assert_eq!(n, 1, "{what}: only the placed order's");
        count(
            entity::tables::orders::Entity::find()
                .count(&db.conn)
                .await
                .expect("orders"),
            "orders",
        );
        count(
            payments::Entity::find().count(&db.conn).await.expect("payments"),
            "payments",
        );
        assert_eq!(outbox::Entity::find().count(&db.conn).await.expect("outbox"), 2);
        assert_eq!(
            order_lines::Entity::find().count(&db.conn).await.expect("lines"),
            2
        );
        let movements: Vec<_> = stock_movements::Entity::find()
            .order_by_asc(stock_movements::Column::StockAfter)
            .all(&db.conn)
            .await
            .expect("movements")
            .into_iter()
            .map(|m| {
                (
                    m.product_id,
                    m.variant_id,
                    m.order_id,
                    m.delta,
                    m.stock_after,
                    m.reason,
                )
            })
            .collect();
        let variant = crate::helpers::variant_of;
        let reserved = |product: ProductId, delta, after| {
            (
                product,
                variant(product),
                Some(placed.order.id),
                delta,
                after,
                "order reserved".to_owned(),
            )
        };
        assert_eq!(
            movements,
            vec![reserved(scarce.id, -1, 0), reserved(plenty.id, -2, 8)]
        );
    }
    on_both_backends!(
        refused_for_stock,
        an_order_refused_for_stock_writes_nothing_and_a_placed_one_records_each_movement
    );

    /// Half the orders list two products one way round, half the other: were
    /// stock reserved in the order asked, PostgreSQL would find deadlocks
    /// (and abort orders with a database error) instead of making them wait.
    async fn orders_sharing_products_in_any_order_neither_deadlock_nor_oversell(backend: Backend) {
        let db = Arc::new(TestDb::migrated(backend).await);
        let a = insert_product(&db.conn, 15, true).await;
        let b = insert_product(&db.conn, 15, true).await;
        let emails: Vec<String> = (0..30).map(|i| format!("racer{i}@example.com")).collect();
        let users = futures::future::join_all(emails.iter().map(|email| insert_user(&db.conn, email))).await;

        let attempts = users.iter().enumerate().map(|(i, user)| {
            let db = Arc::clone(&db);
            let lines = if i % 2 == 0 {
                [(a.id, 1), (b.id, 1)]
            } else {
                [(b.id, 1), (a.id, 1)]
            };
            let user_id = user.id;
            tokio::spawn(async move { place(&db, user_id, &lines, "race").await })
        });
        let outcomes: Vec<_> = futures::future::join_all(attempts)
            .await
            .into_iter()
            .map(|r| r.expect("task ran"))
            .collect();

        let placed = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(placed, 15, "exactly the stock on hand is sold");
        for outcome in outcomes.iter().filter(|o| o.is_err()) {
            assert!(
                matches!(outcome, Err(DomainError::OutOfStock { available: 0, .. })),
                "every other order is out of stock, got {outcome:?}"
            );
        }
        assert_eq!((stock(&db, a.id).await, stock(&db, b.id).await), (0, 0));
    }
    on_both_backends!(
        shared_products,
        orders_sharing_products_in_any_order_neither_deadlock_nor_oversell
    );
}

/// Fulfilling marks the order shipped and writes the customer's "on its
/// way" email to the outbox in the same transaction; a second fulfil is
/// refused and writes nothing.
async fn fulfilling_an_order_emails_its_customer_once(backend: Backend) {
    use entity::actor::Actor;
    use entity::jobs::{EmailMessage, Job, SendEmail};
    use entity::tables::outbox;
    use sea_orm::{ColumnTrait, QueryFilter};

    let db = TestDb::migrated(backend).await;
    let user = insert_user(&db.conn, "shipped@example.com").await;
    let order = insert_order(&db.conn, user.id, OrderStatus::Paid).await;

    let shipped = entity::orders::fulfill_order(&db.conn, Actor::system(), order.id, None)
        .await
        .expect("fulfilled");
    assert_eq!(shipped.status, OrderStatus::Fulfilled);
    assert!(matches!(
        entity::orders::fulfill_order(&db.conn, Actor::system(), order.id, None).await,
        Err(DomainError::IllegalTransition { .. })
    ));

    let emails: Vec<SendEmail> = outbox::Entity::find()
        .filter(outbox::Column::JobName.eq(SendEmail::NAME))
        .all(&db.conn)
        .await
        .expect("outbox")
        .into_iter()
        .map(|row| serde_json::from_value(row.payload).expect("payload"))
        .collect();
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert_eq!(
        emails[0].message,
        EmailMessage::OrderShipped { order_id: order.id }
    );
    assert_eq!(emails[0].dedupe_key, format!("order-shipped:{}", order.id));
    assert_eq!(emails[0].to.as_str(), "shipped@example.com");
}
on_both_backends!(fulfil_emails, fulfilling_an_order_emails_its_customer_once);

/// The shop's tax mode is exclusive until set, and every process reads the
/// same one from the database.
async fn the_tax_mode_is_a_shop_setting(backend: Backend) {
    use entity::pricing::TaxMode;

    let db = TestDb::migrated(backend).await;
    assert_eq!(
        entity::shop::tax_mode(&db.conn).await.expect("read"),
        TaxMode::Exclusive
    );
    entity::shop::set_tax_mode(&db.conn, TaxMode::Inclusive)
        .await
        .expect("set");
    assert_eq!(
        entity::shop::tax_mode(&db.conn).await.expect("read"),
        TaxMode::Inclusive
    );
}
on_both_backends!(tax_mode, the_tax_mode_is_a_shop_setting);
