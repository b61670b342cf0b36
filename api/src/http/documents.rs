//! Parsed documents, kept by query text: clients send the same few
//! documents again and again, and parsing one costs more than copying its
//! parse. A request whose text was seen before gets a copy of the earlier
//! parse instead of being parsed again; the cost model measures the shared
//! parse instead of a copy of its own (see `cost`).
//!
//! Only documents that parse are kept, at most [`MAX_DOCUMENTS`] of at most
//! [`MAX_KEPT_LEN`] bytes each; past that the store starts again empty. A
//! document that does not parse is left for the schema to report.
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use async_graphql::Request;
use async_graphql::parser::parse_query;
use async_graphql::parser::types::ExecutableDocument;

/// The most documents kept.
pub const MAX_DOCUMENTS: usize = 1_000;
/// The longest query text kept, in bytes.
pub const MAX_KEPT_LEN: usize = 16 * 1024;

/// The parse of a request's query, in the request's data.
#[derive(Clone)]
pub struct ParsedDocument(pub Arc<ExecutableDocument>);

#[derive(Default)]
pub struct Documents {
    parsed: RwLock<HashMap<String, Arc<ExecutableDocument>>>,
}

impl Documents {
    /// Gives `request` its parsed document (a copy of a kept parse, or a
    /// new one) and puts it in the request's data as a [`ParsedDocument`].
    /// Leaves a request whose query does not parse as it is.
    #[must_use]
    pub fn prepare(&self, mut request: Request) -> Request {
        let kept = self
            .parsed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&request.query)
            .cloned();
        let document = match kept {
            Some(document) => document,
            None => {
                let Ok(document) = parse_query(&request.query) else {
                    return request;
                };
                let document = Arc::new(document);
                if request.query.len() <= MAX_KEPT_LEN {
                    let mut parsed = self.parsed.write().unwrap_or_else(PoisonError::into_inner);
                    if parsed.len() >= MAX_DOCUMENTS {
                        parsed.clear();
                    }
                    parsed.insert(request.query.clone(), Arc::clone(&document));
                }
                document
            }
        };
        request.set_parsed_query(ExecutableDocument::clone(&document));
        request.data(ParsedDocument(document))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_parsed_once_and_bad_ones_are_left_alone() {
        let documents = Documents::default();
        let mut first = documents.prepare(Request::new("{ a }"));
        let mut second = documents.prepare(Request::new("{ a }"));
        assert!(first.parsed_query().is_ok() && second.parsed_query().is_ok());
        assert_eq!(documents.parsed.read().map(|p| p.len()).ok(), Some(1));

        let mut bad = documents.prepare(Request::new("{ a"));
        assert!(bad.parsed_query().is_err(), "reported by the schema, as before");
        assert_eq!(documents.parsed.read().map(|p| p.len()).ok(), Some(1));
    }
}
