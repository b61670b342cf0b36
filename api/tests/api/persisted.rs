//! Persisted queries over HTTP: Apollo's automatic persisted queries
//! (register, hit, miss, mismatch; POST and GET) and trusted-documents mode.
use reqwest::header;
use serde_json::{Value, json};
use testkit::Backend;

use crate::helpers::{TestApp, on_both_backends, sha256};

const QUERY: &str = "query Catalog { products(first: 2) { totalCount } }";
const MODERN: &str = "application/graphql-response+json";

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn post(app: &TestApp, body: Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .header(header::ACCEPT, MODERN)
        .json(&body)
        .send()
        .await
        .expect("sent");
    (response.status().as_u16(), response.json().await.expect("JSON"))
}

async fn get(app: &TestApp, params: &[(&str, String)]) -> (u16, Value) {
    let response = app
        .client
        .get(app.url("/graphql"))
        .header(header::ACCEPT, MODERN)
        .query(params)
        .send()
        .await
        .expect("sent");
    (response.status().as_u16(), response.json().await.expect("JSON"))
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

async fn a_hash_is_unknown_until_registered_then_runs_over_post_and_get(backend: Backend) {
    // Arrange: on PostgreSQL the documents are kept in Redis, else in memory.
    let app = TestApp::spawn_with(backend, |config| {
        config.seed_demo_data = true;
        if backend == Backend::Postgres {
            config.worker.redis_url = Some(testkit::redis_url());
            config.worker.queue_namespace = format!("apq-{}", uuid::Uuid::now_v7().simple());
        }
    })
    .await;
    let hash = sha256(QUERY);

    // Miss: the hash alone, before anyone sent the document.
    let (status, body) = post(&app, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(
        (status, code(&body)),
        (400, "PERSISTED_QUERY_NOT_FOUND"),
        "{body}"
    );

    // Register: the document with its hash runs and is kept.
    let (status, body) = post(&app, json!({ "query": QUERY, "extensions": persisted(&hash) })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["products"]["totalCount"], 32);

    // Hit: the hash alone now runs, over POST and over a GET a CDN can cache.
    let (status, body) = post(&app, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(
        (status, &body["data"]["products"]["totalCount"]),
        (200, &json!(32)),
        "{body}"
    );
    let (status, body) = get(&app, &[("extensions", persisted(&hash).to_string())]).await;
    assert_eq!(
        (status, &body["data"]["products"]["totalCount"]),
        (200, &json!(32)),
        "{body}"
    );

    // Mismatch: a hash that is not the document's is refused.
    let (status, body) = post(
        &app,
        json!({ "query": "{ me { id } }", "extensions": persisted(&hash) }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (400, "PERSISTED_QUERY_HASH_MISMATCH"),
        "{body}"
    );

    // A registered mutation still cannot run over GET.
    let mutation = "mutation { logout(refreshToken: \"x\") }";
    let mutation_hash = sha256(mutation);
    post(
        &app,
        json!({ "query": mutation, "extensions": persisted(&mutation_hash) }),
    )
    .await;
    let (status, _) = get(&app, &[("extensions", persisted(&mutation_hash).to_string())]).await;
    assert_eq!(status, 405, "a persisted mutation over GET");
}
on_both_backends!(
    automatic,
    a_hash_is_unknown_until_registered_then_runs_over_post_and_get
);

#[tokio::test]
async fn trusted_documents_mode_runs_only_the_listed_documents() {
    // Arrange: a GraphQL Code Generator manifest with one document, and an
    // Apollo persisted query list with another.
    let dir = tempfile::tempdir().expect("a directory");
    let codegen = dir.path().join("persisted-documents.json");
    std::fs::write(&codegen, json!({ sha256(QUERY): QUERY }).to_string()).expect("write");
    let me = "query Me { me { email } }";
    let apollo = dir.path().join("persisted-query-manifest.json");
    std::fs::write(
        &apollo,
        json!({ "format": "apollo-persisted-query-manifest", "version": 1,
                "operations": [{ "id": sha256(me), "name": "Me", "type": "query", "body": me }] })
        .to_string(),
    )
    .expect("write");

    for (manifest, listed, expected) in [
        (codegen, QUERY, json!({ "products": { "totalCount": 32 } })),
        (apollo, me, json!({ "me": null })),
    ] {
        let app = TestApp::spawn_with(Backend::Sqlite, |config| {
            config.seed_demo_data = true;
            config.trusted_documents = Some(manifest.clone());
        })
        .await;

        // Act and Assert: the listed document runs by hash or in full ...
        let (status, body) = post(&app, json!({ "extensions": persisted(&sha256(listed)) })).await;
        assert_eq!((status, &body["data"]), (200, &expected), "{body}");
        let (status, body) = post(&app, json!({ "query": listed })).await;
        assert_eq!((status, &body["data"]), (200, &expected), "{body}");
        // ... and nothing else does, not even with its own correct hash.
        let other = "{ products(first: 1) { totalCount } }";
        let (status, body) = post(&app, json!({ "query": other })).await;
        assert_eq!(
            (status, code(&body)),
            (400, "PERSISTED_QUERY_NOT_ALLOWED"),
            "{body}"
        );
        let (status, body) = post(
            &app,
            json!({ "query": other, "extensions": persisted(&sha256(other)) }),
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (400, "PERSISTED_QUERY_NOT_ALLOWED"),
            "{body}"
        );
        // The WebSocket obeys the same list.
        let mut socket = testkit::WsClient::open(&app.address, None).await;
        socket.subscribe("x", other, json!({})).await;
        match socket.recv().await {
            testkit::Frame::Message(refused) => {
                assert_eq!(refused["type"], "error", "{refused}");
                assert_eq!(
                    refused["payload"][0]["extensions"]["code"],
                    "PERSISTED_QUERY_NOT_ALLOWED"
                );
            }
            closed => panic!("expected an error message: {closed:?}"),
        }
    }
}
