//! Query cost, the Shopify way: every document has a cost computed from
//! the schema before it runs ([`model`] says how); a document costing more
//! than `MAX_QUERY_COST` (1000) is refused with MAX_COST_EXCEEDED before
//! any resolver runs, and every client pays for its documents from a
//! leaky bucket ([`bucket`]).
//!
//! Layout:
//! - [`model`]: the cost of a document, requested (before) and actual (after).
//! - [`bucket`]: each client's bucket of points, and `extensions.cost`.
//! - [`QueryCost`]: the schema extension that measures and charges each
//!   request.
//!
//! One request's way through it, Shopify's semantics:
//! 1. `prepare_request`: the requested cost is measured on the request's
//!    one parse, after `limits` has checked depth and size (so the walk is
//!    bounded). Above the maximum: MAX_COST_EXCEEDED.
//! 2. `validation`: once the document is valid, the requested cost is
//!    taken from the client's bucket. When the bucket holds less, the
//!    request is refused as a whole with RATE_LIMITED and
//!    `extensions.retryAfter` (the seconds until enough points are back;
//!    the transport answers 429 with `Retry-After`). Nothing has run.
//! 3. `execute`: after the operation ran, its actual cost is measured on
//!    the response, and the difference is given back.
//! 4. Every response the schema answers carries `extensions.cost`
//!    (`actualQueryCost` null when nothing ran), so clients can back off
//!    before they are refused.
//!
//! Over a WebSocket a query or mutation is charged the same way (its
//! `next` payload carries `extensions.cost`; a refusal is its `error`); a
//! subscription pays its requested cost once, when it starts. A document
//! refused before step 2 (it does not parse or validate, or costs too
//! much) takes nothing from the bucket: nothing of it runs.
pub mod bucket;
pub mod model;

use std::any::TypeId;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest, NextRequest,
    NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    ErrorExtensions, Pos, Request, Response, ServerError, ServerResult, ValidationResult, Value, Variables,
};
pub use bucket::{BucketSettings, Buckets};

use crate::auth::Viewer;
use crate::errors::{client_error, code};
use crate::http::client_ip::ClientIp;
use crate::http::documents::ParsedDocument;
use crate::throttle::Decision;

/// The most a document may cost by default (Shopify's single-query limit).
pub const DEFAULT_MAX_QUERY_COST: u64 = 1000;

/// The schema extension that refuses documents costing more than `max`
/// and charges the others to their client's bucket. Register it *before*
/// `limits::DepthLimit`: its check then runs after the depth and size
/// checks.
pub struct QueryCost {
    /// The most one document may cost: `MAX_QUERY_COST`, or the bucket's
    /// size when that is lower (a costlier document could never be paid).
    pub max: u64,
    pub buckets: Buckets,
}

impl ExtensionFactory for QueryCost {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CostCheck {
            max: self.max,
            buckets: self.buckets.clone(),
            charge: Mutex::default(),
        })
    }
}

/// One request's measure and charge (an extension is created per request).
struct CostCheck {
    max: u64,
    buckets: Buckets,
    charge: Mutex<Charge>,
}

/// What is known of one request's cost so far.
#[derive(Default)]
struct Charge {
    /// Whose bucket pays (see [`bucket::client_of`]).
    client: Option<String>,
    /// The requested cost, once the document was measured.
    requested: Option<u64>,
    /// The document and variables the actual cost is measured against,
    /// for a document that may run.
    measured: Option<Measured>,
    /// What the bucket answered when the requested cost was taken.
    taken: Option<Decision>,
    /// Set once the response carries `extensions.cost`.
    reported: bool,
}

struct Measured {
    document: Arc<ExecutableDocument>,
    variables: Variables,
    operation_name: Option<String>,
    /// Where the operation is, for a refusal.
    at: Pos,
}

impl CostCheck {
    fn charge(&self) -> std::sync::MutexGuard<'_, Charge> {
        self.charge.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl Extension for CostCheck {
    /// Writes `extensions.cost` into a response that no later step
    /// reported on: a document refused before it ran (it does not parse or
    /// validate, costs too much, or found its bucket short).
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        let (client, requested, taken, reported) = {
            let charge = self.charge();
            (
                charge.client.clone(),
                charge.requested,
                charge.taken,
                charge.reported,
            )
        };
        let Some(client) = client.filter(|_| !reported) else {
            return response;
        };
        let requested = requested.unwrap_or(0);
        let level = match taken {
            // Taken, then refused before it ran (an unknown operation name):
            // every point goes back.
            Some(taken) if taken.allowed => self.buckets.give_back(&client, requested).await,
            Some(refused) => refused,
            None => self.buckets.level(&client).await,
        };
        response
            .extensions
            .insert("cost".to_owned(), self.buckets.extension(requested, None, &level));
        response
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.charge().client = Some(bucket::client_of(
            request_data::<Viewer>(&request),
            request_data::<ClientIp>(&request),
        ));
        let mut request = next.run(ctx, request).await?;
        let variables = std::mem::take(&mut request.variables);
        let operation_name = request.operation_name.take();
        // The transport's shared parse of this query (`http::documents`), if any.
        let shared = request_data::<ParsedDocument>(&request).map(|parsed| Arc::clone(&parsed.0));
        let measured = request.parsed_query().ok().and_then(|document| {
            let operation = model::operation(document, operation_name.as_deref())?;
            let requested = model::requested(&ctx.schema_env.registry, document, &operation.node, &variables);
            // The document to measure the actual cost against, if it may
            // run: the shared parse, else a copy.
            let kept = (requested <= self.max).then(|| shared.unwrap_or_else(|| Arc::new(document.clone())));
            Some((requested, kept, operation.pos))
        });
        if let Some((requested, _, _)) = &measured {
            crate::metrics::query_cost(*requested);
        }
        let result = match measured {
            Some((requested, Some(document), at)) => {
                let mut charge = self.charge();
                charge.requested = Some(requested);
                charge.measured = Some(Measured {
                    document,
                    variables: variables.clone(),
                    operation_name: operation_name.clone(),
                    at,
                });
                Ok(())
            }
            Some((requested, None, at)) => {
                self.charge().requested = Some(requested);
                Err(too_costly(requested, self.max, at))
            }
            // A document that does not parse, or names no operation, is
            // left for async-graphql to report.
            None => Ok(()),
        };
        request.variables = variables;
        request.operation_name = operation_name;
        result.map(|()| request)
    }

    /// Takes the requested cost once the document is valid (an invalid one
    /// runs nothing and pays nothing).
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let (client, requested, at) = {
            let charge = self.charge();
            match (&charge.client, charge.requested, &charge.measured) {
                (Some(client), Some(requested), Some(measured)) => (client.clone(), requested, measured.at),
                _ => return Ok(result),
            }
        };
        let taken = self.buckets.take(&client, requested).await;
        self.charge().taken = Some(taken);
        if taken.allowed {
            Ok(result)
        } else {
            Err(vec![throttled(requested, &taken, at)])
        }
    }

    /// Measures what the operation did cost, gives the rest back, and
    /// reports both.
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        let (client, requested, measured, taken) = {
            let mut charge = self.charge();
            charge.reported = true;
            match (
                charge.client.clone(),
                charge.requested,
                charge.measured.take(),
                charge.taken,
            ) {
                (Some(client), Some(requested), Some(measured), Some(taken)) => {
                    (client, requested, measured, taken)
                }
                _ => return response,
            }
        };
        let actual = actual_cost(ctx, &measured, requested, &response);
        let unused = requested.saturating_sub(actual.unwrap_or(0));
        // Nothing to give back: the level the take left is the one to
        // report, without asking the bucket again.
        let level = if unused == 0 {
            taken
        } else {
            self.buckets.give_back(&client, unused).await
        };
        response.extensions.insert(
            "cost".to_owned(),
            self.buckets.extension(requested, actual, &level),
        );
        response
    }
}

/// What the operation that ran did cost, never more than requested (see
/// [`model`]); `None` when nothing of it ran.
fn actual_cost(
    ctx: &ExtensionContext<'_>,
    measured: &Measured,
    requested: u64,
    response: &Response,
) -> Option<u64> {
    if response.data == Value::Null {
        // A failed non-null root field nulls the whole answer after its
        // resolver ran: it is charged as requested. An answer null without
        // any error in a field ran nothing (a subscription sent over HTTP).
        let ran = response.errors.iter().any(|error| !error.path.is_empty());
        return ran.then_some(requested);
    }
    let operation = model::operation(&measured.document, measured.operation_name.as_deref())?;
    let actual = model::actual(
        &ctx.schema_env.registry,
        &measured.document,
        &operation.node,
        &measured.variables,
        &response.data,
    );
    Some(actual.min(requested))
}

/// A value the transport put in the request's data.
fn request_data<T: 'static>(request: &Request) -> Option<&T> {
    request
        .data
        .get(&TypeId::of::<T>())
        .and_then(|data| data.downcast_ref::<T>())
}

/// MAX_COST_EXCEEDED, worded and shaped as Shopify words and shapes it.
fn too_costly(requested: u64, max: u64, at: Pos) -> ServerError {
    client_error(
        code::MAX_COST_EXCEEDED,
        format!("Query cost is {requested}, which exceeds the single query max cost limit ({max})."),
    )
    .extend_with(|_, e| {
        e.set("cost", requested);
        e.set("maxCost", max);
    })
    .into_server_error(at)
}

/// RATE_LIMITED for a document its client's bucket cannot pay for yet,
/// saying by how much.
fn throttled(requested: u64, bucket: &Decision, at: Pos) -> ServerError {
    let retry_after = bucket.retry_after_secs();
    let mut error = crate::throttle::rules::rate_limited(retry_after);
    error.message = format!(
        "Throttled: this query costs {requested} points and {} are available; try again in {retry_after} s",
        bucket.remaining
    );
    error.into_server_error(at)
}
