//! Fills the outbox with cheap jobs for `bench/jobs.sh`: one customer, one
//! PAID order with a SETTLED payment, and `COUNT` `settle_payment.v1` rows
//! for that payment, due now. Each run of the job is the real handler doing
//! the least it can: one `UPDATE … WHERE status = 'AUTHORIZED'` that matches
//! nothing, one `SELECT` of the payment, then the outcome `Done` recorded in
//! a short write transaction — so the figures measure the job machinery
//! (outbox → queue → consumer → outcome), not a payment gateway.
//!
//! `DATABASE_URL=postgres://… cargo run --release -p worker --example enqueue_noop -- 20000`
//! (the schema must exist: `migration up`). The rows come from
//! `testkit::fixtures`, as in the burst test.
//!
//! `enqueue_noop --noop COUNT` instead writes `COUNT` rows of the job that
//! does nothing at all (`bench_noop.v1`, on the emails queue), which only a
//! worker built with the `bench-noop` feature runs: the figure is then the
//! pipeline's alone. (Hence the example needs that feature too:
//! `--features bench-noop`.)
//!
//! `enqueue_noop --wait [TIMEOUT_SECS]` instead waits (polling every 100 ms)
//! until no outbox row is left uncompleted, then prints how many rows and
//! dead jobs there are; it exits 1 on timeout (default 600 s). The benchmark
//! times the workers with it on either database, without `psql` or `sqlite3`.
use std::time::{Duration, Instant};

use anyhow::Context as _;
use entity::jobs::{Job, SettlePayment};
use entity::tables::{dead_jobs, outbox};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use worker::jobs::NOOP;

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
    let noop = args.first().map(String::as_str) == Some("--noop");
    let count: usize = args
        .get(usize::from(noop))
        .map_or(Ok(20_000), |raw| raw.parse())
        .context("the count must be a whole number")?;
    let started = Instant::now();
    if noop {
        let payload = serde_json::json!({});
        testkit::fixtures::insert_named_outbox_rows(&db, NOOP, &payload, count).await?;
        println!("enqueued {count} {NOOP} jobs in {:.2?}", started.elapsed());
        return Ok(());
    }
    let job = testkit::fixtures::settled_payment(&db).await?;
    testkit::fixtures::insert_outbox_rows(&db, &job, count).await?;
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
