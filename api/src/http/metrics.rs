//! `/metrics` of the api, and the HTTP measurements.
//!
//! Where `/metrics` is served (README "Metrics"):
//! - `METRICS_BIND` set: on that address alone, a listener of its own that
//!   serves nothing else, for an operator to bind to loopback or a private
//!   network; the api port has no `/metrics`;
//! - unset, in development: on the api port;
//! - unset, in production: nowhere (a warning at start). The page names
//!   every operation clients run and the error rates, and each scrape reads
//!   the database: not for the public port a load balancer exposes.
//!
//! HTTP requests are labelled by the route's pattern (`/graphql`,
//! `/playground/assets/{file}`), never the raw path, or `unmatched`.
use std::net::TcpListener;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, web};
use metrics::{counter, histogram};
use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::DatabaseConnection;
use worker::queue::JobQueue;

/// What a scrape reads.
#[derive(Clone)]
pub struct MetricsPage {
    pub handle: PrometheusHandle,
    pub db: DatabaseConnection,
    pub queue: Option<JobQueue>,
}

impl MetricsPage {
    async fn render(&self) -> String {
        let sources = worker::metrics::Sources {
            db: &self.db,
            queue: self.queue.as_ref(),
        };
        worker::metrics::scrape(&self.handle, sources).await
    }
}

/// `GET /metrics`: the Prometheus text exposition.
pub async fn metrics(page: web::Data<MetricsPage>) -> HttpResponse {
    worker::metrics::response(page.render().await)
}

/// The `METRICS_BIND` server: `/metrics` and nothing else.
///
/// # Errors
/// When the listener cannot be used.
pub fn serve(listener: TcpListener, page: MetricsPage) -> std::io::Result<Server> {
    let page = web::Data::new(page);
    worker::health::serve_small(listener, move |cfg| {
        cfg.app_data(page.clone())
            .route("/metrics", web::get().to(metrics));
    })
}

/// The middleware (`middleware::from_fn(metrics::record)`): counts and
/// times every request by method, route pattern and status.
///
/// # Errors
/// The inner service's.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let response = next.call(req).await?;
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16().to_string();
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", status),
    ];
    counter!("storefront_http_requests_total", &labels).increment(1);
    histogram!("storefront_http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    Ok(response)
}

/// The method as a label: the standard ones by name, any other `OTHER`.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}
