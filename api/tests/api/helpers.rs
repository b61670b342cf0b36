//! `TestApp`: the real api on a free port with a database of its own, and
//! typed helpers to talk GraphQL to it over HTTP.
use api::config::Config;
use api::startup::Application;
use api::state::AppState;
use entity::accounts::{DisplayName, Email, Password};
use entity::testing::{Backend, TestDb};
use serde_json::{Value, json};

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret!";

/// Runs the async test body once per backend.
macro_rules! on_both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$body(entity::testing::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$body(entity::testing::Backend::Postgres).await;
            }
        }
    };
}
pub(crate) use on_both_backends;

pub struct TestApp {
    pub address: String,
    pub state: AppState,
    pub client: reqwest::Client,
    /// Kept so the database lives as long as the app.
    _db: TestDb,
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub user_id: String,
    pub email: String,
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
        let state = app.state().clone();
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        Self {
            address,
            state,
            client: reqwest::Client::new(),
            _db: db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// POSTs a GraphQL request, as a client accepting only JSON does; returns the body.
    pub async fn post(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .header("accept", "application/json")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        assert_eq!(
            response.status(),
            200,
            "a well-formed request over application/json is 200"
        );
        response.json().await.expect("JSON body")
    }

    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.post(None, query, variables).await
    }

    pub async fn graphql_as(&self, session: &Session, query: &str, variables: Value) -> Value {
        self.post(Some(&session.access_token), query, variables).await
    }

    /// Registers a customer over GraphQL and returns its session.
    pub async fn register(&self, email: &str) -> Session {
        let body = self
            .graphql(
                "mutation($input: RegisterInput!) { register(input: $input) { accessToken refreshToken user { id email } } }",
                json!({ "input": { "email": email, "password": "correct horse battery", "name": "Test Customer" } }),
            )
            .await;
        session_from(&body["data"]["register"])
    }

    /// Creates an admin directly (as `api create-admin` does) and logs in over GraphQL.
    pub async fn admin(&self) -> Session {
        let email = format!("admin-{}@example.com", uuid::Uuid::now_v7().simple());
        let txn = entity::db::begin_write(&self.state.db).await.expect("begin");
        entity::accounts::ensure_admin(
            &txn,
            &Email::parse(&email).expect("email"),
            &Password::parse("admin password 123").expect("password"),
            &DisplayName::parse("Admin").expect("name"),
        )
        .await
        .expect("admin created");
        txn.commit().await.expect("commit");
        self.login(&email, "admin password 123").await
    }

    pub async fn login(&self, email: &str, password: &str) -> Session {
        let body = self
            .graphql(
                "mutation($input: LoginInput!) { login(input: $input) { accessToken refreshToken user { id email } } }",
                json!({ "input": { "email": email, "password": password } }),
            )
            .await;
        session_from(&body["data"]["login"])
    }

    /// Creates a product as `admin` and returns its id.
    pub async fn create_product(&self, admin: &Session, sku: &str, price_minor: i64, stock: i32) -> String {
        let body = self
            .graphql_as(
                admin,
                "mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }",
                json!({ "input": {
                    "sku": sku, "slug": sku.to_lowercase(), "name": format!("Product {sku}"),
                    "description": "Made by a test", "priceMinor": price_minor, "currency": "EUR", "stock": stock
                }}),
            )
            .await;
        body["data"]["createProduct"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("product created: {body}"))
            .to_owned()
    }

    /// SQL statements the server has run so far.
    pub fn statements(&self) -> u64 {
        self.state.statements.get()
    }
}

fn session_from(payload: &Value) -> Session {
    let text = |v: &Value| {
        v.as_str()
            .unwrap_or_else(|| panic!("signed in: {payload}"))
            .to_owned()
    };
    Session {
        access_token: text(&payload["accessToken"]),
        refresh_token: text(&payload["refreshToken"]),
        user_id: text(&payload["user"]["id"]),
        email: text(&payload["user"]["email"]),
    }
}

/// The `extensions.code` of the first error, or panics with the body.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {body}"))
}
