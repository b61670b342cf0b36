//! SQLite only: an ack costs the same however many finished jobs its
//! consumer left in `Jobs`. apalis's ack (`UPDATE Jobs … FROM json_each(…)
//! WHERE id = … AND lock_by = ?`) was planned through apalis's `lock_by`
//! index, visiting every row the consumer ever locked — all its finished
//! jobs until the vacuum deletes them — and parsing the batch's JSON again
//! for each; the queue drops that index (`worker::queue`'s SQLite backend).
use std::time::{Duration, Instant};

use entity::jobs::QueueName;
use sea_orm::sqlx::{self, SqlitePool};

use crate::helpers::{Backend, Behaviour, Deliveries, TestQueue, consume, jobs, until, until_async};

/// Finished jobs of the consumer left in the table (under another job type,
/// so the vacuum leaves them there).
const LEFT_BEHIND: u32 = 20_000;
const JOBS: u64 = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_cost_the_same_with_twenty_thousand_finished_jobs_left_in_the_table() {
    // Arrange: a consumer that ran 1,000 jobs on an empty table
    let queue = TestQueue::new(Backend::Sqlite).await;
    let deliveries = Deliveries::default();
    let consumer = consume(
        &queue.queue,
        QueueName::Emails,
        "acks",
        8,
        &deliveries,
        Behaviour::default(),
    );
    let empty = run(&queue, &deliveries, JOBS).await;
    let pool = SqlitePool::connect(&queue.url).await.expect("open the file");
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
         INSERT INTO Jobs (job, id, job_type, status, attempts, max_attempts, run_at, lock_by, done_at) \
         SELECT x'00', printf('LEFT%022d', i), 'elsewhere', 'Done', 1, 1, 0, 'acks:emails', 0 FROM n",
    )
    .bind(LEFT_BEHIND)
    .execute(&pool)
    .await
    .expect("insert finished jobs locked by the consumer");

    // Act: 1,000 more jobs with 20,000 finished ones in the table
    let crowded = run(&queue, &deliveries, JOBS).await;
    consumer.stop().await;

    // Assert: about as fast (with apalis's `lock_by` index kept, a test
    // build took 47 s for the second 1,000 against 2.3 s for the first)
    println!(
        "1,000 jobs: {empty:.2?} on an empty table, {crowded:.2?} with {LEFT_BEHIND} finished jobs left"
    );
    assert!(
        crowded < empty * 3 + Duration::from_secs(2),
        "1,000 jobs took {crowded:.2?} with {LEFT_BEHIND} finished jobs in the table, {empty:.2?} without"
    );
    assert_eq!(queue.depth(QueueName::Emails).await, 0, "every job was acked");
}

/// Pushes `count` jobs and waits until the consumer finished them and they
/// are acked; how long it took.
async fn run(queue: &TestQueue, deliveries: &Deliveries, count: u64) -> Duration {
    let started = Instant::now();
    let before = deliveries.finished();
    queue.push_jobs(QueueName::Emails, &jobs(count, 0)).await;
    until(Duration::from_secs(120), "the jobs ran", || {
        deliveries.finished() == before + count as usize
    })
    .await;
    until_async(Duration::from_secs(120), "the jobs were acked", || async {
        queue.depth(QueueName::Emails).await == 0
    })
    .await;
    started.elapsed()
}
