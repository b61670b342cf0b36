//! Every job reaches exactly one consumer, once.
use std::time::Duration;

use entity::jobs::QueueName;

use crate::helpers::{Backend, Behaviour, Deliveries, TestQueue, consume, jobs, until};
use crate::on_both_backends;

async fn each_job_is_delivered_exactly_once_to_a_concurrent_consumer(backend: Backend) {
    // Arrange
    let queue = TestQueue::new(backend).await;
    let jobs = jobs(100, 5);
    queue.push_jobs(QueueName::Emails, &jobs).await;
    let deliveries = Deliveries::default();

    // Act
    let consumer = consume(
        &queue.queue,
        QueueName::Emails,
        "solo",
        8,
        &deliveries,
        Behaviour {
            sleep: true,
            ..Behaviour::default()
        },
    );
    until(Duration::from_secs(30), "all 100 jobs finished", || {
        deliveries.finished() == 100
    })
    .await;
    // Give a stray second delivery the chance to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    consumer.stop().await;

    // Assert
    deliveries.assert_each_once(&jobs);
    assert_eq!(queue.depth(QueueName::Emails).await, 0);
}
on_both_backends!(each_job_is_delivered_exactly_once_to_a_concurrent_consumer);

async fn two_consumers_share_the_load_and_never_run_the_same_job(backend: Backend) {
    // Arrange: both consumers poll before the jobs arrive
    let options = worker::queue::QueueOptions {
        fetch_batch: 2,
        ..crate::helpers::fast_options()
    };
    let queue = TestQueue::with_options(backend, options).await;
    let deliveries = Deliveries::default();
    let behaviour = Behaviour {
        sleep: true,
        ..Behaviour::default()
    };
    let first = consume(
        &queue.queue,
        QueueName::Emails,
        "first",
        2,
        &deliveries,
        behaviour.clone(),
    );
    let second = consume(
        &queue.queue,
        QueueName::Emails,
        "second",
        2,
        &deliveries,
        behaviour,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Act
    let jobs = jobs(60, 20);
    queue.push_jobs(QueueName::Emails, &jobs).await;
    until(Duration::from_secs(30), "all 60 jobs finished", || {
        deliveries.finished() == 60
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.stop().await;
    second.stop().await;

    // Assert
    deliveries.assert_each_once(&jobs);
    let per_consumer = deliveries.per_consumer();
    assert!(
        per_consumer.get("first").copied().unwrap_or(0) > 0,
        "{per_consumer:?}"
    );
    assert!(
        per_consumer.get("second").copied().unwrap_or(0) > 0,
        "{per_consumer:?}"
    );
    assert_eq!(queue.depth(QueueName::Emails).await, 0);
}
on_both_backends!(two_consumers_share_the_load_and_never_run_the_same_job);

async fn pushing_the_same_outbox_row_twice_delivers_it_once(backend: Backend) {
    // Arrange: the api's push and the sweeper's race for one row
    let queue = TestQueue::new(backend).await;
    let job = crate::helpers::job(1, 0);
    queue
        .push_jobs(QueueName::Settlements, &[job.clone(), job.clone()])
        .await;
    assert_eq!(queue.depth(QueueName::Settlements).await, 1);
    let deliveries = Deliveries::default();

    // Act
    let consumer = consume(
        &queue.queue,
        QueueName::Settlements,
        "solo",
        2,
        &deliveries,
        Behaviour::default(),
    );
    until(Duration::from_secs(10), "the job finished", || {
        deliveries.finished() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    consumer.stop().await;

    // Assert
    deliveries.assert_each_once(&[job]);
}
on_both_backends!(pushing_the_same_outbox_row_twice_delivers_it_once);

async fn queues_are_separate(backend: Backend) {
    // Arrange
    let queue = TestQueue::new(backend).await;
    let email = crate::helpers::job(1, 0);
    let settlement = crate::helpers::job(2, 0);
    queue
        .push_jobs(QueueName::Emails, std::slice::from_ref(&email))
        .await;
    queue
        .push_jobs(QueueName::Settlements, std::slice::from_ref(&settlement))
        .await;
    let deliveries = Deliveries::default();

    // Act
    let consumer = consume(
        &queue.queue,
        QueueName::Settlements,
        "solo",
        1,
        &deliveries,
        Behaviour::default(),
    );
    until(Duration::from_secs(10), "the settlement finished", || {
        deliveries.finished() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    consumer.stop().await;

    // Assert
    deliveries.assert_each_once(&[settlement]);
    assert_eq!(queue.depth(QueueName::Emails).await, 1);
}
on_both_backends!(queues_are_separate);

async fn a_panicking_handler_is_acked_and_the_consumer_goes_on(backend: Backend) {
    // Arrange
    let queue = TestQueue::new(backend).await;
    let jobs = jobs(3, 0);
    queue.push_jobs(QueueName::Emails, &jobs).await;
    let deliveries = Deliveries::default();

    // Act: job 0 panics in its handler
    let consumer = consume(
        &queue.queue,
        QueueName::Emails,
        "solo",
        1,
        &deliveries,
        Behaviour {
            panic_on: Some(0),
            ..Behaviour::default()
        },
    );
    until(Duration::from_secs(10), "the two other jobs finished", || {
        deliveries.finished() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Assert
    assert!(consumer.is_running());
    consumer.stop().await;
    deliveries.assert_each_once(&jobs);
    assert_eq!(queue.depth(QueueName::Emails).await, 0);
}
on_both_backends!(a_panicking_handler_is_acked_and_the_consumer_goes_on);
