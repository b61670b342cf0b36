//! Jobs over GraphQL (admins only): dead jobs, and retrying them; the
//! machinery's figures (queues, workers, outbox backlog, dead job count).
pub mod graphql;

pub use graphql::{JobsMutation, JobsQuery};
