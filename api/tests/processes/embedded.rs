//! The api binary alone, with no database, Redis or SMTP configured: a
//! SQLite file and the in-process worker make a whole shop, and emails are
//! `.eml` files under `DATA_DIR/mail`.
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Env, Logs, PrintLogsOnFailure, Process, api_bin, eventually, free_port, test_dir};

async fn graphql(
    client: &reqwest::Client,
    api: &Process,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let mut request = client
        .post(api.url("/graphql"))
        .header("accept", "application/json")
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request
        .send()
        .await
        .expect("GraphQL request sent")
        .json()
        .await
        .expect("a JSON body")
}

/// Subjects of the `.eml` files under `dir`.
fn eml_subjects(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .filter_map(|path| std::fs::read(path).ok())
        .map(|raw| testkit::parse(&raw).subject)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_alone_with_no_configuration_settles_orders_and_writes_emails_to_files() {
    // Arrange: nothing but a data directory, a port and the demo catalog
    let dir = test_dir("embedded");
    let logs = Logs::default();
    let _print_logs = PrintLogsOnFailure(logs.clone());
    let data_dir = dir.join("data");
    let port = free_port();
    let env: Env = [
        ("DATA_DIR", data_dir.to_string_lossy().into_owned()),
        ("API_BIND", format!("127.0.0.1:{port}")),
        ("SEED_DEMO_DATA", "true".to_owned()),
        ("RUST_LOG", "info".to_owned()),
        ("NO_COLOR", "1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut api = Process::spawn("api", &api_bin(), &[], &env, port, &dir, &logs);
    api.wait_until_serving("/healthz").await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client");
    let registered = graphql(
        &client,
        &api,
        None,
        "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }",
        json!({ "input": { "email": "solo@example.com", "password": "correct horse battery", "name": "Solo" } }),
    )
    .await;
    let token = registered["data"]["register"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("registered: {registered}"))
        .to_owned();
    let products = graphql(
        &client,
        &api,
        Some(&token),
        "{ products(first: 1, filter: { inStock: true }) { totalCount edges { node { id } } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        products["data"]["products"]["totalCount"], 32,
        "the demo catalog: {products}"
    );
    let product = products["data"]["products"]["edges"][0]["node"]["id"].clone();

    // Act
    let placed = graphql(
        &client,
        &api,
        Some(&token),
        "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }",
        json!({ "input": { "lines": [{ "productId": product, "quantity": 1 }],
                           "paymentToken": "sandbox_ok", "idempotencyKey": "solo-1" } }),
    )
    .await;
    let order = placed["data"]["placeOrder"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("placed: {placed}"))
        .to_owned();

    // Assert
    eventually(Duration::from_secs(30), "the order PAID", || async {
        let body = graphql(
            &client,
            &api,
            Some(&token),
            "query($id: ID!) { order(id: $id) { status payment { status } } }",
            json!({ "id": order }),
        )
        .await;
        if body["data"]["order"]["status"] == "PAID" {
            Ok(())
        } else {
            Err(body.to_string())
        }
    })
    .await;
    let mail_dir = data_dir.join("mail");
    let expected = [
        "Welcome".to_owned(),
        format!("Order {order} received"),
        format!("Payment received for order {order}"),
    ];
    eventually(
        Duration::from_secs(30),
        "welcome, confirmation and receipt as .eml files",
        || async {
            let subjects = eml_subjects(&mail_dir);
            let missing: Vec<&String> = expected
                .iter()
                .filter(|want| !subjects.iter().any(|s| s.contains(want.as_str())))
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("missing {missing:?} in {subjects:?}"))
            }
        },
    )
    .await;
    assert!(api.is_running());
    assert!(
        data_dir.join("storefront.db").exists(),
        "the SQLite file is under DATA_DIR"
    );
}

/// Production refuses to start on the development defaults: no secret, or a
/// short one, stops the api before it opens anything.
#[test]
fn production_refuses_to_start_without_a_strong_jwt_secret() {
    for (secret, expected) in [
        (None, "JWT_SECRET must be set in production"),
        (
            Some("too-short"),
            "JWT_SECRET is invalid: must be at least 32 characters in production",
        ),
    ] {
        let mut command = std::process::Command::new(api_bin());
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("APP_ENV", "production")
            .env("DATA_DIR", test_dir("production_refuses_defaults"))
            .env("API_BIND", format!("127.0.0.1:{}", free_port()));
        if let Some(secret) = secret {
            command.env("JWT_SECRET", secret);
        }
        let output = command.output().expect("the api binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "it must not start: {stderr}");
        assert!(stderr.contains(expected), "it says why ({expected:?}): {stderr}");
    }
}

/// Production refuses the sandbox gateway (it would mark every order paid
/// without taking money) unless it is told this is a staging shop; the
/// worker binary as well as the api.
#[test]
fn production_refuses_to_start_on_the_sandbox_gateway_unless_allowed() {
    let strong = "a-production-secret-of-forty-characters!";
    for (bin, args) in [
        (api_bin(), Vec::<&str>::new()),
        (crate::harness::worker_bin(), vec!["run"]),
    ] {
        for (gateway, allow, expected) in [
            (
                None,
                None,
                Some("PAYMENT_GATEWAY is invalid: must be set in production"),
            ),
            (
                Some("sandbox"),
                None,
                Some("sandbox is refused in production unless ALLOW_SANDBOX_PAYMENTS=true"),
            ),
            (
                Some("stripe"),
                None,
                Some("\"stripe\" is not a gateway this build has"),
            ),
            (Some("sandbox"), Some("true"), None),
        ] {
            let mut command = std::process::Command::new(&bin);
            command
                .args(&args)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("APP_ENV", "production")
                .env("JWT_SECRET", strong)
                .env("DATA_DIR", test_dir("production_refuses_sandbox"))
                .env("API_BIND", format!("127.0.0.1:{}", free_port()))
                .env("WORKER_BIND", format!("127.0.0.1:{}", free_port()))
                // A database URL no driver takes: a process that gets past
                // its configuration stops at once when it opens it.
                .env("DATABASE_URL", "nodb://nowhere");
            if let Some(gateway) = gateway {
                command.env("PAYMENT_GATEWAY", gateway);
            }
            if let Some(allow) = allow {
                command.env("ALLOW_SANDBOX_PAYMENTS", allow);
            }
            let output = command.output().expect("the binary runs");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!output.status.success(), "{bin:?} must stop here: {stderr}");
            match expected {
                Some(expected) => assert!(
                    stderr.contains(expected),
                    "{bin:?} says why ({expected:?}): {stderr}"
                ),
                None => assert!(
                    !stderr.contains("PAYMENT_GATEWAY") && !stderr.contains("ALLOW_SANDBOX_PAYMENTS"),
                    "{bin:?} accepts the staging sandbox and stops only at the database: {stderr}"
                ),
            }
        }
    }
}
