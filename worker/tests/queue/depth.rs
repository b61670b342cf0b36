//! `depth` is what the dispatcher's high-water mark is measured against.
use std::sync::Arc;
use std::time::Duration;

use entity::jobs::QueueName;
use tokio::sync::Semaphore;

use crate::helpers::{Backend, Behaviour, Deliveries, TestQueue, consume, jobs, until, until_async};
use crate::on_both_backends;

async fn depth_counts_waiting_and_running_jobs_and_drops_to_zero_when_done(backend: Backend) {
    // Arrange
    let queue = TestQueue::new(backend).await;
    assert_eq!(queue.depth(QueueName::Emails).await, 0);
    let jobs = jobs(5, 0);
    queue.push_jobs(QueueName::Emails, &jobs).await;

    // Act / Assert: waiting
    assert_eq!(queue.depth(QueueName::Emails).await, 5);

    // two running (held by a closed gate), three waiting
    let gate = Arc::new(Semaphore::new(0));
    let deliveries = Deliveries::default();
    let consumer = consume(
        &queue.queue,
        QueueName::Emails,
        "solo",
        2,
        &deliveries,
        Behaviour {
            gate: Some(gate.clone()),
            ..Behaviour::default()
        },
    );
    until(Duration::from_secs(10), "two jobs running", || {
        deliveries.started() == 2
    })
    .await;
    assert_eq!(queue.depth(QueueName::Emails).await, 5, "running jobs count");
    assert_eq!(queue.depth(QueueName::Settlements).await, 0, "other queue");

    // all done
    gate.add_permits(100);
    until(Duration::from_secs(10), "all jobs finished", || {
        deliveries.finished() == 5
    })
    .await;
    until_async(Duration::from_secs(5), "depth back to 0", || async {
        queue.depth(QueueName::Emails).await == 0
    })
    .await;
    consumer.stop().await;
    deliveries.assert_each_once(&jobs);
}
on_both_backends!(depth_counts_waiting_and_running_jobs_and_drops_to_zero_when_done);
