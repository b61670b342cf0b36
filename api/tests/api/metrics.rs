//! `/metrics` of the api: where it is served, and what it says about HTTP
//! requests and GraphQL operations. The recorder is global to the test
//! process, so each test counts under names of its own.
use std::net::SocketAddr;

use api::config::Environment;
use serde_json::json;
use testkit::Backend;

use crate::helpers::TestApp;

async fn text(app: &TestApp, url: &str) -> (u16, String) {
    let response = app.client.get(url).send().await.expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

/// The value of the series `series` (name and labels exactly as rendered).
fn value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requests_are_counted_by_route_pattern_and_operations_by_name_type_and_error_code() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for _ in 0..3 {
        app.graphql(
            "query MetricsListing { products(first: 2) { totalCount } }",
            json!({}),
        )
        .await;
    }
    app.graphql("mutation MetricsBadLogin { login(input: {email: \"nobody@example.com\", password: \"wrong-password\"}) { accessToken } }", json!({}))
        .await;
    app.graphql("query MetricsInvalid { noSuchField }", json!({}))
        .await;
    let (status, _) = text(&app, &app.url("/playground/assets/metrics-test-file.js")).await;
    assert_eq!(status, 404);

    let (status, page) = text(&app, &app.url("/metrics")).await;

    assert_eq!(status, 200);
    assert_eq!(
        value(
            &page,
            r#"storefront_graphql_operations_total{operation="MetricsListing",type="query"}"#
        ),
        Some(3.0),
        "{page}"
    );
    assert!(
        page.contains(r#"storefront_graphql_operation_duration_seconds_bucket{operation="MetricsListing",type="query",le="0.005"}"#),
        "a latency histogram per operation: {page}"
    );
    assert_eq!(
        value(
            &page,
            r#"storefront_graphql_errors_total{operation="MetricsBadLogin",type="mutation",code="UNAUTHENTICATED"}"#
        ),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        value(
            &page,
            r#"storefront_graphql_errors_total{operation="MetricsInvalid",type="query",code="GRAPHQL_VALIDATION_FAILED"}"#
        ),
        Some(1.0),
        "{page}"
    );
    assert!(
        page.contains(
            r#"storefront_http_requests_total{method="GET",route="/playground/assets/{file}",status="404"}"#
        ),
        "routes are patterns: {page}"
    );
    assert!(!page.contains("metrics-test-file"), "never the raw path");
    assert!(page.contains(
        r#"storefront_http_request_duration_seconds_bucket{method="POST",route="/graphql",status="200",le="#
    ));
    assert!(
        page.contains(r#"storefront_db_pool_connections{state="idle"}"#),
        "{page}"
    );
    assert!(page.contains("storefront_outbox_backlog "), "{page}");
    assert!(page.contains("# TYPE storefront_graphql_operations_total counter"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_metrics_bind_the_page_is_served_there_and_not_on_the_api_port() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.metrics_bind = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    let port = app.metrics_port.expect("a metrics port");

    let (status, page) = text(&app, &format!("http://127.0.0.1:{port}/metrics")).await;
    let (api_status, _) = text(&app, &app.url("/metrics")).await;

    assert_eq!(status, 200);
    assert!(page.contains("storefront_db_pool_max_connections"), "{page}");
    assert_eq!(api_status, 404, "the api port has no /metrics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_without_metrics_bind_serves_no_metrics_on_the_api_port() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.environment = Environment::Production;
    })
    .await;

    let (status, _) = text(&app, &app.url("/metrics")).await;

    assert_eq!(status, 404);
}
