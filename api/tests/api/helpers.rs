//! `TestApp`: the real api on a free port with a database of its own, and
//! typed helpers to talk GraphQL to it over HTTP (through `testkit`).
use api::config::Config;
use api::startup::Application;
use api::state::AppState;
use serde_json::Value;
use testkit::{Backend, GraphqlClient, TestDb};

pub use testkit::{Session, error_code, on_both_backends};

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret!";

pub struct TestApp {
    pub address: String,
    pub state: AppState,
    pub client: reqwest::Client,
    pub graphql: GraphqlClient,
    /// The `METRICS_BIND` port, when the test set one.
    pub metrics_port: Option<u16>,
    /// Kept so the database lives as long as the app.
    _db: TestDb,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts the app with a config changed by `adjust` first.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        let db = TestDb::migrated(backend).await;
        let mut config = Config::local(db.url.clone(), JWT_SECRET);
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
            _db: db,
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
