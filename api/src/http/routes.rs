//! The api's HTTP surface: `/graphql` (GraphQL over HTTP, or GraphiQL for a
//! browser), the playground's files, `/healthz` and `/readyz`. Handlers are
//! thin: they read the request, hand it to the schema, and shape the answer.
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use tracing::Instrument as _;

use super::{Limits, Playground};
use crate::auth::RequestId;
use crate::state::AppState;

/// What the handlers need besides the request: the schema and the checks
/// around it (the schema carries the [`AppState`] its resolvers use), the
/// same state for the handlers' own needs (tokens, the readiness check),
/// and the transport's settings.
pub struct Endpoint {
    pub operations: super::operation::Operations,
    pub state: AppState,
    pub limits: Limits,
    pub playground: Option<Playground>,
    /// What one GraphQL WebSocket may do, and the sockets each user holds.
    pub ws: super::ws::WsLimits,
    /// Automatic persisted queries, or only the trusted documents.
    pub persisted: super::persisted::PersistedQueries,
    pub sockets: std::sync::Arc<super::ws::SocketCounts>,
    /// Whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`).
    pub trusted_proxies: super::client_ip::TrustedProxies,
}

/// Mounts every route on an actix app.
pub fn configure(endpoint: web::Data<Endpoint>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(endpoint)
            .service(
                web::resource("/graphql")
                    .route(web::get().to(graphql))
                    .route(web::post().to(graphql)),
            )
            .route("/graphql/ws", web::get().to(super::ws::upgrade))
            .route("/playground/assets/{file}", web::get().to(playground_asset))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz));
    }
}

/// A caller's `X-Request-Id` when it is sane, else a new one.
fn request_id(req: &HttpRequest) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

async fn graphql(req: HttpRequest, payload: web::Payload, endpoint: web::Data<Endpoint>) -> HttpResponse {
    if let Some(playground) = &endpoint.playground
        && super::wants_playground(&req)
    {
        return playground.page();
    }
    let id = request_id(&req);
    let span = request_span(&req, &id);
    let mut response = answer(req, payload, &endpoint, &id)
        .instrument(span.clone())
        .await;
    // No-ops on the span of a process that does not export (no such fields).
    span.record("http.response.status_code", response.status().as_u16());
    if response.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    response
}

/// The span of one GraphQL request over HTTP: its log lines carry the
/// request id, and with trace export on it is the root of the request's
/// trace, or a child of the caller's when the request has a W3C
/// `traceparent` header. Every outbox row written inside it keeps its trace
/// context, so the jobs continue the trace (`entity::trace`).
///
/// With export off only logs read it, so it carries only what a log line
/// needs (the request id and operation name): the JSON log layer formats
/// every field when the span opens and again on each `record`, which was
/// ~8 % of a cached read's instructions (bench/README.md).
fn request_span(req: &HttpRequest, id: &str) -> tracing::Span {
    if !worker::telemetry::exporting() {
        return tracing::info_span!(
            "http_request",
            request_id = %id,
            graphql.operation.name = tracing::field::Empty,
        );
    }
    let span = tracing::info_span!(
        "http_request",
        otel.name = if req.method() == actix_web::http::Method::GET { "GET /graphql" } else { "POST /graphql" },
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %req.method(),
        http.route = "/graphql",
        http.response.status_code = tracing::field::Empty,
        graphql.operation.name = tracing::field::Empty,
        request_id = %id,
    );
    let incoming = req.headers().get("traceparent").and_then(|v| v.to_str().ok());
    entity::trace::follow(&span, incoming);
    span
}

async fn answer(req: HttpRequest, payload: web::Payload, endpoint: &Endpoint, id: &str) -> HttpResponse {
    // Rate limits count per client: the transport (persisted queries) reads
    // it from the request's extensions, resolvers from the request's data.
    let client = endpoint.trusted_proxies.client_of(&req);
    if let Some(client) = client {
        req.extensions_mut().insert(client);
    }
    match super::parse_request(&req, payload, &endpoint.limits, &endpoint.persisted).await {
        Ok((request, format)) => {
            if let Some(name) = &request.operation_name {
                tracing::Span::current().record("graphql.operation.name", name.as_str());
            }
            let authorization = req.headers().get("authorization").and_then(|v| v.to_str().ok());
            let viewer = endpoint
                .state
                .sessions
                .viewer(&endpoint.state.tokens, authorization)
                .await;
            let mut request = request.data(viewer).data(RequestId(id.to_owned()));
            if let Some(client) = client {
                request = request.data(client);
            }
            let (executed, root_fields) = endpoint.operations.execute(request).await;
            super::respond_limited(executed, format, root_fields)
        }
        Err(refusal) => refusal,
    }
}

async fn playground_asset(path: web::Path<String>, endpoint: web::Data<Endpoint>) -> HttpResponse {
    match &endpoint.playground {
        Some(playground) => playground.asset(&path),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Ready when the database answers, and the queue when this process has
/// one: 503 with `{"database":"ok","queue":"down"}` otherwise.
async fn readyz(endpoint: web::Data<Endpoint>) -> HttpResponse {
    worker::health::Readiness::check(&endpoint.state.db, endpoint.state.queue.as_ref())
        .await
        .response()
}
