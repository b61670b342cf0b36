//! How errors reach a GraphQL client.
//!
//! Policy:
//! - Resolvers return `async_graphql::Result`; domain failures are converted
//!   here, once, with [`GqlResultExt::or_gql`].
//! - Every error carries `extensions.code`: UNAUTHENTICATED, FORBIDDEN,
//!   NOT_FOUND, BAD_USER_INPUT, OUT_OF_STOCK, PAYMENT_DECLINED,
//!   PAYMENT_UNAVAILABLE, CONFLICT, RATE_LIMITED or INTERNAL (and, for
//!   requests that fail to parse or validate, GRAPHQL_PARSE_FAILED /
//!   GRAPHQL_VALIDATION_FAILED; for a document that costs too much,
//!   MAX_COST_EXCEEDED).
//! - Anything unexpected (database, encoding) is logged with its cause chain
//!   and the request id; the client gets only INTERNAL and that request id.
use async_graphql::{Context, ErrorExtensions};
use entity::DomainError;

use crate::auth::RequestId;

/// The stable codes a client can `switch` on.
pub mod code {
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const OUT_OF_STOCK: &str = "OUT_OF_STOCK";
    pub const PAYMENT_DECLINED: &str = "PAYMENT_DECLINED";
    /// The payment provider failed, hung, or its circuit breaker is open:
    /// nothing was placed; the same request may be retried later.
    pub const PAYMENT_UNAVAILABLE: &str = "PAYMENT_UNAVAILABLE";
    pub const CONFLICT: &str = "CONFLICT";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// A document costing more than `MAX_QUERY_COST` (see `cost`).
    pub const MAX_COST_EXCEEDED: &str = "MAX_COST_EXCEEDED";
    pub const INTERNAL: &str = "INTERNAL";
    pub const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
    pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
}

/// Gives every code-less error from async-graphql itself (parse, validation,
/// input coercion, limits) a stable code.
pub fn tag_request_errors(response: &mut async_graphql::Response) {
    for error in &mut response.errors {
        let has_code = error.extensions.as_ref().is_some_and(|e| e.get("code").is_some());
        if has_code {
            continue;
        }
        let code = if error.path.is_empty() {
            code::GRAPHQL_VALIDATION_FAILED
        } else {
            code::BAD_USER_INPUT
        };
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", code);
    }
}

/// An error with a code and a message meant for the client.
#[must_use]
pub fn client_error(code: &'static str, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into()).extend_with(|_, e| e.set("code", code))
}

/// Converts a domain error for the client, logging what the client must not see.
pub fn from_domain(err: DomainError, request_id: &str) -> async_graphql::Error {
    let message = err.to_string();
    match err {
        DomainError::InvalidInput { field, .. } => {
            client_error(code::BAD_USER_INPUT, message).extend_with(|_, e| e.set("field", field))
        }
        DomainError::Money(_) => client_error(code::BAD_USER_INPUT, message),
        DomainError::Unauthenticated(_) => client_error(code::UNAUTHENTICATED, message),
        DomainError::Forbidden => client_error(code::FORBIDDEN, "you may not do this"),
        DomainError::NotFound { .. } => client_error(code::NOT_FOUND, message),
        DomainError::OutOfStock {
            product_id,
            variant_id,
            requested,
            available,
        } => client_error(code::OUT_OF_STOCK, message).extend_with(|_, e| {
            e.set("productId", product_id.to_string());
            e.set("variantId", variant_id.to_string());
            e.set("requested", requested);
            e.set("available", available);
        }),
        DomainError::IllegalTransition { from, to } => {
            client_error(code::CONFLICT, message).extend_with(|_, e| {
                e.set("from", from.as_str());
                e.set("to", to.as_str());
            })
        }
        DomainError::Conflict(_) => client_error(code::CONFLICT, message),
        DomainError::PaymentDeclined(_) => client_error(code::PAYMENT_DECLINED, message),
        DomainError::PaymentUnavailable(_) => client_error(code::PAYMENT_UNAVAILABLE, message),
        DomainError::Database(_) | DomainError::Encoding(_) => internal(&err, request_id),
    }
}

/// Logs `err` with its cause chain and returns the opaque INTERNAL error.
pub fn internal(err: &(dyn std::error::Error + 'static), request_id: &str) -> async_graphql::Error {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::error!(request_id, error = %chain, "internal error");
    let request_id = request_id.to_owned();
    client_error(
        code::INTERNAL,
        format!("internal error; quote request id {request_id}"),
    )
    .extend_with(move |_, e| e.set("requestId", request_id.clone()))
}

/// `result.or_gql(ctx)?` in a resolver.
pub trait GqlResultExt<T> {
    /// # Errors
    /// The domain error, converted by [`from_domain`].
    fn or_gql(self, ctx: &Context<'_>) -> async_graphql::Result<T>;
}

impl<T> GqlResultExt<T> for Result<T, DomainError> {
    fn or_gql(self, ctx: &Context<'_>) -> async_graphql::Result<T> {
        self.map_err(|err| from_domain(err, request_id(ctx)))
    }
}

/// The current request's id ("-" outside a request, e.g. in tests of the schema).
#[must_use]
/// A data loader's failure: always unexpected, so INTERNAL with the request id.
pub fn loader(ctx: &Context<'_>, err: &std::sync::Arc<entity::DomainError>) -> async_graphql::Error {
    internal(err.as_ref(), request_id(ctx))
}

pub fn request_id<'a>(ctx: &'a Context<'_>) -> &'a str {
    ctx.data_opt::<RequestId>().map_or("-", |id| id.0.as_str())
}
