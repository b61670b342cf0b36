//! GraphQL `ID`s in and out: every id an operation receives is parsed here
//! into the typed id of `entity::ids`, so a resolver never handles a bare
//! string or a bare UUID.
use std::str::FromStr;

use async_graphql::ID;

use crate::errors::{client_error, code};

/// Parses `id` into a typed id, or BAD_USER_INPUT naming the argument.
///
/// # Errors
/// BAD_USER_INPUT when `id` is not one of ours.
pub fn parse<T: FromStr>(id: &ID, field: &'static str) -> async_graphql::Result<T> {
    id.as_str()
        .parse()
        .map_err(|_| client_error(code::BAD_USER_INPUT, format!("`{field}` is not a valid id")))
}

/// Parses `id` for a lookup, where an id that is not ours simply finds
/// nothing (`order(id:)` answers null, as for someone else's order).
#[must_use]
pub fn lookup<T: FromStr>(id: &ID) -> Option<T> {
    id.as_str().parse().ok()
}

/// The GraphQL form of a typed id.
#[must_use]
pub fn to_gql(id: impl std::fmt::Display) -> ID {
    ID(id.to_string())
}
