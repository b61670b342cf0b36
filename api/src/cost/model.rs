//! The cost model: what a document may cost before it runs (its requested
//! cost) and what it did cost once it ran (its actual cost), the way
//! Shopify's Admin API counts them, from the schema's registry.
//!
//! | a field that returns | costs |
//! |---|---|
//! | a scalar or an enum | 0 |
//! | an object | 1, plus what is selected inside it |
//! | a connection (`…Connection`) | 2, plus its page size (`first`: 20 when absent, at most 100, as `entity::pagination::page_size` reads it) times what one item selects |
//! | `nodes` of a connection, or `node` of an edge | 1 per item |
//! | `edges` and `pageInfo` of a connection, an edge itself | 0 (wrappers) |
//! | `totalCount` of a connection | 1 (it counts the whole list) |
//! | a mutation | 10, plus its answer |
//! | `login`, `register`, `refreshToken`, `requestPasswordReset`, `resetPassword`, `placeOrder`, `checkout` | [`SENSITIVE_MUTATION`] (100), plus their answer: each hashes a password, sends an email or charges a card |
//!
//! Nested connections multiply. A list that is not a connection (an
//! order's `lines`) counts as one item: it has no page size to multiply
//! by. Fragments and inline fragments count where they are spread, and
//! fields under `@skip`/`@include` are counted as if they ran (the
//! requested cost is an upper bound).
//!
//! The actual cost follows the same rules over the response instead of the
//! arguments: a connection counts the items it returned, a field that came
//! back null costs only itself, a field that did not run (skipped) costs
//! nothing, and a plain list counts its costliest item. So the actual cost
//! never exceeds the requested one. Where the schema alone fixes what one
//! returned object costs (its costed fields non-null objects, no lists, no
//! directives, no fragments: a listing's `node { … price { … } }`), the
//! actual walk counts a page's items instead of looking inside each.
//!
//! The walk follows every fragment spread, so it is bounded by the size
//! limit that `limits` checks first (at most `limits::MAX_FIELDS` fields
//! with fragments spread out); a fragment cycle (which validation then
//! refuses) counts as nothing.
use std::collections::HashMap;

use async_graphql::Value;
use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::registry::{MetaType, MetaTypeName, Registry};
use async_graphql::{Name, Positioned, Variables};

/// What an ordinary mutation costs (Shopify's figure), before its answer.
pub const MUTATION: u64 = 10;

/// What a mutation that hashes a password, sends an email or charges a
/// card costs, before its answer.
pub const SENSITIVE_MUTATION: u64 = 100;

/// The mutations that cost [`SENSITIVE_MUTATION`].
pub const SENSITIVE_MUTATIONS: [&str; 7] = [
    "login",
    "register",
    "refreshToken",
    "requestPasswordReset",
    "resetPassword",
    "placeOrder",
    "checkout",
];

const OBJECT: u64 = 1;
const CONNECTION: u64 = 2;
const TOTAL_COUNT: u64 = 1;

/// The operation of `document` that a request names, chosen as
/// async-graphql chooses it: by name, or the only one; `None` when there
/// is no such operation (async-graphql then reports the request error).
#[must_use]
pub fn operation<'d>(
    document: &'d ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'d Positioned<OperationDefinition>> {
    match (
        &document.operations,
        operation_name.filter(|name| !name.is_empty()),
    ) {
        (DocumentOperations::Single(operation), None) => Some(operation),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
        _ => None,
    }
}

/// The cost of running `operation`, before it runs.
#[must_use]
pub fn requested(
    registry: &Registry,
    document: &ExecutableDocument,
    operation: &OperationDefinition,
    variables: &Variables,
) -> u64 {
    Walk::new(registry, document, operation, variables).operation(operation, At::Requested)
}

/// The cost of `operation` given the `data` it answered.
#[must_use]
pub fn actual(
    registry: &Registry,
    document: &ExecutableDocument,
    operation: &OperationDefinition,
    variables: &Variables,
    data: &Value,
) -> u64 {
    let Value::Object(data) = data else {
        return 0;
    };
    let mut walk = Walk::new(registry, document, operation, variables);
    walk.actual = true;
    walk.operation(operation, At::Actual(data))
}

/// Which cost a walk computes: from the arguments, or from the response
/// object that answers the selection set being walked.
#[derive(Clone, Copy)]
enum At<'v> {
    Requested,
    Actual(&'v IndexMap<Name, Value>),
}

/// The type whose selection set is being walked, and the page size when it
/// is a connection.
#[derive(Clone, Copy)]
struct Parent<'a> {
    ty: Option<&'a MetaType>,
    page: u64,
}

struct Walk<'a> {
    registry: &'a Registry,
    document: &'a ExecutableDocument,
    operation: &'a OperationDefinition,
    variables: &'a Variables,
    mutation_root: Option<&'a str>,
    /// The fragments being walked: a spread back into one is a cycle.
    visiting: Vec<&'a Name>,
    /// What each field of the document is, by (parent type, field) address:
    /// the actual cost visits a field once per item of a page, and its
    /// registry lookups are the same every time.
    plans: HashMap<(usize, usize), Option<Plan<'a>>>,
    /// Whether this walk measures a response (and so wants [`Plan::fixed`]).
    actual: bool,
}

/// A field as the registry describes it, looked up once per walk.
#[derive(Clone, Copy)]
struct Plan<'a> {
    own: u64,
    inner: Parent<'a>,
    is_list: bool,
    is_non_null: bool,
    in_connection: bool,
    /// What the field's selection costs inside one value that came back,
    /// when the schema alone says so (see [`Walk::fixed_set`]); `None`:
    /// the response must be walked. Only the actual walk computes it.
    fixed: Option<u64>,
}

impl<'a> Walk<'a> {
    fn new(
        registry: &'a Registry,
        document: &'a ExecutableDocument,
        operation: &'a OperationDefinition,
        variables: &'a Variables,
    ) -> Self {
        Self {
            registry,
            document,
            operation,
            variables,
            mutation_root: registry.mutation_type.as_deref(),
            visiting: Vec::new(),
            plans: HashMap::new(),
            actual: false,
        }
    }

    fn operation(&mut self, operation: &'a OperationDefinition, at: At<'_>) -> u64 {
        let root = match operation.ty {
            OperationType::Query => Some(self.registry.query_type.as_str()),
            OperationType::Mutation => self.registry.mutation_type.as_deref(),
            OperationType::Subscription => self.registry.subscription_type.as_deref(),
        };
        let parent = Parent {
            ty: root.and_then(|name| self.registry.types.get(name)),
            page: 0,
        };
        self.set(parent, &operation.selection_set.node, at)
    }

    fn set(&mut self, parent: Parent<'a>, set: &'a SelectionSet, at: At<'_>) -> u64 {
        set.items
            .iter()
            .map(|selection| match &selection.node {
                Selection::Field(field) => self.field(parent, &field.node, at),
                Selection::InlineFragment(fragment) => {
                    let parent = match &fragment.node.type_condition {
                        Some(condition) => self.narrowed(parent, &condition.node.on.node),
                        None => parent,
                    };
                    self.set(parent, &fragment.node.selection_set.node, at)
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(parent, &spread.node.fragment_name.node, at)
                }
            })
            .fold(0, u64::saturating_add)
    }

    fn fragment(&mut self, parent: Parent<'a>, name: &'a Name, at: At<'_>) -> u64 {
        let Some(definition) = self.document.fragments.get(name) else {
            return 0;
        };
        if self.visiting.contains(&name) {
            return 0;
        }
        self.visiting.push(name);
        let parent = self.narrowed(parent, &definition.node.type_condition.node.on.node);
        let cost = self.set(parent, &definition.node.selection_set.node, at);
        self.visiting.pop();
        cost
    }

    /// `parent` seen through a type condition (the page size stays).
    fn narrowed(&self, parent: Parent<'a>, on: &str) -> Parent<'a> {
        Parent {
            ty: self.registry.types.get(on).or(parent.ty),
            page: parent.page,
        }
    }

    fn field(&mut self, parent: Parent<'a>, field: &'a Field, at: At<'_>) -> u64 {
        let Some(Plan {
            own,
            inner,
            is_list,
            in_connection,
            fixed,
            ..
        }) = self.planned(parent, field)
        else {
            // `__typename`, or a field validation will refuse.
            return 0;
        };
        let set = &field.selection_set.node;
        match at {
            At::Requested => {
                let items = if is_list && in_connection { parent.page } else { 1 };
                let one = own.saturating_add(self.set(inner, set, At::Requested));
                items.saturating_mul(one)
            }
            At::Actual(response) => {
                let Some(value) = response.get(field.response_key().node.as_str()) else {
                    // Skipped: it did not run.
                    return 0;
                };
                match value {
                    Value::List(items) => {
                        let costs = items.iter().map(|item| self.item(own, inner, set, fixed, item));
                        if in_connection {
                            costs.fold(0, u64::saturating_add)
                        } else {
                            costs.max().unwrap_or(own)
                        }
                    }
                    item => self.item(own, inner, set, fixed, item),
                }
            }
        }
    }

    /// [`Self::plan`], once per walk.
    fn planned(&mut self, parent: Parent<'a>, field: &'a Field) -> Option<Plan<'a>> {
        let key = (
            parent.ty.map_or(0, |ty| std::ptr::from_ref(ty) as usize),
            std::ptr::from_ref(field) as usize,
        );
        if let Some(plan) = self.plans.get(&key) {
            return *plan;
        }
        let plan = self.plan(parent, field);
        self.plans.insert(key, plan);
        plan
    }

    /// What `field` is under `parent`; `None` for `__typename` or a field
    /// the type does not have.
    fn plan(&mut self, parent: Parent<'a>, field: &'a Field) -> Option<Plan<'a>> {
        let name = field.name.node.as_str();
        let meta = parent.ty.and_then(|ty| ty.field_by_name(name))?;
        let target = self
            .registry
            .concrete_type_by_name(MetaTypeName::concrete_typename(&meta.ty));
        let ty = MetaTypeName::create(&meta.ty);
        let inner = Parent {
            ty: target,
            page: if target.is_some_and(is_connection) {
                self.page_size(field)
            } else {
                0
            },
        };
        let fixed = if self.actual {
            self.fixed_set(inner, &field.selection_set.node)
        } else {
            None
        };
        Some(Plan {
            own: self.own_cost(parent.ty, name, target),
            inner,
            is_list: ty.is_list(),
            is_non_null: ty.is_non_null(),
            in_connection: parent.ty.is_some_and(is_connection),
            fixed,
        })
    }

    /// What `set` costs inside an object of `parent` that came back, when
    /// the schema alone says so: every field in it is free whatever it
    /// answers (a scalar, an enum, `__typename`), or is a non-null object
    /// that is not a list, not under a directive, whose own selection is
    /// fixed too. Such an object's cost cannot depend on the response (a
    /// non-null field that failed nulls its parent, which then costs only
    /// itself), so the walk need not look inside it: a page of items
    /// costs its length times one. `None` for anything else (fragments
    /// included): the response is walked.
    fn fixed_set(&mut self, parent: Parent<'a>, set: &'a SelectionSet) -> Option<u64> {
        set.items.iter().try_fold(0_u64, |total, selection| {
            let Selection::Field(field) = &selection.node else {
                return None;
            };
            let field = &field.node;
            let cost = match self.planned(parent, field) {
                None => 0,
                Some(plan) if plan.own == 0 && !plan.inner.ty.is_some_and(MetaType::is_composite) => 0,
                Some(plan) if field.directives.is_empty() && plan.is_non_null && !plan.is_list => {
                    plan.own.saturating_add(plan.fixed?)
                }
                Some(_) => return None,
            };
            Some(total.saturating_add(cost))
        })
    }

    /// One value of a field in the response: its own cost and, for an
    /// object, what was selected inside it (`fixed`, when known).
    fn item(
        &mut self,
        own: u64,
        inner: Parent<'a>,
        set: &'a SelectionSet,
        fixed: Option<u64>,
        value: &Value,
    ) -> u64 {
        match (value, fixed) {
            (Value::Object(_), Some(fixed)) => own.saturating_add(fixed),
            (Value::Object(object), None) => own.saturating_add(self.set(inner, set, At::Actual(object))),
            _ => own,
        }
    }

    /// A field's own cost, before what is selected inside it.
    fn own_cost(&self, parent: Option<&MetaType>, name: &str, target: Option<&MetaType>) -> u64 {
        if parent.is_some_and(|parent| Some(parent.name()) == self.mutation_root) {
            return if SENSITIVE_MUTATIONS.contains(&name) {
                SENSITIVE_MUTATION
            } else {
                MUTATION
            };
        }
        if parent.is_some_and(is_connection) && name == "totalCount" {
            return TOTAL_COUNT;
        }
        match target {
            Some(ty) if is_connection(ty) => CONNECTION,
            Some(ty) if ty.is_composite() && !is_wrapper(ty) => OBJECT,
            _ => 0,
        }
    }

    /// A connection field's page size: its `first`, as the resolvers read it.
    fn page_size(&self, field: &Field) -> u64 {
        let first = field
            .get_argument("first")
            .and_then(|value| {
                value
                    .node
                    .clone()
                    .into_const_with(|name| self.variable(&name).ok_or(()))
                    .ok()
            })
            .and_then(|value| as_i32(&value));
        // A negative `first` is refused by the resolver; it costs nothing.
        entity::pagination::page_size(first).unwrap_or(0)
    }

    /// A variable's value: sent with the request, else its default.
    fn variable(&self, name: &Name) -> Option<Value> {
        if let Some(value) = self.variables.get(name) {
            return Some(value.clone());
        }
        self.operation
            .variable_definitions
            .iter()
            .find(|definition| definition.node.name.node == *name)
            .and_then(|definition| definition.node.default_value.as_ref())
            .map(|value| value.node.clone())
    }
}

fn as_i32(value: &Value) -> Option<i32> {
    match value {
        Value::Number(number) => number
            .as_i64()
            .map(|n| i32::try_from(n.clamp(i32::MIN.into(), i32::MAX.into())).unwrap_or_default()),
        _ => None,
    }
}

/// A Relay connection: every list of this schema is one (see `pagination`).
fn is_connection(ty: &MetaType) -> bool {
    ty.name().ends_with("Connection")
}

/// The parts of a connection that only wrap its items: edges and page info.
fn is_wrapper(ty: &MetaType) -> bool {
    ty.name().ends_with("Edge") || ty.name() == "PageInfo"
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest};
    use async_graphql::{Request, ServerError, ServerResult, Value, Variables};

    /// (requested, actual) as a [`Probe`] measured them.
    type Measured = Arc<Mutex<Option<(u64, Option<u64>)>>>;

    /// Measures a request on the real schema's registry, without running it.
    struct Probe {
        /// The response to measure the actual cost against, if any.
        data: Option<Value>,
        measured: Measured,
    }

    impl ExtensionFactory for Probe {
        fn create(&self) -> Arc<dyn Extension> {
            Arc::new(Probe {
                data: self.data.clone(),
                measured: Arc::clone(&self.measured),
            })
        }
    }

    #[async_trait::async_trait]
    impl Extension for Probe {
        async fn prepare_request(
            &self,
            ctx: &ExtensionContext<'_>,
            mut request: Request,
            _next: NextPrepareRequest<'_>,
        ) -> ServerResult<Request> {
            let variables = request.variables.clone();
            let name = request.operation_name.clone();
            let document = request.parsed_query()?;
            let operation = super::operation(document, name.as_deref()).expect("one operation");
            let registry = &ctx.schema_env.registry;
            let requested = super::requested(registry, document, &operation.node, &variables);
            let actual = self
                .data
                .as_ref()
                .map(|data| super::actual(registry, document, &operation.node, &variables, data));
            *self.measured.lock().expect("lock") = Some((requested, actual));
            Err(ServerError::new("measured", None))
        }
    }

    fn measure(
        query: &str,
        variables: serde_json::Value,
        data: Option<serde_json::Value>,
    ) -> (u64, Option<u64>) {
        let measured: Measured = Arc::default();
        let schema = crate::schema::builder()
            .extension(Probe {
                data: data.map(|data| Value::from_json(data).expect("json")),
                measured: Arc::clone(&measured),
            })
            .finish();
        let request = Request::new(query).variables(Variables::from_json(variables));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(schema.execute(request));
        let measured = *measured.lock().expect("lock");
        measured.expect("the probe ran")
    }

    fn requested(query: &str) -> u64 {
        measure(query, serde_json::json!({}), None).0
    }

    #[test]
    fn scalars_are_free_objects_cost_one() {
        assert_eq!(requested("{ __typename }"), 0);
        assert_eq!(requested("{ me { id email name role } }"), 1);
        assert_eq!(
            requested("{ product(slug: \"a\") { name price { formatted } } }"),
            2
        );
    }

    #[test]
    fn connections_cost_two_plus_the_page_times_one_item() {
        // 2 + 10 × (node 1 + price 1); edges, pageInfo and cursors are free.
        let listing = "{ products(first: 10) { edges { cursor node { name price { formatted } } } pageInfo { hasNextPage } } }";
        assert_eq!(requested(listing), 22);
        assert_eq!(requested("{ products(first: 10) { nodes { name } } }"), 12);
        // No `first`: the default page of 20; more than 100: capped at 100.
        assert_eq!(requested("{ products { nodes { name } } }"), 22);
        assert_eq!(requested("{ products(first: 5000) { nodes { name } } }"), 102);
        // totalCount counts the whole list.
        assert_eq!(requested("{ products(first: 0) { totalCount } }"), 3);
    }

    #[test]
    fn the_page_size_comes_from_variables_and_their_defaults() {
        let query = "query($n: Int = 7) { products(first: $n) { nodes { name } } }";
        assert_eq!(measure(query, serde_json::json!({}), None).0, 9);
        assert_eq!(measure(query, serde_json::json!({ "n": 50 }), None).0, 52);
        assert_eq!(measure(query, serde_json::json!({ "n": null }), None).0, 22);
    }

    #[test]
    fn a_plain_list_counts_one_item() {
        // orders 2 + 20 × (node 1 + lines 1 + product 1 + subtotal 1)
        let query = "{ orders { nodes { lines { product { name } subtotal { formatted } } } } }";
        assert_eq!(requested(query), 82);
    }

    #[test]
    fn fragments_count_where_they_are_spread() {
        let spread = "{ products(first: 10) { ...Page } } fragment Page on ProductConnection { nodes { ...Item } } fragment Item on Product { price { formatted } }";
        assert_eq!(requested(spread), 22);
        let inline =
            "{ products(first: 10) { nodes { ... on Product { price { formatted } } ... { name } } } }";
        assert_eq!(requested(inline), 22);
        let twice = "{ a: products(first: 10) { nodes { id } } b: products(first: 10) { nodes { id } } }";
        assert_eq!(requested(twice), 24);
        let cycle = "{ me { ...A } } fragment A on User { ...B } fragment B on User { ...A }";
        assert_eq!(requested(cycle), 1);
    }

    #[test]
    fn mutations_cost_ten_and_sensitive_ones_a_hundred() {
        assert_eq!(
            requested("mutation { logout(refreshToken: \"x\") }"),
            super::MUTATION
        );
        assert_eq!(
            requested("mutation { requestPasswordReset(email: \"a@example.com\") }"),
            super::SENSITIVE_MUTATION
        );
        assert_eq!(
            requested(
                "mutation { login(input: { email: \"a\", password: \"b\" }) { accessToken user { id } } }"
            ),
            super::SENSITIVE_MUTATION + 1
        );
        let aliased = "mutation { a: login(input: { email: \"a\", password: \"b\" }) { accessToken } b: login(input: { email: \"a\", password: \"c\" }) { accessToken } }";
        assert_eq!(requested(aliased), 2 * super::SENSITIVE_MUTATION);
    }

    #[test]
    fn the_actual_cost_counts_what_came_back() {
        let listing = "{ products(first: 10) { edges { node { name price { formatted } } } } }";
        let node = serde_json::json!({ "node": { "name": "x", "price": { "formatted": "1" } } });
        let three = serde_json::json!({ "products": { "edges": [node, node, node] } });
        assert_eq!(
            measure(listing, serde_json::json!({}), Some(three)),
            (22, Some(8))
        );

        // A null object costs only itself; a field that did not run, nothing.
        let query = "{ product(slug: \"a\") { price { formatted } } me { id } }";
        let data = serde_json::json!({ "product": null });
        assert_eq!(measure(query, serde_json::json!({}), Some(data)), (3, Some(1)));

        // A plain list counts its costliest item, never more than requested.
        let query = "{ order(id: \"x\") { lines { product { name } } } }";
        let data = serde_json::json!({ "order": { "lines": [
            { "product": { "name": "a" } }, { "product": null }, { "product": { "name": "b" } }
        ] } });
        assert_eq!(measure(query, serde_json::json!({}), Some(data)), (3, Some(3)));
    }

    #[test]
    fn items_the_schema_fixes_cost_the_same_as_walked() {
        // node and price are non-null: one item costs 2 whatever it answers.
        let listing = "{ products(first: 10) { nodes { name price { formatted } } } }";
        let item = serde_json::json!({ "name": "x", "price": { "formatted": "1" } });
        let data = serde_json::json!({ "products": { "nodes": [item, item] } });
        assert_eq!(measure(listing, serde_json::json!({}), Some(data)), (22, Some(6)));

        // Under a directive a field may not have run: the items are walked.
        let skipped = "{ products(first: 10) { nodes { name price @skip(if: true) { formatted } } } }";
        let data = serde_json::json!({ "products": { "nodes": [{ "name": "x" }, { "name": "y" }, { "name": "z" }] } });
        assert_eq!(measure(skipped, serde_json::json!({}), Some(data)), (22, Some(5)));

        // A fragment is walked too, and counts the same.
        let spread =
            "{ products(first: 10) { nodes { ...P } } } fragment P on Product { price { formatted } }";
        let data = serde_json::json!({ "products": { "nodes": [{ "price": { "formatted": "1" } }] } });
        assert_eq!(measure(spread, serde_json::json!({}), Some(data)), (22, Some(4)));
    }
}
