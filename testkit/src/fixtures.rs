//! Rows written straight to the database, for tests and benchmarks that
//! need many of them fast (the job burst test, `bench/jobs.sh`).
use chrono::Utc;
use entity::accounts::Role;
use entity::ids::{OrderId, OutboxId, PaymentId, UserId};
use entity::jobs::{Job, SettlePayment};
use entity::orders::OrderStatus;
use entity::payments::PaymentStatus;
use entity::tables::{orders, outbox, payments, users};
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, DatabaseConnection, DbErr, EntityTrait};

/// Rows per `INSERT`: 10 columns each, well under PostgreSQL's 65,535 and
/// SQLite's 32,766 bind parameters.
const CHUNK: usize = 1_000;

/// A customer, a PAID order and its SETTLED payment, and the job that
/// would settle it: running that job is the cheapest real job there is
/// (one `UPDATE … WHERE status = 'AUTHORIZED'` that matches nothing, one
/// read, the outcome recorded).
///
/// # Errors
/// The database's, when an insert fails.
pub async fn settled_payment(db: &DatabaseConnection) -> Result<SettlePayment, DbErr> {
    let now = Utc::now();
    let user = users::ActiveModel {
        id: Set(UserId::new()),
        email: Set(format!("settled-{}@example.com", uuid::Uuid::now_v7().simple())),
        name: Set("Settled customer".into()),
        password_hash: Set("not-a-real-hash".into()),
        role: Set(Role::Customer),
        token_version: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    let order = orders::ActiveModel {
        id: Set(OrderId::new()),
        user_id: Set(user.id),
        status: Set(OrderStatus::Paid),
        total_minor: Set(2_500),
        currency: Set("EUR".into()),
        idempotency_key: Set(uuid::Uuid::now_v7().to_string()),
        created_at: Set(now),
        updated_at: Set(now),
        // The checkout breakdown keeps its defaults (a total without one).
        ..Default::default()
    }
    .insert(db)
    .await?;
    let payment = payments::ActiveModel {
        id: Set(PaymentId::new()),
        order_id: Set(order.id),
        status: Set(PaymentStatus::Settled),
        amount_minor: Set(2_500),
        currency: Set("EUR".into()),
        token: Set("sandbox_ok".into()),
        authorization_ref: Set(Some("fixture".into())),
        attempts: Set(1),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(SettlePayment {
        payment_id: payment.id,
        order_id: order.id,
        request_id: None,
    })
}

/// `count` first attempts of `job`, due now and not yet dispatched, in
/// multi-row `INSERT`s of [`CHUNK`] rows.
///
/// # Errors
/// The database's, when an insert fails.
pub async fn insert_outbox_rows(
    db: &DatabaseConnection,
    job: &SettlePayment,
    count: usize,
) -> Result<(), DbErr> {
    let payload = serde_json::to_value(job).map_err(|e| DbErr::Custom(e.to_string()))?;
    insert_named_outbox_rows(db, SettlePayment::NAME, &payload, count).await
}

/// `count` first attempts of the job named `job_name` with `payload`, as
/// [`insert_outbox_rows`] (the bench's no-op job has no payload type).
///
/// # Errors
/// The database's, when an insert fails.
pub async fn insert_named_outbox_rows(
    db: &DatabaseConnection,
    job_name: &str,
    payload: &serde_json::Value,
    count: usize,
) -> Result<(), DbErr> {
    let mut left = count;
    while left > 0 {
        let now = Utc::now();
        let rows = (0..left.min(CHUNK)).map(|_| outbox::ActiveModel {
            id: Set(OutboxId::new()),
            job_name: Set(job_name.to_owned()),
            payload: Set(payload.clone()),
            attempt: Set(1),
            available_at: Set(now),
            created_at: Set(now),
            dispatched_at: Set(None),
            completed_at: Set(None),
            dispatch_attempts: Set(0),
            last_error: Set(None),
            traceparent: Set(None),
        });
        outbox::Entity::insert_many(rows).exec(db).await?;
        left = left.saturating_sub(CHUNK);
    }
    Ok(())
}

/// `count` attempts of `job` that were created, dispatched and finished at
/// `finished_at` (outbox history, for the pruning tests), in multi-row
/// `INSERT`s of [`CHUNK`] rows. Returns their ids.
///
/// # Errors
/// The database's, when an insert fails.
pub async fn insert_finished_outbox_rows(
    db: &DatabaseConnection,
    job: &SettlePayment,
    count: usize,
    finished_at: chrono::DateTime<Utc>,
) -> Result<Vec<OutboxId>, DbErr> {
    let payload = serde_json::to_value(job).map_err(|e| DbErr::Custom(e.to_string()))?;
    let ids: Vec<OutboxId> = (0..count).map(|_| OutboxId::new()).collect();
    for chunk in ids.chunks(CHUNK) {
        let rows = chunk.iter().map(|id| outbox::ActiveModel {
            id: Set(*id),
            job_name: Set(SettlePayment::NAME.to_owned()),
            payload: Set(payload.clone()),
            attempt: Set(1),
            available_at: Set(finished_at),
            created_at: Set(finished_at),
            dispatched_at: Set(Some(finished_at)),
            completed_at: Set(Some(finished_at)),
            dispatch_attempts: Set(0),
            last_error: Set(None),
            traceparent: Set(None),
        });
        outbox::Entity::insert_many(rows).exec(db).await?;
    }
    Ok(ids)
}

/// The ids of every outbox row left in the database.
///
/// # Panics
/// When the rows cannot be read.
pub async fn outbox_ids(conn: &DatabaseConnection) -> std::collections::HashSet<OutboxId> {
    outbox::Entity::find()
        .all(conn)
        .await
        .expect("list outbox rows")
        .into_iter()
        .map(|row| row.id)
        .collect()
}
