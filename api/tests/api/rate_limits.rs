//! Rate limits over HTTP, as an attacker meets them: password guesses
//! packed into one document, a reset-email bomb, repeated wrong logins,
//! and what a refusal looks like (RATE_LIMITED, `retryAfter`, 429 and
//! `Retry-After`). On PostgreSQL the limits live in Redis, on SQLite in
//! the process.
use std::time::Duration;

use api::config::Config;
use api::http::client_ip::TrustedProxies;
use api::throttle::Escalation;
use api::throttle::rules::{Limit, Rate};
use entity::tables::password_resets;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use testkit::{Backend, Namespace, PASSWORD};

use crate::helpers::{Answer, TestApp, on_both_backends, roomy_cost_bucket, sha256};

const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) { accessToken } }";
const RESET: &str = "mutation($e: String!) { requestPasswordReset(email: $e) }";
const MODERN: &str = "application/graphql-response+json";

/// The app with `adjust` applied; on PostgreSQL its limits (and queue) in
/// a Redis namespace of its own, kept as long as the app.
async fn spawn(backend: Backend, adjust: impl FnOnce(&mut Config)) -> (TestApp, Option<Namespace>) {
    let namespace = (backend == Backend::Postgres).then(|| Namespace::new("sf-limits"));
    let redis = namespace.as_ref().map(|n| (n.url.clone(), n.name.clone()));
    let app = TestApp::spawn_with(backend, |config| {
        if let Some((url, name)) = redis {
            config.worker.redis_url = Some(url);
            config.worker.queue_namespace = name;
        }
        adjust(config);
    })
    .await;
    (app, namespace)
}

/// `count` per `secs` seconds.
fn every(count: u32, secs: u64) -> Rate {
    Rate::Every {
        count,
        period: Duration::from_secs(secs),
    }
}

impl Answer {
    fn retry_after_extension(&self) -> u64 {
        self.body["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap_or_else(|| panic!("retryAfter in seconds: {}", self.body))
    }

    /// Asserts the whole request was refused by a rate limit; returns the
    /// seconds to wait.
    fn assert_rate_limited(&self) -> u64 {
        assert_eq!(self.code(), "RATE_LIMITED", "{}", self.body);
        assert_eq!(self.status, 429, "refused as a whole: {}", self.body);
        let secs = self.retry_after_extension();
        assert!(secs >= 1, "{}", self.body);
        assert_eq!(self.retry_after, Some(secs), "Retry-After says the same");
        secs
    }
}

/// POSTs `query` as a client at `forwarded_for` (in `X-Forwarded-For`)
/// accepting `accept`.
async fn send(
    app: &TestApp,
    accept: &str,
    forwarded_for: Option<&str>,
    query: &str,
    variables: Value,
) -> Answer {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .header("accept", accept)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    Answer::of(request).await
}

async fn login(app: &TestApp, from: Option<&str>, email: &str, password: &str) -> Answer {
    send(
        app,
        "application/json",
        from,
        LOGIN,
        json!({ "input": { "email": email, "password": password } }),
    )
    .await
}

fn assert_wrong_password(answer: &Answer) {
    assert_eq!(answer.code(), "UNAUTHENTICATED", "{}", answer.body);
    assert_eq!(answer.status, 200);
}

async fn resets(app: &TestApp) -> u64 {
    password_resets::Entity::find()
        .count(&app.state.db)
        .await
        .expect("count")
}

async fn hundreds_of_login_guesses_in_one_document_are_refused_before_any_runs(backend: Backend) {
    let (app, _redis) = spawn(backend, |_| {}).await;
    app.register("victim@example.com").await;

    let guesses: String = (0..300)
        .map(|n| {
            format!(r#"g{n}: login(input: {{ email: "victim@example.com", password: "guess number {n}" }}) {{ accessToken }} "#)
        })
        .collect();
    let answer = send(
        &app,
        MODERN,
        None,
        &format!("mutation {{ {guesses} }}"),
        json!({}),
    )
    .await;

    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.code(), "GRAPHQL_VALIDATION_FAILED", "{}", answer.body);
    let message = answer.body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`login` may be called at most once"),
        "{message}"
    );
    assert!(answer.body.get("data").is_none(), "nothing ran: {}", answer.body);
    // No guess counted: the owner is neither blocked nor throttled.
    app.login("victim@example.com", PASSWORD).await;
}
on_both_backends!(
    login_guesses_in_one_document,
    hundreds_of_login_guesses_in_one_document_are_refused_before_any_runs
);

async fn one_address_gets_at_most_three_reset_emails_an_hour_however_they_are_asked_for(backend: Backend) {
    let (app, _redis) = spawn(backend, |_| {}).await;
    app.register("victim@example.com").await;

    // Fifty aliases in one document: refused whole, nothing written.
    let bomb: String = (0..50)
        .map(|n| format!(r#"r{n}: requestPasswordReset(email: "victim@example.com") "#))
        .collect();
    let answer = send(&app, MODERN, None, &format!("mutation {{ {bomb} }}"), json!({})).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.code(), "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(resets(&app).await, 0, "no reset was started");

    // Fifty requests, one by one: three go through, the rest wait.
    let mut refused = Vec::new();
    for _ in 0..50 {
        let answer = send(&app, MODERN, None, RESET, json!({ "e": "victim@example.com" })).await;
        if answer.body["data"]["requestPasswordReset"] == json!(true) {
            continue;
        }
        refused.push(answer.assert_rate_limited());
    }
    assert_eq!(refused.len(), 47);
    assert_eq!(resets(&app).await, 3, "three reset emails, not fifty");
    // The allowance comes back over the hour: one every 20 minutes.
    assert!(
        refused.iter().all(|secs| (1..=1200).contains(secs)),
        "{refused:?}"
    );
}
on_both_backends!(
    reset_email_bomb,
    one_address_gets_at_most_three_reset_emails_an_hour_however_they_are_asked_for
);

async fn repeated_wrong_logins_block_the_account_from_that_client_even_with_the_right_password(
    backend: Backend,
) {
    let (app, _redis) = spawn(backend, |_| {}).await;
    app.register("victim@example.com").await;

    for n in 0..5 {
        assert_wrong_password(&login(&app, None, "victim@example.com", &format!("guess {n}")).await);
    }
    let blocked = login(&app, None, "victim@example.com", PASSWORD).await;
    let secs = blocked.assert_rate_limited();
    assert!(
        (55..=60).contains(&secs),
        "a minute's block after five failures: {secs}"
    );
    assert_eq!(blocked.body["data"], json!(null), "{}", blocked.body);
}
on_both_backends!(
    wrong_logins_block,
    repeated_wrong_logins_block_the_account_from_that_client_even_with_the_right_password
);

async fn each_failure_after_a_block_doubles_it_and_a_success_forgets_them(backend: Backend) {
    let (app, _redis) = spawn(backend, |config| {
        config.rate_limits.login_block = Escalation {
            after: 2,
            first: Duration::from_secs(1),
            max: Duration::from_secs(4),
            remember: Duration::from_secs(3600),
        };
    })
    .await;
    app.register("victim@example.com").await;
    let email = "victim@example.com";

    assert_wrong_password(&login(&app, None, email, "guess 1").await);
    assert_wrong_password(&login(&app, None, email, "guess 2").await);
    let mut blocks = Vec::new();
    for guess in 3..=5 {
        let secs = login(&app, None, email, PASSWORD).await.assert_rate_limited();
        blocks.push(secs);
        tokio::time::sleep(Duration::from_secs(secs) + Duration::from_millis(100)).await;
        assert_wrong_password(&login(&app, None, email, &format!("guess {guess}")).await);
    }
    assert_eq!(blocks, [1, 2, 4], "each failure doubles the block");
    let capped = login(&app, None, email, PASSWORD).await.assert_rate_limited();
    assert_eq!(capped, 4, "up to its cap");

    tokio::time::sleep(Duration::from_secs(capped) + Duration::from_millis(100)).await;
    let signed_in = login(&app, None, email, PASSWORD).await;
    assert!(
        signed_in.body["data"]["login"]["accessToken"].is_string(),
        "{}",
        signed_in.body
    );
    assert_wrong_password(&login(&app, None, email, "one slip").await);
    assert_wrong_password(&login(&app, None, email, "and another").await);
    assert_eq!(
        login(&app, None, email, PASSWORD).await.assert_rate_limited(),
        1,
        "the count started again after the success"
    );
}
on_both_backends!(
    blocks_escalate,
    each_failure_after_a_block_doubles_it_and_a_success_forgets_them
);

async fn a_guesser_spread_over_many_addresses_is_blocked_per_email(backend: Backend) {
    let (app, _redis) = spawn(backend, |config| {
        // Behind a proxy on this machine, which names the client.
        config.trusted_proxies = TrustedProxies::parse("127.0.0.1").expect("parses");
        config.rate_limits.login_block_email.after = 6;
    })
    .await;
    app.register("victim@example.com").await;

    for n in 0..6 {
        let from = format!("198.51.100.{n}");
        assert_wrong_password(&login(&app, Some(&from), "victim@example.com", &format!("guess {n}")).await);
    }
    let fresh_address = login(&app, Some("203.0.113.77"), "victim@example.com", PASSWORD).await;
    fresh_address.assert_rate_limited();
    // Another account is not affected.
    app.register("bystander@example.com").await;
    let other = login(&app, Some("198.51.100.1"), "bystander@example.com", PASSWORD).await;
    assert!(
        other.body["data"]["login"]["accessToken"].is_string(),
        "{}",
        other.body
    );
}
on_both_backends!(
    distributed_guessing,
    a_guesser_spread_over_many_addresses_is_blocked_per_email
);

async fn forwarded_for_is_not_believed_by_default_and_a_refusal_is_a_429_in_either_format(backend: Backend) {
    // Twelve sign-ups from one address within seconds, about 100 points
    // each: the query cost bucket (1000 points) would refuse the last ones
    // before the register limit this test is about.
    let (app, _redis) = spawn(backend, |config| {
        config.cost_bucket = roomy_cost_bucket();
    })
    .await;
    let register = "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }";
    let input = |n: usize| json!({ "input": { "email": format!("signup{n}@example.com"), "password": PASSWORD, "name": "N" } });

    // Ten sign-ups an hour per address, whatever X-Forwarded-For claims.
    for n in 0..10 {
        let from = format!("203.0.113.{n}");
        let answer = send(&app, "application/json", Some(&from), register, input(n)).await;
        assert!(
            answer.body["data"]["register"]["accessToken"].is_string(),
            "{}",
            answer.body
        );
    }
    let legacy = send(
        &app,
        "application/json",
        Some("198.51.100.99"),
        register,
        input(10),
    )
    .await;
    let secs = legacy.assert_rate_limited();
    assert!(
        (1..=360).contains(&secs),
        "one sign-up back every 6 minutes: {secs}"
    );
    assert_eq!(legacy.body["data"], json!(null));
    assert_eq!(legacy.body["errors"][0]["path"], json!(["register"]));
    let modern = send(&app, MODERN, None, register, input(11)).await;
    modern.assert_rate_limited();
    assert!(
        modern.body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("try again in")),
        "{}",
        modern.body
    );
}
on_both_backends!(
    signups_per_address,
    forwarded_for_is_not_believed_by_default_and_a_refusal_is_a_429_in_either_format
);

async fn place_order_is_limited_per_user_and_counted_per_call(backend: Backend) {
    let (app, _redis) = spawn(backend, |config| {
        config.rate_limits.set(Limit::PlaceOrderUser, every(2, 3600));
    })
    .await;
    let admin = app.admin().await;
    let product = app.create_product(&admin, "LIMIT-1", 500, 100).await;
    let customer = app.register("hoarder@example.com").await;
    let place = |alias: &str| {
        format!(
            r#"{alias}: placeOrder(input: {{ lines: [{{ productId: "{product}", quantity: 1 }}], paymentToken: "sandbox_ok", idempotencyKey: "{alias}" }}) {{ id }} "#
        )
    };

    // Three calls in one document: two placed, the third refused; what
    // ran, ran, so the answer is not a 429.
    let query = format!("mutation {{ {} {} {} }}", place("a"), place("b"), place("c"));
    let placed = Answer::of(
        app.client
            .post(app.url("/graphql"))
            .header("accept", "application/json")
            .bearer_auth(&customer.access_token)
            .json(&json!({ "query": query })),
    )
    .await;
    assert_eq!(placed.status, 200, "{}", placed.body);
    assert_eq!(placed.code(), "RATE_LIMITED", "{}", placed.body);
    assert_eq!(placed.body["errors"][0]["path"], json!(["c"]), "{}", placed.body);
    let mine = app
        .graphql_as(&customer, "{ orders { totalCount } }", json!({}))
        .await;
    assert_eq!(mine["data"]["orders"]["totalCount"], 2, "two orders, not three");

    // Another customer has an allowance of its own.
    let other = app.register("neighbour@example.com").await;
    let placed = app
        .graphql_as(&other, &format!("mutation {{ {} }}", place("x")), json!({}))
        .await;
    assert!(placed["data"]["x"]["id"].is_string(), "{placed}");
}
on_both_backends!(
    orders_per_user,
    place_order_is_limited_per_user_and_counted_per_call
);

async fn persisted_query_registrations_are_limited_per_client(backend: Backend) {
    let (app, _redis) = spawn(backend, |config| {
        config.rate_limits.set(Limit::PersistedQueryIp, every(3, 600));
    })
    .await;
    let register = |n: usize| {
        let query = format!("query Q{n} {{ products(first: {n}) {{ totalCount }} }}");
        let hash = sha256(&query);
        json!({ "query": query, "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } })
    };
    let post = |body: Value| {
        Answer::of(
            app.client
                .post(app.url("/graphql"))
                .header("accept", MODERN)
                .json(&body),
        )
    };
    for n in 1..=3 {
        let answer = post(register(n)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let refused = post(register(4)).await;
    let secs = refused.assert_rate_limited();
    assert!((1..=200).contains(&secs), "{secs}");
    // What was registered still runs by hash alone.
    let by_hash = json!({ "extensions": register(2)["extensions"].clone() });
    let hit = post(by_hash).await;
    assert_eq!(hit.status, 200, "{}", hit.body);
    assert!(
        hit.body["data"]["products"]["totalCount"].is_number(),
        "{}",
        hit.body
    );
}
on_both_backends!(
    persisted_query_registrations,
    persisted_query_registrations_are_limited_per_client
);
