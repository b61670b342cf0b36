//! Parsed documents, kept by query text: clients send the same few
//! documents again and again, and parsing one costs more than copying its
//! parse. A request whose text was seen before gets a copy of the earlier
//! parse instead of being parsed again; the transport's checks (depth,
//! cost, metrics: `http::operation`) read the shared parse itself.
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

#[derive(Default)]
pub struct Documents {
    parsed: RwLock<HashMap<String, Arc<ExecutableDocument>>>,
}

impl Documents {
    /// Gives `request` its parsed document (a copy of a kept parse, or a
    /// new one) and returns the parse beside it. Leaves a request whose
    /// query does not parse as it is (`None`).
    #[must_use]
    pub fn prepare(&self, mut request: Request) -> (Request, Option<Arc<ExecutableDocument>>) {
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
                    return (request, None);
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
        (request, Some(document))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_parsed_once_and_bad_ones_are_left_alone() {
        let documents = Documents::default();
        let (mut first, first_parse) = documents.prepare(Request::new("{ a }"));
        let (mut second, second_parse) = documents.prepare(Request::new("{ a }"));
        assert!(first.parsed_query().is_ok() && second.parsed_query().is_ok());
        assert!(
            first_parse
                .zip(second_parse)
                .is_some_and(|(a, b)| Arc::ptr_eq(&a, &b))
        );
        assert_eq!(documents.parsed.read().map(|p| p.len()).ok(), Some(1));

        let (mut bad, parse) = documents.prepare(Request::new("{ a"));
        assert!(parse.is_none());
        assert!(bad.parsed_query().is_err(), "reported by the schema, as before");
        assert_eq!(documents.parsed.read().map(|p| p.len()).ok(), Some(1));
    }
}
