use chrono::Utc;
use entity::accounts::Role;
use entity::ids::{OrderId, ProductId, UserId, VariantId};
use entity::orders::OrderStatus;
use entity::tables::{orders, product_variants, products, users};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait};

/// A product of €19.99 with one variant (the product's id and SKU) holding
/// `stock`, both `active` or not.
pub async fn insert_product<C: ConnectionTrait>(conn: &C, stock: i32, active: bool) -> products::Model {
    let id = ProductId::new();
    let product = products::ActiveModel {
        id: Set(id),
        sku: Set(format!("SKU-{}", id.into_uuid().simple())),
        slug: Set(format!("product-{}", id.into_uuid().simple())),
        name: Set("Test product".into()),
        description: Set("A product made by a test".into()),
        price_minor: Set(1999),
        currency: Set("EUR".into()),
        active: Set(active),
        created_at: Set(Utc::now()),
        updated_at: Set(Utc::now()),
    }
    .insert(conn)
    .await
    .expect("insert product");
    product_variants::ActiveModel {
        id: Set(variant_of(id)),
        product_id: Set(id),
        sku: Set(product.sku.clone()),
        title: Set("Default".into()),
        option_values: Set("[]".into()),
        price_minor: Set(product.price_minor),
        currency: Set(product.currency.clone()),
        stock: Set(stock),
        weight_grams: Set(0),
        active: Set(active),
        position: Set(0),
        created_at: Set(Utc::now()),
        updated_at: Set(Utc::now()),
    }
    .insert(conn)
    .await
    .expect("insert variant");
    product
}

/// The default variant of a product made by [`insert_product`] (or carried
/// over from before variants): it has the product's id.
pub fn variant_of(product: ProductId) -> VariantId {
    VariantId(product.into_uuid())
}

/// A variant's stock on hand.
pub async fn variant_stock<C: ConnectionTrait>(conn: &C, variant: VariantId) -> i32 {
    product_variants::Entity::find_by_id(variant)
        .one(conn)
        .await
        .expect("query variant")
        .expect("variant exists")
        .stock
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
