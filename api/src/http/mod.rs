//! HTTP transport for GraphQL (being written).
