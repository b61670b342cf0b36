//! `api`: the Storefront GraphQL server. See `api::cli` for the commands.
/// mimalloc instead of glibc's malloc: bench/README.md "Per request, a system
/// call, and the allocator".
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    worker::process::run_main("api", api::cli::run)
}
