//! graphql-http's audit of the GraphQL-over-HTTP transport (its 61 checks,
//! MUSTs, SHOULDs and MAYs) against the real api: every check passes, none
//! with a warning. The audit runs in Node from `api/tests/audit`.
use std::path::PathBuf;
use std::time::Duration;

use testkit::Backend;

use crate::helpers::TestApp;

#[tokio::test]
async fn graphql_https_audit_passes_every_check_without_a_warning() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/audit");
    assert!(
        dir.join("node_modules/graphql-http").is_dir(),
        "api/tests/audit has no node_modules: run scripts/test (it runs npm ci there)"
    );
    let app = TestApp::spawn(Backend::Sqlite).await;

    let run = tokio::process::Command::new("node")
        .arg("audit.mjs")
        .current_dir(&dir)
        .env("AUDIT_URL", app.url("/graphql"))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the audit finished within 60 s")
        .expect("node runs");

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
