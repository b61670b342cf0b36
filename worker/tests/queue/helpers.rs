//! Shared test fixtures: a queue per test on its own Redis namespace or
//! SQLite file, a recording handler, and consumers that can be stopped.
//! Polling and the private `redis-server` come from `testkit`.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entity::ids::OutboxId;
use entity::jobs::{Envelope, QueueName};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;
use worker::queue::{JobQueue, QueueError, QueueOptions};

pub use testkit::{Namespace, PrivateRedis, redis_url, until, until_async};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Redis,
    Sqlite,
}

/// Fast timings so orphan recovery and shutdown fit in a test.
pub fn fast_options() -> QueueOptions {
    QueueOptions {
        poll_interval: Duration::from_millis(50),
        heartbeat: Duration::from_secs(1),
        orphan_after: Duration::from_secs(3),
        shutdown_deadline: Duration::from_secs(2),
        fetch_batch: 10,
        ..QueueOptions::default()
    }
}

/// A queue of its own: a fresh Redis namespace or a fresh SQLite file,
/// removed when dropped.
pub struct TestQueue {
    pub queue: JobQueue,
    pub namespace: String,
    /// How to open the same queue again (e.g. from a child process).
    pub url: String,
    _cleanup: Cleanup,
}

impl TestQueue {
    pub async fn new(backend: Backend) -> Self {
        Self::with_options(backend, fast_options()).await
    }

    pub async fn with_options(backend: Backend, options: QueueOptions) -> Self {
        let (namespace, url, cleanup) = match backend {
            Backend::Redis => {
                let namespace = Namespace::new("sf-test");
                (
                    namespace.name.clone(),
                    namespace.url.clone(),
                    Cleanup::Redis {
                        _namespace: namespace,
                    },
                )
            }
            Backend::Sqlite => {
                let namespace = format!("sf-test-{}", Uuid::now_v7().simple());
                let dir = std::env::temp_dir().join(format!("storefront-{namespace}"));
                std::fs::create_dir_all(&dir).expect("create the test directory");
                (
                    namespace,
                    entity::db::sqlite_url(&dir.join("app.db")),
                    Cleanup::Dir(dir),
                )
            }
        };
        let queue = open(backend, &url, &namespace, options)
            .await
            .expect("open the queue");
        Self {
            queue,
            namespace,
            url,
            _cleanup: cleanup,
        }
    }

    pub async fn push_jobs(&self, queue: QueueName, jobs: &[Envelope]) {
        for job in jobs {
            self.queue.push(queue, job).await.expect("push");
        }
    }

    pub async fn depth(&self, queue: QueueName) -> u64 {
        self.queue.depth(queue).await.expect("depth")
    }
}

pub async fn open(
    backend: Backend,
    url: &str,
    namespace: &str,
    options: QueueOptions,
) -> Result<JobQueue, QueueError> {
    match backend {
        Backend::Redis => JobQueue::redis(url, namespace, options).await,
        Backend::Sqlite => JobQueue::sqlite(url, namespace, options).await,
    }
}

enum Cleanup {
    Redis { _namespace: Namespace },
    Dir(PathBuf),
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Cleanup::Dir(dir) = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A job for the tests; `sleep_ms` makes the recording handler take that long.
pub fn job(n: u64, sleep_ms: u64) -> Envelope {
    Envelope {
        outbox_id: OutboxId::new(),
        job_name: "send_email.v1".to_owned(),
        attempt: 1,
        payload: serde_json::json!({ "n": n, "sleep_ms": sleep_ms }),
        traceparent: None,
    }
}

pub fn jobs(count: u64, sleep_ms: u64) -> Vec<Envelope> {
    (0..count).map(|n| job(n, sleep_ms)).collect()
}

/// What handlers saw: every start (one per delivery) and every finish.
#[derive(Clone, Default)]
pub struct Deliveries {
    inner: Arc<Mutex<Log>>,
}

#[derive(Default)]
struct Log {
    started: Vec<(OutboxId, String)>,
    finished: Vec<OutboxId>,
}

impl Deliveries {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn started(&self) -> usize {
        self.log().started.len()
    }

    pub fn finished(&self) -> usize {
        self.log().finished.len()
    }

    pub fn was_finished(&self, id: OutboxId) -> bool {
        self.log().finished.contains(&id)
    }

    /// Deliveries per outbox id.
    pub fn per_job(&self) -> HashMap<OutboxId, usize> {
        let mut counts = HashMap::new();
        for (id, _) in &self.log().started {
            *counts.entry(*id).or_default() += 1;
        }
        counts
    }

    /// Deliveries per consumer.
    pub fn per_consumer(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for (_, consumer) in &self.log().started {
            *counts.entry(consumer.clone()).or_default() += 1;
        }
        counts
    }

    /// Asserts every job of `jobs` was delivered exactly once, and nothing else.
    pub fn assert_each_once(&self, jobs: &[Envelope]) {
        let per_job = self.per_job();
        assert_eq!(per_job.len(), jobs.len(), "distinct jobs delivered");
        for job in jobs {
            assert_eq!(
                per_job.get(&job.outbox_id),
                Some(&1),
                "deliveries of {}",
                job.outbox_id
            );
        }
    }
}

/// How the recording handler behaves.
#[derive(Clone, Default)]
pub struct Behaviour {
    /// Honour each job's `sleep_ms`.
    pub sleep: bool,
    /// Each job first takes a permit (never returned): a closed gate holds jobs running.
    pub gate: Option<Arc<Semaphore>>,
    /// Jobs with this `n` panic.
    pub panic_on: Option<u64>,
}

/// A running `consume` call that can be stopped.
pub struct Consumer {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), QueueError>>,
}

impl Consumer {
    /// Signals shutdown and waits for `consume` to return; how long it took.
    pub async fn stop(mut self) -> Duration {
        let started = Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("consume returns after shutdown")
            .expect("the consume task does not panic");
        result.expect("consume returns Ok");
        started.elapsed()
    }

    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts `consume` on `queue` with a recording handler.
pub fn consume(
    queue: &JobQueue,
    name: QueueName,
    worker_id: &str,
    concurrency: usize,
    deliveries: &Deliveries,
    behaviour: Behaviour,
) -> Consumer {
    let (stop, stopped) = oneshot::channel::<()>();
    let queue = queue.clone();
    let consumer = worker_id.to_owned();
    let deliveries = deliveries.clone();
    let handler = move |envelope: Envelope| {
        let deliveries = deliveries.clone();
        let consumer = consumer.clone();
        let behaviour = behaviour.clone();
        async move {
            deliveries.log().started.push((envelope.outbox_id, consumer));
            if let Some(gate) = &behaviour.gate {
                gate.acquire().await.expect("gate open").forget();
            }
            if behaviour.panic_on.is_some() && envelope.payload["n"].as_u64() == behaviour.panic_on {
                panic!("a handler bug");
            }
            if behaviour.sleep
                && let Some(ms) = envelope.payload["sleep_ms"].as_u64()
            {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            deliveries.log().finished.push(envelope.outbox_id);
        }
    };
    let worker_id = worker_id.to_owned();
    let task = tokio::spawn(async move {
        queue
            .consume(name, concurrency, &worker_id, handler, async move {
                let _ = stopped.await;
            })
            .await
    });
    Consumer {
        stop: Some(stop),
        task,
    }
}

/// One test per queue backend: `mod $name { redis, sqlite }` next to
/// `async fn $name(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        testkit::on_backends!(
            $name,
            $name,
            redis => $crate::helpers::Backend::Redis,
            sqlite => $crate::helpers::Backend::Sqlite,
        );
    };
}
