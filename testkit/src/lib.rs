//! Test support for every crate of the workspace, in one place.
//!
//! Each test gets a world of its own: its own database (cloned from a
//! template migrated once), its own Redis key namespace or a private
//! `redis-server`, its own SMTP server. Nothing here is a mock: the
//! services are the real ones `scripts/test` provisions.
//!
//! # Layout
//! - [`db`]: [`Backend`] and [`TestDb`], a fresh SQLite file or PostgreSQL
//!   database per test, cloned from a per-run template.
//! - [`postgres`]: [`PrivatePostgres`], a PostgreSQL server of a test's
//!   own, for tests that restart it.
//! - [`redis`]: the shared Redis' URL, a key namespace removed on drop, and
//!   [`PrivateRedis`] for tests that stop, restart or count Redis.
//! - [`smtp`]: [`TestSmtp`], a real SMTP server in the test process, and
//!   MIME parsing of what it received.
//! - [`fixtures`]: rows written straight to the database, many at a time.
//! - [`graphql`]: [`GraphqlClient`], the HTTP client every black-box test
//!   speaks GraphQL with, and signed-in [`Session`]s.
//! - [`otlp`]: [`OtlpReceiver`], an OTLP/HTTP trace receiver the binaries
//!   export their spans to.
//! - [`node`]: Node programs the tests run (example client, audits).
//! - [`scan`]: a value searched for in every table column and every key of
//!   a Redis namespace (secrets that must not be kept).
//! - [`wait`]: [`eventually`], polling with a deadline.
//! - [`ws`]: a `graphql-transport-ws` client that shows frames and close codes.
//! - the macros [`on_both_backends!`] and [`on_backends!`]: one test per backend.
pub mod db;
pub mod fixtures;
pub mod graphql;
pub mod node;
pub mod otlp;
pub mod postgres;
pub mod redis;
pub mod scan;
pub mod smtp;
pub mod wait;
pub mod ws;

pub use db::{Backend, TestDb};
pub use graphql::{GraphqlClient, PASSWORD, Session, error_code};
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use postgres::PrivatePostgres;
pub use redis::{Namespace, PrivateRedis, redis_url};
pub use smtp::{Behaviour, MAIL_FROM, Parsed, Received, TestSmtp, parse};
pub use wait::{eventually, until, until_async};
pub use ws::{Frame, WsClient};

/// Defines `mod $name { $test… }` next to `async fn $body(backend)`: one
/// `#[tokio::test]` per `$test => $backend` pair.
#[macro_export]
macro_rules! on_backends {
    ($name:ident, $body:ident, $($test:ident => $backend:expr),+ $(,)?) => {
        mod $name {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$body($backend).await;
                }
            )+
        }
    };
}

/// [`on_backends!`] for the two databases: `mod $name { sqlite, postgres }`.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:ident) => {
        $crate::on_backends!(
            $name,
            $body,
            sqlite => $crate::Backend::Sqlite,
            postgres => $crate::Backend::Postgres,
        );
    };
    ($name:ident) => {
        $crate::on_both_backends!($name, $name);
    };
}
