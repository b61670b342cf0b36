//! Redis going away: the consumer logs, retries and carries on by itself;
//! an idle consumer polls at its poll interval, not in a hot loop. Both on a
//! private `redis-server`, never the shared one.
use std::time::Duration;

use entity::jobs::QueueName;
use worker::queue::{JobQueue, QueueOptions};

use crate::helpers::{Behaviour, Deliveries, PrivateRedis, consume, fast_options, job, until, until_async};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_picks_up_jobs_pushed_after_redis_restarts_without_being_restarted() {
    // Arrange: a consumer working normally
    let mut redis = PrivateRedis::start().await;
    let queue = JobQueue::redis(&redis.url(), "outage", fast_options())
        .await
        .expect("connect");
    let deliveries = Deliveries::default();
    let consumer = consume(
        &queue,
        QueueName::Emails,
        "solo",
        2,
        &deliveries,
        Behaviour::default(),
    );
    let before = job(1, 0);
    queue.push(QueueName::Emails, &before).await.expect("push");
    until(Duration::from_secs(10), "the first job finished", || {
        deliveries.finished() == 1
    })
    .await;

    // Act: Redis dies (and comes back empty)
    redis.stop().await;
    let during = queue.push(QueueName::Emails, &job(2, 0)).await;
    assert!(
        during.is_err(),
        "a push while Redis is down is an error, not a hang or a panic"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.restart().await;
    let after = job(3, 0);
    until_async(Duration::from_secs(10), "a push succeeds again", || {
        let queue = queue.clone();
        let after = after.clone();
        async move { queue.push(QueueName::Emails, &after).await.is_ok() }
    })
    .await;

    // Assert: the same consume call delivers it
    until(
        Duration::from_secs(20),
        "the job pushed after the restart finished",
        || deliveries.was_finished(after.outbox_id),
    )
    .await;
    assert!(consumer.is_running());
    consumer.stop().await;
    deliveries.assert_each_once(&[before, after]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_consumer_polls_at_its_poll_interval_not_in_a_loop() {
    // Arrange
    let redis = PrivateRedis::start().await;
    let options = QueueOptions {
        poll_interval: Duration::from_millis(200),
        ..fast_options()
    };
    let queue = JobQueue::redis(&redis.url(), "idle", options)
        .await
        .expect("connect");
    let deliveries = Deliveries::default();
    let consumer = consume(
        &queue,
        QueueName::Emails,
        "solo",
        4,
        &deliveries,
        Behaviour::default(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Act: three idle seconds
    let before = redis.script_calls().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let calls = redis.script_calls().await - before;

    // Assert: ~15 fetches at 200 ms + 3 heartbeats + 3 vacuums
    assert!(
        (10..=40).contains(&calls),
        "{calls} scripts run in 3 idle seconds"
    );
    consumer.stop().await;
}
