//! How a Storefront process starts and stops, the same for both binaries:
//! one runtime, `.env` read first, errors printed as one chain, and the
//! shutdown signal (SIGTERM, what orchestrators send, or Ctrl-C).

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Runs `main` on a new multi-threaded runtime, printing its error as
/// `<program>: <error chain>`; the exit code says whether it succeeded.
/// `.env` is read first, before any thread exists (setting variables later
/// is unsound).
pub fn run_main<F: Future<Output = anyhow::Result<()>>>(
    program: &str,
    main: impl FnOnce() -> F,
) -> std::process::ExitCode {
    let _ = dotenvy::dotenv();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("{program}: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{program}: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
