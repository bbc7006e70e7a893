//! `qbo-console`: the CLI entry. Everything it does lives in the library (`cli::main`).

fn main() -> std::process::ExitCode {
    qbo_console::cli::main()
}
