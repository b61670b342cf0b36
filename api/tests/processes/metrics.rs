//! The monitoring files under `deploy/` against the real binaries:
//! `promtool check rules` on the alert rules, `promtool check metrics` on
//! the `/metrics` page of a real api and a real worker after orders went
//! through them, and every metric name the Grafana dashboard and the alert
//! rules use found on one of those pages (a renamed metric would leave a
//! panel empty and an alert silent).
//!
//! promtool is Debian's `prometheus` package (`PROMTOOL_BIN`, else
//! `promtool` on `PATH`; `scripts/test` installs it when missing). Without
//! it the promtool checks are skipped with a loud message, the name check
//! still runs.
use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::Cluster;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(file)
}

/// promtool, or `None` after saying loudly that its checks are skipped.
fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PROMTOOL_BIN")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::var_os("PATH").into_iter().flat_map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("promtool"))
                .collect::<Vec<_>>()
        }))
        .find(|path| path.is_file());
    if found.is_none() {
        eprintln!(
            "\n######## SKIPPED: promtool not found, so `promtool check` did NOT run. \
             Install it (apt-get install prometheus) or run scripts/test, which does. ########\n"
        );
    }
    found
}

/// Runs `promtool args` with `stdin`; panics with its output unless it succeeds.
fn check(promtool: &Path, args: &[&str], stdin: &str) {
    let mut child = Command::new(promtool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(stdin.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{said}");
    assert!(
        !said.contains("WARNING") && !said.contains("FAILED"),
        "promtool {args:?} complained:\n{said}"
    );
}

/// The metric names in PromQL `text`: every identifier of our metrics'
/// families (`storefront_*`, and the names other modules emit).
fn metric_names(text: &str) -> BTreeSet<String> {
    const FAMILIES: [&str; 4] = ["storefront_", "graphql_", "circuit_breaker_", "rate_limited_"];
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|token| FAMILIES.iter().any(|family| token.starts_with(family)))
        .map(str::to_owned)
        .collect()
}

/// Every `expr` of the dashboard's panels.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    let mut exprs = Vec::new();
    let mut stack = vec![dashboard];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(expr)) = object.get("expr") {
                    exprs.push(expr.clone());
                }
                stack.extend(object.values());
            }
            Value::Array(values) => stack.extend(values),
            _ => {}
        }
    }
    exprs
}

/// Whether `page` has a sample of the series `name` (any labels).
fn has_series(page: &str, name: &str) -> bool {
    page.lines().any(|line| {
        line.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
    })
}

#[test]
fn the_alert_rules_pass_promtool_check_rules() {
    let Some(promtool) = promtool() else { return };
    let rules = deploy("prometheus/alerts.yml");

    check(&promtool, &["check", "rules", &rules.to_string_lossy()], "");
}

#[test]
fn the_dashboard_is_an_importable_grafana_dashboard_with_a_prometheus_input() {
    let text = std::fs::read_to_string(deploy("grafana/storefront.json")).expect("read the dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");

    assert_eq!(dashboard["uid"], "storefront");
    assert_eq!(dashboard["__inputs"][0]["pluginId"], "prometheus");
    let input = format!(
        "${{{}}}",
        dashboard["__inputs"][0]["name"].as_str().unwrap_or_default()
    );
    let panels = dashboard["panels"].as_array().expect("panels");
    let queried: Vec<&Value> = panels.iter().filter(|p| p["type"] != "row").collect();
    assert!(queried.len() >= 10, "a panel per figure the issue names");
    for panel in queried {
        assert_eq!(panel["datasource"]["uid"], input.as_str(), "{}", panel["title"]);
        assert!(
            panel["targets"].as_array().is_some_and(|t| !t.is_empty()),
            "{}",
            panel["title"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_binaries_expose_valid_metrics_with_every_series_the_dashboard_and_alerts_use() {
    // Arrange: orders through a real api and worker, and reads that batch
    let mut cluster = Cluster::start("metrics", &[]).await;
    let worker = cluster.start_worker(&[]).await;
    let admin = cluster.admin().await;
    let product = cluster.create_product(&admin, "METRICS-1", 100).await;
    let customers = cluster.register_many("metrics", 3).await;
    let orders = cluster.order_one_each(&customers, &product).await;
    cluster.wait_until_paid(&orders, Duration::from_secs(60)).await;
    cluster.assert_every_email_once(&orders, customers.len()).await;
    let listed = cluster
        .graphql(
            Some(&admin.access_token),
            "query AdminOrders { orders(first: 10) { nodes { lines { product { name } } payment { status } } } }",
            json!({}),
        )
        .await;
    assert!(listed["errors"].is_null(), "{listed}");
    let refused = cluster
        .graphql(
            Some(&customers[0].access_token),
            "query Peek { deadJobCount }",
            json!({}),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );

    // Act
    let http = &cluster.graphql.http;
    let api_page = http
        .get(cluster.api.url("/metrics"))
        .send()
        .await
        .expect("GET the api's /metrics")
        .text()
        .await
        .expect("text");
    let worker_page = http
        .get(worker.url("/metrics"))
        .send()
        .await
        .expect("GET the worker's /metrics")
        .text()
        .await
        .expect("text");

    // Assert: both pages pass promtool's linter
    std::fs::write(cluster.dir.join("api.metrics.txt"), &api_page).expect("keep the api's page");
    std::fs::write(cluster.dir.join("worker.metrics.txt"), &worker_page).expect("keep the worker's page");
    if let Some(promtool) = promtool() {
        check(&promtool, &["check", "metrics"], &api_page);
        check(&promtool, &["check", "metrics"], &worker_page);
    }
    // ... and show what the dashboard and the alerts ask for
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy("grafana/storefront.json")).expect("read the dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut used = BTreeSet::new();
    for expr in dashboard_exprs(&dashboard) {
        used.extend(metric_names(&expr));
    }
    used.extend(metric_names(
        &std::fs::read_to_string(deploy("prometheus/alerts.yml")).expect("read the alerts"),
    ));
    assert!(used.len() >= 15, "names found in the files: {used:?}");
    let missing: Vec<&String> = used
        .iter()
        .filter(|name| !has_series(&api_page, name) && !has_series(&worker_page, name))
        .collect();
    assert!(
        missing.is_empty(),
        "used by the dashboard or the alerts, on neither page: {missing:?}\n--- api:\n{api_page}\n--- worker:\n{worker_page}"
    );
    // The worker did the jobs and says it is alive.
    assert!(has_series(&worker_page, "storefront_jobs_finished_total"));
    assert!(
        worker_page.contains("storefront_workers_alive 1"),
        "{worker_page}"
    );
}
