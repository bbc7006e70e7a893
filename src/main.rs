//! `qbo-console`: the CLI entry. Everything it does lives in the library (`cli::main`).

/// mimalloc instead of glibc's malloc: the refresh path makes many short-lived buffers
/// across threads (HTTP, JSON, sealing, SQLite rows), where glibc's malloc and free took a
/// quarter of the daemon's CPU (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    qbo_console::cli::main()
}
