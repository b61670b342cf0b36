//! `api`: the Storefront GraphQL server. See `api::cli` for the commands.
fn main() -> std::process::ExitCode {
    worker::process::run_main("api", api::cli::run)
}
