//! The example client in `examples/web-client` (urql + graphql-ws in Node)
//! run against the real api: register, browse, order, and watch the order
//! over the WebSocket until it is PAID.
use std::path::PathBuf;
use std::time::Duration;

use testkit::Backend;

use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_web_client_orders_and_sees_its_order_paid_over_the_websocket() {
    // Arrange: the api as `cargo run -p api` runs it: demo catalog, jobs in process.
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.seed_demo_data = true;
        config.embedded_worker = true;
    })
    .await;

    // Act: `sandbox_flaky` fails twice before settling (a second apart at
    // the default backoff), so the client sees the order pending first.
    let output = testkit::node::run(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/web-client"),
        &["@urql/core", "graphql-ws"],
        "main.mjs",
        &[
            ("STOREFRONT_URL", &app.address),
            ("PAYMENT_TOKEN", "sandbox_flaky"),
            ("TIMEOUT_SECS", "60"),
        ],
        Duration::from_secs(90),
    )
    .await;

    // Assert: what the client printed
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        output.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("registered web-client-")),
        "{stdout}"
    );
    assert!(lines.iter().any(|l| l.starts_with("product ")), "{stdout}");
    assert!(lines.iter().any(|l| l.starts_with("ordered ")), "{stdout}");
    let states: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("status "))
        .collect();
    // The first capture runs as soon as the order is placed, so whether the
    // client's first look (the subscription's current state) comes before
    // or after that first failed attempt is a race the client cannot win
    // on a busy machine; what it must see is the order pending first, the
    // attempts only going up, and the order PAID after the third.
    let attempts = |line: &str| -> u32 {
        line.rsplit_once("attempts ")
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or_else(|| panic!("no attempts in {line:?}"))
    };
    let first = states.first().copied().unwrap_or_default();
    assert!(
        first.starts_with("status PENDING_PAYMENT payment AUTHORIZED attempts ")
            && attempts(first) <= entity::payments::sandbox::FLAKY_FAILURES,
        "{stdout}"
    );
    assert!(
        states.windows(2).all(|w| attempts(w[0]) <= attempts(w[1])),
        "{stdout}"
    );
    assert_eq!(
        states.last().copied(),
        Some("status PAID payment SETTLED attempts 3"),
        "{stdout}"
    );
}
