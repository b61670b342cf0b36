//! Query cost, the Shopify way: every document has a cost computed from
//! the schema before it runs ([`model`] says how); a document costing more
//! than `MAX_QUERY_COST` (1000) is refused with MAX_COST_EXCEEDED before
//! any resolver runs, and every client pays for its documents from a
//! leaky bucket ([`bucket`]).
//!
//! Layout:
//! - [`model`]: the cost of a document, requested (before) and actual (after).
//! - [`bucket`]: each client's bucket of points, and `extensions.cost`.
//! - [`QueryCost`]: measures and charges each request, for the transport
//!   (`http::operation`), which calls it around `execute`.
//!
//! One request's way through it, Shopify's semantics:
//! 1. [`QueryCost::admit`]: the requested cost is measured on the request's
//!    one parse, after `limits` has checked depth and size (so the walk is
//!    bounded). Above the maximum: MAX_COST_EXCEEDED. Otherwise it is
//!    taken from the client's bucket. When the bucket holds less, the
//!    request is refused as a whole with RATE_LIMITED and
//!    `extensions.retryAfter` (the seconds until enough points are back;
//!    the transport answers 429 with `Retry-After`) — unless the document
//!    is invalid, which is then answered as such (async-graphql's
//!    validation, asked apart: `validation`). Nothing has run.
//! 2. The schema validates and runs the document.
//! 3. [`QueryCost::settle`]: the actual cost is measured on the response,
//!    and the difference is given back. A document that did not validate
//!    ran nothing, and gets everything back: it takes nothing.
//! 4. Every response the transport answers over HTTP carries
//!    `extensions.cost` (`actualQueryCost` null when nothing ran), so
//!    clients can back off before they are refused.
//!
//! The take comes before async-graphql's validation, which runs only
//! inside `execute`: validating apart on every request would cost a second
//! validation, where the order costs an invalid document one more bucket
//! call (the give-back). A client's concurrent request may see the points
//! of an invalid document gone for that long.
//!
//! Over a WebSocket a query or mutation is charged the same way (its
//! `next` payload carries `extensions.cost`; a refusal is its `error`); a
//! subscription pays its requested cost once, when it starts. A document
//! refused before it runs (it does not parse or validate, or costs too
//! much) takes nothing from the bucket.
pub mod bucket;
pub mod model;

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use async_graphql::parser::types::{ExecutableDocument, OperationDefinition};
use async_graphql::{ErrorExtensions, Pos, Request, Response, ServerError, Value, Variables};
pub use bucket::{BucketSettings, Buckets};

use crate::auth::Viewer;
use crate::errors::{client_error, code};
use crate::http::client_ip::ClientIp;
use crate::throttle::Decision;
use crate::validation::Validator;

/// The most a document may cost by default (Shopify's single-query limit).
pub const DEFAULT_MAX_QUERY_COST: u64 = 1000;

/// Measures each request's cost, refuses documents costing more than
/// `max`, and charges the others to their client's bucket.
pub struct QueryCost {
    /// The most one document may cost: `MAX_QUERY_COST`, or the bucket's
    /// size when that is lower (a costlier document could never be paid).
    max: u64,
    buckets: Buckets,
    /// The schema's registry, and its validation when a bucket refuses.
    validator: Validator,
    /// The requested cost of operations that take no variables (it depends
    /// on their document alone): clients send the same few documents again
    /// and again, and `http::documents` hands each text's one parse out.
    known: RwLock<HashMap<Known, u64>>,
}

/// An operation whose cost is known: its document (kept alive by the key,
/// so its address names it) and name.
struct Known {
    document: Arc<ExecutableDocument>,
    operation_name: Option<String>,
}

impl PartialEq for Known {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.document, &other.document) && self.operation_name == other.operation_name
    }
}

impl Eq for Known {}

impl std::hash::Hash for Known {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.document), state);
        self.operation_name.hash(state);
    }
}

/// The most operations whose cost [`QueryCost`] keeps (as many as
/// `http::documents` keeps parses); past it, it starts again empty.
const MAX_KNOWN: usize = crate::http::documents::MAX_DOCUMENTS;

/// One request's charge, from [`QueryCost::admit`] to [`QueryCost::settle`].
pub struct Charge {
    /// Whose bucket pays (see [`bucket::client_of`]).
    client: String,
    requested: u64,
    /// What the bucket answered when the requested cost was taken, and
    /// what the actual cost is measured against; `None` when nothing was
    /// taken (the document did not parse, or was refused before).
    taken: Option<(Decision, Measured)>,
}

impl Charge {
    /// Nothing taken from `client`'s bucket: a request refused before its
    /// cost was measured, or whose document does not parse.
    #[must_use]
    pub fn none(client: String) -> Self {
        Self {
            client,
            requested: 0,
            taken: None,
        }
    }
}

struct Measured {
    document: Arc<ExecutableDocument>,
    variables: Variables,
    operation_name: Option<String>,
}

impl QueryCost {
    /// `max`: `MAX_QUERY_COST`, lowered to the bucket's size.
    #[must_use]
    pub fn new(max: u64, buckets: Buckets, validator: Validator) -> Self {
        Self {
            max: max.min(u64::from(buckets.settings().size)),
            buckets,
            validator,
            known: RwLock::default(),
        }
    }

    /// Measures `request` (its parse, `document`: `None` when it does not
    /// parse) and takes its requested cost from `client`'s bucket.
    ///
    /// # Errors
    /// The answer to a request refused before it runs, `extensions.cost`
    /// included: MAX_COST_EXCEEDED, RATE_LIMITED, or the validation errors
    /// of an invalid document its bucket could not pay for.
    pub async fn admit(
        &self,
        client: String,
        request: &Request,
        document: Option<&Arc<ExecutableDocument>>,
    ) -> Result<Charge, Response> {
        // A document that does not parse, or names no operation, is left
        // for async-graphql to report.
        let Some((document, operation)) = document.and_then(|document| {
            model::operation(document, request.operation_name.as_deref()).map(|op| (document, op))
        }) else {
            return Ok(Charge::none(client));
        };
        let requested = self.requested(document, request, &operation.node);
        crate::metrics::query_cost(requested);
        let at = operation.pos;
        if requested > self.max {
            let mut refused = Response::from_errors(vec![too_costly(requested, self.max, at)]);
            let charge = Charge {
                requested,
                ..Charge::none(client)
            };
            self.settle(charge, &mut refused).await;
            return Err(refused);
        }
        let taken = self.buckets.take(&client, requested).await;
        if !taken.allowed {
            let errors = match self.validator.validate(copy(request, document)).await {
                Ok(()) => vec![throttled(requested, &taken, at)],
                Err(invalid) => invalid,
            };
            let mut refused = Response::from_errors(errors);
            refused
                .extensions
                .insert("cost".to_owned(), self.buckets.extension(requested, None, &taken));
            return Err(refused);
        }
        let measured = Measured {
            document: Arc::clone(document),
            variables: request.variables.clone(),
            operation_name: request.operation_name.clone(),
        };
        Ok(Charge {
            client,
            requested,
            taken: Some((taken, measured)),
        })
    }

    /// The requested cost of `operation` in `document`, measured once per
    /// document when the operation takes no variables.
    fn requested(
        &self,
        document: &Arc<ExecutableDocument>,
        request: &Request,
        operation: &OperationDefinition,
    ) -> u64 {
        let measure = || model::requested(self.validator.registry(), document, operation, &request.variables);
        if !operation.variable_definitions.is_empty() {
            return measure();
        }
        let key = Known {
            document: Arc::clone(document),
            operation_name: request.operation_name.clone(),
        };
        if let Some(cost) = self
            .known
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return *cost;
        }
        let cost = measure();
        let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
        if known.len() >= MAX_KNOWN {
            known.clear();
        }
        known.insert(key, cost);
        cost
    }

    /// Measures what the request answered by `response` did cost, gives
    /// the rest back (all of it when nothing ran), and writes
    /// `extensions.cost` into `response`.
    pub async fn settle(&self, charge: Charge, response: &mut Response) {
        let Charge {
            client,
            requested,
            taken,
        } = charge;
        let (actual, level) = match taken {
            None => (None, self.buckets.level(&client).await),
            Some((taken, measured)) => {
                let actual = self.actual_cost(&measured, requested, response);
                let unused = requested.saturating_sub(actual.unwrap_or(0));
                // Nothing to give back: the level the take left is the one
                // to report, without asking the bucket again.
                let level = if unused == 0 {
                    taken
                } else {
                    self.buckets.give_back(&client, unused).await
                };
                (actual, level)
            }
        };
        response.extensions.insert(
            "cost".to_owned(),
            self.buckets.extension(requested, actual, &level),
        );
    }

    /// What the operation that ran did cost, never more than requested (see
    /// [`model`]); `None` when nothing of it ran.
    fn actual_cost(&self, measured: &Measured, requested: u64, response: &Response) -> Option<u64> {
        if response.data == Value::Null {
            // A failed non-null root field nulls the whole answer after its
            // resolver ran: it is charged as requested. An answer null
            // without any error in a field ran nothing (it did not
            // validate, or was a subscription sent over HTTP).
            let ran = response.errors.iter().any(|error| !error.path.is_empty());
            return ran.then_some(requested);
        }
        let operation = model::operation(&measured.document, measured.operation_name.as_deref())?;
        let actual = model::actual(
            self.validator.registry(),
            &measured.document,
            &operation.node,
            &measured.variables,
            &response.data,
        );
        Some(actual.min(requested))
    }
}

/// Whose bucket pays for `request`: its viewer and client address, as the
/// transport put them in the request's data.
#[must_use]
pub fn client_of(request: &Request) -> String {
    bucket::client_of(request_data::<Viewer>(request), request_data::<ClientIp>(request))
}

/// `request` again, its parse `document` set, for the validator.
fn copy(request: &Request, document: &ExecutableDocument) -> Request {
    let mut copy = Request::new(request.query.clone()).variables(request.variables.clone());
    copy.operation_name.clone_from(&request.operation_name);
    copy.set_parsed_query(document.clone());
    copy
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
