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
