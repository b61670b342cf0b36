//! Accounts over GraphQL: register, log in, refresh, log out, password
//! reset and `me`. Rules live in `entity::accounts`; this is the adapter.
pub mod graphql;

pub use graphql::{AccountsMutation, AccountsQuery};
