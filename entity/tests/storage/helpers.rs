use chrono::Utc;
use entity::accounts::Role;
use entity::ids::{OrderId, ProductId, UserId};
use entity::orders::OrderStatus;
use entity::tables::{orders, products, users};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait};

pub async fn insert_product<C: ConnectionTrait>(conn: &C, stock: i32, active: bool) -> products::Model {
    let id = ProductId::new();
    products::ActiveModel {
        id: Set(id),
        sku: Set(format!("SKU-{}", id.into_uuid().simple())),
        slug: Set(format!("product-{}", id.into_uuid().simple())),
        name: Set("Test product".into()),
        description: Set("A product made by a test".into()),
        price_minor: Set(1999),
        currency: Set("EUR".into()),
        stock: Set(stock),
        active: Set(active),
        created_at: Set(Utc::now()),
        updated_at: Set(Utc::now()),
    }
    .insert(conn)
    .await
    .expect("insert product")
}

pub async fn insert_user<C: ConnectionTrait>(conn: &C, email: &str) -> users::Model {
    users::ActiveModel {
        id: Set(UserId::new()),
        email: Set(email.into()),
        name: Set("Test user".into()),
        password_hash: Set("not-a-real-hash".into()),
        role: Set(Role::Customer),
        token_version: Set(0),
        created_at: Set(Utc::now()),
        updated_at: Set(Utc::now()),
    }
    .insert(conn)
    .await
    .expect("insert user")
}

pub async fn insert_order<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
    status: OrderStatus,
) -> orders::Model {
    orders::ActiveModel {
        id: Set(OrderId::new()),
        user_id: Set(user_id),
        status: Set(status),
        total_minor: Set(1999),
        currency: Set("EUR".into()),
        idempotency_key: Set(uuid::Uuid::now_v7().to_string()),
        created_at: Set(Utc::now()),
        updated_at: Set(Utc::now()),
        // The checkout breakdown keeps its defaults (a total without one).
        ..Default::default()
    }
    .insert(conn)
    .await
    .expect("insert order")
}
