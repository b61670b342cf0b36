//! Query cost, the Shopify way: a document's cost is computed before it
//! runs, one over `MAX_QUERY_COST` is refused before any resolver runs, and
//! every client pays for its documents from a leaky bucket, reported in
//! `extensions.cost` as Shopify's Admin API reports it. On PostgreSQL the
//! buckets live in Redis, on SQLite in the process.
use std::time::{Duration, Instant};

use api::config::Config;
use api::cost::BucketSettings;
use api::http::client_ip::TrustedProxies;
use entity::tables::users;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use testkit::{Backend, Frame, Namespace, PASSWORD, WsClient};

use crate::helpers::{Answer, TestApp, on_both_backends, sha256};

const MODERN: &str = "application/graphql-response+json";

/// `aliases` full pages of products with their prices: each costs
/// 2 + 100 × (node 1 + price 1) = 202.
fn pages(aliases: usize) -> String {
    let fields: Vec<String> = (0..aliases)
        .map(|n| format!("p{n}: products(first: 100) {{ nodes {{ name price {{ formatted }} }} }}"))
        .collect();
    format!("{{ {} }}", fields.join(" "))
}

/// A query costing `3 × aliases` points, requested and actual alike: each
/// alias is a connection (2) and its `totalCount` (1), with no page.
fn counts(aliases: usize) -> String {
    let fields: Vec<String> = (0..aliases)
        .map(|n| format!("c{n}: products(first: 0) {{ totalCount }}"))
        .collect();
    format!("{{ {} }}", fields.join(" "))
}

/// The app with a bucket of `size` points restored at `rate` a second
/// (the defaults when `None`), `adjust` applied; on PostgreSQL its limits
/// in the Redis namespace `redis` (a new one when `None`), kept as long as
/// the app.
async fn spawn(
    backend: Backend,
    bucket: Option<(u32, f64)>,
    redis: Option<&Namespace>,
    adjust: impl FnOnce(&mut Config),
) -> (TestApp, Option<Namespace>) {
    let own = (backend == Backend::Postgres && redis.is_none()).then(|| Namespace::new("sf-cost"));
    let shared = redis.or(own.as_ref()).map(|n| (n.url.clone(), n.name.clone()));
    let app = TestApp::spawn_with(backend, |config| {
        if let Some((url, name)) = shared {
            config.worker.redis_url = Some(url);
            config.worker.queue_namespace = name;
            // The outbox dispatcher that comes with Redis sweeps once at
            // start, then not again: the only SQL is the requests'.
            config.worker.sweep_interval = Duration::from_secs(3600);
        }
        if let Some((size, rate)) = bucket {
            config.cost_bucket = BucketSettings::new(size, rate).expect("valid settings");
        }
        adjust(config);
    })
    .await;
    (app, own)
}

impl Answer {
    fn cost(&self) -> &Value {
        &self.body["extensions"]["cost"]
    }

    fn available(&self) -> u64 {
        self.cost()["throttleStatus"]["currentlyAvailable"]
            .as_u64()
            .unwrap_or_else(|| panic!("currentlyAvailable: {}", self.body))
    }

    /// Asserts the request ran and cost `requested`, then `actual`.
    fn assert_ran(&self, requested: u64, actual: u64) {
        assert_eq!(self.status, 200, "{}", self.body);
        assert!(self.body["errors"].is_null(), "{}", self.body);
        assert_eq!(self.cost()["requestedQueryCost"], requested, "{}", self.body);
        assert_eq!(self.cost()["actualQueryCost"], actual, "{}", self.body);
    }

    /// Asserts the bucket refused the whole request before it ran; returns
    /// the seconds to wait.
    fn assert_throttled(&self, requested: u64) -> u64 {
        assert_eq!(self.status, 429, "refused as a whole: {}", self.body);
        assert_eq!(self.code(), "RATE_LIMITED", "{}", self.body);
        assert!(self.body.get("data").is_none(), "nothing ran: {}", self.body);
        let secs = self.body["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap_or_else(|| panic!("retryAfter in seconds: {}", self.body));
        assert!(secs >= 1, "{}", self.body);
        assert_eq!(self.retry_after, Some(secs), "Retry-After says the same");
        assert_eq!(self.cost()["requestedQueryCost"], requested, "{}", self.body);
        assert_eq!(self.cost()["actualQueryCost"], Value::Null, "{}", self.body);
        secs
    }
}

/// POSTs `body` as a client accepting `accept`, with `token` if any.
async fn send_body(app: &TestApp, accept: &str, token: Option<&str>, body: &Value) -> Answer {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .header("accept", accept)
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Answer::of(request).await
}

/// POSTs `query` as the client at `ip` (named by `X-Forwarded-For`).
async fn send_from(app: &TestApp, ip: &str, query: &str) -> Answer {
    Answer::of(
        app.client
            .post(app.url("/graphql"))
            .header("accept", MODERN)
            .header("x-forwarded-for", ip)
            .json(&json!({ "query": query })),
    )
    .await
}

async fn send(app: &TestApp, token: Option<&str>, query: &str) -> Answer {
    send_body(app, MODERN, token, &json!({ "query": query })).await
}

/// The bucket of the caller `token` (anonymous when `None`), read with a
/// free query.
async fn available(app: &TestApp, token: Option<&str>) -> u64 {
    let answer = send(app, token, "{ __typename }").await;
    answer.assert_ran(0, 0);
    answer.available()
}

async fn a_document_over_the_cost_limit_is_refused_before_any_sql_runs(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    // Within the limit (4 × 202 = 808) the resolvers run, and run SQL.
    let before = app.statements();
    let answer = send(&app, None, &pages(4)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body["data"]["p3"]["nodes"].is_array(), "{}", answer.body);
    assert!(app.statements() > before, "listing products runs SQL");

    // Over it (5 × 202 = 1010): refused as a whole, and not a statement ran.
    let before = app.statements();
    let answer = send(&app, None, &pages(5)).await;
    let body = &answer.body;
    assert_eq!(
        app.statements(),
        before,
        "no SQL ran for a refused document: {body}"
    );
    assert_eq!(answer.status, 400, "a request error: {body}");
    assert!(body.get("data").is_none(), "nothing ran: {body}");
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "MAX_COST_EXCEEDED", "{body}");
    assert_eq!(error["extensions"]["cost"], 1010);
    assert_eq!(error["extensions"]["maxCost"], 1000);
    assert_eq!(
        error["message"],
        "Query cost is 1010, which exceeds the single query max cost limit (1000)."
    );
    assert_eq!(answer.cost()["requestedQueryCost"], 1010, "{body}");
    assert_eq!(answer.cost()["actualQueryCost"], Value::Null, "{body}");
}
on_both_backends!(
    over_the_cost_limit,
    a_document_over_the_cost_limit_is_refused_before_any_sql_runs
);

async fn every_answer_carries_the_cost_extension_in_shopifys_shape(backend: Backend) {
    // Arrange: the default bucket, 1000 points restored at 50 a second.
    let (app, _redis) = spawn(backend, None, None, |_| {}).await;

    // Act: a page of 10 products with their prices (there are none).
    let answer = send(
        &app,
        None,
        "{ products(first: 10) { nodes { name price { formatted } } } }",
    )
    .await;

    // Assert: exactly Shopify's shape and number types, floats included.
    answer.assert_ran(22, 2);
    let cost = answer.cost();
    let mut keys: Vec<&String> = cost.as_object().expect("an object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["actualQueryCost", "requestedQueryCost", "throttleStatus"]);
    let status = &cost["throttleStatus"];
    let mut keys: Vec<&String> = status.as_object().expect("an object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["currentlyAvailable", "maximumAvailable", "restoreRate"]);
    assert_eq!(status["maximumAvailable"].as_f64(), Some(1000.0));
    assert!(
        status["maximumAvailable"].is_f64(),
        "1000.0, as Shopify writes it"
    );
    assert_eq!(status["restoreRate"].as_f64(), Some(50.0));
    assert!(status["restoreRate"].is_f64());
    assert!(status["currentlyAvailable"].is_u64());
    // 1000 less the 2 points it cost, plus whatever came back meanwhile.
    assert!((998..=1000).contains(&answer.available()), "{}", answer.body);
    // The legacy format carries it too.
    let legacy = send_body(
        &app,
        "application/json",
        None,
        &json!({ "query": "{ __typename }" }),
    )
    .await;
    assert_eq!(legacy.cost()["requestedQueryCost"], 0, "{}", legacy.body);
}
on_both_backends!(
    the_cost_extension,
    every_answer_carries_the_cost_extension_in_shopifys_shape
);

async fn the_bucket_drops_by_the_actual_cost_of_each_answer(backend: Backend) {
    // Arrange: 1000 points, restored so slowly (one every 100 s) that the
    // figures below are exact.
    let (app, _redis) = spawn(backend, Some((1000, 0.01)), None, |_| {}).await;

    // A page of 10 asked for, none there: 22 taken, 20 given back.
    let listing = send(
        &app,
        None,
        "{ products(first: 10) { nodes { name price { formatted } } } }",
    )
    .await;
    listing.assert_ran(22, 2);
    assert_eq!(listing.available(), 998, "{}", listing.body);
    assert_eq!(
        listing.cost()["throttleStatus"]["restoreRate"].as_f64(),
        Some(0.01)
    );

    let counted = send(&app, None, &counts(100)).await;
    counted.assert_ran(300, 300);
    assert_eq!(counted.available(), 698);

    // A mutation costs 10 plus its answer.
    let mutation = send(&app, None, "mutation { logout(refreshToken: \"no such token\") }").await;
    assert_eq!(mutation.cost()["requestedQueryCost"], 10, "{}", mutation.body);
    assert_eq!(mutation.cost()["actualQueryCost"], 10, "{}", mutation.body);
    assert_eq!(mutation.available(), 688);

    // A free document, and documents that never ran, take nothing.
    assert_eq!(available(&app, None).await, 688);
    let invalid = send(&app, None, "{ products(first: 10) { nope } }").await;
    assert_eq!(invalid.status, 400, "{}", invalid.body);
    assert_eq!(invalid.cost()["actualQueryCost"], Value::Null, "{}", invalid.body);
    assert_eq!(invalid.available(), 688, "{}", invalid.body);
    let unparsable = send(&app, None, "{ products(").await;
    assert_eq!(unparsable.status, 400, "{}", unparsable.body);
    assert_eq!(unparsable.cost()["requestedQueryCost"], 0, "{}", unparsable.body);
    assert_eq!(unparsable.available(), 688, "{}", unparsable.body);
    let too_costly = send(&app, None, &pages(5)).await;
    assert_eq!(too_costly.code(), "MAX_COST_EXCEEDED", "{}", too_costly.body);
    assert_eq!(too_costly.available(), 688, "{}", too_costly.body);

    // A document's cost is measured once, per operation: sent again, each
    // of its operations keeps its own; with variables, each request's.
    let two = "query Small { products(first: 1) { nodes { name } } } query Large { products(first: 50) { nodes { name } } }";
    for _ in 0..2 {
        for (name, requested) in [("Small", 3), ("Large", 52)] {
            let body = json!({ "query": two, "operationName": name });
            let answer = send_body(&app, MODERN, None, &body).await;
            assert_eq!(answer.cost()["requestedQueryCost"], requested, "{}", answer.body);
        }
    }
    let sized = "query($n: Int) { products(first: $n) { nodes { name } } }";
    for (n, requested) in [(1, 3), (50, 52)] {
        let body = json!({ "query": sized, "variables": { "n": n } });
        let answer = send_body(&app, MODERN, None, &body).await;
        assert_eq!(answer.cost()["requestedQueryCost"], requested, "{}", answer.body);
    }
}
on_both_backends!(
    drops_by_the_actual_cost,
    the_bucket_drops_by_the_actual_cost_of_each_answer
);

/// `rate_limited_total{limit="cost_bucket"}` on the app's `/metrics`.
async fn cost_bucket_refusals(app: &TestApp) -> f64 {
    let page = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("a page");
    page.lines()
        .find_map(|line| {
            line.strip_prefix(r#"rate_limited_total{limit="cost_bucket"} "#)?
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

async fn an_empty_bucket_refuses_the_whole_request_with_429_before_anything_runs(backend: Backend) {
    // Arrange: 300 points, one back every 2 s; 270 of them spent.
    let (app, _redis) = spawn(backend, Some((300, 0.5)), None, |_| {}).await;
    let refusals = cost_bucket_refusals(&app).await;
    send(&app, None, &counts(90)).await.assert_ran(270, 270);

    // Act: a query asking for 60 points when 30 are there.
    let before = app.statements();
    let refused = send(&app, None, &counts(20)).await;

    // Assert: refused as a whole, nothing ran, told when to come back.
    assert_eq!(app.statements(), before, "no SQL ran: {}", refused.body);
    let secs = refused.assert_throttled(60);
    assert!(
        (55..=60).contains(&secs),
        "30 points short, at 0.5 a second: {secs}"
    );
    assert_eq!(refused.available(), 30, "a refusal takes nothing");
    // An invalid document the bucket cannot pay for either is answered as
    // invalid, and takes nothing.
    let invalid = send(&app, None, &counts(20).replacen("{ ", "{ nope ", 1)).await;
    assert_eq!(invalid.status, 400, "{}", invalid.body);
    assert_eq!(invalid.code(), "GRAPHQL_VALIDATION_FAILED", "{}", invalid.body);
    assert_eq!(invalid.available(), 30, "{}", invalid.body);
    assert_eq!(
        refused.cost()["throttleStatus"]["maximumAvailable"].as_f64(),
        Some(300.0)
    );

    // A mutation is refused before it writes anything: `register` costs
    // 100 and its answer.
    let register = "mutation { register(input: { email: \"late@example.com\", password: \"correct horse battery\", name: \"Late\" }) { accessToken } }";
    let legacy = send_body(&app, "application/json", None, &json!({ "query": register })).await;
    legacy.assert_throttled(100);
    let written = users::Entity::find()
        .filter(users::Column::Email.eq("late@example.com"))
        .count(&app.state.db)
        .await
        .expect("count");
    assert_eq!(written, 0, "no account was created");

    // Each refusal counted under the cost bucket's label (the recorder is
    // shared by every test of this binary: at least ours).
    assert!(
        cost_bucket_refusals(&app).await >= refusals + 2.0,
        "rate_limited_total{{limit=\"cost_bucket\"}}"
    );
}
on_both_backends!(
    an_empty_bucket,
    an_empty_bucket_refuses_the_whole_request_with_429_before_anything_runs
);

async fn a_bucket_fills_again_at_its_restore_rate(backend: Backend) {
    // Arrange: 100 points restored at 20 a second; 90 spent.
    let (app, _redis) = spawn(backend, Some((100, 20.0)), None, |_| {}).await;
    let started = Instant::now();
    let spent = send(&app, None, &counts(30)).await;
    spent.assert_ran(90, 90);
    let low = spent.available();
    assert!((10..=12).contains(&low), "{}", spent.body);

    // Asking for 90 now waits for the 80 missing points: 4 s at 20 a second.
    let secs = send(&app, None, &counts(30)).await.assert_throttled(90);
    assert!((3..=4).contains(&secs), "{secs}");

    // Act: a second later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = available(&app, None).await;

    // Assert: 20 points more, give or take the time the requests took.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a few seconds"
    )]
    let most = 10 + (started.elapsed().as_secs_f64() * 20.0).ceil() as u64;
    assert!(
        (low + 19..=most).contains(&later),
        "{low} then {later} a second later (at most {most})"
    );
}
on_both_backends!(restores_at_its_rate, a_bucket_fills_again_at_its_restore_rate);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_instances_on_one_redis_share_a_clients_bucket() {
    // Arrange: two apps on one Redis namespace, 300 points each client.
    let redis = Namespace::new("sf-cost-shared");
    let bucket = Some((300, 0.01));
    let (first, _) = spawn(Backend::Postgres, bucket, Some(&redis), |_| {}).await;
    let (second, _) = spawn(Backend::Postgres, bucket, Some(&redis), |_| {}).await;

    // Act: 270 points spent on the first.
    send(&first, None, &counts(90)).await.assert_ran(270, 270);

    // Assert: the second sees 30 left, and refuses 60.
    assert_eq!(available(&second, None).await, 30);
    send(&second, None, &counts(20)).await.assert_throttled(60);
    // What the second spends, the first no longer has.
    send(&second, None, &counts(10)).await.assert_ran(30, 30);
    send(&first, None, &counts(1)).await.assert_throttled(3);
}

async fn a_signed_in_user_and_each_client_address_have_buckets_of_their_own(backend: Backend) {
    // Arrange: 300 points each, one back every 100 s (the figures are
    // exact however slow the sign-ups); clients named by a proxy on this
    // machine.
    let (app, _redis) = spawn(backend, Some((300, 0.01)), None, |config| {
        config.trusted_proxies = TrustedProxies::parse("127.0.0.1").expect("parses");
    })
    .await;
    let customer = app.register("spender@example.com").await;
    let token = Some(customer.access_token.as_str());
    let anonymous = available(&app, None).await;
    assert_eq!(anonymous, 199, "signing up cost this address 101");

    // Act: the user spends 270 of its points.
    send(&app, token, &counts(90)).await.assert_ran(270, 270);

    // Assert: the user's bucket is low, the address's untouched.
    assert_eq!(available(&app, token).await, 30);
    send(&app, token, &counts(20)).await.assert_throttled(60);
    assert_eq!(available(&app, None).await, anonymous);
    // Signed in again (the address pays 101 for the login): the same
    // user, the same bucket.
    let again = app.login("spender@example.com", PASSWORD).await;
    assert_eq!(available(&app, Some(&again.access_token)).await, 30);
    send(&app, None, &counts(30)).await.assert_ran(90, 90);
    assert_eq!(available(&app, None).await, anonymous - 101 - 90);
    // Another address, another bucket.
    let elsewhere = send_from(&app, "198.51.100.7", "{ __typename }").await;
    assert_eq!(elsewhere.available(), 300, "{}", elsewhere.body);
}
on_both_backends!(
    buckets_per_client,
    a_signed_in_user_and_each_client_address_have_buckets_of_their_own
);

async fn batches_persisted_queries_and_websockets_pay_from_the_same_bucket(backend: Backend) {
    let (app, _redis) = spawn(backend, Some((300, 0.01)), None, |_| {}).await;

    // A batch (a JSON array) is refused without running: nothing taken.
    let batch = json!([{ "query": counts(50) }, { "query": counts(50) }]);
    let refused = send_body(&app, MODERN, None, &batch).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(available(&app, None).await, 300);

    // A persisted query pays when it is registered and each time it runs
    // by its hash alone, until the bucket is empty.
    let query = counts(50);
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256(&query) } });
    let registered = send_body(
        &app,
        MODERN,
        None,
        &json!({ "query": query, "extensions": extensions }),
    )
    .await;
    registered.assert_ran(150, 150);
    let by_hash = json!({ "extensions": extensions });
    let ran = send_body(&app, MODERN, None, &by_hash).await;
    ran.assert_ran(150, 150);
    assert_eq!(ran.available(), 0);
    send_body(&app, MODERN, None, &by_hash)
        .await
        .assert_throttled(150);

    // Over a WebSocket: the same address, the same (empty) bucket.
    let mut socket = WsClient::open(&app.address, None).await;
    socket.subscribe("free", "{ __typename }", json!({})).await;
    let Frame::Message(next) = socket.recv().await else {
        panic!("the socket closed");
    };
    assert_eq!(next["type"], "next", "{next}");
    let cost = &next["payload"]["extensions"]["cost"];
    assert_eq!(cost["throttleStatus"]["currentlyAvailable"], 0, "{next}");
    assert_eq!(cost["requestedQueryCost"], 0, "{next}");
    socket.subscribe("costly", &counts(1), json!({})).await;
    let refused = loop {
        match socket.recv().await {
            Frame::Message(message) if message["id"] == "costly" => break message,
            Frame::Message(_) => {}
            Frame::Closed(code, reason) => panic!("the socket closed: {code} {reason}"),
        }
    };
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "RATE_LIMITED",
        "{refused}"
    );
    assert!(
        refused["payload"][0]["extensions"]["retryAfter"].as_u64() >= Some(1),
        "{refused}"
    );
}
on_both_backends!(
    no_way_around_the_bucket,
    batches_persisted_queries_and_websockets_pay_from_the_same_bucket
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_load_the_schema_on_a_fresh_bucket() {
    // The whole introspection document, every option on, as GraphiQL and
    // codegen tools send it first.
    let app = TestApp::spawn(Backend::Sqlite).await;
    let query = include_str!("introspection/graphql-js-all-options.graphql");
    let answer = send(&app, None, query).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body["data"]["__schema"]["types"].is_array());
    let requested = answer.cost()["requestedQueryCost"].as_u64().unwrap_or(0);
    assert!(
        requested > 0 && requested < 1000,
        "a fraction of a bucket: {requested}"
    );
}
