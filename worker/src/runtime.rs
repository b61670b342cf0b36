//! The composition root of the worker: connects everything from a
//! [`WorkerConfig`] and runs consumers, the sweeper, the schedules and the
//! health server until told to stop.
//!
//! Shutdown (SIGTERM in the binary): consumers take no new jobs and give
//! running ones up to the shutdown deadline to finish; an unfinished job is
//! not acked and comes back to another worker (see `queue`). Then the
//! process exits 0.
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context as _;
use entity::payments::PaymentGateway;
use entity::workers::Heartbeat;
use sea_orm::DatabaseConnection;
use tokio::sync::watch;

use crate::complete::{Completer, Pending};
use crate::config::WorkerConfig;
use crate::dispatch::{Dispatcher, Kicker};
use crate::events::OrderEvents;
use crate::health::{self, Probes};
use crate::jobs::{self, JobContext};
use crate::notifications::{Links, Mailer, SmtpLimits};
use crate::queue::{JobQueue, unique_worker_id};

/// How often expired unpaid orders are looked for.
const EXPIRY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
/// How often abandoned carts are looked for: their retention is days.
const CART_EXPIRY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3_600);

/// The order events of this process: on Redis with `REDIS_URL` (connected
/// on first use), else in-process.
///
/// # Errors
/// When `REDIS_URL` is not a Redis URL.
pub fn open_events(config: &WorkerConfig) -> anyhow::Result<OrderEvents> {
    match &config.redis_url {
        Some(url) => OrderEvents::redis(url, &config.queue_namespace, config.queue.redis)
            .context("REDIS_URL for order events"),
        None => Ok(OrderEvents::in_process()),
    }
}

/// Opens the configured queue: Redis when `REDIS_URL` is set (connected on
/// first use), else SQLite in the database file.
///
/// # Errors
/// When the queue backend cannot be opened.
pub async fn open_queue(config: &WorkerConfig) -> anyhow::Result<JobQueue> {
    let queue = match &config.redis_url {
        Some(url) => JobQueue::redis(url, &config.queue_namespace, config.queue.clone()).await,
        None => {
            JobQueue::sqlite(
                &config.database_url,
                &config.queue_namespace,
                config.queue.clone(),
            )
            .await
        }
    };
    queue.context("opening the job queue")
}

pub struct Worker {
    config: WorkerConfig,
    db: DatabaseConnection,
    queue: JobQueue,
    dispatcher: Dispatcher,
    ctx: JobContext,
    /// The completer's writing side, run by `run_until`.
    completions: Pending,
    worker_id: String,
    health: Option<TcpListener>,
}

impl Worker {
    /// Connects to the database and the queue and binds the health port.
    ///
    /// # Errors
    /// When the database, the queue, the mailer or the port cannot be set up.
    pub async fn build(config: WorkerConfig) -> anyhow::Result<Self> {
        crate::metrics::install();
        let db = entity::db::connect_with(&config.database_url, &config.database)
            .await
            .context("connecting to the database")?;
        let queue = open_queue(&config).await?;
        let health =
            TcpListener::bind(config.bind).with_context(|| format!("binding WORKER_BIND {}", config.bind))?;
        let gateway = config.payment_gateway();
        let events = open_events(&config)?;
        let mut worker = Self::from_parts(config, db, queue, gateway, events)?;
        worker.health = Some(health);
        Ok(worker)
    }

    /// A worker over an existing database pool and queue, without a health
    /// server: how the api embeds it.
    ///
    /// # Errors
    /// When the mailer cannot be configured.
    pub fn from_parts(
        config: WorkerConfig,
        db: DatabaseConnection,
        queue: JobQueue,
        gateway: Arc<dyn PaymentGateway>,
        events: OrderEvents,
    ) -> anyhow::Result<Self> {
        let limits = SmtpLimits {
            timeout: config.smtp_timeout,
            breaker: config.breaker,
        };
        let mailer = Mailer::from_config_with(
            config.smtp_url.as_deref(),
            &config.mail_dir(),
            &config.mail_from,
            limits,
        )
        .context("configuring the mailer (SMTP_URL, MAIL_FROM)")?;
        let dispatcher = Dispatcher::new(
            db.clone(),
            queue.clone(),
            config.high_water,
            config.redispatch_after,
        )
        .with_batch(config.dispatch_batch);
        let (completer, completions) = Completer::new(config.completion);
        let ctx = JobContext {
            db: db.clone(),
            gateway,
            mailer: Arc::new(mailer),
            links: Links::new(&config.public_url),
            retry: config.retry,
            kicker: dispatcher.kicker(),
            events,
            completer,
        };
        Ok(Self {
            config,
            db,
            queue,
            dispatcher,
            ctx,
            completions,
            worker_id: unique_worker_id(),
            health: None,
        })
    }

    /// The port `/healthz` and `/readyz` answer on, when serving them.
    #[must_use]
    pub fn health_port(&self) -> Option<u16> {
        self.health
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port())
    }

    /// The queue it consumes (and pushes to).
    #[must_use]
    pub fn queue(&self) -> &JobQueue {
        &self.queue
    }

    /// Wakes this worker's dispatcher (the embedding api calls it after commits).
    #[must_use]
    pub fn kicker(&self) -> Kicker {
        self.dispatcher.kicker()
    }

    /// Runs until `shutdown` resolves, then stops gracefully (see module docs).
    ///
    /// # Errors
    /// When the health server cannot start.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };
        let health = match self.health {
            Some(listener) => {
                let probes = Probes {
                    db: self.db.clone(),
                    queue: self.queue.clone(),
                    metrics: crate::metrics::install(),
                };
                Some(health::serve(listener, probes)?)
            }
            None => None,
        };
        let health_handle = health.as_ref().map(actix_web::dev::Server::handle);
        if let Some(server) = health {
            tokio::spawn(server);
        }
        #[cfg(feature = "bench-noop")]
        tracing::warn!(
            "built with the bench-noop feature: {} jobs are accepted (a bench build, not for production)",
            jobs::NOOP
        );
        tracing::info!(worker_id = %self.worker_id, queues = ?self.config.queues, concurrency = self.config.concurrency, "worker started");

        let running = Arc::new(AtomicU32::new(0));
        let (heartbeat_stop, heartbeat_stopped) = tokio::sync::oneshot::channel::<()>();
        let heartbeat = tokio::spawn(heartbeats(
            self.db.clone(),
            Heartbeat {
                worker_id: self.worker_id.clone(),
                queues: self.config.queues.iter().map(|q| q.as_str().to_owned()).collect(),
                started_at: chrono::Utc::now(),
                running_jobs: 0,
            },
            Arc::clone(&running),
            heartbeat_stopped,
        ));

        // Runs until the consumers have stopped (below), then writes the
        // last batch.
        let (close_completer, completer_closed) = watch::channel(false);
        let completions = tokio::spawn(self.completions.run(
            self.db.clone(),
            self.dispatcher.kicker(),
            completer_closed,
        ));

        let mut tasks = tokio::task::JoinSet::new();
        for queue_name in self.config.queues.clone() {
            let (queue, ctx, id, stop) = (
                self.queue.clone(),
                self.ctx.clone(),
                self.worker_id.clone(),
                stopped(),
            );
            let concurrency = self.config.concurrency;
            let running = Arc::clone(&running);
            tasks.spawn(async move {
                let handler = move |envelope| {
                    let ctx = ctx.clone();
                    let running = Running::start(&running);
                    async move {
                        jobs::run(&ctx, envelope).await;
                        drop(running);
                    }
                };
                if let Err(err) = queue.consume(queue_name, concurrency, &id, handler, stop).await {
                    tracing::error!(queue = queue_name.as_str(), error = %err, "consumer stopped");
                }
            });
        }
        let sweeper = self.dispatcher.clone();
        let (interval, grace, stop) = (self.config.sweep_interval, self.config.dispatch_grace, stopped());
        tasks.spawn(async move { sweeper.run(interval, grace, stop).await });
        let (db, events) = (self.db.clone(), self.ctx.events.clone());
        let (timeout, stop) = (self.config.order_payment_timeout, stopped());
        tasks.spawn(async move {
            if let Err(err) = crate::schedules::run_expiry(db, events, timeout, EXPIRY_INTERVAL, stop).await {
                tracing::error!(error = %err, "order expiry schedule stopped");
            }
        });

        let (db, retention, every, stop) = (
            self.db.clone(),
            self.config.outbox_retention,
            self.config.outbox_prune_interval,
            stopped(),
        );
        tasks.spawn(crate::schedules::run_outbox_prune(db, retention, every, stop));
        let (db, retention, stop) = (self.db.clone(), self.config.cart_retention, stopped());
        tasks.spawn(crate::schedules::run_cart_expiry(
            db,
            retention,
            CART_EXPIRY_INTERVAL,
            stop,
        ));

        shutdown.await;
        tracing::info!("worker stopping: no new jobs; waiting for running ones");
        let _ = stop_tx.send(true);
        while tasks.join_next().await.is_some() {}
        let _ = close_completer.send(true);
        if let Err(error) = completions.await {
            tracing::error!(%error, "the completer panicked; the reaper will push its unrecorded rows again");
        }
        let _ = heartbeat_stop.send(());
        let _ = heartbeat.await;
        if let Some(handle) = health_handle {
            handle.stop(true).await;
        }
        tracing::info!("worker stopped");
        Ok(())
    }
}

/// One job running, counted in the heartbeat until dropped.
struct Running(Arc<AtomicU32>);

impl Running {
    fn start(count: &Arc<AtomicU32>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(count))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Writes this worker's heartbeat every `HEARTBEAT_EVERY` until `stopped`,
/// then removes its row (see `entity::workers`). A failed write is logged
/// and tried again at the next beat.
async fn heartbeats(
    db: DatabaseConnection,
    mut beat: Heartbeat,
    running: Arc<AtomicU32>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let mut every = tokio::time::interval(entity::workers::HEARTBEAT_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {
                beat.running_jobs = running.load(Ordering::Relaxed);
                if let Err(error) = entity::workers::beat(&db, &beat).await {
                    tracing::warn!(%error, "could not write the worker heartbeat");
                }
            }
            _ = &mut stopped => break,
        }
    }
    if let Err(error) = entity::workers::leave(&db, &beat.worker_id).await {
        tracing::warn!(%error, "could not remove the worker heartbeat");
    }
}
