//! The GraphQL client of the black-box tests: requests over HTTP to a real
//! api (in the test process or a separate one), and signed-in sessions.
use std::time::Duration;

use entity::accounts::{DisplayName, Email, Password};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

/// The password of every account the tests make.
pub const PASSWORD: &str = "correct horse battery";

/// Speaks GraphQL over `application/json` to one api.
#[derive(Clone)]
pub struct GraphqlClient {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub http: reqwest::Client,
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub user_id: String,
    pub email: String,
}

impl Session {
    /// The session an `AuthPayload` (`accessToken refreshToken user { id email }`) gives.
    ///
    /// # Panics
    /// When `payload` is not such an object.
    #[must_use]
    pub fn from_payload(payload: &Value) -> Self {
        let text = |v: &Value| {
            v.as_str()
                .unwrap_or_else(|| panic!("signed in: {payload}"))
                .to_owned()
        };
        Self {
            access_token: text(&payload["accessToken"]),
            refresh_token: text(&payload["refreshToken"]),
            user_id: text(&payload["user"]["id"]),
            email: text(&payload["user"]["email"]),
        }
    }
}

const AUTH_PAYLOAD: &str = "{ accessToken refreshToken user { id email } }";

impl GraphqlClient {
    /// A client for the api listening at `address` (`http://host:port`).
    #[must_use]
    pub fn new(address: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        Self { address, http }
    }

    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// POSTs a GraphQL request, as a client accepting only JSON does;
    /// returns the body, asserting the 200 such a request gets (or the 429
    /// of one that rate limits refused as a whole).
    pub async fn post(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .http
            .post(self.url("/graphql"))
            .header("accept", "application/json")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("GraphQL request sent");
        let status = response.status();
        let body: Value = response.json().await.expect("JSON body");
        let rate_limited = status == 429 && error_code(&body) == "RATE_LIMITED";
        assert!(
            status == 200 || rate_limited,
            "a well-formed request over application/json is 200 (or 429 when rate limited), got {status}: {body}"
        );
        body
    }

    /// Registers a customer with [`PASSWORD`] over GraphQL.
    pub async fn register(&self, email: &str) -> Session {
        let body = self
            .post(
                None,
                &format!("mutation($input: RegisterInput!) {{ register(input: $input) {AUTH_PAYLOAD} }}"),
                json!({ "input": { "email": email, "password": PASSWORD, "name": "Test Customer" } }),
            )
            .await;
        Session::from_payload(&body["data"]["register"])
    }

    pub async fn login(&self, email: &str, password: &str) -> Session {
        let body = self
            .post(
                None,
                &format!("mutation($input: LoginInput!) {{ login(input: $input) {AUTH_PAYLOAD} }}"),
                json!({ "input": { "email": email, "password": password } }),
            )
            .await;
        Session::from_payload(&body["data"]["login"])
    }

    /// Creates an admin in `db` directly (as `api create-admin` does) and
    /// logs in over GraphQL.
    pub async fn admin(&self, db: &DatabaseConnection) -> Session {
        let email = format!("admin-{}@example.com", uuid::Uuid::now_v7().simple());
        let txn = entity::db::begin_write(db).await.expect("begin");
        entity::accounts::ensure_admin(
            &txn,
            &Email::parse(&email).expect("email"),
            &Password::parse(PASSWORD).expect("password"),
            &DisplayName::parse("Admin").expect("name"),
        )
        .await
        .expect("admin created");
        txn.commit().await.expect("commit");
        self.login(&email, PASSWORD).await
    }

    /// Creates an active EUR product as `admin`; returns its id.
    pub async fn create_product(&self, admin: &Session, sku: &str, price_minor: i64, stock: i32) -> String {
        let body = self
            .post(
                Some(&admin.access_token),
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
}

/// The `extensions.code` of the first error, or panics with the body.
#[must_use]
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {body}"))
}
