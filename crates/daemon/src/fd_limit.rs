//! File descriptors: every client connection holds one, and a daemon that runs out can
//! accept no one, operators included. The soft limit is raised to the hard one (what
//! systemd's `LimitNOFILE=` sets), and a configuration whose connection caps do not fit
//! in it is named at start.

use qbo_core::config::{Config, Listener};

/// Descriptors the daemon needs besides its clients' connections: the database pool
/// (SQLite opens the database, its WAL and its shared memory per connection), Intuit's
/// HTTPS connections, the listeners, the log, the runtime's own.
const RESERVE: u64 = 64;

/// Raises the soft limit on open files to the hard limit; returns the soft limit now in
/// force, or None when it cannot be read.
pub fn raise_soft_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the kernel to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above; raising the soft limit up to the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    Some(lim.rlim_cur)
}

/// What the configured caps need at most, reserve included.
pub fn budget(config: &Config) -> u64 {
    let pool = config
        .database()
        .map(|d| u64::from(d.max_connections) * 3)
        .unwrap_or(0);
    config.daemon.max_socket_connections as u64 + http_connections(config) + pool + RESERVE
}

/// Every HTTP listener's cap: `/healthz` and `/metrics`, the token API, and the public
/// listener when it is configured.
fn http_connections(config: &Config) -> u64 {
    Listener::ALL
        .into_iter()
        .filter(|l| *l != Listener::Public || config.public.listen.is_some())
        .map(|l| config.listener_limits(l).max_connections as u64)
        .sum()
}

/// Warns when the caps could use up the descriptors before they are reached.
pub fn check(config: &Config) {
    let Some(limit) = raise_soft_limit() else {
        return;
    };
    let need = budget(config);
    if need > limit {
        tracing::warn!(
            limit,
            need,
            "the open-file limit ({limit}) is below what [daemon] max_socket_connections ({}), \
             the HTTP listeners' caps ({} together: [daemon] max_http_connections, [api] and \
             [public] max_connections) and the database pool may need ({need}); raise \
             LimitNOFILE= in the systemd unit or lower the caps",
            config.daemon.max_socket_connections,
            http_connections(config),
        );
    }
}
