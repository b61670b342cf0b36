//! `TestApp`: the real api on a free port with a database of its own, and
//! typed helpers to talk GraphQL to it over HTTP (through `testkit`).
use std::time::Duration;

use api::config::Config;
use api::startup::Application;
use api::state::AppState;
use serde_json::Value;
use testkit::{Backend, GraphqlClient, Namespace, TestDb, TestSmtp};

pub use testkit::{Session, error_code, on_both_backends};

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret!";

pub struct TestApp {
    pub address: String,
    pub state: AppState,
    pub client: reqwest::Client,
    pub graphql: GraphqlClient,
    /// The `METRICS_BIND` port, when the test set one.
    pub metrics_port: Option<u16>,
    /// The Redis key namespace of the app's queue, when it has one
    /// ([`TestApp::spawn_with_worker`] on PostgreSQL); its keys go on drop.
    pub redis: Option<Namespace>,
    /// Kept so the database lives as long as the app.
    _db: TestDb,
    /// The app's `DATA_DIR` (mail written as files lands here), removed on
    /// drop, so no test leaves files in the source tree.
    _data_dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts the app with its worker in-process and mail to `smtp`: quick
    /// retries (3 attempts), a 300 ms capture timeout, fast polling; the
    /// queue is SQLite's on SQLite, Redis (a namespace of its own) on
    /// PostgreSQL.
    pub async fn spawn_with_worker(backend: Backend, smtp: &TestSmtp) -> Self {
        let smtp_url = smtp.url();
        let redis = (backend == Backend::Postgres).then(|| Namespace::new("test"));
        let queue = redis.as_ref().map(|ns| (ns.url.clone(), ns.name.clone()));
        let mut app = Self::spawn_with(backend, move |config| {
            config.embedded_worker = true;
            let worker = &mut config.worker;
            worker.smtp_url = Some(smtp_url);
            worker.retry.max_attempts = 3;
            worker.retry.backoff_base = Duration::from_millis(50);
            worker.retry.backoff_max = Duration::from_millis(200);
            worker.capture_timeout = Duration::from_millis(300);
            worker.sweep_interval = Duration::from_millis(100);
            worker.queue.poll_interval = Duration::from_millis(50);
            if let Some((url, namespace)) = queue {
                worker.redis_url = Some(url);
                worker.queue_namespace = namespace;
            }
        })
        .await;
        app.redis = redis;
        app
    }

    /// Starts the app with a config changed by `adjust` first.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        let db = TestDb::migrated(backend).await;
        let mut config = Config::local(db.url.clone(), JWT_SECRET);
        let data_dir = tempfile::tempdir().expect("a temporary DATA_DIR");
        config.data_dir = data_dir.path().to_path_buf();
        config.worker.data_dir = data_dir.path().to_path_buf();
        adjust(&mut config);
        api::startup::prepare_database(&config)
            .await
            .expect("the database is migrated and seeded as configured");
        let app = Application::build(config).await.expect("the app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let metrics_port = app.metrics_port();
        let state = app.state().clone();
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        let graphql = GraphqlClient::new(address.clone());
        Self {
            address,
            state,
            client: graphql.http.clone(),
            graphql,
            metrics_port,
            redis: None,
            _db: db,
            _data_dir: data_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.graphql.url(path)
    }

    /// POSTs a GraphQL request, as a client accepting only JSON does; returns the body.
    pub async fn post(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.graphql.post(token, query, variables).await
    }

    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.post(None, query, variables).await
    }

    pub async fn graphql_as(&self, session: &Session, query: &str, variables: Value) -> Value {
        self.post(Some(&session.access_token), query, variables).await
    }

    /// Registers a customer over GraphQL and returns its session.
    pub async fn register(&self, email: &str) -> Session {
        self.graphql.register(email).await
    }

    /// Creates an admin directly (as `api create-admin` does) and logs in over GraphQL.
    pub async fn admin(&self) -> Session {
        self.graphql.admin(&self.state.db).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Session {
        self.graphql.login(email, password).await
    }

    /// Creates a product as `admin` and returns its id.
    pub async fn create_product(&self, admin: &Session, sku: &str, price_minor: i64, stock: i32) -> String {
        self.graphql.create_product(admin, sku, price_minor, stock).await
    }

    /// SQL statements the server has run so far.
    pub fn statements(&self) -> u64 {
        self.state.statements.get()
    }
}

/// The lowercase hex SHA-256 of `text`: a persisted query's hash.
pub fn sha256(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A query cost bucket for tests whose fixtures sign up or order tens of
/// times from one client within seconds (a sign-up or an order costs about
/// 100 points; the default bucket holds 1000).
pub fn roomy_cost_bucket() -> api::cost::BucketSettings {
    api::cost::BucketSettings::new(1_000_000, 50.0).expect("valid settings")
}

/// What came back from one request: status, `Retry-After` (seconds), body.
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: Value,
}

impl Answer {
    /// Sends `request` and reads what came back.
    pub async fn of(request: reqwest::RequestBuilder) -> Self {
        let response = request.send().await.expect("sent");
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = response.json().await.expect("a JSON body");
        Self {
            status,
            retry_after,
            body,
        }
    }

    /// The first error's `extensions.code`, or "".
    pub fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("")
    }
}
