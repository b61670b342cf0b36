//! A [`worker::Worker`] running in the test's process, shared by the test
//! binaries that start one (`#[path]`-included: `tests/common` is no test
//! of its own).
use std::time::Duration;

use sea_orm::DatabaseConnection;
use worker::config::WorkerConfig;
use worker::queue::JobQueue;

/// A [`worker::Worker`] on `db` and `queue`, running until [`Self::stop`].
pub struct RunningWorker {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningWorker {
    pub fn start(config: &WorkerConfig, db: &DatabaseConnection, queue: JobQueue) -> Self {
        let worker = worker::Worker::from_parts(
            config.clone(),
            db.clone(),
            queue,
            config.payment_gateway(),
            worker::events::OrderEvents::in_process(),
        )
        .expect("build the worker");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(worker.run_until(async move {
            let _ = stopped.await;
        }));
        Self { stop, task }
    }

    /// Stops it gracefully; fails the test unless it stops within 30 s, cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the worker stops within its shutdown deadline")
            .expect("the worker task does not panic")
            .expect("the worker runs without error");
    }
}
