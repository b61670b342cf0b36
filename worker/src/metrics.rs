//! Prometheus metrics of both binaries, through the `metrics` facade and
//! `metrics-exporter-prometheus` (no hand-written exposition text).
//!
//! - [`install`]: the process's one recorder, installed by the composition
//!   root (`Worker::build`, `Application::build`); calling it again returns
//!   the same handle, so a test process that builds many apps never panics.
//! - [`scrape`]: samples the gauges that are read from the database and the
//!   queue (outbox backlog, dead jobs, queue depths, pool use), then renders.
//! - [`job_finished`], [`job_pushed`]: the worker's job counters.
//!
//! Every name is described once in [`describe`]; the dashboard
//! (`deploy/grafana/storefront.json`) and the alerts
//! (`deploy/prometheus/alerts.yml`) use these names, and a test checks that
//! each name they reference appears on a real `/metrics` page.
use std::sync::OnceLock;
use std::time::Duration;

use entity::jobs::{JobOutcome, QueueName};
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::DatabaseConnection;

use crate::queue::JobQueue;

/// Buckets of every latency histogram, in seconds.
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Buckets of counts: DataLoader batch sizes.
const SIZES: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 250.0, 500.0];
/// Buckets of GraphQL query costs (the cost limit defaults to 1000).
const COSTS: &[f64] = &[1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0];

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's Prometheus recorder once and returns its handle
/// (the same handle on every later call).
///
/// If another recorder was installed first (a test harness of its own),
/// the handle renders an empty page and a warning is logged.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_batch_size".into()), SIZES))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("graphql_query_cost".into()), COSTS))
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed: /metrics stays empty");
            }
            describe();
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            handle
        })
        .clone()
}

/// Says what each metric of this crate and the api means (`# HELP`).
fn describe() {
    describe_counter!(
        "storefront_jobs_finished_total",
        "job attempts finished, by job and outcome (succeeded, retried, failed, postponed)"
    );
    describe_histogram!(
        "storefront_job_duration_seconds",
        Unit::Seconds,
        "time one job attempt ran, by job and outcome"
    );
    describe_counter!(
        "storefront_jobs_enqueued_total",
        "outbox rows pushed to a queue, by job"
    );
    describe_gauge!(
        "storefront_outbox_backlog",
        "outbox rows not yet pushed to a queue (due or not)"
    );
    describe_gauge!("storefront_dead_jobs", "jobs that failed for good");
    describe_gauge!(
        "storefront_workers_alive",
        "worker processes whose heartbeat is recent (from the database)"
    );
    describe_gauge!(
        "storefront_queue_depth",
        "jobs waiting or running on a queue, by queue"
    );
    describe_gauge!(
        "storefront_db_pool_connections",
        "database pool connections by state (in_use, idle)"
    );
    describe_gauge!(
        "storefront_db_pool_max_connections",
        "the database pool's maximum size"
    );
    describe_gauge!(
        "circuit_breaker_state",
        "circuit breaker of a dependency (payment_gateway, smtp): 0 closed, 1 open, 2 half-open"
    );
    describe_counter!(
        "circuit_breaker_transitions_total",
        "circuit breaker state changes, by dependency, from and to"
    );
}

/// Records one finished job attempt.
pub fn job_finished(job: &str, outcome: &JobOutcome, took: Duration) {
    let outcome = outcome_label(outcome);
    let labels = [("job", job.to_owned()), ("outcome", outcome.to_owned())];
    counter!("storefront_jobs_finished_total", &labels).increment(1);
    histogram!("storefront_job_duration_seconds", &labels).record(took.as_secs_f64());
}

/// The `outcome` label of a finished attempt (also on its trace span).
#[must_use]
pub fn outcome_label(outcome: &JobOutcome) -> &'static str {
    match outcome {
        JobOutcome::Done => "succeeded",
        JobOutcome::Retry(_) => "retried",
        JobOutcome::Fail(_) => "failed",
        JobOutcome::Later { .. } => "postponed",
    }
}

/// Records one outbox row pushed to a queue.
pub fn job_pushed(job: &str) {
    counter!("storefront_jobs_enqueued_total", "job" => job.to_owned()).increment(1);
}

/// What a scrape samples besides the counters: the database (pool use,
/// outbox backlog, dead jobs, live workers) and, when the process has one, the queue.
pub struct Sources<'a> {
    pub db: &'a DatabaseConnection,
    pub queue: Option<&'a JobQueue>,
}

/// A `/metrics` answer with `page`.
#[must_use]
pub fn response(page: String) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(page)
}

/// Samples the gauges of `sources` and renders the whole page. A gauge
/// whose source is down keeps its last value (and the failure is logged):
/// a scrape never fails because a dependency does.
pub async fn scrape(handle: &PrometheusHandle, sources: Sources<'_>) -> String {
    sample_pool(sources.db);
    match entity::outbox::backlog(sources.db).await {
        Ok(backlog) => gauge!("storefront_outbox_backlog").set(count(backlog)),
        Err(error) => tracing::warn!(%error, "metrics: could not read the outbox backlog"),
    }
    match entity::workers::alive(sources.db).await {
        Ok(alive) => gauge!("storefront_workers_alive").set(count(alive)),
        Err(error) => tracing::warn!(%error, "metrics: could not count live workers"),
    }
    match entity::dead_jobs::count(sources.db).await {
        Ok(dead) => gauge!("storefront_dead_jobs").set(count(dead)),
        Err(error) => tracing::warn!(%error, "metrics: could not count dead jobs"),
    }
    if let Some(queue) = sources.queue {
        for name in QueueName::ALL {
            match queue.depth(name).await {
                Ok(depth) => gauge!("storefront_queue_depth", "queue" => name.as_str()).set(count(depth)),
                Err(error) => {
                    tracing::warn!(%error, queue = name.as_str(), "metrics: could not read a queue depth")
                }
            }
        }
    }
    handle.run_upkeep();
    handle.render()
}

/// The pool's connections in use and idle, and its size limit.
fn sample_pool(db: &DatabaseConnection) {
    let (size, idle, max) = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle(), pool.options().get_max_connections())
        }
        sea_orm::DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle(), pool.options().get_max_connections())
        }
        _ => return,
    };
    let idle = u32::try_from(idle).unwrap_or(u32::MAX);
    gauge!("storefront_db_pool_connections", "state" => "in_use").set(f64::from(size.saturating_sub(idle)));
    gauge!("storefront_db_pool_connections", "state" => "idle").set(f64::from(idle));
    gauge!("storefront_db_pool_max_connections").set(f64::from(max));
}

/// A count as a gauge value (exact below 2^53).
#[expect(clippy::cast_precision_loss, reason = "counts stay far below 2^53")]
fn count(n: u64) -> f64 {
    n as f64
}
