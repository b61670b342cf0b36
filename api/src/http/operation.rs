//! One GraphQL operation's way through the transport, over HTTP or a
//! WebSocket: the checks and measures around the schema's `execute` (and
//! `execute_stream`), so that the schema has no extensions and
//! async-graphql resolves its fields directly (with any extension it
//! resolves every field through the extension chain; bench/README.md
//! measures what that cost).
//!
//! In order, on the request's one parse (`documents`):
//! 1. `limits::check`: depth, size, a sensitive mutation called twice —
//!    before async-graphql's own checks, which are exponential on some
//!    documents;
//! 2. `cost::QueryCost::admit`: the requested cost measured, refused above
//!    the maximum, taken from the client's bucket;
//! 3. the schema validates and runs the document;
//! 4. `cost::QueryCost::settle`: the unused cost given back, and
//!    `extensions.cost` written;
//! 5. over HTTP, the operation counted and timed by name, type and error
//!    code (`metrics`), refusals included.
//!
//! A refusal in 1 or 2 is a response whose errors have no path and no
//! data: a request error, nothing ran, and async-graphql never saw it.
use std::sync::Arc;
use std::time::Instant;

use async_graphql::parser::types::OperationType;
use async_graphql::{Request, Response};
use futures::StreamExt;
use futures::stream::BoxStream;

use super::documents::Documents;
use crate::cost::{Charge, QueryCost};
use crate::errors::tag_request_errors;
use crate::metrics::OperationNames;
use crate::schema::AppSchema;

/// What runs each operation, and what it passes first.
pub struct Operations {
    pub schema: AppSchema,
    /// Parsed documents by query text.
    pub documents: Documents,
    /// `GRAPHQL_MAX_DEPTH`.
    pub max_depth: usize,
    pub cost: QueryCost,
    /// The operation names that may be metric labels.
    pub names: Arc<OperationNames>,
}

/// What a WebSocket operation still owes once its first answer is in.
pub struct Owed {
    charge: Charge,
    subscription: bool,
}

impl Operations {
    /// Runs `request` (its viewer and client address in its data) and
    /// answers it, with `extensions.cost` and error codes; also returns
    /// how many root fields its operation selects (for `respond_limited`).
    pub async fn execute(&self, request: Request) -> (Response, usize) {
        let started = Instant::now();
        let (request, document) = self.documents.prepare(request);
        let name = request.operation_name.as_deref();
        let labels = self.names.labels(document.as_deref(), name);
        let root_fields = document
            .as_deref()
            .map_or(0, |document| crate::limits::root_fields(document, name));
        let mut response = match self.admit(&request, document.as_ref()).await {
            Ok(charge) => {
                let mut response = self.schema.execute(request).await;
                self.cost.settle(charge, &mut response).await;
                response
            }
            Err(refused) => refused,
        };
        tag_request_errors(&mut response);
        crate::metrics::operation_answered(&labels, started.elapsed(), &response);
        (response, root_fields)
    }

    /// Starts `request` on a WebSocket: its results, the first of them a
    /// refusal when it may not run; pass that first result to [`Self::first`].
    pub async fn stream(&self, request: Request) -> (BoxStream<'static, Response>, Option<Owed>) {
        let (request, document) = self.documents.prepare(request);
        match self.admit(&request, document.as_ref()).await {
            Ok(charge) => {
                let subscription = document
                    .as_deref()
                    .and_then(|document| {
                        crate::cost::model::operation(document, request.operation_name.as_deref())
                    })
                    .is_some_and(|operation| operation.node.ty == OperationType::Subscription);
                let owed = Owed { charge, subscription };
                (self.schema.execute_stream(request), Some(owed))
            }
            Err(refused) => (futures::stream::once(async { refused }).boxed(), None),
        }
    }

    /// Settles what a WebSocket operation owes with its first `response`:
    /// a query or mutation as over HTTP (its `next` payload carries
    /// `extensions.cost`); a subscription keeps what it paid to start,
    /// unless it did not start (it did not validate). Tags error codes.
    pub async fn first(&self, owed: Option<Owed>, response: &mut Response) {
        if let Some(Owed { charge, subscription }) = owed {
            let started = response.data != async_graphql::Value::Null
                || response.errors.iter().any(|error| !error.path.is_empty());
            if !subscription || !started {
                self.cost.settle(charge, response).await;
            }
        }
        tag_request_errors(response);
    }

    /// Steps 1 and 2 (see the module docs).
    async fn admit(
        &self,
        request: &Request,
        document: Option<&Arc<async_graphql::parser::types::ExecutableDocument>>,
    ) -> Result<Charge, Response> {
        let client = crate::cost::client_of(request);
        if let Some(document) = document
            && let Err(error) =
                crate::limits::check(document, request.operation_name.as_deref(), self.max_depth)
        {
            let mut refused = Response::from_errors(vec![error]);
            self.cost.settle(Charge::none(client), &mut refused).await;
            return Err(refused);
        }
        self.cost.admit(client, request, document).await
    }
}
