//! apalis-redis 1.0.0 moves every due scheduled task to the active list with
//! one Lua `unpack(...)`; Redis's Lua refuses more than 8,000 values, so past
//! that every fetch fails and the queue is wedged. apalis's own push always
//! goes through the scheduled set. Ours goes straight to the active list.
use std::time::Duration;

use apalis::prelude::{TaskBuilder, WorkerContext};
use entity::jobs::QueueName;
use futures::StreamExt;
use worker::queue::QueueOptions;

use crate::helpers::{Backend, Behaviour, Deliveries, TestQueue, consume, fast_options, jobs, until};

const DUE: u64 = 9_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_thousand_due_jobs_pushed_through_apalis_wedge_every_fetch() {
    // Arrange: 9,000 due tasks pushed the apalis way
    let queue = TestQueue::new(Backend::Redis).await;
    let key = format!("{}:emails", queue.namespace);
    let config = apalis_redis::Config::default().queue(&key);
    let mut conn = apalis_redis::connect(crate::helpers::redis_url())
        .await
        .expect("connect");
    let tasks: Vec<_> = jobs(DUE, 0)
        .iter()
        .map(|job| TaskBuilder::new(serde_json::to_vec(job).expect("encode")).build())
        .collect();
    apalis_redis::queries::push_tasks(&mut conn, &config, &tasks)
        .await
        .expect("apalis push");
    tokio::time::sleep(Duration::from_millis(1_100)).await; // run_at is in whole seconds

    // Act: one apalis fetch by a registered worker
    let _: () = redis::cmd("ZADD")
        .arg(config.workers_set())
        .arg(chrono::Utc::now().timestamp())
        .arg("probe")
        .query_async(&mut conn)
        .await
        .expect("register the probe");
    let fetched = apalis_redis::queries::fetch_next(&mut conn, &WorkerContext::new("probe"), &config).await;

    // Assert: the fetch fails on the unpack limit ...
    let error = fetched
        .expect_err("apalis 1.0.0 cannot promote 9,000 due tasks")
        .to_string();
    assert!(error.contains("too many results to unpack"), "{error}");

    // ... and our consumer, which is apalis's, gets nothing done
    let deliveries = Deliveries::default();
    let consumer = consume(
        &queue.queue,
        QueueName::Emails,
        "wedged",
        8,
        &deliveries,
        Behaviour::default(),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(consumer.is_running(), "errors are retried, not fatal");
    consumer.stop().await;
    assert_eq!(deliveries.started(), 0);
    assert_eq!(queue.depth(QueueName::Emails).await, DUE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_thousand_due_jobs_pushed_by_us_are_all_consumed() {
    // Arrange
    let options = QueueOptions {
        fetch_batch: 100,
        ..fast_options()
    };
    let queue = TestQueue::with_options(Backend::Redis, options).await;
    let jobs = jobs(DUE, 0);
    futures::stream::iter(&jobs)
        .for_each_concurrent(64, |job| {
            let queue = &queue;
            async move { queue.queue.push(QueueName::Emails, job).await.expect("push") }
        })
        .await;
    assert_eq!(queue.depth(QueueName::Emails).await, DUE);

    // Act
    let deliveries = Deliveries::default();
    let consumer = consume(
        &queue.queue,
        QueueName::Emails,
        "drain",
        100,
        &deliveries,
        Behaviour::default(),
    );
    until(Duration::from_secs(60), "all 9,000 jobs finished", || {
        deliveries.finished() == jobs.len()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    consumer.stop().await;

    // Assert
    deliveries.assert_each_once(&jobs);
    assert_eq!(queue.depth(QueueName::Emails).await, 0);
}
