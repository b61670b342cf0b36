//! Node programs run by tests (the example web client, graphql-http's
//! audit), from a package directory whose `node_modules` `scripts/test`
//! installs with `npm ci`.
use std::path::Path;
use std::process::Output;
use std::time::Duration;

/// Runs `node <script>` in `dir` with `env` added, for at most `within`.
///
/// # Panics
/// When `dir` lacks one of `packages` in its `node_modules` (the message
/// says how to install them), when node cannot start, or past `within`.
pub async fn run(
    dir: &Path,
    packages: &[&str],
    script: &str,
    env: &[(&str, &str)],
    within: Duration,
) -> Output {
    for package in packages {
        assert!(
            dir.join("node_modules").join(package).is_dir(),
            "{} has no node_modules/{package}: run scripts/test (it runs npm ci there), or `npm ci` in it",
            dir.display()
        );
    }
    let mut command = tokio::process::Command::new("node");
    command.arg(script).current_dir(dir).kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    tokio::time::timeout(within, command.output())
        .await
        .unwrap_or_else(|_| panic!("node {script} did not finish within {within:?}"))
        .expect("node runs (install nodejs: scripts/test does)")
}
