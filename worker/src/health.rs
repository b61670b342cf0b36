//! `/healthz` (alive), `/readyz` (database and queue reachable) and
//! `/metrics` on `WORKER_BIND`.
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use entity::jobs::QueueName;
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::metrics::Metrics;
use crate::queue::JobQueue;

#[derive(Clone)]
pub struct Probes {
    pub db: DatabaseConnection,
    pub queue: JobQueue,
    pub metrics: Arc<Metrics>,
}

impl Probes {
    /// Why the worker is not ready, if it is not.
    pub async fn not_ready(&self) -> Option<String> {
        if let Err(err) = self.db.execute_unprepared("SELECT 1").await {
            return Some(format!("database unavailable: {err}"));
        }
        if let Err(err) = self.queue.depth(QueueName::Emails).await {
            return Some(format!("queue unavailable: {err}"));
        }
        None
    }

    /// The metrics page, with the outbox backlog and queue depths.
    pub async fn metrics_page(&self) -> String {
        let backlog = entity::outbox::backlog(&self.db).await.unwrap_or(0);
        let dead = entity::dead_jobs::count(&self.db).await.unwrap_or(0);
        let emails = self.queue.depth(QueueName::Emails).await.unwrap_or(0);
        let settlements = self.queue.depth(QueueName::Settlements).await.unwrap_or(0);
        self.metrics.render(&[
            (
                "storefront_outbox_backlog",
                "outbox rows not yet pushed to a queue",
                backlog,
            ),
            ("storefront_dead_jobs", "jobs that failed for good", dead),
            (
                "storefront_queue_depth_emails",
                "jobs waiting or running on the emails queue",
                emails,
            ),
            (
                "storefront_queue_depth_settlements",
                "jobs waiting or running on the settlements queue",
                settlements,
            ),
        ])
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

async fn readyz(probes: web::Data<Probes>) -> HttpResponse {
    match probes.not_ready().await {
        None => HttpResponse::Ok().content_type("text/plain").body("ready"),
        Some(reason) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body(reason),
    }
}

async fn metrics(probes: web::Data<Probes>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(probes.metrics_page().await)
}

/// The health server on `listener` (one actix worker: it is tiny).
///
/// # Errors
/// When the listener cannot be used.
pub fn serve(listener: TcpListener, probes: Probes) -> std::io::Result<Server> {
    let probes = web::Data::new(probes);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(probes.clone())
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}
