//! `qbo-console`: the CLI entry. Everything it does lives in the library (`cli::main`).

/// mimalloc instead of glibc's malloc: the refresh path makes many short-lived buffers
/// across threads (HTTP, JSON, sealing, SQLite rows), where glibc's malloc and free took a
/// quarter of the daemon's CPU (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (mimalloc.h, v2 and v3 alike; the
/// binding names no constant for it).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // Freed memory back to the system at once rather than after mimalloc's delay (1 s), which
    // only runs out when the thread that freed it allocates again: a daemon whose start-up
    // sorted a million rows, or a console that read a long list, otherwise keeps that memory
    // while idle (at a million connections: 421 MB peak and 322 MB idle against 337 and
    // 270; BENCHMARKS.md). `MIMALLOC_PURGE_DELAY` in the environment still decides.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options, a plain integer store, before any thread
        // but this one exists.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
    }
    qbo_console::cli::main()
}
