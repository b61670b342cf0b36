use std::sync::Arc;

use chrono::{Duration, Utc};
use entity::DomainError;
use entity::db::begin_write;
use entity::discounts::{
    Applicable, DiscountCode, NewDiscount, applicable, create_discount, redeem, release,
};
use entity::ids::{OrderId, UserId};
use entity::money::{Currency, Money};
use entity::orders::OrderStatus;
use entity::pricing::{BasisPoints, DiscountValue};
use entity::tables::{discount_codes, discount_redemptions};
use sea_orm::{EntityTrait, PaginatorTrait};
use testkit::{Backend, TestDb, on_both_backends};

use crate::helpers::{insert_order, insert_user};

fn eur(cents: i64) -> Money {
    Money::new(cents, Currency::parse("EUR").expect("EUR"))
}

fn typed(raw: &str) -> DiscountCode {
    DiscountCode::parse(raw).expect("valid code")
}

fn ten_percent(raw: &str) -> NewDiscount {
    NewDiscount {
        code: typed(raw),
        value: DiscountValue::Percentage(BasisPoints::parse("value", 1000).expect("10 %")),
        currency: Currency::parse("EUR").expect("EUR"),
        minimum_subtotal_minor: 0,
        starts_at: Utc::now() - Duration::hours(1),
        ends_at: None,
        usage_limit: None,
        per_customer_limit: None,
    }
}

/// One checkout's part: the order row and the code's use, in one write
/// transaction, committed only if the code could be used.
async fn checkout_with(db: &TestDb, user_id: UserId, code: Applicable) -> Result<OrderId, DomainError> {
    let txn = begin_write(&db.conn).await?;
    let order = insert_order(&txn, user_id, OrderStatus::PendingPayment).await;
    redeem(&txn, &code, user_id, order.id, eur(200)).await?;
    txn.commit().await?;
    Ok(order.id)
}

async fn race(db: &Arc<TestDb>, users: &[UserId], code: Applicable) -> Vec<Result<OrderId, DomainError>> {
    let attempts = users.iter().map(|&user| {
        let db = Arc::clone(db);
        tokio::spawn(async move { checkout_with(&db, user, code).await })
    });
    futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("task ran"))
        .collect()
}

async fn times_used(db: &TestDb, code: Applicable) -> i32 {
    discount_codes::Entity::find_by_id(code.id)
        .one(&db.conn)
        .await
        .expect("query")
        .expect("exists")
        .times_used
}

async fn a_code_limited_to_ten_is_carried_by_exactly_ten_of_100_concurrent_checkouts(backend: Backend) {
    let db = Arc::new(TestDb::migrated(backend).await);
    let new = NewDiscount {
        usage_limit: Some(10),
        ..ten_percent("TEN-ONLY")
    };
    create_discount(&db.conn, new).await.expect("created");
    let code = applicable(&db.conn, &typed("ten-only"), eur(2000), Utc::now())
        .await
        .expect("applies");
    let mut users = Vec::new();
    for i in 0..100 {
        users.push(insert_user(&db.conn, &format!("buyer{i}@example.com")).await.id);
    }

    let outcomes = race(&db, &users, code).await;

    let carried = outcomes.iter().filter(|r| r.is_ok()).count();
    assert_eq!(carried, 10, "exactly the limit: {outcomes:?}");
    for outcome in outcomes.iter().filter(|r| r.is_err()) {
        assert!(
            matches!(outcome, Err(DomainError::InvalidInput { field: "discountCode", message }) if message == "has been used up"),
            "every other checkout is told the code is used up, got {outcome:?}"
        );
    }
    assert_eq!(times_used(&db, code).await, 10);
    assert_eq!(
        discount_redemptions::Entity::find()
            .count(&db.conn)
            .await
            .expect("count"),
        10,
        "a redemption row per order that carries the code, none for the refused"
    );
    let refused = applicable(&db.conn, &typed("TEN-ONLY"), eur(2000), Utc::now()).await;
    assert!(
        matches!(refused, Err(DomainError::InvalidInput { .. })),
        "{refused:?}"
    );
}
on_both_backends!(
    usage_limit_under_contention,
    a_code_limited_to_ten_is_carried_by_exactly_ten_of_100_concurrent_checkouts
);

async fn one_customer_racing_a_once_per_customer_code_gets_it_once(backend: Backend) {
    let db = Arc::new(TestDb::migrated(backend).await);
    let new = NewDiscount {
        per_customer_limit: Some(1),
        ..ten_percent("WELCOME")
    };
    create_discount(&db.conn, new).await.expect("created");
    let code = applicable(&db.conn, &typed("WELCOME"), eur(2000), Utc::now())
        .await
        .expect("applies");
    let customer = insert_user(&db.conn, "eager@example.com").await.id;
    let other = insert_user(&db.conn, "other@example.com").await.id;

    let outcomes = race(&db, &[customer; 20], code).await;

    assert_eq!(outcomes.iter().filter(|r| r.is_ok()).count(), 1, "{outcomes:?}");
    assert_eq!(times_used(&db, code).await, 1, "refused uses are rolled back");
    checkout_with(&db, other, code)
        .await
        .expect("another customer may still use it");
}
on_both_backends!(
    per_customer_limit_under_contention,
    one_customer_racing_a_once_per_customer_code_gets_it_once
);

async fn a_cancelled_order_gives_its_use_back_once(backend: Backend) {
    let db = Arc::new(TestDb::migrated(backend).await);
    let new = NewDiscount {
        usage_limit: Some(1),
        per_customer_limit: Some(1),
        ..ten_percent("SINGLE")
    };
    create_discount(&db.conn, new).await.expect("created");
    let code = applicable(&db.conn, &typed("SINGLE"), eur(2000), Utc::now())
        .await
        .expect("applies");
    let customer = insert_user(&db.conn, "single@example.com").await.id;
    let order = checkout_with(&db, customer, code).await.expect("first use");
    assert!(checkout_with(&db, customer, code).await.is_err(), "used up");

    entity::orders::cancel_order(&db.conn, entity::actor::Actor::system(), order, None)
        .await
        .expect("cancelled");
    assert!(
        !release(&db.conn, order).await.expect("second release"),
        "cancelling gave the use back, once"
    );

    assert_eq!(times_used(&db, code).await, 0);
    checkout_with(&db, customer, code)
        .await
        .expect("the same customer may use it again after the cancellation");
    assert_eq!(times_used(&db, code).await, 1);
}
on_both_backends!(
    release_gives_the_use_back,
    a_cancelled_order_gives_its_use_back_once
);

async fn a_code_applies_only_in_its_window_currency_and_above_its_minimum(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let now = Utc::now();
    for (code, starts_at, ends_at) in [
        ("LATER", now + Duration::days(1), None),
        ("GONE", now - Duration::days(2), Some(now - Duration::days(1))),
    ] {
        let new = NewDiscount {
            starts_at,
            ends_at,
            ..ten_percent(code)
        };
        create_discount(&db.conn, new).await.expect("created");
    }
    let new = NewDiscount {
        minimum_subtotal_minor: 5000,
        value: DiscountValue::Fixed(eur(500)),
        ..ten_percent("FIVE-OFF-50")
    };
    create_discount(&db.conn, new).await.expect("created");
    let check = |raw: &str, subtotal: Money| {
        let db = &db;
        let code = typed(raw);
        async move {
            match applicable(&db.conn, &code, subtotal, now).await {
                Ok(found) => Ok(found.value),
                Err(DomainError::InvalidInput { message, .. }) => Err(message),
                Err(other) => Err(other.to_string()),
            }
        }
    };

    assert_eq!(check("LATER", eur(9000)).await, Err("is not valid yet".into()));
    assert_eq!(check("GONE", eur(9000)).await, Err("has expired".into()));
    assert_eq!(
        check("FIVE-OFF-50", eur(4999)).await,
        Err("needs a subtotal of at least €50.00".into())
    );
    assert_eq!(
        check("five-off-50", eur(5000)).await,
        Ok(DiscountValue::Fixed(eur(500))),
        "codes are case-insensitive"
    );
    let usd = Money::new(9000, Currency::parse("USD").expect("USD"));
    assert_eq!(
        check("FIVE-OFF-50", usd).await,
        Err("applies to EUR orders only".into())
    );
    assert_eq!(
        check("NO-SUCH", eur(9000)).await,
        Err("discount code not found".into())
    );
    let taken = create_discount(&db.conn, ten_percent("LATER")).await;
    assert!(matches!(taken, Err(DomainError::Conflict(_))), "{taken:?}");
}
on_both_backends!(
    applicability,
    a_code_applies_only_in_its_window_currency_and_above_its_minimum
);
