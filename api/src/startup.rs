//! The composition root: builds the whole application from a [`Config`] —
//! database pool, payment gateway, job machinery, schema, HTTP server —
//! bound to its own listener so a test can start it on port 0. The only
//! module that assembles actix; the handlers are in `http::routes`.
//!
//! Building has no side effects on the data: migrations and the demo
//! catalog are [`prepare_database`]'s job, which `api serve` runs first.
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use migration::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;

use crate::auth::TokenKeys;
use crate::config::{Config, Environment};
use crate::cost::{Buckets, QueryCost};
use crate::http::metrics::MetricsPage;
use crate::http::operation::Operations;
use crate::http::persisted::Registrations;
use crate::http::routes::{self, Endpoint};
use crate::http::{Limits, Playground};
use crate::schema::{self, SchemaLimits};
use crate::state::{AppState, StatementCounter};
use crate::throttle::rules::Limit;
use crate::validation::Validator;

/// Applies pending migrations and, when configured, seeds the demo catalog
/// into an empty catalog: what `api serve` does before it builds the app.
///
/// # Errors
/// When the database cannot be opened, migrated or seeded.
pub async fn prepare_database(config: &Config) -> anyhow::Result<()> {
    let db = connect_and_migrate(config).await?;
    if config.seed_demo_data {
        let added = crate::seed::seed_if_empty(&db)
            .await
            .context("seeding the demo catalog")?;
        if added > 0 {
            tracing::info!(products = added, "seeded the demo catalog");
        }
    }
    db.close().await.ok();
    Ok(())
}

/// Opens a small pool and applies pending migrations on it. Migrations run
/// without `DATABASE_STATEMENT_TIMEOUT_MS`: building an index on a large
/// table may rightly take longer than any request should.
///
/// # Errors
/// When the database cannot be opened or a migration fails.
pub async fn connect_and_migrate(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let settings = entity::db::PoolSettings {
        max_connections: 2,
        statement_timeout: std::time::Duration::ZERO,
        ..config.database
    };
    let db = connect_with(config, &settings).await?;
    Migrator::up(&db, None).await.context("applying migrations")?;
    Ok(db)
}

/// Opens a pool on the configured database (creating `DATA_DIR` for SQLite).
///
/// # Errors
/// When the directory cannot be made or the database reached.
pub async fn connect(config: &Config, max_connections: u32) -> anyhow::Result<DatabaseConnection> {
    let settings = entity::db::PoolSettings {
        max_connections,
        ..config.database
    };
    connect_with(config, &settings).await
}

async fn connect_with(
    config: &Config,
    settings: &entity::db::PoolSettings,
) -> anyhow::Result<DatabaseConnection> {
    if config.is_sqlite() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating DATA_DIR {}", config.data_dir.display()))?;
    }
    entity::db::connect_with(&config.database_url, settings)
        .await
        .context("connecting to the database")
}

/// A running (or ready to run) api server.
pub struct Application {
    port: u16,
    server: Server,
    /// The `METRICS_BIND` server and its port, when configured.
    metrics: Option<(Server, u16)>,
    state: AppState,
    jobs: Jobs,
}

/// What moves this process's jobs: an embedded worker, a dispatcher to
/// Redis, or nothing (a `worker` process sweeps the outbox).
enum Jobs {
    Embedded(Box<worker::Worker>),
    Dispatcher {
        dispatcher: Box<worker::dispatch::Dispatcher>,
        interval: std::time::Duration,
        grace: std::time::Duration,
    },
    None,
}

impl Jobs {
    async fn start(
        config: &Config,
        db: &DatabaseConnection,
        gateway: &Arc<dyn entity::payments::PaymentGateway>,
        events: &worker::events::OrderEvents,
    ) -> anyhow::Result<Self> {
        let worker_config = &config.worker;
        if config.embedded_worker {
            let queue = worker::runtime::open_queue(worker_config).await?;
            let embedded = worker::Worker::from_parts(
                worker_config.clone(),
                db.clone(),
                queue,
                Arc::clone(gateway),
                events.clone(),
            )?;
            let backend = if worker_config.redis_url.is_some() {
                "redis"
            } else {
                "sqlite"
            };
            tracing::info!(
                queue = backend,
                "running the job worker in-process (EMBEDDED_WORKER)"
            );
            return Ok(Jobs::Embedded(Box::new(embedded)));
        }
        if worker_config.redis_url.is_some() {
            let queue = worker::runtime::open_queue(worker_config).await?;
            let dispatcher = worker::dispatch::Dispatcher::new(
                db.clone(),
                queue,
                worker_config.high_water,
                worker_config.redispatch_after,
            )
            .with_batch(worker_config.dispatch_batch);
            return Ok(Jobs::Dispatcher {
                dispatcher: Box::new(dispatcher),
                interval: worker_config.sweep_interval,
                grace: worker_config.dispatch_grace,
            });
        }
        tracing::warn!(
            "no REDIS_URL and EMBEDDED_WORKER=false: jobs wait in the outbox for a worker process"
        );
        Ok(Jobs::None)
    }

    /// The queue this process pushes to, if any (for `/readyz`).
    fn queue(&self) -> Option<worker::queue::JobQueue> {
        match self {
            Jobs::Embedded(worker) => Some(worker.queue().clone()),
            Jobs::Dispatcher { dispatcher, .. } => Some(dispatcher.queue().clone()),
            Jobs::None => None,
        }
    }

    fn kicker(&self) -> worker::dispatch::Kicker {
        match self {
            Jobs::Embedded(worker) => worker.kicker(),
            Jobs::Dispatcher { dispatcher, .. } => dispatcher.kicker(),
            Jobs::None => worker::dispatch::Kicker::default(),
        }
    }

    /// Runs until `stopped` resolves (then lets running jobs finish).
    fn spawn(
        self,
        stopped: impl Future<Output = ()> + Send + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        match self {
            Jobs::Embedded(embedded) => Some(tokio::spawn(async move {
                if let Err(err) = embedded.run_until(stopped).await {
                    tracing::error!(error = %err, "the embedded worker failed");
                }
            })),
            Jobs::Dispatcher {
                dispatcher,
                interval,
                grace,
            } => Some(tokio::spawn(async move {
                dispatcher.run(interval, grace, stopped).await
            })),
            Jobs::None => None,
        }
    }
}

/// Trusted documents when `TRUSTED_DOCUMENTS` names a manifest; else
/// automatic persisted queries, in Redis when there is one.
async fn persisted_queries(config: &Config) -> anyhow::Result<crate::http::persisted::PersistedQueries> {
    use crate::http::persisted::PersistedQueries;
    if let Some(path) = &config.trusted_documents {
        let trusted = PersistedQueries::trusted(path)
            .map_err(|reason| anyhow::anyhow!("TRUSTED_DOCUMENTS: {reason}"))?;
        tracing::info!(manifest = %path.display(), "running only the trusted documents");
        return Ok(trusted);
    }
    match &config.worker.redis_url {
        Some(url) => {
            PersistedQueries::in_redis(url, &config.worker.queue_namespace, config.worker.queue.redis)
                .context("REDIS_URL for persisted queries")
        }
        None => Ok(PersistedQueries::in_memory()),
    }
}

/// Rate limits in Redis when there is one, else in this process.
fn limiter(config: &Config) -> anyhow::Result<crate::throttle::Limiter> {
    use crate::throttle::Limiter;
    match &config.worker.redis_url {
        Some(url) => Limiter::in_redis(url, &config.worker.queue_namespace, config.worker.queue.redis)
            .context("REDIS_URL for rate limits"),
        None => Ok(Limiter::in_process()),
    }
}

impl Application {
    /// Opens the pool, starts the job machinery and binds the listener.
    /// Expects a migrated database ([`prepare_database`]).
    ///
    /// # Errors
    /// When the database cannot be opened, the queue reached or the address bound.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let metrics_handle = worker::metrics::install();
        crate::metrics::describe();
        let statements = Arc::new(StatementCounter::default());
        let mut db = connect(&config, config.database.max_connections).await?;
        let counter = Arc::clone(&statements);
        db.set_metric_callback(move |_| counter.record());
        if config.jwt_secret_generated {
            tracing::warn!(
                "JWT_SECRET is not set: using a random development secret; tokens stop working on restart. \
                 Production (APP_ENV=production) refuses to start without one."
            );
        }
        let gateway = config.worker.payment_gateway();
        let events = worker::runtime::open_events(&config.worker)?;
        let jobs = Jobs::start(&config, &db, &gateway, &events).await?;
        let catalog_reads = Arc::new(crate::catalog::CatalogReads::new(&db));
        let state = AppState {
            sessions: Arc::new(crate::auth::Sessions::new(db.clone())),
            catalog: config
                .catalog_cache
                .then(|| Arc::new(crate::catalog::CatalogCache::new(Arc::clone(&catalog_reads)))),
            catalog_reads,
            db,
            gateway,
            tokens: TokenKeys::new(config.jwt_secret.expose()),
            limiter: limiter(&config)?,
            rate_limits: Arc::new(config.rate_limits.clone()),
            kicker: jobs.kicker(),
            queue: jobs.queue(),
            events,
            statements,
        };
        let persisted = persisted_queries(&config).await?;
        let operation_names = Arc::new(crate::metrics::OperationNames::new(persisted.operation_names()));
        let schema_limits = SchemaLimits {
            max_depth: config.max_depth,
            max_query_cost: config.max_query_cost,
            cost_bucket: config.cost_bucket,
            introspection: config.introspection,
            suggestions: config.environment != Environment::Production,
        };
        let operations = Operations {
            schema: schema::build(state.clone(), schema_limits),
            documents: crate::http::documents::Documents::default(),
            max_depth: schema_limits.max_depth,
            cost: QueryCost::new(
                schema_limits.max_query_cost,
                Buckets::new(state.limiter.clone(), schema_limits.cost_bucket),
                Validator::new(schema_limits).await?,
            ),
            names: operation_names,
        };
        let endpoint = web::Data::new(Endpoint {
            operations,
            state: state.clone(),
            limits: Limits {
                max_body_bytes: config.max_body_bytes,
            },
            playground: config
                .graphiql
                .then(|| Playground::load(config.playground_dir.clone(), "/graphql")),
            ws: crate::http::ws::WsLimits {
                sockets: config.max_sockets,
                ..crate::http::ws::WsLimits::default()
            },
            persisted: persisted.limit_registrations(
                config
                    .rate_limits
                    .rate(Limit::PersistedQueryIp)
                    .quota()
                    .map(|quota| Registrations {
                        limiter: state.limiter.clone(),
                        quota,
                    }),
            ),
            trusted_proxies: config.trusted_proxies.clone(),
            sockets: Arc::default(),
        });

        let page = MetricsPage {
            handle: metrics_handle,
            db: state.db.clone(),
            queue: state.queue.clone(),
        };
        let metrics = match config.metrics_bind {
            Some(bind) => {
                let listener =
                    TcpListener::bind(bind).with_context(|| format!("binding METRICS_BIND {bind}"))?;
                let port = listener.local_addr()?.port();
                tracing::info!("metrics on http://{}:{port}/metrics", bind.ip());
                Some((crate::http::metrics::serve(listener, page.clone())?, port))
            }
            None => None,
        };
        // See `http::metrics` for why production keeps it off the api port.
        let page_on_api_port = (config.metrics_bind.is_none()
            && config.environment != Environment::Production)
            .then(|| web::Data::new(page));
        if config.metrics_bind.is_none() && config.environment == Environment::Production {
            tracing::warn!(
                "METRICS_BIND is not set: /metrics is not served (production keeps it off API_BIND)"
            );
        }
        let listener = TcpListener::bind(config.bind).with_context(|| format!("binding {}", config.bind))?;
        let port = listener.local_addr()?.port();
        let http_workers = if config.environment == Environment::Production {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        } else {
            2
        };
        let cors = config.cors_allowed_origins.clone();
        let in_flight = web::Data::new(crate::http::shedding::InFlight::new(config.max_in_flight));
        let server = HttpServer::new(move || {
            let mut app = App::new()
                .app_data(in_flight.clone())
                .wrap(actix_web::middleware::from_fn(crate::http::shedding::shed))
                // Browsers must take every answer as the type it says it is.
                .wrap(actix_web::middleware::DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff")))
                .wrap(cors.middleware())
                // Outermost, so shed and CORS answers are counted too.
                .wrap(actix_web::middleware::from_fn(crate::http::metrics::record))
                .configure(routes::configure(endpoint.clone()));
            if let Some(page) = &page_on_api_port {
                app = app
                    .app_data(page.clone())
                    .route("/metrics", web::get().to(crate::http::metrics::metrics));
            }
            app
        })
        .workers(http_workers)
        .shutdown_timeout(10)
        .disable_signals()
        .listen(listener)?
        .run();
        let host = config.bind.ip();
        if config.graphiql {
            tracing::info!("Storefront api listening; GraphiQL at http://{host}:{port}/graphql");
        } else {
            tracing::info!("Storefront api listening on http://{host}:{port}/graphql");
        }
        Ok(Self {
            port,
            server,
            metrics,
            state,
            jobs,
        })
    }

    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `/metrics` when `METRICS_BIND` is set.
    #[must_use]
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(_, port)| *port)
    }

    /// The shared state (database, counters), for tests and tooling.
    #[must_use]
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then stops gracefully: no new
    /// connections, running requests get up to 10 s, then running jobs
    /// finish (see the worker's shutdown deadline).
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (stop_listening, listening_stopped) = tokio::sync::oneshot::channel::<()>();
        let jobs = self.jobs.spawn(async move {
            let _ = stopped.await;
        });
        tokio::spawn(self.state.events.clone().listen(async move {
            let _ = listening_stopped.await;
        }));
        let handle: ServerHandle = self.server.handle();
        let metrics_handle = self.metrics.map(|(server, _)| {
            let handle = server.handle();
            tokio::spawn(server);
            handle
        });
        tokio::spawn(async move {
            shutdown.await;
            handle.stop(true).await;
            if let Some(metrics) = metrics_handle {
                metrics.stop(true).await;
            }
        });
        let served = self.server.await;
        let _ = stop.send(());
        let _ = stop_listening.send(());
        if let Some(jobs) = jobs {
            let _ = jobs.await;
        }
        served
    }
}
