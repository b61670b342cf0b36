use migration::{Migrator, MigratorTrait};
use sea_orm::ConnectionTrait;
use testkit::{Backend, TestDb};

use crate::helpers::{insert_order, insert_product, insert_user, variant_of, variant_stock};
use testkit::on_both_backends;

const TABLES: &[&str] = &[
    "users",
    "refresh_tokens",
    "password_resets",
    "products",
    "stock_movements",
    "orders",
    "order_lines",
    "payments",
    "email_deliveries",
    "outbox",
    "dead_jobs",
    "discount_codes",
    "discount_customer_uses",
    "discount_redemptions",
    "tax_rates",
    "shipping_zones",
    "shipping_zone_countries",
    "shipping_methods",
    "addresses",
    "refunds",
    "refund_lines",
    "product_variants",
    "carts",
    "cart_lines",
];

async fn table_exists(db: &TestDb, table: &str) -> bool {
    let sql = match db.backend {
        Backend::Sqlite => format!("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{table}'"),
        Backend::Postgres => format!("SELECT 1 FROM information_schema.tables WHERE table_name = '{table}'"),
    };
    db.conn
        .query_one_raw(sea_orm::Statement::from_string(
            db.conn.get_database_backend(),
            sql,
        ))
        .await
        .expect("query catalog")
        .is_some()
}

async fn up_down_up_runs_cleanly(backend: Backend) {
    let db = TestDb::empty(backend).await;

    Migrator::up(&db.conn, None).await.expect("first up");
    for table in TABLES {
        assert!(table_exists(&db, table).await, "{table} exists after up");
    }
    insert_product(&db.conn, 3, true).await;

    Migrator::down(&db.conn, None).await.expect("down");
    for table in TABLES {
        assert!(!table_exists(&db, table).await, "{table} is gone after down");
    }

    Migrator::up(&db.conn, None).await.expect("second up");
    for table in TABLES {
        assert!(
            table_exists(&db, table).await,
            "{table} exists after the second up"
        );
    }
    assert!(
        Migrator::get_pending_migrations(&db.conn)
            .await
            .expect("status")
            .is_empty()
    );
}
on_both_backends!(up_down_up, up_down_up_runs_cleanly);

async fn constraints_reject_bad_rows(backend: Backend) {
    use entity::ids::{OrderId, OrderLineId, ProductId, UserId};
    use entity::orders::OrderStatus;
    use entity::tables::{order_lines, orders, products, users};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

    let db = TestDb::migrated(backend).await;
    let product = insert_product(&db.conn, 1, true).await;
    let user = insert_user(&db.conn, "Ada@Example.com").await;
    let order = insert_order(&db.conn, user.id, OrderStatus::PendingPayment).await;
    let this_product = || products::Entity::update_many().filter(products::Column::Id.eq(product.id));

    let negative_stock = entity::tables::product_variants::Entity::update_many()
        .col_expr(entity::tables::product_variants::Column::Stock, Expr::value(-1))
        .filter(entity::tables::product_variants::Column::ProductId.eq(product.id))
        .exec(&db.conn)
        .await;
    assert!(negative_stock.is_err(), "stock below zero is rejected");
    let negative_price = this_product()
        .col_expr(products::Column::PriceMinor, Expr::value(-5))
        .exec(&db.conn)
        .await;
    assert!(negative_price.is_err(), "a negative price is rejected");
    let unknown_role = users::Entity::update_many()
        .col_expr(users::Column::Role, Expr::value("ROOT"))
        .exec(&db.conn)
        .await;
    assert!(unknown_role.is_err(), "an unknown role is rejected");

    let same_email_other_case = users::ActiveModel {
        id: Set(UserId::new()),
        email: Set("ADA@example.COM".into()),
        ..user.clone().into()
    };
    assert!(
        same_email_other_case.insert(&db.conn).await.is_err(),
        "emails are unique case-insensitively"
    );

    let same_sku = products::ActiveModel {
        id: Set(ProductId::new()),
        slug: Set("another-slug".into()),
        ..product.clone().into()
    };
    assert!(same_sku.insert(&db.conn).await.is_err(), "skus are unique");

    let same_key = orders::ActiveModel {
        id: Set(OrderId::new()),
        ..order.clone().into()
    };
    assert!(
        same_key.insert(&db.conn).await.is_err(),
        "(user, idempotency key) is unique"
    );

    let zero_quantity = order_lines::ActiveModel {
        id: Set(OrderLineId::new()),
        order_id: Set(order.id),
        product_id: Set(product.id),
        product_name: Set(product.name.clone()),
        variant_id: Set(variant_of(product.id)),
        sku: Set(product.sku.clone()),
        variant_title: Set("Default".into()),
        quantity: Set(0),
        unit_price_minor: Set(product.price_minor),
        currency: Set(product.currency.clone()),
    };
    assert!(
        zero_quantity.insert(&db.conn).await.is_err(),
        "a line of zero units is rejected"
    );

    let orphan_line = order_lines::ActiveModel {
        id: Set(OrderLineId::new()),
        order_id: Set(OrderId::new()),
        product_id: Set(product.id),
        product_name: Set(product.name.clone()),
        variant_id: Set(variant_of(product.id)),
        sku: Set(product.sku.clone()),
        variant_title: Set("Default".into()),
        quantity: Set(1),
        unit_price_minor: Set(product.price_minor),
        currency: Set(product.currency.clone()),
    };
    assert!(
        orphan_line.insert(&db.conn).await.is_err(),
        "foreign keys are enforced"
    );

    let unchanged = products::Entity::find_by_id(product.id)
        .one(&db.conn)
        .await
        .expect("query")
        .expect("exists");
    assert_eq!(
        (
            variant_stock(&db.conn, variant_of(product.id)).await,
            unchanged.price_minor
        ),
        (1, 1999)
    );
}
on_both_backends!(constraints, constraints_reject_bad_rows);

/// A product as it was stored before variants existed (with `stock`).
async fn insert_legacy_product(db: &TestDb, stock: i32, active: bool) -> LegacyProduct {
    use sea_orm::sea_query::{Alias, Query};
    let id = uuid::Uuid::now_v7();
    let sku = format!("LEGACY-{}", id.simple()).to_uppercase();
    let now = chrono::Utc::now();
    let insert = Query::insert()
        .into_table(Alias::new("products"))
        .columns(
            [
                "id",
                "sku",
                "slug",
                "name",
                "description",
                "price_minor",
                "currency",
                "stock",
                "active",
                "created_at",
                "updated_at",
            ]
            .map(Alias::new),
        )
        .values_panic([
            id.into(),
            sku.clone().into(),
            format!("legacy-{}", id.simple()).into(),
            "Legacy product".into(),
            "".into(),
            1999_i64.into(),
            "EUR".into(),
            stock.into(),
            active.into(),
            now.into(),
            now.into(),
        ])
        .to_owned();
    db.conn.execute(&insert).await.expect("insert legacy product");
    LegacyProduct {
        id: entity::ids::ProductId(id),
        sku,
        stock,
        active,
    }
}

struct LegacyProduct {
    id: entity::ids::ProductId,
    sku: String,
    stock: i32,
    active: bool,
}

/// Products made before variants existed become one variant each, keeping
/// the product's id, SKU, price, stock and active flag; their order lines
/// and stock movements name that variant, and the lines its SKU.
async fn products_carry_over_as_one_variant_each(backend: Backend) {
    use entity::catalog::variants::{option_values, variants_of_products};
    use entity::orders::OrderStatus;
    use entity::tables::{order_lines, stock_movements};
    use sea_orm::EntityTrait;
    use sea_orm::sea_query::{Alias, Query};

    let db = TestDb::empty(backend).await;
    let before_variants = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261209_000001_product_variants")
        .expect("the variants migration is listed");
    Migrator::up(
        &db.conn,
        Some(u32::try_from(before_variants).expect("few migrations")),
    )
    .await
    .expect("up to before variants");
    let in_stock = insert_legacy_product(&db, 7, true).await;
    let retired = insert_legacy_product(&db, 0, false).await;
    let user = insert_user(&db.conn, "legacy@example.com").await;
    // An order as the schema had it then (no checkout columns yet).
    let order_id = uuid::Uuid::now_v7();
    let legacy_order = Query::insert()
        .into_table(Alias::new("orders"))
        .columns(
            [
                "id",
                "user_id",
                "status",
                "total_minor",
                "currency",
                "idempotency_key",
                "created_at",
                "updated_at",
            ]
            .map(Alias::new),
        )
        .values_panic([
            order_id.into(),
            user.id.into_uuid().into(),
            OrderStatus::Paid.as_str().into(),
            3998_i64.into(),
            "EUR".into(),
            "legacy-order".into(),
            chrono::Utc::now().into(),
            chrono::Utc::now().into(),
        ])
        .to_owned();
    db.conn.execute(&legacy_order).await.expect("insert legacy order");
    let line = Query::insert()
        .into_table(Alias::new("order_lines"))
        .columns(
            [
                "id",
                "order_id",
                "product_id",
                "product_name",
                "quantity",
                "unit_price_minor",
                "currency",
            ]
            .map(Alias::new),
        )
        .values_panic([
            uuid::Uuid::now_v7().into(),
            order_id.into(),
            in_stock.id.into_uuid().into(),
            "Legacy product".into(),
            2.into(),
            1999_i64.into(),
            "EUR".into(),
        ])
        .to_owned();
    db.conn.execute(&line).await.expect("insert legacy line");
    let movement = Query::insert()
        .into_table(Alias::new("stock_movements"))
        .columns(
            [
                "id",
                "product_id",
                "order_id",
                "delta",
                "stock_after",
                "reason",
                "created_at",
            ]
            .map(Alias::new),
        )
        .values_panic([
            uuid::Uuid::now_v7().into(),
            in_stock.id.into_uuid().into(),
            order_id.into(),
            (-2).into(),
            7.into(),
            "order reserved".into(),
            chrono::Utc::now().into(),
        ])
        .to_owned();
    db.conn.execute(&movement).await.expect("insert legacy movement");

    Migrator::up(&db.conn, None).await.expect("up");

    let variants = variants_of_products(&db.conn, &[in_stock.id, retired.id])
        .await
        .expect("variants");
    for product in [&in_stock, &retired] {
        let [variant] = variants[&product.id].as_slice() else {
            panic!("exactly one variant for {}", product.sku);
        };
        assert_eq!(
            variant.id.into_uuid(),
            product.id.into_uuid(),
            "keeps the product's id"
        );
        assert_eq!(
            (
                &variant.sku,
                variant.price_minor,
                variant.currency.as_str(),
                variant.stock,
                variant.active
            ),
            (&product.sku, 1999, "EUR", product.stock, product.active)
        );
        assert!(option_values(variant).is_empty());
    }
    let lines = order_lines::Entity::find().all(&db.conn).await.expect("lines");
    let [line] = lines.as_slice() else {
        panic!("one line: {lines:?}");
    };
    assert_eq!(
        (line.variant_id, line.sku.as_str(), line.variant_title.as_str()),
        (variant_of(in_stock.id), in_stock.sku.as_str(), "Default")
    );
    let movements = stock_movements::Entity::find()
        .all(&db.conn)
        .await
        .expect("movements");
    assert_eq!(
        movements.iter().map(|m| m.variant_id).collect::<Vec<_>>(),
        vec![variant_of(in_stock.id)]
    );
    let order = entity::tables::orders::Entity::find()
        .one(&db.conn)
        .await
        .expect("order")
        .expect("the legacy order");
    assert_eq!(
        (
            order.subtotal_minor,
            order.discount_minor,
            order.shipping_minor,
            order.tax_minor
        ),
        (3998, 0, 0, 0),
        "an order from before checkout keeps its total as subtotal"
    );
    assert!(order.shipping_address.is_none());
}
on_both_backends!(variants_carry_over, products_carry_over_as_one_variant_each);
