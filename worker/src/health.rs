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

/// What a readiness check found, per dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    pub database: bool,
    /// `None` when the process has no queue of its own.
    pub queue: Option<bool>,
}

impl Readiness {
    /// Checks the database and, when given, the queue (each failure logged).
    pub async fn check(db: &DatabaseConnection, queue: Option<&JobQueue>) -> Self {
        let database = match db.execute_unprepared("SELECT 1").await {
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(%error, "readiness: the database is down");
                false
            }
        };
        let queue = match queue {
            None => None,
            Some(queue) => Some(match queue.depth(QueueName::Emails).await {
                Ok(_) => true,
                Err(error) => {
                    tracing::warn!(%error, "readiness: the queue is down");
                    false
                }
            }),
        };
        Self { database, queue }
    }

    #[must_use]
    pub fn is_ready(self) -> bool {
        self.database && self.queue != Some(false)
    }

    /// `/readyz`: 200 when ready, else 503; the body names each
    /// dependency, `{"database":"ok","queue":"down"}`.
    #[must_use]
    pub fn response(self) -> HttpResponse {
        let word = |up: bool| if up { "ok" } else { "down" };
        let mut body = serde_json::json!({ "database": word(self.database) });
        if let Some(queue) = self.queue {
            body["queue"] = word(queue).into();
        }
        let mut response = if self.is_ready() {
            HttpResponse::Ok()
        } else {
            HttpResponse::ServiceUnavailable()
        };
        response.content_type("application/json").body(body.to_string())
    }
}

impl Probes {
    /// Whether the worker can do its work.
    pub async fn readiness(&self) -> Readiness {
        Readiness::check(&self.db, Some(&self.queue)).await
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
    probes.readiness().await.response()
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
