//! Query cost, the Shopify way: every document has a cost computed from
//! the schema before it runs ([`model`] says how), and a document costing
//! more than `MAX_QUERY_COST` (1000) is refused with MAX_COST_EXCEEDED
//! before any resolver runs.
//!
//! Layout:
//! - [`model`]: the cost of a document, requested (before) and actual (after).
//! - [`QueryCost`]: the schema extension that measures each request.
//!
//! The cost is measured on the request's one parse, in `prepare_request`,
//! after `limits` has checked depth and size (so the walk is bounded), and
//! before async-graphql validates or executes anything.
pub mod model;

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest};
use async_graphql::{ErrorExtensions, Pos, Request, ServerError, ServerResult};

use crate::errors::{client_error, code};

/// The most a document may cost by default (Shopify's single-query limit).
pub const DEFAULT_MAX_QUERY_COST: u64 = 1000;

/// The schema extension that refuses documents costing more than `max`.
/// Register it *before* `limits::DepthLimit`: its check then runs after
/// the depth and size checks.
pub struct QueryCost {
    pub max: u64,
}

impl ExtensionFactory for QueryCost {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CostCheck { max: self.max })
    }
}

struct CostCheck {
    max: u64,
}

#[async_trait::async_trait]
impl Extension for CostCheck {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let mut request = next.run(ctx, request).await?;
        let variables = std::mem::take(&mut request.variables);
        let operation_name = request.operation_name.take();
        let measured = request.parsed_query().ok().and_then(|document| {
            let operation = model::operation(document, operation_name.as_deref())?;
            let cost = model::requested(&ctx.schema_env.registry, document, &operation.node, &variables);
            Some((cost, operation.pos))
        });
        request.variables = variables;
        request.operation_name = operation_name;
        // A document that does not parse, or names no operation, is left
        // for async-graphql to report.
        if let Some((requested, at)) = measured
            && requested > self.max
        {
            return Err(too_costly(requested, self.max, at));
        }
        Ok(request)
    }
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
