//! Variants: stock on variants under concurrent orders, stock back to the
//! variant on cancel, the product's from price, list filters over
//! variants, and the rules for an admin's variants.
use std::sync::Arc;

use entity::DomainError;
use entity::actor::Actor;
use entity::catalog::listing::{ProductFilter, ProductOrder, list_products};
use entity::catalog::variants::{NewVariant, VariantPatch, create_variant, update_variant};
use entity::catalog::{
    AdjustmentReason, NewProduct, ProductPatch, Quantity, StockDelta, Visibility, adjust_stock,
    create_product, update_product,
};
use entity::ids::{ProductId, UserId, VariantId};
use entity::orders::{
    IdempotencyKey, OrderLineRequest, OrderRequest, PlacedOrder, cancel_order, place_order,
};
use entity::payments::{PaymentToken, SandboxGateway};
use entity::tables::{order_lines, products, stock_movements};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use testkit::{Backend, TestDb, on_both_backends};

use crate::helpers::{insert_user, variant_stock};

fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// A product whose default variant has no stock and is inactive, with a
/// variant per `(size, price, stock)`.
async fn tee(db: &TestDb, slug: &str, sizes: &[(&str, i64, i32)]) -> (products::Model, Vec<VariantId>) {
    let txn = entity::db::begin_write(&db.conn).await.expect("begin");
    let product = create_product(
        &txn,
        NewProduct::parse(slug, slug, "Tee", "", 9_999, "EUR", 0, true).expect("valid product"),
    )
    .await
    .expect("product");
    update_variant(
        &txn,
        VariantId(product.id.into_uuid()),
        VariantPatch::parse(None, None, None, Some(false)).expect("patch"),
    )
    .await
    .expect("default variant off");
    let mut ids = Vec::new();
    for (size, price, stock) in sizes {
        let new = NewVariant::parse(
            &format!("{slug}-{size}"),
            None,
            &options(&[("Size", size)]),
            *price,
            *stock,
            200,
            true,
        )
        .expect("valid variant");
        ids.push(create_variant(&txn, product.id, new).await.expect("variant").id);
    }
    txn.commit().await.expect("commit");
    let product = products::Entity::find_by_id(product.id)
        .one(&db.conn)
        .await
        .expect("query")
        .expect("product");
    (product, ids)
}

fn order(product_id: ProductId, variant_id: Option<VariantId>, quantity: i32, key: &str) -> OrderRequest {
    OrderRequest {
        lines: vec![OrderLineRequest {
            product_id,
            variant_id,
            quantity: Quantity::parse(quantity).expect("quantity"),
        }],
        payment_token: PaymentToken::parse("sandbox_ok").expect("token"),
        idempotency_key: IdempotencyKey::parse(key).expect("key"),
    }
}

async fn place(db: &TestDb, user: UserId, request: OrderRequest) -> Result<PlacedOrder, DomainError> {
    place_order(&db.conn, &SandboxGateway::default(), user, request, None).await
}

async fn movements_of(db: &TestDb, variant: VariantId) -> Vec<stock_movements::Model> {
    stock_movements::Entity::find()
        .filter(stock_movements::Column::VariantId.eq(variant))
        .all(&db.conn)
        .await
        .expect("movements")
}

async fn variant_stock_never_goes_negative_under_fifty_concurrent_checkouts(backend: Backend) {
    let db = Arc::new(TestDb::migrated(backend).await);
    let (product, sizes) = tee(&db, "race-tee", &[("S", 2_500, 10), ("M", 2_500, 10)]).await;
    let (small, medium) = (sizes[0], sizes[1]);
    let user = insert_user(&db.conn, "racer@example.com").await;

    let attempts = (0..50).map(|i| {
        let db = Arc::clone(&db);
        tokio::spawn(async move {
            place(
                &db,
                user.id,
                order(product.id, Some(medium), 1, &format!("k-{i}")),
            )
            .await
        })
    });
    let outcomes: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("task ran"))
        .collect();

    let placed = outcomes.iter().filter(|r| r.is_ok()).count();
    assert_eq!(placed, 10, "exactly the variant's stock is sold");
    for outcome in outcomes.iter().filter(|r| r.is_err()) {
        assert!(
            matches!(
                outcome,
                Err(DomainError::OutOfStock {
                    requested: 1,
                    available: 0,
                    ..
                })
            ),
            "every other checkout is out of stock, got {outcome:?}"
        );
    }
    assert_eq!(variant_stock(&db.conn, medium).await, 0);
    let movements = movements_of(&db, medium).await;
    assert_eq!(movements.len(), 11, "the opening stock and one per order");
    assert_eq!(movements.iter().filter(|m| m.delta == -1).count(), 10);
    let mut after: Vec<i32> = movements
        .iter()
        .filter(|m| m.delta == -1)
        .map(|m| m.stock_after)
        .collect();
    after.sort_unstable();
    assert_eq!(after, (0..10).collect::<Vec<_>>(), "each saw a distinct level");
    assert_eq!(
        variant_stock(&db.conn, small).await,
        10,
        "the other variant is untouched"
    );
}
on_both_backends!(
    concurrent_checkouts,
    variant_stock_never_goes_negative_under_fifty_concurrent_checkouts
);

async fn cancelling_returns_each_lines_units_to_its_variant(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let (product, sizes) = tee(&db, "cancel-tee", &[("S", 2_000, 5), ("M", 2_200, 5)]).await;
    let (small, medium) = (sizes[0], sizes[1]);
    let user = insert_user(&db.conn, "buyer@example.com").await;
    let mut request = order(product.id, Some(medium), 2, "both");
    request.lines.push(OrderLineRequest {
        product_id: product.id,
        variant_id: Some(small),
        quantity: Quantity::parse(1).expect("quantity"),
    });

    let placed = place(&db, user.id, request).await.expect("placed");
    assert_eq!(placed.order.total_minor, 2 * 2_200 + 2_000);
    let lines = order_lines::Entity::find()
        .filter(order_lines::Column::OrderId.eq(placed.order.id))
        .all(&db.conn)
        .await
        .expect("lines");
    let mut snapshot: Vec<(VariantId, &str, &str, i64, i32)> = lines
        .iter()
        .map(|l| {
            (
                l.variant_id,
                l.sku.as_str(),
                l.variant_title.as_str(),
                l.unit_price_minor,
                l.quantity,
            )
        })
        .collect();
    snapshot.sort_by_key(|s| s.1.to_owned());
    assert_eq!(
        snapshot,
        vec![
            (medium, "CANCEL-TEE-M", "M", 2_200, 2),
            (small, "CANCEL-TEE-S", "S", 2_000, 1)
        ]
    );
    assert_eq!(
        (
            variant_stock(&db.conn, small).await,
            variant_stock(&db.conn, medium).await
        ),
        (4, 3)
    );

    cancel_order(&db.conn, Actor::system(), placed.order.id, None)
        .await
        .expect("cancelled");

    assert_eq!(
        (
            variant_stock(&db.conn, small).await,
            variant_stock(&db.conn, medium).await
        ),
        (5, 5)
    );
    let returned: Vec<(VariantId, i32)> = stock_movements::Entity::find()
        .filter(stock_movements::Column::Reason.eq("order returned"))
        .all(&db.conn)
        .await
        .expect("movements")
        .into_iter()
        .map(|m| (m.variant_id, m.delta))
        .collect();
    assert_eq!(returned.len(), 2);
    assert!(returned.contains(&(small, 1)) && returned.contains(&(medium, 2)));
}
on_both_backends!(
    cancel_returns_to_variants,
    cancelling_returns_each_lines_units_to_its_variant
);

async fn catalog_version(db: &TestDb) -> i64 {
    entity::catalog::version::freshness(&db.conn, &[])
        .await
        .expect("version")
        .version
}

async fn from_price(db: &TestDb, id: ProductId) -> i64 {
    products::Entity::find_by_id(id)
        .one(&db.conn)
        .await
        .expect("query")
        .expect("product")
        .price_minor
}

async fn the_products_price_is_its_lowest_active_variant_price(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let (product, sizes) = tee(&db, "price-tee", &[("S", 2_500, 1), ("M", 1_900, 1)]).await;
    assert_eq!(
        from_price(&db, product.id).await,
        1_900,
        "the default variant is inactive"
    );

    let patch = |price: Option<i64>, active: Option<bool>| {
        VariantPatch::parse(None, price, None, active).expect("patch")
    };
    let before = catalog_version(&db).await;
    update_variant(&db.conn, sizes[1], patch(None, Some(false)))
        .await
        .expect("M off");
    assert_eq!(from_price(&db, product.id).await, 2_500);
    update_variant(&db.conn, sizes[0], patch(Some(1_500), None))
        .await
        .expect("S cheaper");
    assert_eq!(from_price(&db, product.id).await, 1_500);
    assert_eq!(
        catalog_version(&db).await,
        before + 2,
        "every variant change bumps the version"
    );

    let stock_before = catalog_version(&db).await;
    entity::catalog::adjust_variant_stock(
        &db.conn,
        sizes[0],
        StockDelta::parse(3).expect("delta"),
        AdjustmentReason::parse("delivery").expect("reason"),
    )
    .await
    .expect("adjusted");
    assert_eq!(
        catalog_version(&db).await,
        stock_before,
        "stock is not catalog data"
    );

    let several = update_product(
        &db.conn,
        product.id,
        ProductPatch::parse(None, None, Some(100), None).expect("patch"),
    )
    .await;
    assert!(
        matches!(
            several,
            Err(DomainError::InvalidInput {
                field: "priceMinor",
                ..
            })
        ),
        "{several:?}"
    );
    let adjusted = adjust_stock(
        &db.conn,
        product.id,
        StockDelta::parse(1).expect("delta"),
        AdjustmentReason::parse("recount").expect("reason"),
    )
    .await;
    assert!(
        matches!(
            adjusted,
            Err(DomainError::InvalidInput {
                field: "productId",
                ..
            })
        ),
        "{adjusted:?}"
    );
}
on_both_backends!(from_price, the_products_price_is_its_lowest_active_variant_price);

async fn one_variant_products_keep_their_price_and_stock_contract(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let product = create_product(
        &db.conn,
        NewProduct::parse("solo", "solo", "Solo", "", 1_000, "EUR", 4, true).expect("valid"),
    )
    .await
    .expect("product");
    let variant = VariantId(product.id.into_uuid());

    update_product(
        &db.conn,
        product.id,
        ProductPatch::parse(None, None, Some(1_200), None).expect("patch"),
    )
    .await
    .expect("price");
    let adjusted = adjust_stock(
        &db.conn,
        product.id,
        StockDelta::parse(-1).expect("delta"),
        AdjustmentReason::parse("damaged").expect("reason"),
    )
    .await
    .expect("adjusted");

    assert_eq!((adjusted.variant.id, adjusted.variant.stock), (variant, 3));
    assert_eq!(adjusted.variant.price_minor, 1_200, "the price is the variant's");
    assert_eq!(from_price(&db, product.id).await, 1_200);
    let user = insert_user(&db.conn, "solo@example.com").await;
    let placed = place(&db, user.id, order(product.id, None, 2, "solo"))
        .await
        .expect("a product with one variant needs no variantId");
    assert_eq!(placed.order.total_minor, 2_400);
    assert_eq!(variant_stock(&db.conn, variant).await, 1);
}
on_both_backends!(
    one_variant_contract,
    one_variant_products_keep_their_price_and_stock_contract
);

async fn a_product_with_several_variants_needs_a_variant_named(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let (product, sizes) = tee(&db, "choose-tee", &[("S", 2_500, 5), ("M", 2_500, 5)]).await;
    let (other, _) = tee(&db, "other-tee", &[("S", 2_500, 5)]).await;
    let user = insert_user(&db.conn, "chooser@example.com").await;

    let unnamed = place(&db, user.id, order(product.id, None, 1, "a")).await;
    assert!(
        matches!(
            unnamed,
            Err(DomainError::InvalidInput {
                field: "variantId",
                ..
            })
        ),
        "{unnamed:?}"
    );
    let foreign = place(&db, user.id, order(other.id, Some(sizes[0]), 1, "b")).await;
    assert!(
        matches!(foreign, Err(DomainError::NotFound { .. })),
        "{foreign:?}"
    );
    assert!(
        place(&db, user.id, order(other.id, None, 1, "c")).await.is_ok(),
        "one active variant (the default is off) is enough"
    );
    let stock: i32 = [sizes[0], sizes[1]]
        .iter()
        .map(|v| async { variant_stock(&db.conn, *v).await })
        .collect::<futures::future::JoinAll<_>>()
        .await
        .into_iter()
        .sum();
    assert_eq!(stock, 10, "nothing was reserved");
}
on_both_backends!(
    choose_a_variant,
    a_product_with_several_variants_needs_a_variant_named
);

async fn variants_name_the_same_options_with_values_of_their_own(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let (product, _) = tee(&db, "rules-tee", &[("S", 2_500, 5)]).await;
    let new = |sku: &str, pairs: &[(&str, &str)]| {
        NewVariant::parse(sku, None, &options(pairs), 2_500, 1, 0, true).expect("valid")
    };

    let other_option = create_variant(&db.conn, product.id, new("R-1", &[("Colour", "Red")])).await;
    assert!(
        matches!(
            other_option,
            Err(DomainError::InvalidInput { field: "options", .. })
        ),
        "{other_option:?}"
    );
    let same_values = create_variant(&db.conn, product.id, new("R-2", &[("size", "s")])).await;
    assert!(
        matches!(same_values, Err(DomainError::Conflict(_))),
        "{same_values:?}"
    );
    let taken_sku = create_variant(&db.conn, product.id, new("RULES-TEE-S", &[("Size", "XL")])).await;
    assert!(
        matches!(taken_sku, Err(DomainError::Conflict(_))),
        "{taken_sku:?}"
    );
    let fine = create_variant(&db.conn, product.id, new("R-3", &[("Size", "XL")]))
        .await
        .expect("a new size");
    assert_eq!(
        (fine.title.as_str(), fine.currency.as_str(), fine.position),
        ("XL", "EUR", 2)
    );
    let unknown = create_variant(&db.conn, ProductId::new(), new("R-4", &[])).await;
    assert!(matches!(
        unknown,
        Err(DomainError::NotFound { entity: "product" })
    ));
}
on_both_backends!(
    variant_rules,
    variants_name_the_same_options_with_values_of_their_own
);

async fn list_filters_look_at_active_variants(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let (mixed, sizes) = tee(&db, "filter-mixed", &[("S", 1_000, 0), ("M", 5_000, 3)]).await;
    let (sold_out, _) = tee(&db, "filter-sold", &[("S", 3_000, 0)]).await;
    let names = |filter: ProductFilter| {
        let conn = &db.conn;
        async move {
            let mut slugs: Vec<String> = list_products(
                conn,
                &filter,
                ProductOrder::Name,
                None,
                50,
                Visibility::ActiveOnly,
            )
            .await
            .expect("list")
            .items
            .into_iter()
            .map(|p| p.product.slug)
            .collect();
            slugs.sort();
            slugs
        }
    };
    let filter = |min: Option<i64>, max: Option<i64>, in_stock: Option<bool>| {
        ProductFilter::parse(None, min, max, in_stock, None).expect("filter")
    };

    assert_eq!(
        names(filter(Some(4_000), Some(6_000), None)).await,
        vec![mixed.slug.clone()]
    );
    assert_eq!(
        names(filter(None, Some(2_000), None)).await,
        vec![mixed.slug.clone()]
    );
    assert_eq!(
        names(filter(Some(2_000), Some(3_500), None)).await,
        vec![sold_out.slug.clone()],
        "the inactive default variant (99.99) never matches"
    );
    assert_eq!(
        names(filter(None, None, Some(true))).await,
        vec![mixed.slug.clone()]
    );
    assert_eq!(
        names(filter(None, None, Some(false))).await,
        vec![sold_out.slug.clone()]
    );

    update_variant(
        &db.conn,
        sizes[1],
        VariantPatch::parse(None, None, None, Some(false)).expect("patch"),
    )
    .await
    .expect("M off");
    assert!(names(filter(Some(4_000), Some(6_000), None)).await.is_empty());
    assert!(names(filter(None, None, Some(true))).await.is_empty());
}
on_both_backends!(list_filters, list_filters_look_at_active_variants);
