//! Limits on what one document may ask for, checked before it runs.
//!
//! Depth: a document's operations may nest fields at most `max_depth`
//! deep (`GRAPHQL_MAX_DEPTH`, 10), which no real query of this schema
//! reaches. Introspection is measured apart: the standard introspection
//! documents that tools send (graphql-js `getIntrospectionQuery` with every
//! option, GraphiQL's, graphql-core's) nest `ofType` about ten levels below
//! `__schema { types { fields { type … } } }`, so a subtree under `__schema`
//! or `__type` may go [`INTROSPECTION_MAX_DEPTH`] deep — enough for them,
//! not for a hand-made chain of forty `ofType`s. async-graphql's own depth
//! limit counts both alike, which refused every tool's first request.
//!
//! Size: a document may hold at most [`MAX_FIELDS`] fields once its
//! fragments are spread out. Both are checked when the request is prepared,
//! on the one parse of the document and *before* async-graphql's checks run, because its recursion check follows every
//! fragment spread without remembering any: thirty fragments that each
//! spread the next four times (a request of a kilobyte) would keep it busy
//! for 4³⁰ steps.
//!
//! Fragments are measured once each (a spread of a fragment used a
//! thousand times costs one lookup), and a fragment cycle is left for
//! validation to report.
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Request, ServerError, ServerResult};

/// How deep a subtree under `__schema` or `__type` may nest, counted from
/// the root like any field.
pub const INTROSPECTION_MAX_DEPTH: usize = 20;

/// The most fields a document may hold with its fragments spread out (the
/// standard introspection document holds about 150).
pub const MAX_FIELDS: usize = 5_000;

/// The schema extension that refuses documents nested too deep.
pub struct DepthLimit {
    pub max_depth: usize,
}

impl ExtensionFactory for DepthLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DepthCheck {
            max_depth: self.max_depth,
        })
    }
}

struct DepthCheck {
    max_depth: usize,
}

#[async_trait::async_trait]
impl Extension for DepthCheck {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let mut request = next.run(ctx, request).await?;
        // Parsed once, here: async-graphql keeps this document instead of
        // parsing the text again, so its own checks only ever see a
        // document measured first (see the module docs). One that does not
        // parse is left for async-graphql to report.
        if let Ok(document) = request.parsed_query() {
            self.check(document)?;
        }
        Ok(request)
    }
}

impl DepthCheck {
    fn check(&self, document: &ExecutableDocument) -> ServerResult<()> {
        let measured = Depths::of(document);
        if measured.size > MAX_FIELDS {
            return Err(ServerError::new(
                format!("Query is too large: more than {MAX_FIELDS} fields with its fragments spread out."),
                None,
            ));
        }
        if measured.fields > self.max_depth || measured.introspection > INTROSPECTION_MAX_DEPTH {
            return Err(ServerError::new("Query is nested too deep.", None));
        }
        Ok(())
    }
}

/// The deepest nesting of a selection set: of ordinary fields, and of
/// fields inside an introspection subtree (0 when there is none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Depths {
    fields: usize,
    introspection: usize,
    /// Fields in all, fragments spread out (saturating).
    size: usize,
}

impl Depths {
    fn of(document: &ExecutableDocument) -> Self {
        let mut walk = Walk {
            document,
            fragments: HashMap::new(),
        };
        document
            .operations
            .iter()
            .map(|(_, operation)| walk.set(&operation.node.selection_set.node))
            .fold(Self::default(), Self::beside)
    }

    /// Two selections side by side: the deeper of each, their sizes added.
    fn beside(self, other: Self) -> Self {
        Self {
            fields: self.fields.max(other.fields),
            introspection: self.introspection.max(other.introspection),
            size: self.size.saturating_add(other.size),
        }
    }
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    /// Depths of the fragments measured so far; `None` while one is being
    /// measured (a cycle back to it counts as nothing).
    fragments: HashMap<&'a Name, Option<Depths>>,
}

impl<'a> Walk<'a> {
    fn set(&mut self, set: &'a SelectionSet) -> Depths {
        set.items
            .iter()
            .map(|selection| match &selection.node {
                Selection::Field(field) => {
                    let below = self.set(&field.node.selection_set.node);
                    if matches!(field.node.name.node.as_str(), "__schema" | "__type") {
                        Depths {
                            fields: 0,
                            introspection: 1 + below.fields.max(below.introspection),
                            size: below.size.saturating_add(1),
                        }
                    } else {
                        Depths {
                            fields: 1 + below.fields,
                            introspection: if below.introspection == 0 {
                                0
                            } else {
                                1 + below.introspection
                            },
                            size: below.size.saturating_add(1),
                        }
                    }
                }
                Selection::InlineFragment(fragment) => self.set(&fragment.node.selection_set.node),
                Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name.node),
            })
            .fold(Depths::default(), Depths::beside)
    }

    fn fragment(&mut self, name: &'a Name) -> Depths {
        if let Some(known) = self.fragments.get(name) {
            return known.unwrap_or_default();
        }
        let Some(definition) = self.document.fragments.get(name) else {
            return Depths::default();
        };
        self.fragments.insert(name, None);
        let depths = self.set(&definition.node.selection_set.node);
        self.fragments.insert(name, Some(depths));
        depths
    }
}

#[cfg(test)]
mod tests {
    use super::Depths;

    /// `{ <root> }` and fragments F0..F<levels>: each spreads the next
    /// `spreads` times inside `wrap` (`"x { … }"`, or `"…"` for none), the
    /// last holds `leaf`.
    fn fragment_chain(root: &str, levels: usize, spreads: usize, wrap: &str, leaf: &str) -> String {
        let mut query = format!("{{ {root} }}");
        for level in 0..levels {
            let next = level + 1;
            let spread = vec![format!("...F{next}"); spreads].join(" ");
            let body = wrap.replace('…', &spread);
            query.push_str(&format!(" fragment F{level} on Query {{ {body} }}"));
        }
        query.push_str(&format!(" fragment F{levels} on Query {{ {leaf} }}"));
        query
    }

    fn depths(query: &str) -> (usize, usize) {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        let depths = Depths::of(&document);
        (depths.fields, depths.introspection)
    }

    #[test]
    fn fields_count_from_the_root_and_fragments_count_where_they_are_spread() {
        assert_eq!(depths("{ products { totalCount } }"), (2, 0));
        assert_eq!(
            depths("query { a { ...F } } fragment F on T { b { c { d } } }"),
            (4, 0)
        );
        assert_eq!(depths("{ a { ... on T { b } } __typename }"), (2, 0));
    }

    #[test]
    fn introspection_subtrees_are_measured_apart() {
        assert_eq!(
            depths("{ products { totalCount } __schema { types { fields { type { ofType { name } } } } } }"),
            (2, 6)
        );
        assert_eq!(depths("{ __type(name: \"Query\") { name } }"), (0, 2));
    }

    #[test]
    fn a_fragment_cycle_ends_the_walk_instead_of_looping() {
        assert_eq!(
            depths("{ a { ...F } } fragment F on T { b { ...G } } fragment G on T { c { ...F } }"),
            (3, 0)
        );
    }

    #[test]
    fn size_counts_every_field_with_fragments_spread_out_without_walking_them_out() {
        let document = async_graphql::parser::parse_query("{ a { ...F ...F } b } fragment F on T { c d }")
            .expect("parses");
        assert_eq!(Depths::of(&document).size, 6);
        // Thirty fragments spreading the next four times: 4^30 fields,
        // measured in thirty steps.
        let query = fragment_chain("...F0", 30, 4, "…", "__typename");
        let document = async_graphql::parser::parse_query(&query).expect("parses");
        let started = std::time::Instant::now();
        assert!(Depths::of(&document).size > super::MAX_FIELDS);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn a_fragment_spread_many_times_is_measured_once() {
        let query = fragment_chain("a { ...F0 }", 40, 2, "x { … }", "leaf");
        assert_eq!(depths(&query), (42, 0));
    }
}
