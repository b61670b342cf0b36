//! Relay connections, built once for every list: edges with opaque cursors
//! (base64url of a small JSON document; clients must not parse them),
//! `nodes`, `pageInfo`, and a `totalCount` that is counted only when a
//! client asks for it.
//!
//! A list resolver fetches one keyset page from `entity` and hands it to
//! [`Connection::new`] with how to make each row's cursor and node and how
//! to count the whole list; the GraphQL names (`ProductConnection`,
//! `ProductEdge`, …) come from the node type's [`ConnectionNode`].
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_graphql::{Context, Object, OutputType, SimpleObject, TypeName};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entity::DomainError;
use entity::pagination::Page;
use sea_orm::DatabaseConnection;
use serde::{Serialize, de::DeserializeOwned};

use crate::errors::{GqlResultExt, client_error, code};
use crate::state::AppState;

/// Relay's page information; only forward pagination is offered.
#[derive(SimpleObject, Debug, Clone)]
pub struct PageInfo {
    pub has_next_page: bool,
    /// Always false: lists page forward only (`first`/`after`).
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

/// A GraphQL type that is listed in a connection; names its connection
/// and edge types.
pub trait ConnectionNode: OutputType {
    const CONNECTION: &'static str;
    const EDGE: &'static str;
}

/// Counts every row of the list the page came from.
type CountFuture = Pin<Box<dyn Future<Output = Result<u64, DomainError>> + Send>>;
type Counter = Arc<dyn Fn(DatabaseConnection) -> CountFuture + Send + Sync>;

pub struct Edge<N> {
    cursor: String,
    node: N,
}

impl<N: ConnectionNode> TypeName for Edge<N> {
    fn type_name() -> std::borrow::Cow<'static, str> {
        N::EDGE.into()
    }
}

#[Object(name_type)]
impl<N: ConnectionNode> Edge<N> {
    async fn cursor(&self) -> &str {
        &self.cursor
    }
    async fn node(&self) -> &N {
        &self.node
    }
}

/// One page of a list.
pub struct Connection<N> {
    edges: Vec<Edge<N>>,
    page_info: PageInfo,
    count: Counter,
}

impl<N: ConnectionNode> Connection<N> {
    /// Builds the connection for `page`: `cursor` names where a row ends a
    /// page, `node` turns a row into its GraphQL type, `count` counts the
    /// whole list (run only when `totalCount` is selected). `after_given`
    /// says whether the client asked for a later page.
    pub fn new<R, F>(
        page: Page<R>,
        after_given: bool,
        cursor: impl Fn(&R) -> String,
        node: impl Fn(R) -> N,
        count: impl Fn(DatabaseConnection) -> F + Send + Sync + 'static,
    ) -> Self
    where
        F: Future<Output = Result<u64, DomainError>> + Send + 'static,
    {
        let edges: Vec<Edge<N>> = page
            .items
            .into_iter()
            .map(|row| Edge {
                cursor: cursor(&row),
                node: node(row),
            })
            .collect();
        let page_info = PageInfo {
            has_next_page: page.has_next_page,
            has_previous_page: after_given,
            start_cursor: edges.first().map(|e| e.cursor.clone()),
            end_cursor: edges.last().map(|e| e.cursor.clone()),
        };
        Self {
            edges,
            page_info,
            count: Arc::new(move |db| Box::pin(count(db))),
        }
    }
}

impl<N: ConnectionNode> TypeName for Connection<N> {
    fn type_name() -> std::borrow::Cow<'static, str> {
        N::CONNECTION.into()
    }
}

#[Object(name_type)]
impl<N: ConnectionNode> Connection<N> {
    async fn edges(&self) -> &[Edge<N>] {
        &self.edges
    }
    async fn nodes(&self) -> Vec<&N> {
        self.edges.iter().map(|e| &e.node).collect()
    }
    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }
    /// How many items the list holds across all pages (counted only when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        let state = ctx.data::<AppState>()?;
        crate::transaction::read(|| (self.count)(state.db.clone()))
            .await
            .or_gql(ctx)
    }
}

/// Encodes a cursor value.
#[must_use]
pub fn encode_cursor<T: Serialize>(value: &T) -> String {
    // Serialising a plain struct of strings and numbers cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// Decodes a client's `after` cursor.
///
/// # Errors
/// BAD_USER_INPUT when the cursor was not made by this server.
pub fn decode_cursor<T: DeserializeOwned>(cursor: &str) -> async_graphql::Result<T> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| client_error(code::BAD_USER_INPUT, "invalid cursor in `after`"))
}

/// Decodes an optional `after` cursor.
///
/// # Errors
/// As [`decode_cursor`].
pub fn decode_after<T: DeserializeOwned>(after: Option<&str>) -> async_graphql::Result<Option<T>> {
    after.map(decode_cursor).transpose()
}
