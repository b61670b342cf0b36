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
//! fragments are spread out. Both are checked by the transport
//! (`http::operation`, [`check`]) on the one parse of the document and
//! *before* async-graphql's checks run, because its recursion check follows every
//! fragment spread without remembering any: thirty fragments that each
//! spread the next four times (a request of a kilobyte) would keep it busy
//! for 4³⁰ steps.
//!
//! Fragments are measured once each (a spread of a fragment used a
//! thousand times costs one lookup), and a fragment cycle is left for
//! validation to report.
//!
//! Sensitive mutations: the operation that runs may call each of
//! [`ONCE_PER_DOCUMENT`] at most once (one response key; fragments
//! included), so `a0: login(…) a1: login(…) …` is refused whole before any
//! resolver runs, instead of trying hundreds of passwords in one request.
//! Each call is also rate limited on its own (see `throttle::rules`).
use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Name, ServerError, ServerResult};

/// How deep a subtree under `__schema` or `__type` may nest, counted from
/// the root like any field.
pub const INTROSPECTION_MAX_DEPTH: usize = 20;

/// The most fields a document may hold with its fragments spread out (the
/// standard introspection document holds about 150).
pub const MAX_FIELDS: usize = 5_000;

/// The mutations one request may call at most once: each guesses a
/// password, sends an email, or spends a token.
pub const ONCE_PER_DOCUMENT: [&str; 5] = [
    "login",
    "register",
    "requestPasswordReset",
    "resetPassword",
    "refreshToken",
];

/// Refuses a document nested deeper than `max_depth` (introspection
/// apart) or larger than [`MAX_FIELDS`], or whose mutation that the request
/// may run (`operation_name`'s, or any when none is named) calls one of
/// [`ONCE_PER_DOCUMENT`] twice.
///
/// # Errors
/// The request error to answer; nothing of the document has run.
pub fn check(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    max_depth: usize,
) -> ServerResult<()> {
    let measured = Depths::of(document);
    if measured.size > MAX_FIELDS {
        return Err(ServerError::new(
            format!("Query is too large: more than {MAX_FIELDS} fields with its fragments spread out."),
            None,
        ));
    }
    if measured.fields > max_depth || measured.introspection > INTROSPECTION_MAX_DEPTH {
        return Err(ServerError::new("Query is nested too deep.", None));
    }
    if let Some(mutation) = repeated_sensitive_mutation(document, operation_name) {
        return Err(ServerError::new(
            format!("`{mutation}` may be called at most once per request."),
            None,
        ));
    }
    Ok(())
}

/// The first of [`ONCE_PER_DOCUMENT`] that a mutation the request may run
/// (the one named, or every one when none is) calls under two response
/// keys or more.
fn repeated_sensitive_mutation(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'static str> {
    for (name, operation) in document.operations.iter() {
        let named = name.map(Name::as_str);
        if operation.node.ty != OperationType::Mutation
            || operation_name.is_some_and(|wanted| named != Some(wanted))
        {
            continue;
        }
        let mut keys: HashMap<&str, HashSet<&str>> = HashMap::new();
        root_fields_of(
            document,
            &operation.node.selection_set.node,
            &mut keys,
            &mut HashSet::new(),
        );
        if let Some(mutation) = ONCE_PER_DOCUMENT
            .into_iter()
            .find(|mutation| keys.get(mutation).is_some_and(|keys| keys.len() > 1))
        {
            return Some(mutation);
        }
    }
    None
}

/// How many root fields (response keys) the operation of `document` that
/// `operation_name` names (the first when none is) selects; 0 when there
/// is no such operation.
#[must_use]
pub fn root_fields(document: &ExecutableDocument, operation_name: Option<&str>) -> usize {
    let operation = match operation_name {
        Some(name) => document
            .operations
            .iter()
            .find(|(named, _)| named.is_some_and(|n| n.as_str() == name)),
        None => document.operations.iter().next(),
    };
    let Some((_, operation)) = operation else {
        return 0;
    };
    let mut keys = HashMap::new();
    root_fields_of(
        document,
        &operation.node.selection_set.node,
        &mut keys,
        &mut HashSet::new(),
    );
    keys.values()
        .flat_map(|keys: &HashSet<&str>| keys.iter())
        .collect::<HashSet<_>>()
        .len()
}

/// The response keys of each root field of `set`, through fragments (each
/// fragment read once: spreading it again adds the same keys).
fn root_fields_of<'a>(
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
    keys: &mut HashMap<&'a str, HashSet<&'a str>>,
    seen: &mut HashSet<&'a Name>,
) {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let field = &field.node;
                let key = field.alias.as_ref().unwrap_or(&field.name);
                keys.entry(field.name.node.as_str())
                    .or_default()
                    .insert(key.node.as_str());
            }
            Selection::InlineFragment(fragment) => {
                root_fields_of(document, &fragment.node.selection_set.node, keys, seen);
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                if seen.insert(name)
                    && let Some(definition) = document.fragments.get(name)
                {
                    root_fields_of(document, &definition.node.selection_set.node, keys, seen);
                }
            }
        }
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

    fn repeated(query: &str, operation: Option<&str>) -> Option<&'static str> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        super::repeated_sensitive_mutation(&document, operation)
    }

    #[test]
    fn a_sensitive_mutation_may_run_once_per_request() {
        assert_eq!(
            repeated("mutation { login(input: $i) { accessToken } }", None),
            None
        );
        assert_eq!(
            repeated(
                "mutation { a: login(input: $a) { accessToken } b: login(input: $b) { accessToken } }",
                None
            ),
            Some("login")
        );
        // The same response key twice is one call (GraphQL merges them).
        assert_eq!(
            repeated(
                "mutation { login(input: $i) { accessToken } login(input: $i) { refreshToken } }",
                None
            ),
            None
        );
        // Through fragments, inline or named.
        let hidden = "mutation { ... on Mutation { a: requestPasswordReset(email: $e) } ...F } \
                      fragment F on Mutation { b: requestPasswordReset(email: $e) }";
        assert_eq!(repeated(hidden, None), Some("requestPasswordReset"));
        // Different sensitive mutations, once each, and others as often as wanted.
        let mixed = "mutation { login(input: $i) { accessToken } register(input: $r) { accessToken } \
                     a: placeOrder(input: $o) { id } b: placeOrder(input: $p) { id } }";
        assert_eq!(repeated(mixed, None), None);
        // Only the operation that runs counts; queries never do.
        let two = "mutation A { a: login(input: $a) { accessToken } b: login(input: $b) { accessToken } } \
                   mutation B { login(input: $i) { accessToken } }";
        assert_eq!(repeated(two, Some("B")), None);
        assert_eq!(repeated(two, Some("A")), Some("login"));
        assert_eq!(repeated("{ a: me { id } b: me { id } }", None), None);
    }

    #[test]
    fn a_fragment_spread_many_times_is_measured_once() {
        let query = fragment_chain("a { ...F0 }", 40, 2, "x { … }", "leaf");
        assert_eq!(depths(&query), (42, 0));
    }
}
