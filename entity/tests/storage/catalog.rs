use std::sync::Arc;

use entity::DomainError;
use entity::catalog::{AdjustmentReason, Quantity, StockDelta, adjust_stock, reserve_stock, return_stock};
use entity::db::begin_write;
use entity::ids::{ProductId, UserId};
use entity::tables::stock_movements;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, TransactionTrait};
use testkit::{Backend, TestDb};

use entity::orders::OrderStatus;

use crate::helpers::{insert_order, insert_product, insert_user, variant_of, variant_stock};
use testkit::on_both_backends;

fn qty(n: i32) -> Quantity {
    Quantity::parse(n).expect("valid quantity")
}

fn delta(n: i32) -> StockDelta {
    StockDelta::parse(n).expect("valid delta")
}

fn reason(text: &str) -> AdjustmentReason {
    AdjustmentReason::parse(text).expect("valid reason")
}

/// Each attempt writes its order and reserves in one write transaction, as
/// `placeOrder` does.
async fn reserve_in_own_transaction(
    db: &TestDb,
    user_id: UserId,
    product_id: ProductId,
    quantity: i32,
) -> Result<i32, DomainError> {
    let txn = begin_write(&db.conn).await?;
    let order = insert_order(&txn, user_id, OrderStatus::PendingPayment).await;
    let product = reserve_stock(&txn, variant_of(product_id), qty(quantity), order.id).await?;
    txn.commit().await?;
    Ok(product.stock)
}

async fn stock_and_movements(db: &TestDb, product_id: ProductId) -> (i32, Vec<stock_movements::Model>) {
    let stock = variant_stock(&db.conn, variant_of(product_id)).await;
    let movements = stock_movements::Entity::find()
        .filter(stock_movements::Column::ProductId.eq(product_id))
        .order_by_asc(stock_movements::Column::Id)
        .all(&db.conn)
        .await
        .expect("query movements");
    (stock, movements)
}

/// Runs `quantities.len()` reservations at once and returns each outcome.
async fn race(
    db: &Arc<TestDb>,
    product_id: ProductId,
    quantities: &[i32],
) -> Vec<(i32, Result<i32, DomainError>)> {
    let user = insert_user(&db.conn, "racer@example.com").await;
    let attempts = quantities.iter().map(|&q| {
        let db = Arc::clone(db);
        tokio::spawn(async move { (q, reserve_in_own_transaction(&db, user.id, product_id, q).await) })
    });
    futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("task ran"))
        .collect()
}

async fn fifty_single_unit_reservations_sell_exactly_ten(backend: Backend) {
    let db = Arc::new(TestDb::migrated(backend).await);
    let product = insert_product(&db.conn, 10, true).await;

    let outcomes = race(&db, product.id, &[1; 50]).await;

    let succeeded = outcomes.iter().filter(|(_, r)| r.is_ok()).count();
    assert_eq!(succeeded, 10, "exactly the stock on hand is sold");
    for (_, outcome) in outcomes.iter().filter(|(_, r)| r.is_err()) {
        assert!(
            matches!(
                outcome,
                Err(DomainError::OutOfStock {
                    requested: 1,
                    available: 0,
                    ..
                })
            ),
            "every other attempt is out of stock, got {outcome:?}"
        );
    }
    let (stock, movements) = stock_and_movements(&db, product.id).await;
    assert_eq!(stock, 0);
    assert_eq!(movements.len(), 10, "one movement per successful reservation");
    assert!(movements.iter().all(|m| m.delta == -1 && m.order_id.is_some()));
    let mut after: Vec<i32> = movements.iter().map(|m| m.stock_after).collect();
    after.sort_unstable();
    assert_eq!(
        after,
        (0..10).collect::<Vec<_>>(),
        "each movement saw a distinct stock level"
    );
}
on_both_backends!(
    contention_single_units,
    fifty_single_unit_reservations_sell_exactly_ten
);

async fn mixed_quantity_reservations_never_oversell(backend: Backend) {
    let db = Arc::new(TestDb::migrated(backend).await);
    let product = insert_product(&db.conn, 25, true).await;
    let quantities: Vec<i32> = (0..48).map(|i| i % 4 + 1).collect(); // 120 units asked for 25

    let outcomes = race(&db, product.id, &quantities).await;

    let sold: i32 = outcomes.iter().filter(|(_, r)| r.is_ok()).map(|(q, _)| q).sum();
    let (stock, movements) = stock_and_movements(&db, product.id).await;
    assert!(sold <= 25, "sold {sold} of 25");
    assert_eq!(stock, 25 - sold, "stock on hand is what was not sold");
    assert_eq!(
        movements.len(),
        outcomes.iter().filter(|(_, r)| r.is_ok()).count()
    );
    assert_eq!(movements.iter().map(|m| m.delta).sum::<i32>(), -sold);
    for (q, outcome) in &outcomes {
        if let Err(err) = outcome {
            let DomainError::OutOfStock {
                requested, available, ..
            } = err
            else {
                panic!("unexpected error {err:?}");
            };
            assert_eq!(requested, q);
            assert!(available < q, "refused {q} while {available} were on hand");
            assert!(stock < *q, "refused {q} though {stock} units remain at the end");
        }
    }
    // Replaying the movements from the start reproduces every recorded level.
    let mut level = 25;
    let mut ordered = movements.clone();
    ordered.sort_by_key(|m| std::cmp::Reverse(m.stock_after));
    for m in &ordered {
        level += m.delta;
        assert_eq!(m.stock_after, level);
    }
}
on_both_backends!(
    contention_mixed_quantities,
    mixed_quantity_reservations_never_oversell
);

async fn reservations_respect_existence_and_activity(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let inactive = insert_product(&db.conn, 5, false).await;
    let user = insert_user(&db.conn, "buyer@example.com").await;
    let order = insert_order(&db.conn, user.id, OrderStatus::PendingPayment).await;

    let unknown = reserve_stock(&db.conn, variant_of(ProductId::new()), qty(1), order.id).await;
    assert!(matches!(
        unknown,
        Err(DomainError::NotFound { entity: "variant" })
    ));
    let hidden = reserve_stock(&db.conn, variant_of(inactive.id), qty(1), order.id).await;
    assert!(
        matches!(hidden, Err(DomainError::NotFound { entity: "product" })),
        "inactive products cannot be ordered"
    );
    let (stock, movements) = stock_and_movements(&db, inactive.id).await;
    assert_eq!((stock, movements.len()), (5, 0));
}
on_both_backends!(
    reserve_unknown_or_inactive,
    reservations_respect_existence_and_activity
);

/// Shared reads ask for every key of a batch at once: more keys than one
/// statement takes are read in several, and each product comes back once,
/// with its stock, inactive ones included.
async fn products_are_found_by_any_number_of_ids_and_slugs(backend: Backend) {
    use entity::catalog::{KEYS_PER_STATEMENT, ProductKey, find_products};
    let db = TestDb::migrated(backend).await;
    let by_id = insert_product(&db.conn, 5, true).await;
    let by_slug = insert_product(&db.conn, 7, true).await;
    // Its one variant is inactive too, so it has no stock to sell.
    let hidden = insert_product(&db.conn, 3, false).await;
    let mut keys: Vec<ProductKey> = (0..KEYS_PER_STATEMENT + 10)
        .map(|n| ProductKey::Slug(format!("nobody-{n}")))
        .chain((0..KEYS_PER_STATEMENT + 10).map(|_| ProductKey::Id(ProductId::new())))
        .collect();
    keys.push(ProductKey::Slug(by_slug.slug.clone()));
    keys.push(ProductKey::Id(by_id.id));
    keys.push(ProductKey::Id(by_id.id));
    keys.push(ProductKey::Id(hidden.id));
    let mut found: Vec<_> = find_products(&db.conn, &keys)
        .await
        .expect("read")
        .into_iter()
        .map(|stocked| (stocked.product.id, stocked.stock()))
        .collect();
    found.sort_unstable();
    let mut expected = vec![(by_id.id, 5), (by_slug.id, 7), (hidden.id, 0)];
    expected.sort_unstable();
    assert_eq!(found, expected);
    assert!(find_products(&db.conn, &[]).await.expect("read").is_empty());
}
on_both_backends!(
    find_products_in_chunks,
    products_are_found_by_any_number_of_ids_and_slugs
);

async fn returns_and_adjustments_are_recorded(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let product = insert_product(&db.conn, 2, true).await;
    let user = insert_user(&db.conn, "buyer@example.com").await;
    let order = insert_order(&db.conn, user.id, OrderStatus::PendingPayment)
        .await
        .id;

    assert_eq!(
        reserve_stock(&db.conn, variant_of(product.id), qty(2), order)
            .await
            .expect("reserve")
            .stock,
        0
    );
    assert_eq!(
        return_stock(&db.conn, variant_of(product.id), qty(2), order)
            .await
            .expect("return")
            .stock,
        2
    );
    assert_eq!(
        adjust_stock(&db.conn, product.id, delta(10), reason("delivery"))
            .await
            .expect("restock")
            .variant
            .stock,
        12
    );
    let too_much = adjust_stock(&db.conn, product.id, delta(-13), reason("shrinkage")).await;
    assert!(matches!(
        too_much,
        Err(DomainError::OutOfStock {
            requested: 13,
            available: 12,
            ..
        })
    ));
    assert!(matches!(
        StockDelta::parse(0),
        Err(DomainError::InvalidInput { field: "delta", .. })
    ));
    assert!(matches!(
        AdjustmentReason::parse("   "),
        Err(DomainError::InvalidInput { field: "reason", .. })
    ));

    let (stock, movements) = stock_and_movements(&db, product.id).await;
    assert_eq!(stock, 12);
    let summary: Vec<(i32, i32, &str, bool)> = movements
        .iter()
        .map(|m| {
            (
                m.delta,
                m.stock_after,
                m.reason.as_str(),
                m.order_id == Some(order),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (-2, 0, "order reserved", true),
            (2, 2, "order returned", true),
            (10, 12, "delivery", false)
        ]
    );
}
on_both_backends!(returns_and_adjustments, returns_and_adjustments_are_recorded);

async fn a_failed_line_rolls_back_the_whole_transaction(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let plenty = insert_product(&db.conn, 10, true).await;
    let scarce = insert_product(&db.conn, 1, true).await;
    let user = insert_user(&db.conn, "buyer@example.com").await;

    let txn = begin_write(&db.conn).await.expect("begin");
    let order = insert_order(&txn, user.id, OrderStatus::PendingPayment).await.id;
    reserve_stock(&txn, variant_of(plenty.id), qty(3), order)
        .await
        .expect("first line fits");
    let second = reserve_stock(&txn, variant_of(scarce.id), qty(2), order).await;
    assert!(matches!(second, Err(DomainError::OutOfStock { .. })));
    txn.rollback().await.expect("rollback");

    assert_eq!(
        stock_and_movements(&db, plenty.id).await.0,
        10,
        "the first line's reservation is undone"
    );
    assert_eq!(
        stock_movements::Entity::find()
            .count(&db.conn)
            .await
            .expect("count"),
        0
    );
    assert_eq!(
        entity::tables::orders::Entity::find()
            .count(&db.conn)
            .await
            .expect("count"),
        0,
        "nor is the order kept"
    );
    let _ = db.conn.begin().await.expect("the pool is still usable");
}
on_both_backends!(
    rollback_of_partial_order,
    a_failed_line_rolls_back_the_whole_transaction
);

#[test]
fn quantities_outside_one_to_a_thousand_are_rejected() {
    for bad in [0, -1, 1001, i32::MIN] {
        assert!(matches!(
            Quantity::parse(bad),
            Err(DomainError::InvalidInput {
                field: "quantity",
                ..
            })
        ));
    }
    assert_eq!(Quantity::parse(1000).map(Quantity::get).ok(), Some(1000));
}
