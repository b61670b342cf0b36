//! `api`: the Storefront GraphQL server. See `api::cli` for the commands.
fn main() -> std::process::ExitCode {
    // `.env` is read before any thread exists: setting variables later is unsound.
    let _ = dotenvy::dotenv();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("api: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(api::cli::run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("api: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
