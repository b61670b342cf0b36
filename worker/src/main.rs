//! `worker`: the Storefront job runner. See `worker::cli` for the commands.
fn main() -> std::process::ExitCode {
    worker::process::run_main("worker", worker::cli::run)
}
