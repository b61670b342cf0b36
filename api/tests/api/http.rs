//! The GraphQL-over-HTTP transport (`api::http`) over real HTTP, mounted on
//! a tiny in-memory schema so that it is tested apart from ours.

use std::{
    net::{Ipv4Addr, TcpListener},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use api::http::persisted::PersistedQueries;
use api::http::{self as transport, Limits, Playground, playground::ASSETS_ROUTE};
use async_graphql::{Context, EmptySubscription, Object, Schema, SimpleObject};
use reqwest::{Method, Response, StatusCode, header};
use serde_json::{Value as Json, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json; charset=utf-8";
const APPLICATION_JSON: &str = "application/json; charset=utf-8";
/// What a current GraphQL client accepts (a missing `Accept` is a legacy client's).
const MODERN: &str = "application/graphql-response+json";
/// What the draft recommends clients send.
const RECOMMENDED_ACCEPT: &str =
    "application/graphql-response+json; charset=utf-8, application/json; charset=utf-8";

// ------------------------------------------------------------------ the app

pub struct Query;

#[Object]
impl Query {
    async fn hello(&self) -> &'static str {
        "world"
    }

    async fn products(&self, first: Option<i32>) -> Vec<Product> {
        let count = usize::try_from(first.unwrap_or(2)).unwrap_or(0);
        ["Tea", "Coffee", "Cocoa"]
            .into_iter()
            .take(count)
            .map(|name| Product {
                name: name.to_owned(),
            })
            .collect()
    }

    /// A field that always fails: the rest of the query still gets data.
    async fn broken(&self) -> async_graphql::Result<Option<String>> {
        Err("the broken field is broken".into())
    }
}

#[derive(SimpleObject)]
pub struct Product {
    name: String,
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Counts its calls, so a test can tell whether a mutation ran.
    async fn touch(&self, ctx: &Context<'_>) -> bool {
        ctx.data_unchecked::<Touches>().0.fetch_add(1, Ordering::SeqCst);
        true
    }
}

#[derive(Clone, Default)]
pub struct Touches(Arc<AtomicUsize>);

type TestSchema = Schema<Query, Mutation, EmptySubscription>;

struct State {
    schema: TestSchema,
    playground: Playground,
    limits: Limits,
    persisted: PersistedQueries,
}

/// A server on 127.0.0.1 with the transport and the playground mounted the
/// way the api mounts them; stopped when dropped with the test's runtime.
pub struct TransportApp {
    pub address: String,
    pub client: reqwest::Client,
    pub touches: Touches,
}

/// Starts the app with the playground assets from `playground/dist`.
pub async fn spawn_app() -> TransportApp {
    spawn_app_with(Playground::load(None, "/graphql")).await
}

pub async fn spawn_app_with(playground: Playground) -> TransportApp {
    let touches = Touches::default();
    let schema = Schema::build(Query, Mutation, EmptySubscription)
        .data(touches.clone())
        .finish();
    let state = web::Data::new(State {
        schema,
        playground,
        limits: Limits::default(),
        persisted: PersistedQueries::in_memory(),
    });
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("cannot bind 127.0.0.1:0");
    let port = listener.local_addr().expect("the bound address").port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/graphql", web::route().to(graphql))
            .route(ASSETS_ROUTE, web::get().to(asset))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("cannot listen")
    .run();
    tokio::spawn(server);
    TransportApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("an HTTP client"),
        touches,
    }
}

async fn graphql(req: HttpRequest, payload: web::Payload, state: web::Data<State>) -> HttpResponse {
    if transport::wants_playground(&req) {
        return state.playground.page();
    }
    let (request, format) =
        match transport::parse_request(&req, payload, &state.limits, &state.persisted).await {
            Ok(parsed) => parsed,
            Err(response) => return response,
        };
    transport::respond(state.schema.execute(request).await, format)
}

async fn asset(file: web::Path<String>, state: web::Data<State>) -> HttpResponse {
    state.playground.asset(&file)
}

impl TransportApp {
    pub fn url(&self) -> String {
        format!("{}/graphql", self.address)
    }

    /// POSTs `body` as `application/json` with the given `Accept`.
    pub async fn post(&self, body: &str, accept: Option<&str>) -> Response {
        self.post_as("application/json", body, accept).await
    }

    pub async fn post_as(&self, content_type: &str, body: &str, accept: Option<&str>) -> Response {
        let mut request = self
            .client
            .post(self.url())
            .header(header::CONTENT_TYPE, content_type)
            .body(body.to_owned());
        if let Some(accept) = accept {
            request = request.header(header::ACCEPT, accept);
        }
        request.send().await.expect("the POST reaches the server")
    }

    /// GETs `/graphql` with the given query-string parameters.
    pub async fn get(&self, params: &[(&str, &str)], accept: Option<&str>) -> Response {
        let mut url = reqwest::Url::parse(&self.url()).expect("a valid URL");
        url.query_pairs_mut().extend_pairs(params);
        let mut request = self.client.get(url);
        if let Some(accept) = accept {
            request = request.header(header::ACCEPT, accept);
        }
        request.send().await.expect("the GET reaches the server")
    }
}

/// The response's status, `Content-Type` and JSON body.
async fn read(response: Response) -> (StatusCode, String, Json) {
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("a response body");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("the body is not JSON ({error}): {text}"));
    (status, content_type, body)
}

fn query(document: &str) -> String {
    json!({ "query": document }).to_string()
}

fn error_code(body: &Json) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no errors[0].extensions.code in {body}"))
}

// ------------------------------------------------------------- POST, format

#[tokio::test]
async fn a_post_with_the_recommended_accept_gets_graphql_response_json() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.post(&query("{ hello }"), Some(RECOMMENDED_ACCEPT)).await;

    // Assert
    let (status, content_type, body) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, GRAPHQL_RESPONSE_JSON);
    assert_eq!(body, json!({ "data": { "hello": "world" } }));
}

#[tokio::test]
async fn a_post_accepting_only_application_json_gets_application_json() {
    let app = spawn_app().await;

    let response = app.post(&query("{ hello }"), Some("application/json")).await;

    let (status, content_type, body) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, APPLICATION_JSON);
    assert_eq!(body["data"]["hello"], "world");
}

#[tokio::test]
async fn a_legacy_client_with_no_or_only_a_wildcard_accept_gets_application_json() {
    let app = spawn_app().await;

    for accept in [None, Some("*/*"), Some("application/*")] {
        let (status, content_type, _) = read(app.post(&query("{ hello }"), accept).await).await;
        assert_eq!(status, StatusCode::OK, "Accept: {accept:?}");
        assert_eq!(content_type, APPLICATION_JSON, "Accept: {accept:?}");
        // A document that fails validation is still 200 for such a client.
        let (status, content_type, body) = read(app.post(&query("{ nope }"), accept).await).await;
        assert_eq!(
            (status, content_type.as_str()),
            (StatusCode::OK, APPLICATION_JSON),
            "Accept: {accept:?}"
        );
        assert!(body["errors"][0]["message"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn q_values_choose_the_response_format() {
    let app = spawn_app().await;
    let cases = [
        (
            "application/graphql-response+json;q=0.5, application/json",
            APPLICATION_JSON,
        ),
        (
            "application/json;q=0.9, application/graphql-response+json",
            GRAPHQL_RESPONSE_JSON,
        ),
        ("application/json, */*;q=0.1", APPLICATION_JSON),
        (
            "application/graphql-response+json;q=0, application/json;q=0.2",
            APPLICATION_JSON,
        ),
    ];

    for (accept, expected) in cases {
        let (_, content_type, _) = read(app.post(&query("{ hello }"), Some(accept)).await).await;
        assert_eq!(content_type, expected, "Accept: {accept}");
    }
}

#[tokio::test]
async fn an_accept_header_with_neither_json_type_is_406() {
    let app = spawn_app().await;

    for accept in ["text/html", "image/png, application/json;q=0", "application/xml"] {
        let (status, _, body) = read(app.post(&query("{ hello }"), Some(accept)).await).await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "Accept: {accept}");
        assert_eq!(error_code(&body), "NOT_ACCEPTABLE");
    }
    let response = app.get(&[("query", "{ hello }")], Some("text/html")).await;
    assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
}

// ------------------------------------------------ POST, refused requests

#[tokio::test]
async fn a_post_that_is_not_application_json_is_415() {
    let app = spawn_app().await;

    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/graphql",
        "application/json; charset=iso-8859-1",
        "multipart/form-data; boundary=x",
    ] {
        let response = app.post_as(content_type, &query("{ hello }"), Some(MODERN)).await;
        let (status, response_type, body) = read(response).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type}");
        assert_eq!(response_type, GRAPHQL_RESPONSE_JSON);
        assert_eq!(error_code(&body), "UNSUPPORTED_MEDIA_TYPE");
    }
}

#[tokio::test]
async fn a_post_without_content_type_is_415() {
    let app = spawn_app().await;

    let response = app
        .client
        .post(app.url())
        .body(query("{ hello }"))
        .send()
        .await
        .expect("the POST reaches the server");

    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn a_charset_parameter_on_application_json_is_accepted() {
    let app = spawn_app().await;

    for content_type in [
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
    ] {
        let response = app.post_as(content_type, &query("{ hello }"), Some(MODERN)).await;
        assert_eq!(response.status(), StatusCode::OK, "{content_type}");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app().await;
    let padding = "x".repeat(2 * 1024 * 1024);
    let body = json!({ "query": "{ hello }", "extensions": { "padding": padding } }).to_string();

    let (status, content_type, body) = read(app.post(&body, Some(MODERN)).await).await;

    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(content_type, GRAPHQL_RESPONSE_JSON);
    assert_eq!(error_code(&body), "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413_before_it_ends() {
    // Arrange: a body without Content-Length, sent chunk by chunk
    let app = spawn_app().await;
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("a connection");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("the request head is sent");
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));

    // Act: 2 MiB, or less if the server answers first; the body never ends
    for _ in 0..32 {
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let mut buffer = [0; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => answer.extend_from_slice(&buffer[..read]),
        }
    }

    // Assert
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "the server answered: {answer}"
    );
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;

    for body in ["NONSENSE", r#"{"query":"#, ""] {
        for accept in [None, Some("application/json")] {
            let (status, _, response) = read(app.post(body, accept).await).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?} with {accept:?}");
            assert_eq!(error_code(&response), "BAD_REQUEST");
        }
    }
}

#[tokio::test]
async fn json_that_is_not_a_graphql_request_is_400() {
    let app = spawn_app().await;

    for body in [
        r#"{"qeury":"{ hello }"}"#,
        r#"{"query":7}"#,
        r#"{"query":"{ hello }","variables":[7]}"#,
        r#"{"query":"{ hello }","operationName":{}}"#,
        r#"{"query":"{ hello }","extensions":"x"}"#,
        r#""{ hello }""#,
        r#"[{"query":"{ hello }"}]"#,
    ] {
        let (status, content_type, response) = read(app.post(body, Some(MODERN)).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(content_type, GRAPHQL_RESPONSE_JSON);
        assert_eq!(error_code(&response), "BAD_REQUEST");
        assert!(response["errors"][0]["message"].is_string());
    }
}

#[tokio::test]
async fn null_optional_parameters_are_the_same_as_none() {
    let app = spawn_app().await;
    let body = r#"{"query":"{ hello }","operationName":null,"variables":null,"extensions":null}"#;

    let (status, _, response) = read(app.post(body, Some(MODERN)).await).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(response["data"]["hello"], "world");
}

#[tokio::test]
async fn a_method_other_than_get_or_post_is_405() {
    let app = spawn_app().await;

    let response = app
        .client
        .request(Method::PUT, app.url())
        .header(header::CONTENT_TYPE, "application/json")
        .body(query("{ hello }"))
        .send()
        .await
        .expect("the PUT reaches the server");

    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "GET, POST");
}

// ------------------------------------------------ executed: status per format

#[tokio::test]
async fn a_validation_error_is_400_with_graphql_response_json_and_has_no_data() {
    let app = spawn_app().await;

    for document in ["{ nope }", "{", "query A { hello } query B { hello }"] {
        let (status, content_type, body) =
            read(app.post(&query(document), Some(RECOMMENDED_ACCEPT)).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{document}");
        assert_eq!(content_type, GRAPHQL_RESPONSE_JSON);
        assert!(body.get("data").is_none(), "{document}: {body}");
        assert!(body["errors"][0]["message"].is_string());
    }
}

#[tokio::test]
async fn a_validation_error_is_200_with_application_json() {
    let app = spawn_app().await;

    for document in ["{ nope }", "{"] {
        let (status, content_type, body) =
            read(app.post(&query(document), Some("application/json")).await).await;
        assert_eq!(status, StatusCode::OK, "{document}");
        assert_eq!(content_type, APPLICATION_JSON);
        assert!(body.get("data").is_none(), "{document}: {body}");
        assert!(body["errors"][0]["message"].is_string());
    }
}

#[tokio::test]
async fn a_variable_that_does_not_coerce_is_a_request_error() {
    let app = spawn_app().await;
    let body = json!({
        "query": "query ($n: Int) { products(first: $n) { name } }",
        "variables": { "n": "two" },
    })
    .to_string();

    let (status, _, body) = read(app.post(&body, Some(MODERN)).await).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.get("data").is_none());
}

#[tokio::test]
async fn partial_data_with_a_field_error_is_200_in_both_formats() {
    let app = spawn_app().await;

    for accept in [RECOMMENDED_ACCEPT, "application/json"] {
        let (status, _, body) = read(app.post(&query("{ hello broken }"), Some(accept)).await).await;
        assert_eq!(status, StatusCode::OK, "Accept: {accept}");
        // async-graphql 7 leaves the failed nullable field out of `data`
        // rather than setting it to null; what matters here is that the
        // rest of the data is there.
        assert_eq!(body["data"]["hello"], "world", "{body}");
        assert_eq!(body["errors"][0]["path"], json!(["broken"]));
    }
}

#[tokio::test]
async fn a_mutation_over_post_is_executed() {
    let app = spawn_app().await;

    let (status, _, body) = read(app.post(&query("mutation { touch }"), Some(MODERN)).await).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["touch"], true);
    assert_eq!(app.touches.0.load(Ordering::SeqCst), 1);
}

// ------------------------------------------------------------------------ GET

#[tokio::test]
async fn a_get_query_is_executed() {
    let app = spawn_app().await;

    let (status, content_type, body) = read(app.get(&[("query", "{ hello }")], Some(MODERN)).await).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, GRAPHQL_RESPONSE_JSON);
    assert_eq!(body, json!({ "data": { "hello": "world" } }));
}

#[tokio::test]
async fn a_get_query_takes_variables_and_an_operation_name() {
    let app = spawn_app().await;
    let document = "query Greeting { hello } query Few($n: Int) { products(first: $n) { name } }";

    let response = app
        .get(
            &[
                ("query", document),
                ("operationName", "Few"),
                ("variables", r#"{"n":1}"#),
            ],
            Some("application/json"),
        )
        .await;

    let (status, content_type, body) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, APPLICATION_JSON);
    assert_eq!(body["data"], json!({ "products": [{ "name": "Tea" }] }));
}

#[tokio::test]
async fn a_get_with_variables_that_are_not_a_json_object_is_400() {
    let app = spawn_app().await;

    for variables in ["[1]", "{", "7"] {
        let response = app
            .get(&[("query", "{ hello }"), ("variables", variables)], None)
            .await;
        let (status, _, body) = read(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "variables={variables}");
        assert_eq!(error_code(&body), "BAD_REQUEST");
    }
}

#[tokio::test]
async fn a_mutation_over_get_is_405_with_allow_post_and_is_not_executed() {
    let app = spawn_app().await;

    for params in [
        vec![("query", "mutation { touch }")],
        vec![
            ("query", "query Q { hello } mutation M { touch }"),
            ("operationName", "M"),
        ],
    ] {
        let response = app.get(&params, Some(MODERN)).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{params:?}");
        assert_eq!(response.headers()[header::ALLOW], "POST");
        let (_, _, body) = read(response).await;
        assert_eq!(error_code(&body), "METHOD_NOT_ALLOWED");
    }
    assert_eq!(app.touches.0.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_query_beside_a_mutation_may_be_sent_with_get() {
    let app = spawn_app().await;

    let response = app
        .get(
            &[
                ("query", "query Q { hello } mutation M { touch }"),
                ("operationName", "Q"),
            ],
            None,
        )
        .await;

    let (status, _, body) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["hello"], "world");
}

#[tokio::test]
async fn a_get_without_query_from_a_program_is_400() {
    let app = spawn_app().await;

    let (status, _, body) = read(app.get(&[], Some(RECOMMENDED_ACCEPT)).await).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "BAD_REQUEST");
}
