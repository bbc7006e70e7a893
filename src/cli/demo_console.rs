//! `qbo-console demo` on a terminal: the console over a world of its own (`demo_world`),
//! reached through the daemon's socket like any operator's console, with one key more
//! that moves the emulator's and the daemon's clocks an hour forward.

use super::demo_world::{self, DemoWorld};
use super::Failure;
use anyhow::Context;
use futures_util::future::BoxFuture;
use qbo_core::config::Config;
use qbo_service::{Client, Interface, SocketClient};
use qbo_tui::{self as tui, ConsoleOptions, DemoControl};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How long the clocks move per press of the demo's key.
const STEP: chrono::Duration = chrono::Duration::hours(1);

pub async fn run(keep: bool, tenants: usize) -> Result<(), Failure> {
    let dir = new_dir(&demo_world::default_dir())?;
    // Removes the directory however this function ends (an error, a panic unwinding
    // through the console, Ctrl-C during the build), unless the operator asked to keep it.
    let mut guard = RemoveOnDrop(if keep { None } else { Some(dir.clone()) });
    log_to_file(&dir.join("demo.log"))?;
    eprintln!(
        "qbo-console demo: starting the Intuit emulator, the daemon and {tenants} tenants in {} …",
        dir.display()
    );
    let world = tokio::select! {
        built = demo_world::build(&dir, tenants) => built?,
        _ = interrupted() => {
            eprintln!("qbo-console demo: interrupted while the world was being built");
            return Ok(());
        }
    };
    eprintln!("qbo-console demo: {}", public_listener_line(&world));
    let world = Arc::new(world);
    let config = Config::load(Some(&world.config_path))?;
    let client: Arc<dyn Client> =
        Arc::new(SocketClient::new(world.socket.clone()).declaring(Interface::Tui));
    let opts = ConsoleOptions {
        demo: Some(Arc::new(DemoWorldControl {
            world: world.clone(),
        })),
        ..ConsoleOptions::from_config(&config)
    };
    let shown = tui::run(client, opts).await;
    let ahead = world.clock.now() - chrono::Utc::now();
    shut_down(world, keep).await;
    guard.0 = None;
    if keep {
        eprintln!(
            "qbo-console demo: kept {} (demo.db, token.key, qbo-console.toml, demo.log); look again with\n  qbo-console --config {} --embedded list\n\
             (the demo's clock ran {}h ahead of this machine's: its times read as the future)",
            dir.display(),
            dir.join("qbo-console.toml").display(),
            (ahead.num_seconds() + 1800).div_euclid(3600),
        );
    } else {
        eprintln!(
            "qbo-console demo: stopped the emulator and the daemon; removed {}",
            dir.display()
        );
    }
    shown.map_err(Failure::from)
}

/// The demo's key: both clocks an hour forward, the scheduler catching up on the way.
struct DemoWorldControl {
    world: Arc<DemoWorld>,
}

impl DemoControl for DemoWorldControl {
    fn advance_clock(&self) -> BoxFuture<'_, anyhow::Result<String>> {
        Box::pin(async move {
            self.world.advance(STEP).await?;
            // Short enough for the message line of an 80-column terminal.
            Ok(format!(
                "an hour passed: demo time now {}",
                self.world.clock.now().format("%Y-%m-%d %H:%M UTC")
            ))
        })
    }

    fn toggle_incident(&self) -> BoxFuture<'_, anyhow::Result<String>> {
        Box::pin(self.world.toggle_incident())
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.world.clock.now()
    }

    fn greeting(&self) -> Option<String> {
        Some(public_listener_line(&self.world))
    }
}

/// Where the demo's public listener is and what it is for; the console's first message and
/// the line left on the terminal after it.
fn public_listener_line(world: &DemoWorld) -> String {
    match world.daemon().public_addr {
        Some(addr) => format!(
            "public listener {} (on {addr}): l on a ✗ needs reconnect row copies a reconnect link to open in a browser here",
            world.public_base
        ),
        None => "no public listener: l cannot issue reconnect links".into(),
    }
}

/// Stops the daemon and the emulator. The console's tasks may still hold the world for a
/// moment (an hour being advanced when `q` was pressed); past a few seconds the process
/// ends anyway, so only the directory is dealt with.
async fn shut_down(mut world: Arc<DemoWorld>, keep: bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Arc::try_unwrap(world) {
            Ok(w) => return w.shutdown(keep).await,
            Err(still_shared) if tokio::time::Instant::now() < deadline => {
                world = still_shared;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(still_shared) => {
                if !keep {
                    let _ = std::fs::remove_dir_all(&still_shared.dir);
                }
                return;
            }
        }
    }
}

/// Ctrl-C or SIGTERM, before the console has the terminal.
async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// A new owner-only directory at `base`, or beside it when a demo that was killed left one
/// there (process ids come round again): the world never starts on an old database.
fn new_dir(base: &Path) -> Result<PathBuf, Failure> {
    use std::os::unix::fs::DirBuilderExt;
    for n in 0..100 {
        let dir = match n {
            0 => base.to_path_buf(),
            n => PathBuf::from(format!("{}-{n}", base.display())),
        };
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(anyhow::anyhow!(
                "cannot create the demo's directory {}: {e}; set TMPDIR to a writable directory",
                dir.display()
            )
                .into())
            }
        }
    }
    Err(anyhow::anyhow!(
        "{}-1 to -99 all exist: remove the old demo directories there (or set TMPDIR elsewhere)",
        base.display()
    )
    .into())
}

struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The daemon and the emulator log as they work; on stderr that would write over the
/// console, so it goes to a file in the demo's directory (kept with `--keep`).
fn log_to_file(path: &Path) -> Result<(), Failure> {
    let file = qbo_core::file_modes::NewFiles { group: None }
        .open_log(path)?
        .with_context(|| format!("cannot create the demo's log {}", path.display()))?;
    let spec = super::log_filter(
        &std::env::var("QBO_CONSOLE_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()),
    );
    let filter = tracing_subscriber::EnvFilter::try_new(&spec)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_directory_left_by_a_killed_demo_is_never_reused_and_the_new_one_is_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("qbo-console-demo-42");
        assert_eq!(new_dir(&base).ok(), Some(base.clone()));
        std::fs::write(base.join("demo.db"), "an old world").unwrap();
        let next = new_dir(&base).ok().expect("a directory beside the old one");
        assert_eq!(next, tmp.path().join("qbo-console-demo-42-1"));
        assert_eq!(std::fs::read_dir(&next).unwrap().count(), 0);
        let mode = std::fs::metadata(&next).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    }
}
