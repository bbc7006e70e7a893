//! One daemon per SQLite database: an exclusive `flock` on a file beside it, released by the
//! kernel when the process dies, so a crash never leaves a stale lock.

use anyhow::Context;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub struct DaemonLock {
    _file: File,
}

impl DaemonLock {
    pub fn acquire(db: &Path) -> anyhow::Result<DaemonLock> {
        let path = PathBuf::from(format!("{}.daemon.lock", db.display()));
        use std::os::unix::fs::OpenOptionsExt;
        // Empty, but beside the database: owner-only like everything there.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot open the daemon lock {}", path.display()))?;
        // SAFETY: the descriptor is valid for the life of `file`.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            anyhow::bail!(
                "another qbo-console daemon already serves the SQLite database {} (lock {} is held); \
                 SQLite supports one daemon: stop the other, or move to PostgreSQL to run several",
                db.display(),
                path.display()
            );
        }
        Ok(DaemonLock { _file: file })
    }
}
