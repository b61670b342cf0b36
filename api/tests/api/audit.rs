//! graphql-http's audit of the GraphQL-over-HTTP transport (its 61 checks,
//! MUSTs, SHOULDs and MAYs) against the real api: every check passes, none
//! with a warning. The audit runs in Node from `api/tests/audit`.
use std::path::PathBuf;
use std::time::Duration;

use testkit::Backend;

use crate::helpers::TestApp;

#[tokio::test]
async fn graphql_https_audit_passes_every_check_without_a_warning() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let url = app.url("/graphql");

    let output = testkit::node::run(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/audit"),
        &["graphql-http"],
        "audit.mjs",
        &[("AUDIT_URL", &url)],
        Duration::from_secs(60),
    )
    .await;

    let stdout = String::from_utf8_lossy(&output.stdout);
    let not_ok: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("warn ") || line.starts_with("error "))
        .collect();
    assert!(
        output.status.success() && not_ok.is_empty(),
        "{not_ok:#?}\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("61 checks, 0 not ok"), "{stdout}");
}
