//! The Storefront GraphQL server (actix-web + async-graphql) over the domain
//! rules in `entity`. The server itself lands with the API issue; today this
//! crate only says so.

/// What `cargo run -p api` prints until the GraphQL server exists.
pub const NOT_YET: &str = "storefront api: the GraphQL server is not built yet (see the open API issue); \
the domain model and migrations are ready: `cargo run -p migration -- up` applies them to DATABASE_URL";
pub mod http;
