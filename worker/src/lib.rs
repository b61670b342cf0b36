//! The Storefront job runner (apalis) that settles payments and sends emails.
//! The worker itself lands with the worker issue; today this crate only says so.

/// What `cargo run -p worker` prints until the job runner exists.
pub const NOT_YET: &str = "storefront worker: the job runner is not built yet (see the open worker issue)";
