//! Bad requests against the real app: each gets a clear GraphQL error and
//! the right status — never a panic or a 500 with internals.
use serde_json::{Value, json};
use testkit::Backend;

use crate::helpers::{TestApp, on_both_backends};

async fn send(app: &TestApp, accept: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .header("accept", accept)
        .body(body)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("a JSON body, got {status}: {text}"));
    (status, body)
}

fn first_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("an error code: {body}"))
}

const GQL_JSON: &str = "application/graphql-response+json";

fn nested_too_deep(body: &Value) -> bool {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase()
        .contains("nested too deep")
}

async fn bad_requests_get_clear_errors_and_the_right_status(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let (status, body) = send(&app, GQL_JSON, "{\"query\": ").await;
    assert_eq!(status, 400, "malformed JSON: {body}");
    assert!(body["errors"][0]["message"].is_string());

    let unknown_field = json!({ "query": "{ products { nope } }" }).to_string();
    let (status, body) = send(&app, GQL_JSON, unknown_field.clone()).await;
    assert_eq!(
        (status, first_code(&body)),
        (400, "GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );
    assert!(body.get("data").is_none(), "a request error has no data entry");
    let (status, body) = send(&app, "application/json", unknown_field).await;
    assert_eq!(
        (status, first_code(&body)),
        (200, "GRAPHQL_VALIDATION_FAILED"),
        "application/json is always 200"
    );

    // No real query of this schema nests 12 deep: depth is checked before
    // the fields are, so this is refused for its depth.
    let query = "{ products { edges { node { a { b { c { d { e { f { g { h { i } } } } } } } } } } } }";
    let (status, body) = send(&app, GQL_JSON, json!({ "query": query }).to_string()).await;
    assert_eq!(status, 400, "deeper than the limit: {body}");
    assert!(nested_too_deep(&body), "{body}");

    let huge = format!(
        "{{\"query\": \"{{ products {{ totalCount }} }}\", \"x\": \"{}\"}}",
        "a".repeat(2 * 1024 * 1024)
    );
    let (status, body) = send(&app, GQL_JSON, huge).await;
    assert_eq!(status, 413, "a 2 MB body: {body}");

    let wrong_type = json!({ "query": "query($n: Int) { products(first: $n) { totalCount } }", "variables": { "n": "ten" } });
    let (status, body) = send(&app, GQL_JSON, wrong_type.to_string()).await;
    assert_eq!(status, 400, "a wrong-type variable: {body}");
    assert_eq!(first_code(&body), "GRAPHQL_VALIDATION_FAILED");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("expected type \"Int\""), "{body}");

    let no_query = json!({ "variables": {} }).to_string();
    let (status, _) = send(&app, GQL_JSON, no_query).await;
    assert_eq!(status, 400, "a body that is not a GraphQL request");
}
on_both_backends!(bad_requests, bad_requests_get_clear_errors_and_the_right_status);

async fn mutations_over_get_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "mutation { logout(refreshToken: \"x\") }")])
        .header("accept", GQL_JSON)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 405);
    assert_eq!(
        response.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );

    let query = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ products { totalCount } }")])
        .header("accept", GQL_JSON)
        .send()
        .await
        .expect("sent");
    assert_eq!(query.status(), 200);
    assert!(
        query.headers().get("x-request-id").is_some(),
        "every answer carries its request id"
    );
    let body: Value = query.json().await.expect("json");
    assert_eq!(body["data"]["products"]["totalCount"], 0);
}
on_both_backends!(get_requests, mutations_over_get_are_refused);

#[test]
fn schema_graphql_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == api::schema::sdl(),
        "schema.graphql is out of date: run `cargo run -p api -- export-schema --out schema.graphql`"
    );
}

/// The introspection documents tools send first: graphql-js
/// `getIntrospectionQuery()` (Apollo, GraphQL Code Generator, graphql-core
/// and so schemathesis send the same document) with its defaults and with
/// every option on, as generated by graphql 16.11 (`introspection/*.graphql`).
async fn tools_introspect_the_schema_and_absurd_chains_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    for (tool, document) in [
        (
            "graphql-js defaults",
            include_str!("introspection/graphql-js-default.graphql"),
        ),
        (
            "graphql-js, every option",
            include_str!("introspection/graphql-js-all-options.graphql"),
        ),
    ] {
        let body = app.graphql(document, json!({})).await;
        assert!(body.get("errors").is_none(), "{tool}: {body}");
        assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query", "{tool}");
        let types = body["data"]["__schema"]["types"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            types
                .iter()
                .any(|t| t["name"] == "Product" && t["fields"].as_array().is_some_and(|f| !f.is_empty())),
            "{tool}: Product and its fields are described"
        );
    }

    // A chain of `ofType`s no tool sends, 40 deep.
    let mut chain = String::from("{ __schema { types { fields { type { ");
    chain.push_str(&"ofType { ".repeat(36));
    chain.push_str("name");
    chain.push_str(&" }".repeat(40));
    chain.push_str(" }");
    let (status, body) = send(&app, GQL_JSON, json!({ "query": chain }).to_string()).await;
    assert_eq!(status, 400, "a 40-deep introspection chain: {body}");
    // And one just past the introspection limit, refused by it.
    let mut chain = String::from("{ __schema { types { fields { type { ");
    chain.push_str(&"ofType { ".repeat(api::limits::INTROSPECTION_MAX_DEPTH - 4));
    chain.push_str("name");
    chain.push_str(&" }".repeat(api::limits::INTROSPECTION_MAX_DEPTH));
    chain.push_str(" }");
    let (status, body) = send(&app, GQL_JSON, json!({ "query": chain }).to_string()).await;
    assert_eq!(status, 400, "an introspection chain past its limit: {body}");
    assert!(nested_too_deep(&body), "{body}");
}
on_both_backends!(
    introspection,
    tools_introspect_the_schema_and_absurd_chains_are_refused
);

#[tokio::test]
async fn a_small_document_that_spreads_out_to_billions_of_fields_is_refused_at_once() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    // Thirty fragments, each spreading the next four times: about a
    // kilobyte, 4^30 fields once spread out.
    let mut query = String::from("{ ...F0 }");
    for level in 0..30 {
        let next = level + 1;
        query.push_str(&format!(
            " fragment F{level} on Query {{ ...F{next} ...F{next} ...F{next} ...F{next} }}"
        ));
    }
    query.push_str(" fragment F30 on Query { __typename }");

    let started = std::time::Instant::now();
    let (status, body) = send(&app, GQL_JSON, json!({ "query": query }).to_string()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("too large"),
        "{body}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "refused at once"
    );
}

#[tokio::test]
async fn production_does_not_suggest_field_names_and_development_does() {
    let query = json!({ "query": "{ prodcts { totalCount } }" }).to_string();
    let development = TestApp::spawn(Backend::Sqlite).await;
    let (_, body) = send(&development, GQL_JSON, query.clone()).await;
    let message = body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("Did you mean"), "{message}");

    let production = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.environment = api::config::Environment::Production;
    })
    .await;
    let (status, body) = send(&production, GQL_JSON, query).await;
    assert_eq!(status, 400);
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(!message.contains("Did you mean"), "{message}");
    assert!(!message.contains("products"), "no field name leaks: {message}");
}
