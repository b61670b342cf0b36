//! The worker prunes the outbox on its own, with the default settings
//! (`OUTBOX_RETENTION` 7 days, `OUTBOX_PRUNE_INTERVAL_SECS` 300): the first
//! round runs when the worker starts, so rows finished more than a week ago
//! are gone within seconds of a start and recent ones stay. Abandoned carts
//! (`CART_RETENTION`, 30 days) go the same way. One test per backend:
//! SQLite with the embedded queue, PostgreSQL with Redis.
#[path = "../common/running_worker.rs"]
mod running_worker;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::Utc;
use running_worker::RunningWorker;
use testkit::fixtures::{insert_finished_outbox_rows, outbox_ids, settled_payment};
use testkit::{Backend, Namespace, TestDb, on_both_backends, redis_url};
use worker::config::WorkerConfig;
use worker::queue::JobQueue;

/// Well past the first round: pruning 1,200 rows takes milliseconds.
const DEADLINE: Duration = Duration::from_secs(30);

/// A `worker run` in this process, on the test's database and, on
/// PostgreSQL, Redis (the embedded queue on SQLite).
async fn start_worker(
    config: &WorkerConfig,
    db: &TestDb,
    redis: Option<&str>,
    namespace: &Namespace,
) -> RunningWorker {
    let queue = match redis {
        Some(url) => JobQueue::redis(url, &namespace.name, config.queue.clone()).await,
        None => JobQueue::sqlite(&db.url, &namespace.name, config.queue.clone()).await,
    }
    .expect("open the queue");
    RunningWorker::start(config, &db.conn, queue)
}

async fn a_started_worker_prunes_rows_finished_past_the_default_retention(backend: Backend) {
    // Arrange: more than two prune batches finished eight days ago, and
    // rows finished six days ago
    let db = TestDb::migrated(backend).await;
    let job = settled_payment(&db.conn).await.expect("a settled payment");
    let old = insert_finished_outbox_rows(&db.conn, &job, 1_200, Utc::now() - chrono::Duration::days(8))
        .await
        .expect("old finished rows");
    let recent = insert_finished_outbox_rows(&db.conn, &job, 20, Utc::now() - chrono::Duration::days(6))
        .await
        .expect("recent finished rows");
    let namespace = Namespace::new("sf-prune");
    let mail_dir = tempfile::tempdir().expect("a temporary directory");
    let redis = (backend == Backend::Postgres).then(redis_url);
    let mut config = WorkerConfig::local(db.url.clone(), redis.clone());
    config.queue_namespace = namespace.name.clone();
    config.data_dir = mail_dir.path().to_owned();
    assert_eq!(
        config.outbox_retention,
        Duration::from_secs(7 * 24 * 3_600),
        "the default retention"
    );
    assert_eq!(
        config.outbox_prune_interval,
        Duration::from_secs(300),
        "the default interval"
    );

    // Act: a worker starts
    let running = start_worker(&config, &db, redis.as_deref(), &namespace).await;
    let started = Instant::now();
    let mut left = outbox_ids(&db.conn).await;
    while old.iter().any(|id| left.contains(id)) {
        assert!(
            started.elapsed() < DEADLINE,
            "{} of {} old rows still there {DEADLINE:?} after the worker started",
            old.iter().filter(|id| left.contains(id)).count(),
            old.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = outbox_ids(&db.conn).await;
    }
    let pruned_in = started.elapsed();
    running.stop().await;

    // Assert: the old rows went, the recent ones stayed
    println!("prune: 1,200 rows past the retention deleted {pruned_in:.2?} after the worker started");
    assert_eq!(left, recent.into_iter().collect::<HashSet<_>>());
}
on_both_backends!(
    prune_schedule,
    a_started_worker_prunes_rows_finished_past_the_default_retention
);

/// Carts, `aged` of them last changed 31 days ago; returns those ids.
async fn carts_aged(db: &TestDb, count: usize, aged: usize) -> Vec<entity::ids::CartId> {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let mut old = Vec::new();
    for i in 0..count {
        let cart = entity::db::retry::write(&db.conn, "a cart", |txn| {
            Box::pin(entity::carts::create_cart(txn, None, &[]))
        })
        .await
        .expect("a cart");
        if i < aged {
            old.push(cart.row.id);
        }
    }
    entity::tables::carts::Entity::update_many()
        .col_expr(
            entity::tables::carts::Column::UpdatedAt,
            Expr::value(Utc::now() - chrono::Duration::days(31)),
        )
        .filter(entity::tables::carts::Column::Id.is_in(old.clone()))
        .exec(&db.conn)
        .await
        .expect("aged");
    old
}

async fn cart_ids(db: &TestDb) -> HashSet<entity::ids::CartId> {
    use sea_orm::EntityTrait;
    entity::tables::carts::Entity::find()
        .all(&db.conn)
        .await
        .expect("carts")
        .into_iter()
        .map(|cart| cart.id)
        .collect()
}

async fn a_started_worker_deletes_carts_abandoned_past_the_default_retention(backend: Backend) {
    // Arrange: more than two expiry batches of carts untouched for 31 days, and fresh ones
    let db = TestDb::migrated(backend).await;
    let old = carts_aged(&db, 230, 220).await;
    let namespace = Namespace::new("sf-carts");
    let mail_dir = tempfile::tempdir().expect("a temporary directory");
    let redis = (backend == Backend::Postgres).then(redis_url);
    let mut config = WorkerConfig::local(db.url.clone(), redis.clone());
    config.queue_namespace = namespace.name.clone();
    config.data_dir = mail_dir.path().to_owned();
    assert_eq!(
        config.cart_retention,
        Duration::from_secs(30 * 24 * 3_600),
        "the default retention"
    );

    // Act: a worker starts
    let running = start_worker(&config, &db, redis.as_deref(), &namespace).await;
    let started = Instant::now();
    let mut left = cart_ids(&db).await;
    while old.iter().any(|id| left.contains(id)) {
        assert!(
            started.elapsed() < DEADLINE,
            "{} of {} abandoned carts still there {DEADLINE:?} after the worker started",
            old.iter().filter(|id| left.contains(id)).count(),
            old.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = cart_ids(&db).await;
    }
    running.stop().await;

    // Assert: the abandoned carts went, the fresh ones stayed
    assert_eq!(left.len(), 10, "the ten fresh carts stay");
}
on_both_backends!(
    cart_expiry_schedule,
    a_started_worker_deletes_carts_abandoned_past_the_default_retention
);
