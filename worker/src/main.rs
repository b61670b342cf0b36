fn main() -> std::process::ExitCode {
    eprintln!("{}", worker::NOT_YET);
    std::process::ExitCode::FAILURE
}
