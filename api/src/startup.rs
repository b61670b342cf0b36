//! The composition root: builds the whole application from a [`Config`] —
//! database, migrations, demo data, schema, HTTP server — bound to its own
//! listener so a test can start it on port 0. The only module that knows actix.
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use entity::payments::SandboxGateway;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::auth::{RequestId, TokenKeys};
use crate::config::{Config, Environment};
use crate::errors::code;
use crate::http::{self, Limits, Playground};
use crate::schema::{self, AppSchema, SchemaLimits};
use crate::state::{AppState, StatementCounter};

/// A running (or ready to run) api server.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    jobs: Jobs,
}

/// What moves this process's jobs: an embedded worker, a dispatcher to
/// Redis, or nothing (a `worker` process sweeps the outbox).
enum Jobs {
    Embedded(Box<worker::Worker>),
    Dispatcher(
        Box<worker::dispatch::Dispatcher>,
        std::time::Duration,
        std::time::Duration,
    ),
    None,
}

impl Jobs {
    async fn start(config: &Config, db: &DatabaseConnection) -> anyhow::Result<Self> {
        if config.embedded_worker {
            let queue = worker::runtime::open_queue(&config.worker).await?;
            let embedded = worker::Worker::from_parts(config.worker.clone(), db.clone(), queue)?;
            tracing::info!(
                queue = if config.worker.redis_url.is_some() {
                    "redis"
                } else {
                    "sqlite"
                },
                "running the job worker in-process (EMBEDDED_WORKER)"
            );
            return Ok(Jobs::Embedded(Box::new(embedded)));
        }
        if config.worker.redis_url.is_some() {
            let queue = worker::runtime::open_queue(&config.worker).await?;
            let metrics = std::sync::Arc::new(worker::metrics::Metrics::default());
            let dispatcher = worker::dispatch::Dispatcher::new(
                db.clone(),
                queue,
                config.worker.high_water,
                config.worker.redispatch_after,
                metrics,
            );
            return Ok(Jobs::Dispatcher(
                Box::new(dispatcher),
                config.worker.sweep_interval,
                config.worker.dispatch_grace,
            ));
        }
        tracing::warn!(
            "no REDIS_URL and EMBEDDED_WORKER=false: jobs wait in the outbox for a worker process"
        );
        Ok(Jobs::None)
    }

    fn kicker(&self) -> worker::dispatch::Kicker {
        match self {
            Jobs::Embedded(worker) => worker.kicker(),
            Jobs::Dispatcher(dispatcher, ..) => dispatcher.kicker(),
            Jobs::None => worker::dispatch::Kicker::default(),
        }
    }
}

/// What the HTTP handlers share.
struct Shared {
    schema: AppSchema,
    tokens: TokenKeys,
    limits: Limits,
    playground: Option<Playground>,
    db: DatabaseConnection,
}

/// Opens the database with the statement counter attached and applies migrations.
async fn open_database(
    config: &Config,
    statements: &Arc<StatementCounter>,
) -> anyhow::Result<DatabaseConnection> {
    if config.is_sqlite() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating DATA_DIR {}", config.data_dir.display()))?;
    }
    let mut db = entity::db::connect(&config.database_url, config.database_max_connections)
        .await
        .context("connecting to the database")?;
    let counter = Arc::clone(statements);
    db.set_metric_callback(move |_| counter.record());
    Migrator::up(&db, None).await.context("applying migrations")?;
    Ok(db)
}

impl Application {
    /// Connects, migrates, seeds (when configured) and binds the listener.
    ///
    /// # Errors
    /// When the database cannot be opened or migrated, or the address bound.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let statements = Arc::new(StatementCounter::default());
        let db = open_database(&config, &statements).await?;
        if config.seed_demo_data {
            let added = crate::seed::seed_if_empty(&db)
                .await
                .context("seeding the demo catalog")?;
            if added > 0 {
                tracing::info!(products = added, "seeded the demo catalog");
            }
        }
        if config.jwt_secret_generated {
            tracing::warn!(
                "JWT_SECRET is not set: using a random development secret; tokens stop working on restart. \
                 Production (APP_ENV=production) refuses to start without one."
            );
        }
        let jobs = Jobs::start(&config, &db).await?;
        let state = AppState {
            db: db.clone(),
            gateway: Arc::new(SandboxGateway {
                timeout_after: config.worker.sandbox_hang,
            }),
            tokens: TokenKeys::new(config.jwt_secret.expose()),
            kicker: jobs.kicker(),
            statements,
        };
        let schema = schema::build(
            state.clone(),
            SchemaLimits {
                max_depth: config.max_depth,
                max_complexity: config.max_complexity,
                introspection: config.introspection,
            },
        );
        let playground = config
            .graphiql
            .then(|| Playground::load(config.playground_dir.clone(), "/graphql"));
        let shared = web::Data::new(Shared {
            schema,
            tokens: state.tokens.clone(),
            limits: Limits {
                max_body_bytes: config.max_body_bytes,
            },
            playground,
            db,
        });

        let listener = TcpListener::bind(config.bind).with_context(|| format!("binding {}", config.bind))?;
        let port = listener.local_addr()?.port();
        let workers = if config.environment == Environment::Production {
            num_workers()
        } else {
            2
        };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .service(
                    web::resource("/graphql")
                        .route(web::get().to(graphql))
                        .route(web::post().to(graphql)),
                )
                .route("/playground/assets/{file}", web::get().to(playground_asset))
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
        })
        .workers(workers)
        .shutdown_timeout(10)
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
            state,
            jobs,
        })
    }

    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (database, counters), for tests and tooling.
    #[must_use]
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until the server is stopped (Ctrl-C / SIGTERM: graceful).
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let stopped = async move {
            let _ = stopped.await;
        };
        let jobs = match self.jobs {
            Jobs::Embedded(embedded) => Some(tokio::spawn(async move {
                if let Err(err) = embedded.run_until(stopped).await {
                    tracing::error!(error = %err, "the embedded worker failed");
                }
            })),
            Jobs::Dispatcher(dispatcher, interval, grace) => Some(tokio::spawn(async move {
                dispatcher.run(interval, grace, stopped).await
            })),
            Jobs::None => None,
        };
        let served = self.server.await;
        // The server stopped (SIGTERM/Ctrl-C): let running jobs finish too.
        let _ = stop.send(());
        if let Some(jobs) = jobs {
            let _ = jobs.await;
        }
        served
    }
}

fn num_workers() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// A caller's `X-Request-Id` when it is sane, else a new one.
fn request_id(req: &HttpRequest) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

/// Gives every code-less error from async-graphql itself (parse, validation,
/// input coercion, limits) a stable code.
fn tag_request_errors(response: &mut async_graphql::Response) {
    for error in &mut response.errors {
        let has_code = error.extensions.as_ref().is_some_and(|e| e.get("code").is_some());
        if has_code {
            continue;
        }
        let code = if error.path.is_empty() {
            code::GRAPHQL_VALIDATION_FAILED
        } else {
            code::BAD_USER_INPUT
        };
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", code);
    }
}

async fn graphql(req: HttpRequest, payload: web::Payload, shared: web::Data<Shared>) -> HttpResponse {
    if let Some(playground) = &shared.playground
        && http::wants_playground(&req)
    {
        return playground.page();
    }
    let id = request_id(&req);
    let mut response = match http::parse_request(&req, payload, &shared.limits).await {
        Ok((request, format)) => {
            let authorization = req.headers().get("authorization").and_then(|v| v.to_str().ok());
            let viewer = shared.tokens.viewer(authorization);
            let request = request.data(viewer).data(RequestId(id.clone()));
            let mut executed = shared.schema.execute(request).await;
            tag_request_errors(&mut executed);
            http::respond(executed, format)
        }
        Err(refusal) => refusal,
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    response
}

async fn playground_asset(path: web::Path<String>, shared: web::Data<Shared>) -> HttpResponse {
    match &shared.playground {
        Some(playground) => playground.asset(&path),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Ready when the database answers.
async fn readyz(shared: web::Data<Shared>) -> HttpResponse {
    match shared.db.execute_unprepared("SELECT 1").await {
        Ok(_) => HttpResponse::Ok().content_type("text/plain").body("ready"),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed: database");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body("database unavailable")
        }
    }
}
