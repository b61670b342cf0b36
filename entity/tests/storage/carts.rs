//! Carts: lines merge and are capped, prices are re-read, stock is checked,
//! a guest's cart merges into the customer's, concurrent adds lose nothing,
//! abandoned carts expire.
use std::sync::Arc;

use chrono::{Duration, Utc};
use entity::DomainError;
use entity::carts::{
    self, CartKey, CartLineChange, CartLineRequest, CartView, add_lines, create_cart, expire_abandoned_carts,
    find_cart, merge_guest_cart, read_cart, remove_lines, update_lines,
};
use entity::catalog::{NewProduct, Quantity, create_product};
use entity::db::retry;
use entity::ids::{UserId, VariantId};
use entity::tables::{cart_lines, carts as cart_rows, product_variants};
use futures::future::BoxFuture;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
};
use testkit::{Backend, TestDb, on_both_backends};

use crate::helpers::insert_user;

/// A product in `currency` at `price` with `stock`; its default variant.
async fn variant_in(db: &TestDb, currency: &str, price: i64, stock: i32) -> VariantId {
    let n = uuid::Uuid::now_v7().simple().to_string();
    let new = NewProduct::parse(
        &format!("SKU-{n}"),
        &format!("p-{n}"),
        "Tea",
        "Green tea",
        price,
        currency,
        stock,
        true,
    )
    .expect("valid product");
    VariantId(
        create_product(&db.conn, new)
            .await
            .expect("created")
            .id
            .into_uuid(),
    )
}

async fn variant(db: &TestDb, price: i64, stock: i32) -> VariantId {
    variant_in(db, "EUR", price, stock).await
}

async fn set_variant(
    db: &TestDb,
    id: VariantId,
    column: product_variants::Column,
    value: impl Into<sea_orm::Value>,
) {
    product_variants::Entity::update_many()
        .col_expr(column, Expr::value(value.into()))
        .filter(product_variants::Column::Id.eq(id))
        .exec(&db.conn)
        .await
        .expect("variant changed");
}

fn line(variant_id: VariantId, quantity: i32) -> CartLineRequest {
    CartLineRequest {
        variant_id,
        quantity: Quantity::parse(quantity).expect("valid quantity"),
    }
}

/// Runs `work` in one committed write transaction.
async fn write<T: Send>(
    db: &DatabaseConnection,
    work: impl for<'c> Fn(&'c DatabaseTransaction) -> BoxFuture<'c, Result<T, DomainError>>,
) -> Result<T, DomainError> {
    retry::write(db, "test", work).await
}

async fn create(
    db: &TestDb,
    owner: Option<UserId>,
    lines: Vec<CartLineRequest>,
) -> Result<carts::OpenCart, DomainError> {
    write(&db.conn, |txn| {
        let lines = lines.clone();
        Box::pin(async move { create_cart(txn, owner, &lines).await })
    })
    .await
}

fn key(cart: &carts::OpenCart) -> CartKey {
    CartKey::parse(&cart.public_id).expect("a cart key")
}

async fn read(db: &TestDb, key: &CartKey, viewer: Option<UserId>) -> Result<CartView, DomainError> {
    let cart = find_cart(&db.conn, key, viewer).await?;
    read_cart(&db.conn, cart).await
}

fn quantities(view: &CartView) -> Vec<(VariantId, i32)> {
    view.lines
        .iter()
        .map(|l| (l.variant_id, l.quantity.get()))
        .collect()
}

async fn a_guest_cart_merges_lines_caps_them_and_is_priced_today(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let tea = variant(&db, 450, 5_000).await;
    let cup = variant(&db, 1_200, 10).await;

    let cart = create(&db, None, vec![line(tea, 2), line(tea, 1)])
        .await
        .expect("created");
    assert!(
        cart.public_id.starts_with("cart_"),
        "a guest cart is named by its token"
    );
    let key = key(&cart);
    write(&db.conn, |txn| {
        let key = key.clone();
        Box::pin(async move { add_lines(txn, &key, None, &[line(cup, 3), line(tea, 4)]).await })
    })
    .await
    .expect("added");

    let view = read(&db, &key, None).await.expect("readable by its token");
    assert_eq!(
        quantities(&view),
        [(tea, 7), (cup, 3)],
        "one line per variant, oldest first"
    );
    assert_eq!(view.total_quantity(), 10);
    assert_eq!(
        view.subtotal.expect("a subtotal").amount_minor,
        7 * 450 + 3 * 1_200
    );
    assert!(view.all_available() && !view.any_price_changed());

    write(&db.conn, |txn| {
        let key = key.clone();
        Box::pin(async move { add_lines(txn, &key, None, &[line(tea, 1_000)]).await })
    })
    .await
    .expect("added");
    let view = read(&db, &key, None).await.expect("read");
    assert_eq!(quantities(&view)[0], (tea, 1_000), "capped at 1000 units a line");

    let stored: Vec<String> = cart_rows::Entity::find()
        .all(&db.conn)
        .await
        .expect("rows")
        .into_iter()
        .map(|row| row.token_hash)
        .collect();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], cart.public_id, "only the token's digest is stored");
    assert_eq!(stored[0].len(), 64);
}
on_both_backends!(
    guest_cart_lines,
    a_guest_cart_merges_lines_caps_them_and_is_priced_today
);

async fn lines_are_checked_and_a_refused_write_changes_nothing(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let tea = variant(&db, 450, 5).await;
    let dollars = variant_in(&db, "USD", 300, 5).await;
    let retired = variant(&db, 100, 5).await;
    set_variant(&db, retired, product_variants::Column::Active, false).await;
    let cart = create(&db, None, vec![line(tea, 2)]).await.expect("created");
    let key = key(&cart);
    let add = |lines: Vec<CartLineRequest>| {
        let key = key.clone();
        let db = db.conn.clone();
        async move {
            write(&db, |txn| {
                let (key, lines) = (key.clone(), lines.clone());
                Box::pin(async move { add_lines(txn, &key, None, &lines).await })
            })
            .await
        }
    };

    let out = add(vec![line(tea, 4)]).await;
    assert!(
        matches!(
            out,
            Err(DomainError::OutOfStock {
                requested: 6,
                available: 5,
                ..
            })
        ),
        "the line would hold 6 of 5: {out:?}"
    );
    let other_currency = add(vec![line(dollars, 1)]).await;
    assert!(
        matches!(
            other_currency,
            Err(DomainError::InvalidInput { field: "lines", .. })
        ),
        "{other_currency:?}"
    );
    let not_for_sale = add(vec![line(retired, 1)]).await;
    assert!(
        matches!(
            not_for_sale,
            Err(DomainError::InvalidInput {
                field: "variantId",
                ..
            })
        ),
        "{not_for_sale:?}"
    );
    let unknown = add(vec![line(VariantId::new(), 1)]).await;
    assert!(matches!(
        unknown,
        Err(DomainError::InvalidInput {
            field: "variantId",
            ..
        })
    ));
    let mut many = Vec::new();
    for _ in 0..50 {
        many.push(line(variant(&db, 100, 5).await, 1));
    }
    let too_many = add(many).await;
    assert!(
        matches!(too_many, Err(DomainError::InvalidInput { field: "lines", .. })),
        "50 new lines on top of one: {too_many:?}"
    );
    assert_eq!(
        quantities(&read(&db, &key, None).await.expect("read")),
        [(tea, 2)],
        "nothing changed"
    );

    let change = |changes: Vec<CartLineChange>| {
        let key = key.clone();
        let db = db.conn.clone();
        async move {
            write(&db, |txn| {
                let (key, changes) = (key.clone(), changes.clone());
                Box::pin(async move { update_lines(txn, &key, None, &changes).await })
            })
            .await
        }
    };
    change(vec![CartLineChange::parse(tea, 5).expect("valid")])
        .await
        .expect("changed");
    assert_eq!(
        quantities(&read(&db, &key, None).await.expect("read")),
        [(tea, 5)]
    );
    let absent = change(vec![CartLineChange::parse(retired, 1).expect("valid")]).await;
    assert!(
        matches!(absent, Err(DomainError::InvalidInput { .. })),
        "{absent:?}"
    );
    assert!(matches!(
        CartLineChange::parse(tea, 1_001),
        Err(DomainError::InvalidInput {
            field: "quantity",
            ..
        })
    ));
    change(vec![CartLineChange::parse(tea, 0).expect("valid")])
        .await
        .expect("0 removes");
    let view = read(&db, &key, None).await.expect("read");
    assert!(view.lines.is_empty() && view.subtotal.is_none(), "{view:?}");

    add(vec![line(dollars, 1)])
        .await
        .expect("an empty cart takes any currency");
    write(&db.conn, |txn| {
        let key = key.clone();
        Box::pin(async move { remove_lines(txn, &key, None, &[dollars, tea]).await })
    })
    .await
    .expect("removed");
    assert!(read(&db, &key, None).await.expect("read").lines.is_empty());
}
on_both_backends!(line_rules, lines_are_checked_and_a_refused_write_changes_nothing);

async fn a_cart_whose_price_changed_since_it_was_filled_says_so(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let tea = variant(&db, 450, 50).await;
    let cup = variant(&db, 1_200, 50).await;
    let cart = create(&db, None, vec![line(tea, 2), line(cup, 1)])
        .await
        .expect("created");
    let key = key(&cart);

    set_variant(&db, tea, product_variants::Column::PriceMinor, 500_i64).await;
    set_variant(&db, cup, product_variants::Column::Stock, 0).await;

    let view = read(&db, &key, None).await.expect("read");
    let tea_line = &view.lines[0];
    assert!(tea_line.price_changed);
    assert_eq!(
        (tea_line.price_seen.amount_minor, tea_line.unit_price.amount_minor),
        (450, 500)
    );
    assert_eq!(
        tea_line.line_total.amount_minor, 1_000,
        "charged at today's price"
    );
    assert!(
        !view.lines[1].price_changed && !view.lines[1].available,
        "out of stock since"
    );
    assert_eq!(view.subtotal.expect("subtotal").amount_minor, 1_000 + 1_200);
    assert!(view.any_price_changed() && !view.all_available());

    write(&db.conn, |txn| {
        let key = key.clone();
        Box::pin(async move { add_lines(txn, &key, None, &[line(tea, 1)]).await })
    })
    .await
    .expect("added");
    let view = read(&db, &key, None).await.expect("read");
    assert!(
        !view.lines[0].price_changed,
        "adding again shows today's price: {view:?}"
    );
}
on_both_backends!(
    price_changed,
    a_cart_whose_price_changed_since_it_was_filled_says_so
);

async fn a_customers_cart_is_theirs_alone_whatever_id_is_presented(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let tea = variant(&db, 450, 50).await;
    let ada = insert_user(&db.conn, "ada@example.com").await.id;
    let eve = insert_user(&db.conn, "eve@example.com").await.id;
    let guest = create(&db, None, vec![line(tea, 1)]).await.expect("created");
    let token = key(&guest);
    let CartKey::Token(guest_token) = token.clone() else {
        panic!("a token")
    };
    let adopted = write(&db.conn, |txn| {
        let guest_token = guest_token.clone();
        Box::pin(async move { merge_guest_cart(txn, &guest_token, ada).await })
    })
    .await
    .expect("merged")
    .expect("ada has a cart");
    let by_id = key(&adopted);
    assert_eq!(
        by_id,
        CartKey::Id(adopted.row.id),
        "a customer's cart is named by its id"
    );

    for (key, viewer) in [
        (&token, None),
        (&token, Some(eve)),
        (&by_id, None),
        (&by_id, Some(eve)),
    ] {
        let refused = read(&db, key, viewer).await;
        assert!(
            matches!(refused, Err(DomainError::NotFound { entity: "cart" })),
            "{refused:?}"
        );
        let write_refused = write(&db.conn, |txn| {
            let key = key.clone();
            Box::pin(async move { add_lines(txn, &key, viewer, &[line(tea, 1)]).await })
        })
        .await;
        assert!(
            matches!(write_refused, Err(DomainError::NotFound { .. })),
            "{write_refused:?}"
        );
    }
    for key in [&token, &by_id] {
        assert_eq!(
            quantities(&read(&db, key, Some(ada)).await.expect("hers")),
            [(tea, 1)]
        );
    }
    let merged_nothing = write(&db.conn, |txn| {
        let guest_token = guest_token.clone();
        Box::pin(async move { merge_guest_cart(txn, &guest_token, eve).await })
    })
    .await
    .expect("no error");
    assert!(merged_nothing.is_none(), "someone else's cart merges nothing");
    assert_eq!(
        quantities(&read(&db, &by_id, Some(ada)).await.expect("hers")),
        [(tea, 1)]
    );
}
on_both_backends!(
    customer_cart_access,
    a_customers_cart_is_theirs_alone_whatever_id_is_presented
);

async fn a_guest_cart_merges_into_the_customers_cart_at_sign_in(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let tea = variant(&db, 450, 5_000).await;
    let cup = variant(&db, 1_200, 50).await;
    let ada = insert_user(&db.conn, "ada@example.com").await.id;
    let hers = create(&db, Some(ada), vec![line(tea, 999)])
        .await
        .expect("created");
    assert_eq!(hers.public_id, hers.row.id.to_string());
    let guest = create(&db, None, vec![line(tea, 3), line(cup, 2)])
        .await
        .expect("created");
    let CartKey::Token(guest_token) = key(&guest) else {
        panic!("a token")
    };

    let merged = write(&db.conn, |txn| {
        let guest_token = guest_token.clone();
        Box::pin(async move { merge_guest_cart(txn, &guest_token, ada).await })
    })
    .await
    .expect("merged")
    .expect("a cart");

    assert_eq!(merged.row.id, hers.row.id, "the customer keeps her cart");
    let view = read(&db, &key(&merged), Some(ada)).await.expect("read");
    assert_eq!(
        quantities(&view),
        [(tea, 1_000), (cup, 2)],
        "summed and capped, new lines joined"
    );
    let gone = read(&db, &CartKey::Token(guest_token), None).await;
    assert!(
        matches!(gone, Err(DomainError::NotFound { .. })),
        "the guest cart is deleted"
    );
    assert_eq!(cart_rows::Entity::find().count(&db.conn).await.expect("count"), 1);
    let again = create(&db, Some(ada), vec![line(cup, 1)])
        .await
        .expect("her cart");
    assert_eq!(
        again.row.id, hers.row.id,
        "one cart per customer: cartCreate gives hers"
    );
}
on_both_backends!(
    guest_cart_merge,
    a_guest_cart_merges_into_the_customers_cart_at_sign_in
);

async fn concurrent_adds_to_one_line_lose_no_unit(backend: Backend) {
    let db = Arc::new(TestDb::migrated(backend).await);
    let tea = variant(&db, 450, 5_000).await;
    let cart = create(&db, None, vec![]).await.expect("created");
    let key = key(&cart);

    let adds = (0..20).map(|_| {
        let (db, key) = (Arc::clone(&db), key.clone());
        tokio::spawn(async move {
            write(&db.conn, |txn| {
                let key = key.clone();
                Box::pin(async move { add_lines(txn, &key, None, &[line(tea, 3)]).await })
            })
            .await
        })
    });
    for outcome in futures::future::join_all(adds).await {
        outcome.expect("task ran").expect("every add succeeds");
    }

    assert_eq!(
        quantities(&read(&db, &key, None).await.expect("read")),
        [(tea, 60)]
    );
}
on_both_backends!(concurrent_adds, concurrent_adds_to_one_line_lose_no_unit);

async fn carts_untouched_past_the_cutoff_expire_in_batches_with_their_lines(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let tea = variant(&db, 450, 50).await;
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(create(&db, None, vec![line(tea, 1)]).await.expect("created"));
    }
    let now = Utc::now();
    let old = [&made[0], &made[1], &made[2]].map(|cart| cart.row.id);
    cart_rows::Entity::update_many()
        .col_expr(
            cart_rows::Column::UpdatedAt,
            Expr::value(now - Duration::days(31)),
        )
        .filter(cart_rows::Column::Id.is_in(old))
        .exec(&db.conn)
        .await
        .expect("aged");
    let cutoff = now - Duration::days(30);

    assert_eq!(
        expire_abandoned_carts(&db.conn, cutoff, 2)
            .await
            .expect("first batch"),
        2
    );
    assert_eq!(
        expire_abandoned_carts(&db.conn, cutoff, 2)
            .await
            .expect("second batch"),
        1
    );
    assert_eq!(
        expire_abandoned_carts(&db.conn, cutoff, 2)
            .await
            .expect("nothing left"),
        0
    );

    let left: Vec<_> = cart_rows::Entity::find().all(&db.conn).await.expect("rows");
    assert_eq!(left.len(), 2);
    assert!(
        left.iter().all(|cart| !old.contains(&cart.id)),
        "the recent carts stay"
    );
    assert_eq!(
        cart_lines::Entity::find().count(&db.conn).await.expect("count"),
        2,
        "lines go with their cart"
    );
}
on_both_backends!(
    cart_expiry,
    carts_untouched_past_the_cutoff_expire_in_batches_with_their_lines
);

async fn a_guest_cart_in_another_currency_replaces_the_customers_and_a_full_cart_takes_no_new_lines(
    backend: Backend,
) {
    let db = TestDb::migrated(backend).await;
    let tea = variant(&db, 450, 50).await;
    let dollars = variant_in(&db, "USD", 300, 50).await;
    let ada = insert_user(&db.conn, "ada@example.com").await.id;
    let bob = insert_user(&db.conn, "bob@example.com").await.id;
    let merge = |guest: carts::OpenCart, user: UserId| {
        let db = db.conn.clone();
        async move {
            let CartKey::Token(token) = key(&guest) else {
                panic!("a token")
            };
            write(&db, |txn| {
                let token = token.clone();
                Box::pin(async move { merge_guest_cart(txn, &token, user).await })
            })
            .await
            .expect("merged")
            .expect("a cart")
        }
    };

    create(&db, Some(ada), vec![line(tea, 1)]).await.expect("hers");
    let guest = create(&db, None, vec![line(dollars, 2)]).await.expect("guest");
    let merged = merge(guest.clone(), ada).await;
    assert_eq!(
        merged.row.id, guest.row.id,
        "the guest cart, just filled, replaces hers"
    );
    let view = read(&db, &key(&merged), Some(ada)).await.expect("read");
    assert_eq!(quantities(&view), [(dollars, 2)]);
    assert_eq!(view.subtotal.expect("subtotal").currency.code(), "USD");

    let mut fifty = Vec::new();
    for _ in 0..50 {
        fifty.push(line(variant(&db, 100, 5).await, 1));
    }
    create(&db, Some(bob), fifty).await.expect("a full cart");
    let first = first_variant(&db, bob).await;
    let guest = create(&db, None, vec![line(first, 2), line(tea, 1)])
        .await
        .expect("guest");
    let merged = merge(guest, bob).await;
    let view = read(&db, &key(&merged), Some(bob)).await.expect("read");
    assert_eq!(view.lines.len(), 50, "no 51st line");
    assert_eq!(
        quantities(&view)[0],
        (first, 3),
        "lines it holds are still summed"
    );
}
on_both_backends!(
    guest_cart_merge_edges,
    a_guest_cart_in_another_currency_replaces_the_customers_and_a_full_cart_takes_no_new_lines
);

/// The variant of the first line of `user`'s cart.
async fn first_variant(db: &TestDb, user: UserId) -> VariantId {
    let cart = carts::customer_cart(&db.conn, user)
        .await
        .expect("read")
        .expect("a cart");
    read_cart(&db.conn, cart).await.expect("read").lines[0].variant_id
}
