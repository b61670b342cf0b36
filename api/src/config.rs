//! Configuration, read once from the environment (and `.env`) into a typed
//! struct. Every variable has a documented default (README "Configuration");
//! production refuses the defaults that would be unsafe.
use std::net::SocketAddr;
use std::path::PathBuf;

use worker::env::{EnvError, flag, parsed, var};

use crate::cost::BucketSettings;
use crate::http::AllowedOrigins;
use crate::http::client_ip::TrustedProxies;
use crate::throttle::rules::RateLimits;
use worker::telemetry::LogFormat;

/// Where the service runs; production refuses unsafe defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// A secret whose `Debug` never prints it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    #[must_use]
    pub fn new(value: String) -> Self {
        Self(value)
    }

    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The shortest `JWT_SECRET` production accepts.
pub const MIN_JWT_SECRET_LEN: usize = 32;

/// `Debug` hides `JWT_SECRET` and the passwords in URLs.
#[derive(Clone)]
pub struct Config {
    pub environment: Environment,
    /// `API_BIND`; port 0 picks a free port (tests).
    pub bind: SocketAddr,
    /// `METRICS_BIND`: serve `/metrics` on this address alone (and not on
    /// `API_BIND`). Unset: on `API_BIND` in development, nowhere in
    /// production (see README "Metrics").
    pub metrics_bind: Option<SocketAddr>,
    /// `DATA_DIR`: the SQLite file and other local state live here.
    pub data_dir: PathBuf,
    /// `DATABASE_URL`, or the SQLite file under `DATA_DIR`.
    pub database_url: String,
    /// `DATABASE_MAX_CONNECTIONS` (default 20) and the pool's timeouts
    /// (`DATABASE_*_TIMEOUT_MS`, see [`worker::config::database_pool`]).
    pub database: entity::db::PoolSettings,
    /// `JWT_SECRET`; generated (with a warning) in development when unset.
    pub jwt_secret: Secret,
    /// True when the secret was generated, so the warning can say so.
    pub jwt_secret_generated: bool,
    pub log_format: LogFormat,
    /// `GRAPHIQL`: serve the playground on GET /graphql from a browser.
    pub graphiql: bool,
    /// `INTROSPECTION`: answer introspection queries.
    pub introspection: bool,
    /// `PLAYGROUND_DIR`: the built GraphiQL assets (see playground/build.sh).
    pub playground_dir: Option<PathBuf>,
    /// `GRAPHQL_MAX_DEPTH`, `MAX_BODY_BYTES`.
    pub max_depth: usize,
    /// `MAX_QUERY_COST`: the most one document may cost (see `cost`).
    pub max_query_cost: u64,
    /// `COST_BUCKET_SIZE`, `COST_RESTORE_RATE`: each client's bucket of
    /// query cost points (see `cost::bucket`).
    pub cost_bucket: BucketSettings,
    pub max_body_bytes: usize,
    /// `CORS_ALLOWED_ORIGINS`: browser origins that may call the api
    /// (development: this machine on any port; production: none).
    pub cors_allowed_origins: AllowedOrigins,
    /// `MAX_IN_FLIGHT`: requests one process runs at once; more get 503.
    pub max_in_flight: usize,
    /// `MAX_SOCKETS`: GraphQL WebSockets one process holds open; more get 503.
    pub max_sockets: usize,
    /// `TRUSTED_DOCUMENTS`: a manifest of the only documents this api runs
    /// (production); without it, automatic persisted queries.
    pub trusted_documents: Option<PathBuf>,
    /// `RATE_LIMIT_<NAME>`, `LOGIN_BLOCK_*`: the rate limits (README
    /// "Rate limits").
    pub rate_limits: RateLimits,
    /// `TRUSTED_PROXIES`: proxies whose `X-Forwarded-For` names the client
    /// (default: none, the peer is the client).
    pub trusted_proxies: TrustedProxies,
    /// `SEED_DEMO_DATA`: seed the demo catalog on start when the catalog is empty.
    pub seed_demo_data: bool,
    /// `CATALOG_CACHE` (default: on): serve product reads from the
    /// in-process catalog cache (`catalog::cache`); off, every read goes to
    /// the database.
    pub catalog_cache: bool,
    /// `EMBEDDED_WORKER` (default: true without `REDIS_URL`): run the job
    /// runner inside this process. Without it, the api pushes jobs to Redis
    /// when `REDIS_URL` is set, and otherwise leaves them in the outbox for a
    /// `worker` process on the same database to sweep.
    pub embedded_worker: bool,
    /// The job runner's settings (`REDIS_URL`, `SMTP_URL`, retries, …), used
    /// by the embedded worker and by the api's own dispatcher.
    pub worker: worker::config::WorkerConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("{0} must be set in production")]
    Missing(&'static str),
}

impl From<EnvError> for ConfigError {
    fn from(err: EnvError) -> Self {
        ConfigError::Invalid {
            name: err.name,
            reason: err.reason,
        }
    }
}

/// A development-only secret, new on every start (tokens die with the process).
fn random_secret() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("environment", &self.environment)
            .field("bind", &self.bind)
            .field("metrics_bind", &self.metrics_bind)
            .field("data_dir", &self.data_dir)
            .field("database_url", &worker::env::redact_url(&self.database_url))
            .field("database", &self.database)
            .field("jwt_secret", &self.jwt_secret)
            .field("jwt_secret_generated", &self.jwt_secret_generated)
            .field("log_format", &self.log_format)
            .field("graphiql", &self.graphiql)
            .field("introspection", &self.introspection)
            .field("playground_dir", &self.playground_dir)
            .field("max_depth", &self.max_depth)
            .field("max_query_cost", &self.max_query_cost)
            .field("cost_bucket", &self.cost_bucket)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_sockets", &self.max_sockets)
            .field("trusted_documents", &self.trusted_documents)
            .field("rate_limits", &self.rate_limits)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("seed_demo_data", &self.seed_demo_data)
            .field("catalog_cache", &self.catalog_cache)
            .field("embedded_worker", &self.embedded_worker)
            .field("worker", &self.worker)
            .finish()
    }
}

impl Config {
    /// Reads the configuration from the environment (after loading `.env`).
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable that is missing or malformed.
    pub fn from_env() -> Result<Self, ConfigError> {
        let environment = match var("APP_ENV").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("development" | "dev") => Environment::Development,
            Some("production" | "prod") => Environment::Production,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "APP_ENV",
                    reason: format!("{other:?} is not development or production"),
                });
            }
        };
        let production = environment == Environment::Production;
        let data_dir = worker::env::data_dir();
        let database_url = worker::env::database_url(&data_dir);
        let (jwt_secret, jwt_secret_generated) = match var("JWT_SECRET") {
            Some(secret) if production && secret.len() < MIN_JWT_SECRET_LEN => {
                return Err(ConfigError::Invalid {
                    name: "JWT_SECRET",
                    reason: format!("must be at least {MIN_JWT_SECRET_LEN} characters in production"),
                });
            }
            Some(secret) => (secret, false),
            None if production => return Err(ConfigError::Missing("JWT_SECRET")),
            None => (random_secret(), true),
        };
        let log_format = LogFormat::from_env()?;
        let cors_allowed_origins = match var("CORS_ALLOWED_ORIGINS") {
            Some(list) => AllowedOrigins::parse(&list).map_err(|reason| ConfigError::Invalid {
                name: "CORS_ALLOWED_ORIGINS",
                reason,
            })?,
            None if production => AllowedOrigins::none(),
            None => AllowedOrigins::development(),
        };
        let rate_limits =
            RateLimits::from_lookup(var).map_err(|(name, reason)| ConfigError::Invalid { name, reason })?;
        let cost_bucket = BucketSettings::new(
            parsed("COST_BUCKET_SIZE", crate::cost::bucket::DEFAULT_SIZE)?,
            parsed("COST_RESTORE_RATE", crate::cost::bucket::DEFAULT_RESTORE_RATE)?,
        )
        .map_err(|(name, reason)| ConfigError::Invalid { name, reason })?;
        let trusted_proxies =
            TrustedProxies::parse(&var("TRUSTED_PROXIES").unwrap_or_default()).map_err(|reason| {
                ConfigError::Invalid {
                    name: "TRUSTED_PROXIES",
                    reason,
                }
            })?;
        Ok(Self {
            environment,
            bind: parsed("API_BIND", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            metrics_bind: var("METRICS_BIND")
                .map(|_| parsed("METRICS_BIND", SocketAddr::from(([127, 0, 0, 1], 0))))
                .transpose()?,
            data_dir,
            database_url,
            database: worker::config::database_pool(parsed("DATABASE_MAX_CONNECTIONS", 20)?)?,
            jwt_secret: Secret::new(jwt_secret),
            jwt_secret_generated,
            log_format,
            graphiql: flag("GRAPHIQL", !production)?,
            introspection: flag("INTROSPECTION", !production)?,
            playground_dir: var("PLAYGROUND_DIR").map(PathBuf::from),
            max_depth: parsed("GRAPHQL_MAX_DEPTH", 10)?,
            max_query_cost: parsed("MAX_QUERY_COST", crate::cost::DEFAULT_MAX_QUERY_COST)?,
            cost_bucket,
            max_body_bytes: parsed("MAX_BODY_BYTES", 1024 * 1024)?,
            cors_allowed_origins,
            trusted_documents: var("TRUSTED_DOCUMENTS").map(PathBuf::from),
            max_in_flight: parsed("MAX_IN_FLIGHT", 256)?,
            max_sockets: parsed("MAX_SOCKETS", 10_000)?,
            rate_limits,
            trusted_proxies,
            seed_demo_data: flag("SEED_DEMO_DATA", !production)?,
            catalog_cache: flag("CATALOG_CACHE", true)?,
            embedded_worker: flag("EMBEDDED_WORKER", var("REDIS_URL").is_none())?,
            worker: worker::config::WorkerConfig::from_env()?,
        })
    }

    /// Development defaults on `database_url`, listening on a free loopback
    /// port, without demo data: what tests and benchmarks start.
    #[must_use]
    pub fn local(database_url: String, jwt_secret: &str) -> Self {
        let database_url_for_worker = database_url.clone();
        Self {
            environment: Environment::Development,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_bind: None,
            data_dir: std::env::temp_dir(),
            database_url,
            database: entity::db::PoolSettings::new(20),
            jwt_secret: Secret::new(jwt_secret.to_owned()),
            jwt_secret_generated: false,
            log_format: LogFormat::Pretty,
            graphiql: true,
            introspection: true,
            playground_dir: None,
            max_depth: 10,
            max_query_cost: crate::cost::DEFAULT_MAX_QUERY_COST,
            cost_bucket: BucketSettings::default(),
            max_body_bytes: 1024 * 1024,
            cors_allowed_origins: AllowedOrigins::development(),
            trusted_documents: None,
            max_in_flight: 256,
            max_sockets: 10_000,
            rate_limits: RateLimits::default(),
            trusted_proxies: TrustedProxies::default(),
            seed_demo_data: false,
            catalog_cache: true,
            embedded_worker: false,
            worker: worker::config::WorkerConfig::local(database_url_for_worker, None),
        }
    }

    /// Whether the database is the embedded SQLite file.
    #[must_use]
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

#[cfg(test)]
mod debug_tests {
    use super::Config;

    #[test]
    fn debug_output_hides_the_secret_and_the_passwords_in_urls() {
        let mut config = Config::local(
            "postgres://shop:db-password@db/shop".into(),
            "jwt-secret-jwt-secret-jwt-secret-1",
        );
        config.worker.redis_url = Some("redis://:redis-password@cache:6379".into());
        config.worker.smtp_url = Some("smtps://mailer:smtp-password@smtp.example:465".into());
        let shown = format!("{config:?}");
        for secret in ["db-password", "redis-password", "smtp-password", "jwt-secret-jwt"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown.contains("postgres://shop:***@db/shop"), "{shown}");
    }
}
