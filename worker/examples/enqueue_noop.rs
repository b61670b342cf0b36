//! Fills the outbox with cheap jobs for `bench/jobs.sh`: one customer, one
//! PAID order with a SETTLED payment, and `COUNT` `settle_payment.v1` rows
//! for that payment, due now. Each run of the job is the real handler doing
//! the least it can: one `UPDATE … WHERE status = 'AUTHORIZED'` that matches
//! nothing, one `SELECT` of the payment, then the outcome `Done` recorded in
//! a short write transaction — so the figures measure the job machinery
//! (outbox → queue → consumer → outcome), not a payment gateway.
//!
//! `DATABASE_URL=postgres://… cargo run --release -p worker --example enqueue_noop -- 20000`
//! (the schema must exist: `migration up`). Rows are inserted with
//! multi-row `INSERT`s, 1,000 at a time.
//!
//! `enqueue_noop --wait [TIMEOUT_SECS]` instead waits (polling every 100 ms)
//! until no outbox row is left uncompleted, then prints how many rows and
//! dead jobs there are; it exits 1 on timeout (default 600 s). The benchmark
//! times the workers with it on either database, without `psql` or `sqlite3`.
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use entity::accounts::Role;
use entity::ids::{OrderId, OutboxId, PaymentId, UserId};
use entity::jobs::{Job, SettlePayment};
use entity::orders::OrderStatus;
use entity::payments::PaymentStatus;
use entity::tables::{dead_jobs, orders, outbox, payments, users};
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};

/// Rows per `INSERT`: 10 columns each, well under PostgreSQL's 65,535 and
/// SQLite's 32,766 bind parameters.
const CHUNK: usize = 1_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL must name the database to fill")?;
    let db = entity::db::connect(&url, 4)
        .await
        .context("connecting to DATABASE_URL")?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--wait") {
        let timeout = args
            .get(1)
            .map_or(Ok(600), |raw| raw.parse())
            .context("TIMEOUT_SECS must be a whole number")?;
        return wait_until_completed(&db, Duration::from_secs(timeout)).await;
    }
    let count: usize = args
        .first()
        .map_or(Ok(20_000), |raw| raw.parse())
        .context("the count must be a whole number")?;
    let started = Instant::now();
    let job = settled_payment(&db).await?;
    let payload = serde_json::to_value(&job)?;
    let mut left = count;
    while left > 0 {
        let now = Utc::now();
        let rows = (0..left.min(CHUNK)).map(|_| outbox::ActiveModel {
            id: Set(OutboxId::new()),
            job_name: Set(SettlePayment::NAME.to_owned()),
            payload: Set(payload.clone()),
            attempt: Set(1),
            available_at: Set(now),
            created_at: Set(now),
            dispatched_at: Set(None),
            completed_at: Set(None),
            dispatch_attempts: Set(0),
            last_error: Set(None),
        });
        outbox::Entity::insert_many(rows).exec(&db).await?;
        left = left.saturating_sub(CHUNK);
    }
    println!(
        "enqueued {count} {} jobs (payment {}) in {:.2?}",
        SettlePayment::NAME,
        job.payment_id,
        started.elapsed()
    );
    Ok(())
}

/// Polls until every outbox row is completed; prints the totals.
async fn wait_until_completed(db: &DatabaseConnection, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let left = outbox::Entity::find()
            .filter(outbox::Column::CompletedAt.is_null())
            .count(db)
            .await?;
        if left == 0 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < timeout,
            "{left} outbox rows still not completed after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = outbox::Entity::find().count(db).await?;
    let dead = dead_jobs::Entity::find().count(db).await?;
    println!("completed: {rows} outbox rows, {dead} dead jobs");
    Ok(())
}

/// A customer, a PAID order and its SETTLED payment: settling it again is a no-op.
async fn settled_payment(db: &DatabaseConnection) -> anyhow::Result<SettlePayment> {
    let now = Utc::now();
    let user = users::ActiveModel {
        id: Set(UserId::new()),
        email: Set(format!("bench-{}@example.com", uuid::Uuid::now_v7().simple())),
        name: Set("Bench customer".into()),
        password_hash: Set("not-a-real-hash".into()),
        role: Set(Role::Customer),
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
        authorization_ref: Set(Some("bench".into())),
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
