fn main() -> std::process::ExitCode {
    eprintln!("{}", api::NOT_YET);
    std::process::ExitCode::FAILURE
}
