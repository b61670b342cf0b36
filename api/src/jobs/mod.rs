//! Jobs over GraphQL (admins only): dead jobs, and retrying them.
pub mod graphql;

pub use graphql::{JobsMutation, JobsQuery};
