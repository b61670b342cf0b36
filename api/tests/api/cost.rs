//! Query cost, the Shopify way: a document's cost is computed before it
//! runs, and one over `MAX_QUERY_COST` is refused before any resolver runs.
use serde_json::{Value, json};
use testkit::Backend;

use crate::helpers::{TestApp, on_both_backends};

/// `aliases` full pages of products with their prices: each costs
/// 2 + 100 × (node 1 + price 1) = 202.
fn pages(aliases: usize) -> String {
    let fields: Vec<String> = (0..aliases)
        .map(|n| format!("p{n}: products(first: 100) {{ nodes {{ name price {{ formatted }} }} }}"))
        .collect();
    format!("{{ {} }}", fields.join(" "))
}

async fn post(app: &TestApp, query: &str) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

async fn a_document_over_the_cost_limit_is_refused_before_any_sql_runs(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    // Within the limit (4 × 202 = 808) the resolvers run, and run SQL.
    let before = app.statements();
    let (status, body) = post(&app, &pages(4)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["p3"]["nodes"].is_array(), "{body}");
    assert!(app.statements() > before, "listing products runs SQL");

    // Over it (5 × 202 = 1010): refused as a whole, and not a statement ran.
    let before = app.statements();
    let (status, body) = post(&app, &pages(5)).await;
    assert_eq!(
        app.statements(),
        before,
        "no SQL ran for a refused document: {body}"
    );
    assert_eq!(status, 400, "a request error: {body}");
    assert!(body.get("data").is_none(), "nothing ran: {body}");
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "MAX_COST_EXCEEDED", "{body}");
    assert_eq!(error["extensions"]["cost"], 1010);
    assert_eq!(error["extensions"]["maxCost"], 1000);
    assert_eq!(
        error["message"],
        "Query cost is 1010, which exceeds the single query max cost limit (1000)."
    );
}
on_both_backends!(
    over_the_cost_limit,
    a_document_over_the_cost_limit_is_refused_before_any_sql_runs
);
