//! The worker's configuration, read once from the environment. Every
//! variable has a default (README "Configuration").
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use entity::jobs::QueueName;

use crate::breaker::BreakerSettings;
use crate::queue::{QueueOptions, RedisTimeouts};

/// How failed attempts are retried: exponential backoff with jitter, up to
/// `max_attempts` attempts in all, then the job is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `JOB_MAX_ATTEMPTS` (default 6): attempts in all, the first included.
    pub max_attempts: u32,
    /// `JOB_BACKOFF_BASE_MS` (default 1000): the wait after the first failure.
    pub backoff_base: Duration,
    /// `JOB_BACKOFF_MAX_MS` (default 300000): no wait is longer.
    pub backoff_max: Duration,
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: `base · 2^(attempt-1)`, capped,
    /// then a random 50–100 % of it (jitter spreads retries of a burst).
    #[must_use]
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let full = self
            .backoff_base
            .saturating_mul(1u32 << exponent)
            .min(self.backoff_max);
        full.mul_f64(0.5 + rand::random::<f64>() * 0.5)
    }
}

/// `Debug` hides the passwords in its URLs (see [`crate::env::redact_url`]).
#[derive(Clone)]
pub struct WorkerConfig {
    /// `DATABASE_URL`, or the SQLite file `DATA_DIR/storefront.db`.
    pub database_url: String,
    /// `REDIS_URL`: Redis queues when set, the SQLite queue otherwise.
    pub redis_url: Option<String>,
    /// `QUEUE_NAMESPACE` (default `storefront`): the key prefix in Redis.
    pub queue_namespace: String,
    /// `DATA_DIR` (default `./var`): `.eml` files go to `DATA_DIR/mail`.
    pub data_dir: PathBuf,
    /// `SMTP_URL`: `smtp://host:port`, `smtp+starttls://…`, `smtps://…`.
    pub smtp_url: Option<String>,
    /// `MAIL_FROM` (default `Storefront <shop@localhost>`).
    pub mail_from: String,
    /// `PUBLIC_URL` (default `http://127.0.0.1:8080`): links in emails.
    pub public_url: String,
    /// `WORKER_BIND` (default 127.0.0.1:9090): `/healthz`, `/readyz`.
    pub bind: SocketAddr,
    /// `WORKER_CONCURRENCY` (default 8): jobs at a time per queue.
    pub concurrency: usize,
    /// `WORKER_QUEUES` (default both): `emails`, `settlements`.
    pub queues: Vec<QueueName>,
    pub retry: RetryPolicy,
    /// `CAPTURE_TIMEOUT_MS` (default 10000): a capture, void or refund taking
    /// longer is a timeout.
    pub capture_timeout: Duration,
    /// `AUTHORIZE_TIMEOUT_MS` (default 10000): an authorisation (placeOrder)
    /// taking longer is a timeout.
    pub authorize_timeout: Duration,
    /// `SMTP_TIMEOUT_MS` (default 30000): one email's SMTP exchange, and each
    /// connection or command in it.
    pub smtp_timeout: Duration,
    /// `BREAKER_FAILURES`, `BREAKER_OPEN_MS`: the circuit breakers around the
    /// payment gateway and SMTP.
    pub breaker: BreakerSettings,
    /// `ORDER_PAYMENT_TIMEOUT_SECS` (default 1800): unpaid orders older than this are cancelled.
    pub order_payment_timeout: Duration,
    /// `SWEEP_INTERVAL_MS` (default 1000): how often the outbox is swept.
    pub sweep_interval: Duration,
    /// `DISPATCH_GRACE_MS` (default 3000): the api pushes fresh outbox rows itself;
    /// the sweeper takes first attempts only once they are this old.
    pub dispatch_grace: Duration,
    /// `REDISPATCH_AFTER_SECS` (default 600): a job dispatched this long ago and never finished is pushed again.
    pub redispatch_after: Duration,
    /// `QUEUE_HIGH_WATER` (default 2000): no more is pushed to a queue holding this many jobs.
    pub high_water: u64,
    /// `DISPATCH_BATCH` (default 500): outbox rows claimed and pushed per round trip.
    pub dispatch_batch: u64,
    /// `COMPLETION_BATCH` (default 500), `COMPLETION_FLUSH_MS` (default 2):
    /// finished jobs recorded per statement, and how long the first waits.
    pub completion: crate::complete::CompletionSettings,
    /// `OUTBOX_RETENTION` (default `7d`): outbox rows whose attempt finished
    /// longer ago than this are deleted (see `schedules::run_outbox_prune`).
    pub outbox_retention: Duration,
    /// `OUTBOX_PRUNE_INTERVAL_SECS` (default 300): how often the outbox is
    /// pruned; the first round runs when the worker starts.
    pub outbox_prune_interval: Duration,
    /// `CART_RETENTION` (default `30d`): carts nobody changed for this long
    /// are deleted, lines and all (see `schedules::run_cart_expiry`).
    pub cart_retention: Duration,
    /// `SANDBOX_TIMEOUT_MS` (default 30000): how long the sandbox's timeout token hangs.
    pub sandbox_hang: Duration,
    /// `PAYMENT_GATEWAY`: which payment service takes the money.
    pub gateway: GatewayKind,
    pub queue: QueueOptions,
    /// The worker's database pool (10 connections) and its timeouts: see [`database_pool`].
    pub database: entity::db::PoolSettings,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: export traces over OTLP/HTTP to this
    /// collector; unset, nothing is exported (README "Traces").
    pub otlp_endpoint: Option<crate::telemetry::OtlpEndpoint>,
}

/// The pool settings for `max_connections` connections, with
/// `DATABASE_ACQUIRE_TIMEOUT_MS` (default 10000),
/// `DATABASE_STATEMENT_TIMEOUT_MS` (default 30000) and
/// `DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS` (default 60000); the api reads
/// them the same way.
///
/// # Errors
/// [`ConfigError`] naming a malformed variable.
pub fn database_pool(max_connections: u32) -> Result<entity::db::PoolSettings, ConfigError> {
    let defaults = entity::db::PoolSettings::new(max_connections);
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Ok(entity::db::PoolSettings {
        max_connections,
        acquire_timeout: millis("DATABASE_ACQUIRE_TIMEOUT_MS", ms(defaults.acquire_timeout))?,
        statement_timeout: millis("DATABASE_STATEMENT_TIMEOUT_MS", ms(defaults.statement_timeout))?,
        idle_in_transaction_timeout: millis(
            "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS",
            ms(defaults.idle_in_transaction_timeout),
        )?,
    })
}

pub use crate::env::EnvError as ConfigError;

/// The payment gateway adapters there are. The sandbox makes any order with
/// a `sandbox_ok` token PAID, so production refuses it unless told this is
/// a staging shop (`ALLOW_SANDBOX_PAYMENTS=true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayKind {
    Sandbox,
}

impl GatewayKind {
    /// `PAYMENT_GATEWAY`: the sandbox by default in development; required
    /// in production, where `sandbox` also needs `ALLOW_SANDBOX_PAYMENTS=true`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable and saying what to set.
    pub fn from_env(production: bool) -> Result<Self, ConfigError> {
        let refused = |name, reason: &str| ConfigError {
            name,
            reason: reason.to_owned(),
        };
        match var("PAYMENT_GATEWAY").as_deref().map(str::trim) {
            None if production => Err(refused(
                "PAYMENT_GATEWAY",
                "must be set in production: the sandbox would mark every order paid without taking money \
                 (PAYMENT_GATEWAY=sandbox with ALLOW_SANDBOX_PAYMENTS=true is for staging)",
            )),
            None => Ok(Self::Sandbox),
            Some("sandbox") if production && !crate::env::flag("ALLOW_SANDBOX_PAYMENTS", false)? => {
                Err(refused(
                    "PAYMENT_GATEWAY",
                    "sandbox is refused in production unless ALLOW_SANDBOX_PAYMENTS=true (a staging shop)",
                ))
            }
            Some("sandbox") => Ok(Self::Sandbox),
            Some(other) => Err(refused(
                "PAYMENT_GATEWAY",
                &format!("{other:?} is not a gateway this build has (known: sandbox)"),
            )),
        }
    }
}
use crate::env::{duration, millis, parsed, secs, var};

/// Parses `emails,settlements`.
///
/// # Errors
/// [`ConfigError`] for an unknown queue name or an empty list.
pub fn parse_queues(raw: &str) -> Result<Vec<QueueName>, ConfigError> {
    let mut queues = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let queue = QueueName::ALL
            .into_iter()
            .find(|q| q.as_str() == name)
            .ok_or_else(|| ConfigError {
                name: "WORKER_QUEUES",
                reason: format!("unknown queue {name:?}"),
            })?;
        if !queues.contains(&queue) {
            queues.push(queue);
        }
    }
    if queues.is_empty() {
        return Err(ConfigError {
            name: "WORKER_QUEUES",
            reason: "no queue named".into(),
        });
    }
    Ok(queues)
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |url: &Option<String>| url.as_deref().map(crate::env::redact_url);
        f.debug_struct("WorkerConfig")
            .field("database_url", &crate::env::redact_url(&self.database_url))
            .field("redis_url", &redact(&self.redis_url))
            .field("queue_namespace", &self.queue_namespace)
            .field("data_dir", &self.data_dir)
            .field("smtp_url", &redact(&self.smtp_url))
            .field("mail_from", &self.mail_from)
            .field("public_url", &self.public_url)
            .field("bind", &self.bind)
            .field("concurrency", &self.concurrency)
            .field("queues", &self.queues)
            .field("retry", &self.retry)
            .field("capture_timeout", &self.capture_timeout)
            .field("authorize_timeout", &self.authorize_timeout)
            .field("smtp_timeout", &self.smtp_timeout)
            .field("breaker", &self.breaker)
            .field("order_payment_timeout", &self.order_payment_timeout)
            .field("sweep_interval", &self.sweep_interval)
            .field("dispatch_grace", &self.dispatch_grace)
            .field("redispatch_after", &self.redispatch_after)
            .field("high_water", &self.high_water)
            .field("dispatch_batch", &self.dispatch_batch)
            .field("completion", &self.completion)
            .field("outbox_retention", &self.outbox_retention)
            .field("outbox_prune_interval", &self.outbox_prune_interval)
            .field("cart_retention", &self.cart_retention)
            .field("sandbox_hang", &self.sandbox_hang)
            .field("gateway", &self.gateway)
            .field("queue", &self.queue)
            .field("database", &self.database)
            .field("otlp_endpoint", &self.otlp_endpoint)
            .finish()
    }
}

impl WorkerConfig {
    /// Reads the environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the malformed variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let data_dir = crate::env::data_dir();
        let mut config = Self::local(crate::env::database_url(&data_dir), var("REDIS_URL"));
        config.data_dir = data_dir;
        config.queue_namespace = var("QUEUE_NAMESPACE").unwrap_or_else(|| "storefront".into());
        config.smtp_url = var("SMTP_URL");
        if let Some(from) = var("MAIL_FROM") {
            config.mail_from = from;
        }
        if let Some(url) = var("PUBLIC_URL") {
            config.public_url = url;
        }
        config.bind = parsed("WORKER_BIND", config.bind)?;
        config.concurrency = parsed("WORKER_CONCURRENCY", 8)?;
        if let Some(queues) = var("WORKER_QUEUES") {
            config.queues = parse_queues(&queues)?;
        }
        config.retry = RetryPolicy {
            max_attempts: parsed("JOB_MAX_ATTEMPTS", 6_u32)?.max(1),
            backoff_base: millis("JOB_BACKOFF_BASE_MS", 1_000)?,
            backoff_max: millis("JOB_BACKOFF_MAX_MS", 300_000)?,
        };
        config.capture_timeout = millis("CAPTURE_TIMEOUT_MS", 10_000)?;
        config.authorize_timeout = millis("AUTHORIZE_TIMEOUT_MS", 10_000)?;
        config.smtp_timeout = millis("SMTP_TIMEOUT_MS", 30_000)?;
        config.breaker = BreakerSettings {
            failures: parsed("BREAKER_FAILURES", 5_u32)?.max(1),
            open_for: millis("BREAKER_OPEN_MS", 10_000)?,
        };
        config.queue.redis = RedisTimeouts {
            connect: millis("REDIS_CONNECT_TIMEOUT_MS", 2_000)?,
            response: millis("REDIS_RESPONSE_TIMEOUT_MS", 5_000)?,
        };
        config.order_payment_timeout = secs("ORDER_PAYMENT_TIMEOUT_SECS", 1_800)?;
        config.sweep_interval = millis("SWEEP_INTERVAL_MS", 1_000)?;
        config.dispatch_grace = millis("DISPATCH_GRACE_MS", 3_000)?;
        config.high_water = parsed("QUEUE_HIGH_WATER", 2_000)?;
        config.redispatch_after = secs("REDISPATCH_AFTER_SECS", 600)?;
        config.dispatch_batch = parsed("DISPATCH_BATCH", crate::dispatch::DEFAULT_BATCH)?.max(1);
        config.completion = crate::complete::CompletionSettings {
            batch: parsed("COMPLETION_BATCH", config.completion.batch)?.max(1),
            flush_every: millis("COMPLETION_FLUSH_MS", 2)?,
        };
        config.outbox_retention = duration("OUTBOX_RETENTION", config.outbox_retention)?;
        config.outbox_prune_interval = secs("OUTBOX_PRUNE_INTERVAL_SECS", 300)?;
        if config.outbox_prune_interval.is_zero() {
            return Err(ConfigError {
                name: "OUTBOX_PRUNE_INTERVAL_SECS",
                reason: "must be at least 1".into(),
            });
        }
        config.cart_retention = duration("CART_RETENTION", config.cart_retention)?;
        config.sandbox_hang = millis("SANDBOX_TIMEOUT_MS", 30_000)?;
        config.database = database_pool(config.database.max_connections)?;
        config.gateway = GatewayKind::from_env(crate::env::is_production())?;
        config.otlp_endpoint = crate::telemetry::OtlpEndpoint::from_env()?;
        config.queue.shutdown_deadline = secs("SHUTDOWN_DEADLINE_SECS", 20)?;
        config.queue.orphan_after = secs("ORPHAN_AFTER_SECS", 30)?;
        config.queue.fetch_batch = parsed(
            "QUEUE_FETCH_BATCH",
            config.concurrency.clamp(1, crate::queue::MAX_BATCH),
        )?;
        config.queue.validate().map_err(|e| ConfigError {
            name: "ORPHAN_AFTER_SECS or QUEUE_FETCH_BATCH",
            reason: e.to_string(),
        })?;
        Ok(config)
    }

    /// Defaults on `database_url` (and Redis when given), with mail written
    /// to files under the temp dir and health on a free port: what tests
    /// and the embedded api start from.
    #[must_use]
    pub fn local(database_url: String, redis_url: Option<String>) -> Self {
        Self {
            database_url,
            redis_url,
            queue_namespace: "storefront".into(),
            data_dir: PathBuf::from("./var"),
            smtp_url: None,
            mail_from: "Storefront <shop@localhost>".into(),
            public_url: crate::notifications::DEFAULT_PUBLIC_URL.into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 9090)),
            concurrency: 8,
            queues: QueueName::ALL.to_vec(),
            retry: RetryPolicy {
                max_attempts: 6,
                backoff_base: Duration::from_secs(1),
                backoff_max: Duration::from_secs(300),
            },
            capture_timeout: Duration::from_secs(10),
            authorize_timeout: Duration::from_secs(10),
            smtp_timeout: Duration::from_secs(30),
            breaker: BreakerSettings::default(),
            order_payment_timeout: Duration::from_secs(1_800),
            sweep_interval: Duration::from_secs(1),
            dispatch_grace: Duration::from_secs(3),
            high_water: 2_000,
            dispatch_batch: crate::dispatch::DEFAULT_BATCH,
            completion: crate::complete::CompletionSettings::default(),
            redispatch_after: Duration::from_secs(600),
            outbox_retention: Duration::from_secs(7 * 24 * 60 * 60),
            outbox_prune_interval: Duration::from_secs(300),
            cart_retention: entity::carts::DEFAULT_RETENTION,
            sandbox_hang: Duration::from_secs(30),
            gateway: GatewayKind::Sandbox,
            queue: QueueOptions::default(),
            database: entity::db::PoolSettings::new(10),
            otlp_endpoint: None,
        }
    }

    /// The payment gateway this configuration names, behind its timeouts
    /// and circuit breaker ([`crate::gateway`]): built once per process and
    /// shared by everything that calls it. The sandbox is the only adapter today.
    #[must_use]
    pub fn payment_gateway(&self) -> std::sync::Arc<dyn entity::payments::PaymentGateway> {
        let adapter: std::sync::Arc<dyn entity::payments::PaymentGateway> = match self.gateway {
            GatewayKind::Sandbox => std::sync::Arc::new(entity::payments::SandboxGateway {
                timeout_after: self.sandbox_hang,
            }),
        };
        let timeouts = crate::gateway::GatewayTimeouts {
            authorize: self.authorize_timeout,
            settle: self.capture_timeout,
        };
        std::sync::Arc::new(crate::gateway::GuardedGateway::new(
            adapter,
            timeouts,
            self.breaker,
        ))
    }

    /// Where the file transport writes `.eml` files.
    #[must_use]
    pub fn mail_dir(&self) -> PathBuf {
        self.data_dir.join("mail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 6,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1_000),
        };
        for (attempt, full) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1_000), (40, 1_000)] {
            let wait = policy.backoff(attempt).as_millis();
            assert!(
                (full / 2..=full).contains(&wait),
                "attempt {attempt}: {wait} ms not in {}..={full}",
                full / 2
            );
        }
    }

    #[test]
    fn queue_lists_parse() {
        assert_eq!(parse_queues("emails").ok(), Some(vec![QueueName::Emails]));
        assert_eq!(
            parse_queues(" settlements , emails,emails").ok(),
            Some(vec![QueueName::Settlements, QueueName::Emails])
        );
        assert!(parse_queues("sms").is_err());
        assert!(parse_queues(" , ").is_err());
    }
}
