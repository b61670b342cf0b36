//! GraphQL over HTTP: the transport for any `async_graphql::Schema`, written
//! against the GraphQL-over-HTTP draft (graphql.github.io/graphql-over-http),
//! and the GraphiQL page a browser gets on `GET /graphql`.
//!
//! Layout:
//! - [`graphql`]: [`parse_request`] turns an HTTP request into an
//!   `async_graphql::Request` plus the negotiated [`ResponseFormat`], or into
//!   a finished 4xx response; [`respond`] turns the executed
//!   `async_graphql::Response` into the HTTP response, status per format.
//! - `negotiate`: the `Accept` header, q-values and all.
//! - [`documents`]: parsed documents kept by query text (parsed once).
//! - [`operation`]: one operation's way around the schema: depth limits,
//!   query cost, operation metrics (the schema has no extensions).
//! - [`playground`]: GraphiQL, served from files that `playground/build.sh`
//!   builds, with a CDN page as the fallback when they are not built.
//! - [`persisted`]: automatic persisted queries, or trusted documents only.
//! - [`shedding`]: 503 + `Retry-After` beyond `MAX_IN_FLIGHT` requests at once.
//! - [`ws`]: GraphQL over WebSocket (`graphql-transport-ws`) at `/graphql/ws`.
//! - [`client_ip`]: the client address rate limits count (`TRUSTED_PROXIES`).
//! - [`metrics`]: `/metrics` (on the api port or `METRICS_BIND`) and the HTTP request metrics.
//! - [`cors`]: which browser origins may call the api (`CORS_ALLOWED_ORIGINS`).
//! - [`routes`]: the actix handlers of `/graphql`, `/healthz`, `/readyz` and
//!   the playground's files, over one [`routes::Endpoint`].
//!
//! A handler reads:
//! ```ignore
//! if http::wants_playground(&req) { return playground.page(); }
//! let (request, format) = match http::parse_request(&req, payload, &limits).await {
//!     Ok(parsed) => parsed,
//!     Err(response) => return response,
//! };
//! http::respond(schema.execute(request.data(viewer)).await, format)
//! ```
//!
//! Why not `async-graphql-actix-web`'s `GraphQLRequest`/`GraphQLResponse`
//! (7.2): they read any `Content-Type` (or none) as JSON, never answer 415 or
//! 406, buffer a JSON body without a size limit, execute mutations sent over
//! GET, ignore `operationName` in a GET query string (they look for
//! `operation_name`), accept a body without `query`, answer every executed
//! request with 200, label it `application/graphql-response+json` whatever
//! the client accepts (without a charset), and reject bad requests with a
//! plain-text body. Each of those is a "MUST" or "SHOULD" of the draft.

pub mod client_ip;
pub mod cors;
pub mod documents;
pub mod graphql;
pub mod metrics;
mod negotiate;
pub mod operation;
pub mod persisted;
pub mod playground;
pub mod routes;
pub mod shedding;
pub mod ws;

pub use cors::AllowedOrigins;
pub use graphql::{Limits, ResponseFormat, parse_request, respond, respond_limited};
pub use playground::{Playground, wants_playground};
