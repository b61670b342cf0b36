//! Graceful shutdown: no new jobs, running ones finish (and are acked)
//! within the deadline, slower ones are left un-acked and come back.
use std::time::{Duration, Instant};

use entity::jobs::QueueName;

use crate::helpers::{Backend, Behaviour, Deliveries, TestQueue, consume, fast_options, job, until};
use crate::on_both_backends;

async fn shutdown_lets_a_running_job_finish_and_acks_it(backend: Backend) {
    // Arrange: a 1 s job is running when shutdown comes (deadline 2 s)
    let queue = TestQueue::new(backend).await;
    let slow = job(1, 1_000);
    queue
        .push_jobs(QueueName::Emails, std::slice::from_ref(&slow))
        .await;
    let deliveries = Deliveries::default();
    let first = consume(
        &queue.queue,
        QueueName::Emails,
        "first",
        2,
        &deliveries,
        Behaviour {
            sleep: true,
            ..Behaviour::default()
        },
    );
    until(Duration::from_secs(10), "the job started", || {
        deliveries.started() == 1
    })
    .await;

    // Act
    let took = first.stop().await;

    // Assert: it finished, shutdown waited for it but not for the deadline,
    // and the ack was written before `consume` returned
    assert!(deliveries.was_finished(slow.outbox_id));
    assert!(took < fast_options().shutdown_deadline, "shutdown took {took:?}");
    assert_eq!(queue.depth(QueueName::Emails).await, 0);

    // ... so another consumer never sees it again, even after the orphan timeout
    let later = Deliveries::default();
    let second = consume(
        &queue.queue,
        QueueName::Emails,
        "second",
        2,
        &later,
        Behaviour::default(),
    );
    tokio::time::sleep(fast_options().orphan_after + Duration::from_secs(2)).await;
    second.stop().await;
    assert_eq!(later.started(), 0);
    deliveries.assert_each_once(&[slow]);
}
on_both_backends!(shutdown_lets_a_running_job_finish_and_acks_it);

async fn a_job_slower_than_the_shutdown_deadline_is_not_acked_and_comes_back(backend: Backend) {
    // Arrange: a 60 s job is running when shutdown comes (deadline 2 s)
    let queue = TestQueue::new(backend).await;
    let endless = job(1, 60_000);
    queue
        .push_jobs(QueueName::Emails, std::slice::from_ref(&endless))
        .await;
    let deliveries = Deliveries::default();
    let first = consume(
        &queue.queue,
        QueueName::Emails,
        "first",
        2,
        &deliveries,
        Behaviour {
            sleep: true,
            ..Behaviour::default()
        },
    );
    until(Duration::from_secs(10), "the job started", || {
        deliveries.started() == 1
    })
    .await;

    // Act
    let took = first.stop().await;
    let stopped = Instant::now();

    // Assert: shutdown gave up at the deadline without acking
    let deadline = fast_options().shutdown_deadline;
    assert!(
        took >= deadline - Duration::from_millis(100),
        "shutdown took {took:?}"
    );
    assert!(took < deadline + Duration::from_secs(1), "shutdown took {took:?}");
    assert!(!deliveries.was_finished(endless.outbox_id));
    assert_eq!(
        queue.depth(QueueName::Emails).await,
        1,
        "still owned by the stopped consumer"
    );

    // ... and another consumer gets it once the orphan timeout has passed
    let second = consume(
        &queue.queue,
        QueueName::Emails,
        "second",
        2,
        &deliveries,
        Behaviour::default(),
    );
    let orphan_after = fast_options().orphan_after;
    until(
        orphan_after + Duration::from_secs(5),
        "the job delivered again",
        || deliveries.finished() == 1,
    )
    .await;
    let back_after = stopped.elapsed();
    second.stop().await;
    assert!(
        back_after >= orphan_after - fast_options().heartbeat,
        "came back after {back_after:?}"
    );
    assert_eq!(deliveries.per_job().get(&endless.outbox_id), Some(&2));
    assert_eq!(deliveries.per_consumer().get("second"), Some(&1));
    assert_eq!(queue.depth(QueueName::Emails).await, 0);
}
on_both_backends!(a_job_slower_than_the_shutdown_deadline_is_not_acked_and_comes_back);

async fn a_stopped_consumer_takes_no_new_job(backend: Backend) {
    // Arrange
    let queue = TestQueue::new(backend).await;
    let deliveries = Deliveries::default();
    let consumer = consume(
        &queue.queue,
        QueueName::Emails,
        "solo",
        2,
        &deliveries,
        Behaviour::default(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Act
    consumer.stop().await;
    queue.push_jobs(QueueName::Emails, &[job(1, 0)]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Assert
    assert_eq!(deliveries.started(), 0);
    assert_eq!(queue.depth(QueueName::Emails).await, 1);
}
on_both_backends!(a_stopped_consumer_takes_no_new_job);
