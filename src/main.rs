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
    few_malloc_arenas();
    qbo_console::cli::main()
}

/// SQLite (C) allocates through glibc's malloc, not mimalloc, and glibc gives each thread
/// that allocates at once an arena of its own, up to eight per core; each keeps what its
/// thread freed. The daemon's eight pooled SQLite connections, each on its own thread, held
/// 28–35 MB over six arenas at a million connections; two arenas hold the same work in
/// 12–18 MB less (BENCHMARKS.md, "Issue 24"), with no slower figure measured. The
/// `MALLOC_ARENA_MAX` environment variable, which glibc reads itself, still decides.
fn few_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt sets a glibc malloc parameter; called before any other thread
        // exists, so no allocation races it.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    }
}
