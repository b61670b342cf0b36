//! A consumer process killed with SIGKILL mid-job loses nothing: another
//! consumer receives that job after the orphan timeout.
//!
//! The killed consumer is this test binary itself, re-run with
//! [`CHILD_ENV`] set so that only [`helper_consumer_process`] runs and acts
//! as the consumer; without the variable that test does nothing.
use std::process::Stdio;
use std::time::{Duration, Instant};

use entity::jobs::QueueName;
use tokio::io::{AsyncBufReadExt, BufReader};
use worker::queue::unique_worker_id;

use crate::helpers::{
    self, Backend, Behaviour, Deliveries, TestQueue, consume, fast_options, until, until_async,
};
use crate::on_both_backends;

/// `<redis|sqlite> <url> <namespace>`: makes [`helper_consumer_process`] consume.
const CHILD_ENV: &str = "STOREFRONT_QUEUE_CRASH_CHILD";
/// What the child prints when a job has started running.
const STARTED: &str = "CRASH-CHILD-STARTED ";

/// Consumes the emails queue given in [`CHILD_ENV`] with jobs that never end,
/// announcing each on stdout. Runs only inside the crash test's child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helper_consumer_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.splitn(3, ' ');
    let (Some(backend), Some(url), Some(namespace)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("bad {CHILD_ENV}: {spec}");
    };
    let backend = if backend == "redis" {
        Backend::Redis
    } else {
        Backend::Sqlite
    };
    let queue = helpers::open(backend, url, namespace, fast_options())
        .await
        .expect("open the queue");
    let handler = |envelope: entity::jobs::Envelope| async move {
        println!("{STARTED}{}", envelope.outbox_id);
        std::future::pending::<()>().await;
    };
    queue
        .consume(
            QueueName::Emails,
            1,
            &unique_worker_id(),
            handler,
            std::future::pending(),
        )
        .await
        .expect("consume");
}

async fn a_job_whose_consumer_process_is_killed_comes_back_to_another_consumer(backend: Backend) {
    // Arrange: a child process runs the job and hangs in it
    let queue = TestQueue::new(backend).await;
    let job = helpers::job(1, 0);
    queue
        .push_jobs(QueueName::Emails, std::slice::from_ref(&job))
        .await;
    let kind = if backend == Backend::Redis {
        "redis"
    } else {
        "sqlite"
    };
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "crash::helper_consumer_process",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, format!("{kind} {} {}", queue.url, queue.namespace))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the consumer process");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let started = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read the child's stdout") {
            // libtest's "test … " announcement may precede it on the line.
            if let Some((_, id)) = line.split_once(STARTED) {
                return id.trim().to_owned();
            }
        }
        panic!("the consumer process exited before starting the job");
    })
    .await
    .expect("the consumer process starts the job");
    assert_eq!(started, job.outbox_id.to_string());

    // Act: SIGKILL, no goodbye
    child.start_kill().expect("SIGKILL the consumer process");
    child.wait().await.expect("reap the consumer process");
    let killed = Instant::now();
    assert_eq!(
        queue.depth(QueueName::Emails).await,
        1,
        "the dead consumer's job is still counted"
    );
    let deliveries = Deliveries::default();
    let survivor = consume(
        &queue.queue,
        QueueName::Emails,
        "survivor",
        1,
        &deliveries,
        Behaviour::default(),
    );

    // Assert
    let options = fast_options();
    until(
        options.orphan_after + options.heartbeat + Duration::from_secs(5),
        "the job delivered again",
        || deliveries.finished() == 1,
    )
    .await;
    let back_after = killed.elapsed();
    assert!(
        back_after >= options.orphan_after - options.heartbeat * 2,
        "came back after {back_after:?}"
    );
    deliveries.assert_each_once(&[job]);
    until_async(Duration::from_secs(5), "depth back to 0", || async {
        queue.depth(QueueName::Emails).await == 0
    })
    .await;
    survivor.stop().await;
}
on_both_backends!(a_job_whose_consumer_process_is_killed_comes_back_to_another_consumer);
