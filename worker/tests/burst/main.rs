//! A burst cannot wedge the queue.
//!
//! apalis-redis 1.0.0 stops fetching for good once more than ~8,000 jobs are
//! due at once (see `worker::queue` and `tests/queue/unpack_limit.rs`). Our
//! defences: the push writes straight to the active list, and the dispatcher
//! keeps each queue under `QUEUE_HIGH_WATER`, leaving the rest in the outbox.
//! This test puts 50,000 due jobs in the outbox at once and runs a real
//! [`worker::Worker`] (PostgreSQL + Redis, its own database and key
//! namespace) until every row is completed, while a sampler watches the
//! queue's depth never go past the high-water mark.
//!
//! The job is the cheapest real one: `settle_payment.v1` for a payment that
//! is already SETTLED, so the handler runs one `UPDATE` that matches nothing
//! and returns `Done`. The time taken is printed (`--nocapture`).
//!
//! On SQLite the dispatcher holds no lock while pushing, so a job can finish
//! before its row is marked dispatched. A burst used to wedge the SQLite
//! queue that way: once a full dispatcher batch of such rows existed, every
//! round pushed the same finished rows again and nothing else moved (and the
//! worker ignored SIGTERM, its dispatcher never leaving that loop). The
//! second test pins the fix.
//!
//! `sqlite`: the embedded SQLite queue drains a 20,000-job burst in time.
#[path = "../common/running_worker.rs"]
mod running_worker;
mod sqlite;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use entity::jobs::QueueName;
use entity::tables::{dead_jobs, outbox};
use running_worker::RunningWorker;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use testkit::fixtures::{insert_outbox_rows, settled_payment};
use testkit::{Backend, Namespace, TestDb, redis_url};
use worker::config::WorkerConfig;
use worker::dispatch::Dispatcher;
use worker::queue::{JobQueue, QueueOptions};

const JOBS: usize = 50_000;
const HIGH_WATER: u64 = 2_000;
const CONCURRENCY: usize = 64;
const FETCH_BATCH: usize = 100;
/// All 50,000 must be done by then: a debug build drains ≈ 225 jobs/s on this
/// 2-core machine (about 4 minutes; see the printed figures).
const DEADLINE: Duration = Duration::from_secs(480);
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_thousand_due_jobs_all_complete_without_the_queue_passing_its_high_water_mark() {
    // Arrange: 50,000 due first attempts in the outbox, nothing in Redis
    let started = Instant::now();
    let db = settlements_due(Backend::Postgres, JOBS).await;
    println!("burst: inserted {JOBS} outbox rows in {:.2?}", started.elapsed());

    let namespace = Namespace::new("sf-burst");
    let mail_dir = tempfile::tempdir().expect("a temporary directory");
    let mut config = WorkerConfig::local(db.url.clone(), Some(redis_url()));
    config.queue_namespace = namespace.name.clone();
    config.data_dir = mail_dir.path().to_owned();
    config.concurrency = CONCURRENCY;
    config.queues = vec![QueueName::Settlements];
    config.high_water = HIGH_WATER;
    config.sweep_interval = Duration::from_millis(50);
    config.dispatch_grace = Duration::ZERO;
    config.queue = QueueOptions {
        poll_interval: Duration::from_millis(50),
        heartbeat: Duration::from_secs(1),
        orphan_after: Duration::from_secs(20),
        shutdown_deadline: Duration::from_secs(5),
        fetch_batch: FETCH_BATCH,
        ..QueueOptions::default()
    };
    let queue = JobQueue::redis(&redis_url(), &namespace.name, config.queue.clone())
        .await
        .expect("connect to Redis");
    let sampler = DepthSampler::start(queue.clone());

    // Act: one worker drains the burst
    let drain_started = Instant::now();
    let running = RunningWorker::start(&config, &db.conn, queue.clone());
    let mut left = JOBS as u64;
    let mut last_report = Instant::now();
    while left > 0 {
        assert!(
            drain_started.elapsed() < DEADLINE,
            "{left} of {JOBS} jobs still not completed after {DEADLINE:?} (queue depth peaked at {})",
            sampler.max()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        left = incomplete(&db.conn).await;
        if last_report.elapsed() >= Duration::from_secs(10) {
            println!(
                "burst: {left} left after {:.0?}, queue depth now {}, peak {}",
                drain_started.elapsed(),
                sampler.last(),
                sampler.max()
            );
            last_report = Instant::now();
        }
    }
    let drained_in = drain_started.elapsed();
    running.stop().await;
    let (peak, samples) = (sampler.max(), sampler.samples());
    sampler.stop();

    // Assert
    #[expect(clippy::cast_precision_loss, reason = "a rate for the log")]
    let rate = JOBS as f64 / drained_in.as_secs_f64();
    println!(
        "burst: {JOBS} jobs completed in {drained_in:.2?} ({rate:.0} jobs/s); \
         queue depth peaked at {peak} over {samples} samples (high water {HIGH_WATER})"
    );
    assert_all_ran_once(&db.conn, JOBS).await;
    assert!(samples >= 10, "the sampler read the depth only {samples} times");
    assert!(
        peak <= HIGH_WATER + FETCH_BATCH as u64,
        "the settlements queue held {peak} jobs, above the high-water mark {HIGH_WATER} (+{FETCH_BATCH} slack)"
    );
    assert!(peak > 0, "the sampler never saw a job in the queue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_whose_job_finished_before_they_were_marked_dispatched_are_not_pushed_again() {
    // Arrange: a full dispatcher batch of rows whose job already finished
    // although they were never marked dispatched, then one due row
    let db = TestDb::migrated(Backend::Sqlite).await;
    let job = settled_payment(&db.conn)
        .await
        .expect("insert the settled payment");
    let batch = usize::try_from(worker::dispatch::DEFAULT_BATCH).expect("a batch fits in memory");
    insert_outbox_rows(&db.conn, &job, batch)
        .await
        .expect("insert outbox rows");
    for row in outbox::Entity::find()
        .all(&db.conn)
        .await
        .expect("read the outbox")
    {
        entity::outbox::mark_completed(&db.conn, row.id)
            .await
            .expect("complete the row");
    }
    insert_outbox_rows(&db.conn, &job, 1)
        .await
        .expect("insert outbox rows");
    let queue = JobQueue::sqlite(&db.url, "burst", QueueOptions::default())
        .await
        .expect("open the SQLite queue");
    let dispatcher = Dispatcher::new(
        db.conn.clone(),
        queue.clone(),
        HIGH_WATER,
        Duration::from_secs(600),
    );

    // Act
    let pushed = tokio::time::timeout(Duration::from_secs(30), dispatcher.pump(Duration::ZERO))
        .await
        .expect("the dispatcher stops when nothing is left to push")
        .expect("the dispatcher pushes");

    // Assert: only the due row went to the queue, and nothing is left waiting
    assert_eq!(pushed, 1);
    assert_eq!(queue.depth(QueueName::Settlements).await.expect("depth"), 1);
    assert_eq!(entity::outbox::backlog(&db.conn).await.expect("backlog"), 0);
}

/// A migrated database whose outbox holds `count` due settlements of one
/// SETTLED payment (each run is one `UPDATE` that matches nothing).
async fn settlements_due(backend: Backend, count: usize) -> TestDb {
    let db = TestDb::migrated(backend).await;
    let job = settled_payment(&db.conn)
        .await
        .expect("insert the settled payment");
    insert_outbox_rows(&db.conn, &job, count)
        .await
        .expect("insert outbox rows");
    db
}

/// Every one of the `jobs` outbox rows completed in one attempt: none was
/// retried (a retry is a new row) and none died.
async fn assert_all_ran_once(db: &DatabaseConnection, jobs: usize) {
    let rows = outbox::Entity::find().count(db).await.expect("count outbox rows");
    assert_eq!(
        rows, jobs as u64,
        "no attempt was retried (a retry would be a new row)"
    );
    assert_eq!(incomplete(db).await, 0);
    let dead = dead_jobs::Entity::find()
        .count(db)
        .await
        .expect("count dead jobs");
    assert_eq!(dead, 0, "no job died");
}

/// Outbox rows of this test not yet completed.
async fn incomplete(db: &DatabaseConnection) -> u64 {
    outbox::Entity::find()
        .filter(outbox::Column::CompletedAt.is_null())
        .count(db)
        .await
        .expect("count incomplete outbox rows")
}

/// Reads the depth of the settlements queue every [`SAMPLE_EVERY`].
struct DepthSampler {
    max: Arc<AtomicU64>,
    last: Arc<AtomicU64>,
    samples: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl DepthSampler {
    fn start(queue: JobQueue) -> Self {
        let (max, last, samples) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (max_w, last_w, samples_w) = (Arc::clone(&max), Arc::clone(&last), Arc::clone(&samples));
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(SAMPLE_EVERY);
            loop {
                ticker.tick().await;
                let depth = queue
                    .depth(QueueName::Settlements)
                    .await
                    .expect("read the queue depth");
                max_w.fetch_max(depth, Ordering::Relaxed);
                last_w.store(depth, Ordering::Relaxed);
                samples_w.fetch_add(1, Ordering::Relaxed);
            }
        });
        Self {
            max,
            last,
            samples,
            task,
        }
    }

    fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    fn last(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }

    fn samples(&self) -> usize {
        self.samples.load(Ordering::Relaxed)
    }

    /// Stops sampling; a sampler that panicked (Redis unreachable) fails the test.
    fn stop(self) {
        assert!(!self.task.is_finished(), "the depth sampler stopped early");
        self.task.abort();
    }
}
