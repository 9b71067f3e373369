fn main() -> std::process::ExitCode {
    sheping::cli::main()
}
