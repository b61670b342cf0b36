//! `/healthz` (alive), `/readyz` (database and queue reachable) and
//! `/metrics` on `WORKER_BIND`.
use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use entity::jobs::QueueName;
use sea_orm::{ConnectionTrait, DatabaseConnection};

use metrics_exporter_prometheus::PrometheusHandle;

use crate::metrics::Sources;
use crate::queue::JobQueue;

#[derive(Clone)]
pub struct Probes {
    pub db: DatabaseConnection,
    pub queue: JobQueue,
    /// The process's recorder (see [`crate::metrics::install`]).
    pub metrics: PrometheusHandle,
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

    /// The metrics page, with the outbox backlog, dead jobs, queue depths
    /// and pool use sampled now.
    pub async fn metrics_page(&self) -> String {
        let sources = Sources {
            db: &self.db,
            queue: Some(&self.queue),
        };
        crate::metrics::scrape(&self.metrics, sources).await
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

async fn readyz(probes: web::Data<Probes>) -> HttpResponse {
    probes.readiness().await.response()
}

async fn metrics(probes: web::Data<Probes>) -> HttpResponse {
    crate::metrics::response(probes.metrics_page().await)
}

/// The health server on `listener`.
///
/// # Errors
/// When the listener cannot be used.
pub fn serve(listener: TcpListener, probes: Probes) -> std::io::Result<Server> {
    let probes = web::Data::new(probes);
    serve_small(listener, move |cfg| {
        cfg.app_data(probes.clone())
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics));
    })
}

/// A tiny operations server on `listener` (one actix worker, no signal
/// handling of its own: the process's shutdown stops it) with `routes`.
///
/// # Errors
/// When the listener cannot be used.
pub fn serve_small(
    listener: TcpListener,
    routes: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
) -> std::io::Result<Server> {
    Ok(HttpServer::new(move || App::new().configure(routes.clone()))
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run())
}
