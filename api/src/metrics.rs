//! What the api measures besides HTTP (`http::metrics`): GraphQL operations
//! and DataLoader batches. The recorder and the page are the worker crate's
//! (`worker::metrics`), shared by both binaries.
//!
//! Label values are bounded. An operation is labelled by its name only when
//! the name is known: one of the trusted documents' operations, or one of
//! the first [`DYNAMIC_NAMES`] names this process has seen (automatic
//! persisted queries let a client send any name). Past that, and for names
//! longer than [`MAX_NAME_LEN`], the label is `other`; an operation without
//! a name is `anonymous`, a document that does not parse (or names no
//! operation it holds) `invalid`. Error codes are this api's own
//! `extensions.code` values, a fixed set. Operations over HTTP are counted
//! by the transport (`http::operation`) around `execute`, refusals by the
//! depth and cost checks included.
//!
//! Metrics:
//! - `storefront_graphql_operations_total{operation, type}`
//! - `storefront_graphql_operation_duration_seconds{operation, type}`
//! - `storefront_graphql_errors_total{operation, type, code}`
//! - `storefront_dataloader_batch_size{loader}`
//! - `storefront_catalog_cache_total{result}`: product reads served from the
//!   catalog cache (`hit`), loaded into it (`miss`), or not cacheable
//!   (`bypass`: lists filtered by stock)
//! - `rate_limited_total{limit}`: refusals by a rate limit (`throttle`),
//!   a login block, or a client's cost bucket (`limit="cost_bucket"`)
use std::collections::HashSet;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use async_graphql::Response;
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

/// How many operation names beyond the trusted ones get a label of their own.
pub const DYNAMIC_NAMES: usize = 100;
/// The longest operation name used as a label.
pub const MAX_NAME_LEN: usize = 64;

/// The operation names that may be label values (see the module docs).
#[derive(Debug, Default)]
pub struct OperationNames {
    trusted: HashSet<String>,
    seen: RwLock<HashSet<String>>,
}

impl OperationNames {
    /// Names known up front: the trusted documents' operations.
    #[must_use]
    pub fn new(trusted: impl IntoIterator<Item = String>) -> Self {
        Self {
            trusted: trusted.into_iter().collect(),
            seen: RwLock::default(),
        }
    }

    /// The label for an operation called `name`.
    fn label(&self, name: &str) -> String {
        if self.trusted.contains(name) {
            return name.to_owned();
        }
        if name.len() > MAX_NAME_LEN {
            return "other".to_owned();
        }
        if self
            .seen
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(name)
        {
            return name.to_owned();
        }
        let mut seen = self.seen.write().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(name) || seen.len() < DYNAMIC_NAMES {
            seen.insert(name.to_owned());
            name.to_owned()
        } else {
            "other".to_owned()
        }
    }
}

impl OperationNames {
    /// The labels of the operation that `document` (`None`: it did not
    /// parse) runs for a request naming `requested`.
    #[must_use]
    pub fn labels(&self, document: Option<&ExecutableDocument>, requested: Option<&str>) -> OperationLabels {
        match document.and_then(|document| operation(document, requested)) {
            Some((name, kind)) => OperationLabels {
                operation: name.map_or_else(|| "anonymous".to_owned(), |name| self.label(name)),
                kind,
            },
            None => OperationLabels {
                operation: "invalid".to_owned(),
                kind: "unknown",
            },
        }
    }
}

/// One operation's labels: its name as [`OperationNames`] allows, and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationLabels {
    operation: String,
    kind: &'static str,
}

/// Counts and times one operation answered (refused ones included), and
/// its errors by `extensions.code` (tagged first: `errors::tag_request_errors`).
pub fn operation_answered(labels: &OperationLabels, elapsed: Duration, response: &Response) {
    let (operation, kind) = (labels.operation.clone(), labels.kind);
    counter!("storefront_graphql_operations_total", "operation" => operation.clone(), "type" => kind)
        .increment(1);
    histogram!("storefront_graphql_operation_duration_seconds", "operation" => operation.clone(), "type" => kind)
        .record(elapsed.as_secs_f64());
    for error in &response.errors {
        let code = error
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .and_then(|code| match code {
                async_graphql::Value::String(code) => Some(code.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "NONE".to_owned());
        counter!("storefront_graphql_errors_total", "operation" => operation.clone(), "type" => kind, "code" => code)
            .increment(1);
    }
}

/// The name (if any) and type of the operation a request runs, as
/// async-graphql picks it; `None` when it would refuse the request.
fn operation<'d>(
    document: &'d ExecutableDocument,
    requested: Option<&str>,
) -> Option<(Option<&'d str>, &'static str)> {
    let kind = |ty: OperationType| match ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    match &document.operations {
        DocumentOperations::Single(op) => requested.is_none().then(|| (None, kind(op.node.ty))),
        DocumentOperations::Multiple(ops) => {
            let (name, op) = match requested {
                Some(requested) => ops.get_key_value(requested)?,
                None if ops.len() == 1 => ops.iter().next()?,
                None => return None,
            };
            Some((Some(name.as_str()), kind(op.node.ty)))
        }
    }
}

/// Says what each api metric means (`# HELP`), and shows the gauges from
/// the start (at 0 until something opens); the recorder is
/// `worker::metrics::install`'s.
pub fn describe() {
    describe_counter!(
        "storefront_http_requests_total",
        "HTTP requests answered, by method, route pattern and status"
    );
    describe_histogram!(
        "storefront_http_request_duration_seconds",
        Unit::Seconds,
        "time to answer an HTTP request, by method, route pattern and status"
    );
    describe_counter!(
        "storefront_graphql_operations_total",
        "GraphQL operations run over HTTP, by operation name (bounded) and type"
    );
    describe_histogram!(
        "storefront_graphql_operation_duration_seconds",
        Unit::Seconds,
        "time to run a GraphQL operation, by operation name and type"
    );
    describe_counter!(
        "storefront_graphql_errors_total",
        "GraphQL errors answered, by operation, type and extensions.code"
    );
    describe_histogram!(
        "graphql_query_cost",
        "requested cost of each GraphQL document measured, refused ones included (see MAX_QUERY_COST)"
    );
    describe_histogram!(
        "storefront_dataloader_batch_size",
        "keys per DataLoader batch, by loader"
    );
    describe_counter!(
        "storefront_catalog_cache_total",
        "product reads by how the catalog cache served them: hit, miss (loaded and cached), bypass (not cacheable)"
    );
    describe_counter!(
        "rate_limited_total",
        "requests and calls refused RATE_LIMITED, by limit (cost_bucket: a client's query cost bucket)"
    );
    describe_gauge!(
        "storefront_subscriptions_open",
        "GraphQL subscriptions running on this instance's WebSockets"
    );
    describe_gauge!(
        "storefront_websockets_open",
        "GraphQL WebSockets open on this instance"
    );
    gauge!("storefront_subscriptions_open").increment(0.0);
    gauge!("storefront_websockets_open").increment(0.0);
}

/// Records the requested cost of one document (`cost`), before it runs or is refused.
pub fn query_cost(requested: u64) {
    #[expect(clippy::cast_precision_loss, reason = "costs are far below 2^53")]
    histogram!("graphql_query_cost").record(requested as f64);
}

/// Records the size of one DataLoader batch.
pub fn loader_batch(loader: &'static str, keys: usize) {
    #[expect(clippy::cast_precision_loss, reason = "a batch is far below 2^53 keys")]
    histogram!("storefront_dataloader_batch_size", "loader" => loader).record(keys as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_past_the_cap_are_bucketed_but_trusted_names_never_are() {
        let names = OperationNames::new(["Trusted".to_owned()]);
        for i in 0..DYNAMIC_NAMES {
            assert_eq!(names.label(&format!("Op{i}")), format!("Op{i}"));
        }
        assert_eq!(names.label("OneTooMany"), "other");
        assert_eq!(names.label("Op7"), "Op7", "a name seen before keeps its label");
        assert_eq!(names.label("Trusted"), "Trusted");
        assert_eq!(names.label(&"L".repeat(MAX_NAME_LEN + 1)), "other");
    }

    #[test]
    fn the_operation_is_the_one_async_graphql_would_run() {
        let parse = |q: &str| async_graphql::parser::parse_query(q).expect("parses");
        let doc = parse("{ me { id } }");
        assert_eq!(operation(&doc, None), Some((None, "query")));
        let doc = parse("query A { me { id } } mutation B { logout(refreshToken: \"x\") }");
        assert_eq!(operation(&doc, Some("B")), Some((Some("B"), "mutation")));
        assert_eq!(operation(&doc, None), None, "two operations and no name");
        assert_eq!(operation(&doc, Some("C")), None);
    }

    #[test]
    fn documents_that_do_not_parse_or_name_no_operation_are_invalid() {
        let names = OperationNames::default();
        let doc =
            async_graphql::parser::parse_query("query Listing { a } query Other { b }").expect("parses");
        assert_eq!(
            names.labels(Some(&doc), Some("Listing")),
            OperationLabels {
                operation: "Listing".to_owned(),
                kind: "query"
            }
        );
        let invalid = OperationLabels {
            operation: "invalid".to_owned(),
            kind: "unknown",
        };
        assert_eq!(names.labels(Some(&doc), None), invalid);
        assert_eq!(names.labels(None, None), invalid);
    }
}
