//! The console at 1,000, 100,000 and 1,000,000 connections behind a real `qbo-console
//! serve`, on SQLite and (given a server) PostgreSQL. See BENCHMARKS.md, "Console at
//! scale", for recorded figures and why the console works on windows.
//!
//! For each backend and each size, in one run:
//! 0. the world: a database filled through the store's fixture (`Store::fill_world`:
//!    every state at realistic shares, nothing due for twenty minutes, so the daemon's
//!    scheduler stays idle), then a real `qbo-console serve` child on it, timed until its
//!    consoles' roster is read.
//! 1. frames, in this process with the real pieces: `SocketClient` over the daemon's socket
//!    (`watch` hello, the opening recorded, one window), the console's `App` built by the
//!    real `update`, the frame drawn into a 200×50 `TestBackend`: the first full frame.
//!    Then filter keystrokes and sort changes, each a key through `update`, the window it
//!    asks for answered by the daemon, and a frame. Then the daemon's resident memory with
//!    five more consoles open on it.
//! 2. the binary: `qbo-console tui` in tmux at 120×40: the time to its first full frame and
//!    its peak resident memory.
//!
//! ```sh
//! cargo bench --bench console
//! QBO_BENCH_CONSOLE_SIZES=1000,100000 cargo bench --bench console   # a shorter run
//! QBO_BENCH_CONSOLE_PG_URL=postgres://postgres@127.0.0.1:55432/postgres cargo bench --bench console
//! ```
//!
//! Environment: `QBO_BENCH_CONSOLE_SIZES` (comma-separated, default 1000,100000,1000000),
//! `QBO_BENCH_CONSOLE_PG_URL` (a PostgreSQL server; each world gets a database of its own,
//! dropped after), `QBO_BENCH_CONSOLE_RUNS` (first-frame runs, default 5). Figures are
//! reported, not asserted: the process exits 0 whatever they are and marks every missed
//! target FAIL.

use anyhow::{bail, Context, Result};
use chrono::Utc;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use futures_util::StreamExt;
use qbo_core::identity::{Actor, Interface, Role};
use qbo_service::{Client, SessionEvent, SocketClient, WatchEvent, WatchStream, WindowQuery};
use qbo_store::{Store, WorldCounts};
use qbo_tui::app::{update, App};
use qbo_tui::event::{Cmd, Msg, Session};
use qbo_tui::keymap::Keymap;
use qbo_tui::theme::Theme;
use qbo_tui::views;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

const FRAME_SIZE: (u16, u16) = (200, 50);
const PANE_SIZE: (u16, u16) = (120, 40);
/// Consoles opened on the daemon to measure what each costs it.
const EXTRA_CONSOLES: usize = 5;

const TARGET_FIRST_FRAME_1M_MS: f64 = 1_000.0;
const TARGET_FIRST_FRAME_100K_MS: f64 = 300.0;
const TARGET_FIRST_FRAME_RATIO: f64 = 2.0;
const TARGET_KEYSTROKE_P99_MS: f64 = 100.0;
const TARGET_SORT_MS: f64 = 300.0;
const TARGET_CONSOLE_RSS_MB: f64 = 150.0;
const TARGET_DAEMON_PER_CONSOLE_MB: f64 = 50.0;
const TARGET_SCRAPE_MS: f64 = 50.0;
const TARGET_SERVE_RSS_MB: f64 = 300.0;

/// What is typed on the filter line: a tenant name letter by letter, then field terms.
const TYPED: [&str; 3] = [
    "acme-00012",
    "status:needs_reconnect",
    "left<30 env:production",
];

struct Settings {
    sizes: Vec<u64>,
    pg_url: Option<String>,
    runs: usize,
}

/// Sizes from a comma-separated variable (`1000,1_000_000`), or the default.
fn sizes_from_env(var: &str, default: &[u64]) -> Result<Vec<u64>> {
    match std::env::var(var) {
        Err(_) => Ok(default.to_vec()),
        Ok(v) => v
            .split(',')
            .map(|s| {
                s.trim()
                    .replace('_', "")
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .with_context(|| format!("{var}: {s:?} is not a positive whole number"))
            })
            .collect(),
    }
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let sizes = sizes_from_env("QBO_BENCH_CONSOLE_SIZES", &[1_000, 100_000, 1_000_000])?;
        let runs = match std::env::var("QBO_BENCH_CONSOLE_RUNS") {
            Err(_) => 5,
            Ok(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| {
                    format!("QBO_BENCH_CONSOLE_RUNS={v:?} is not a positive whole number")
                })?,
        };
        Ok(Settings {
            sizes,
            pg_url: std::env::var("QBO_BENCH_CONSOLE_PG_URL")
                .ok()
                .filter(|u| !u.is_empty()),
            runs,
        })
    }
}

#[path = "console/import.rs"]
mod import;
#[path = "shared/pg_database.rs"]
mod pg_database;

fn main() -> ExitCode {
    // `cargo bench --bench console -- import`: the import figures instead.
    let imports = std::env::args().skip(1).any(|a| a == "import");
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let job = if imports {
        runtime.spawn(import::run(settings))
    } else {
        runtime.spawn(run(settings))
    };
    if let Err(e) = runtime.block_on(job) {
        println!("FAIL: the bench itself panicked: {e}");
    }
    ExitCode::SUCCESS
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// One size on one backend, measured.
struct Figures {
    backend: Backend,
    n: u64,
    fill: Duration,
    roster: Duration,
    first_frame: Spread,
    keystroke: Spread,
    sort: Spread,
    daemon_per_console_kb: i64,
    daemon_hwm_kb: u64,
    console: Option<(Duration, u64)>,
    /// `list --json`: wall time, the CLI's peak RSS (KB), the daemon's RSS before and at
    /// most (KB).
    listing: Option<(Duration, u64, u64, u64)>,
    /// Scrapes of `/metrics`.
    scrape: Option<Spread>,
    problems: Vec<String>,
}

async fn run(s: Settings) {
    let started = Instant::now();
    println!("qbo-console console bench");
    println!("  machine: {}", machine());
    println!("  source: {}", source_revision());
    println!(
        "  load average at start: {} (other work on this machine skews every figure)",
        loadavg()
    );
    let mut backends = vec![Backend::Sqlite];
    match &s.pg_url {
        Some(_) => backends.push(Backend::Postgres),
        None => println!(
            "  PostgreSQL: skipped (set QBO_BENCH_CONSOLE_PG_URL to a server to measure it)"
        ),
    }
    let mut all = Vec::new();
    for backend in backends {
        for &n in &s.sizes {
            println!("\n== {} with {n} connections", backend.name());
            match measure(&s, backend, n).await {
                Ok(f) => all.push(f),
                Err(e) => println!("  FAIL: could not measure: {e:#}"),
            }
        }
    }
    summary(&all);
    println!(
        "\nbench finished in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

async fn measure(s: &Settings, backend: Backend, n: u64) -> Result<Figures> {
    let world = World::build(s, backend, n).await?;
    let result = measure_in(s, &world).await;
    world.stop().await;
    result
}

async fn measure_in(s: &Settings, world: &World) -> Result<Figures> {
    let client = world.client();
    let mut problems = Vec::new();
    let mut firsts = Vec::new();
    let mut kept = None;
    for _ in 0..s.runs {
        let (screen, feed, took) = first_frame(&client).await?;
        firsts.push(took);
        if screen.tenant_lines() < (world.n as usize).min(30) {
            problems.push(format!(
                "the first frame showed {} tenant rows",
                screen.tenant_lines()
            ));
        }
        kept = Some((screen, feed));
    }
    let first = spread(&firsts);
    println!("  first full frame: {first}");
    let (mut screen, _feed) = kept.context("no first frame")?;

    let mut keys = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    for text in TYPED {
        keys.push(screen.key(&client, KeyCode::Char('/')).await?);
        for c in text.chars() {
            let took = screen.key(&client, KeyCode::Char(c)).await?;
            if took > slowest.0 {
                slowest = (took, screen.app.filter_text.clone());
            }
            keys.push(took);
        }
        let shown = screen.app.table.visible_len();
        // Enter closes the line, Esc on the table clears the filter: both are frames too.
        keys.push(screen.key(&client, KeyCode::Enter).await?);
        keys.push(screen.key(&client, KeyCode::Esc).await?);
        println!("  filter {text:?}: {shown} of {} shown", world.n);
        if screen.app.table.visible_len() as u64 != world.n {
            problems.push(format!(
                "clearing the filter {text:?} did not show every connection again"
            ));
        }
    }
    let keystroke = spread(&keys);
    println!(
        "  filter keystroke to frame: {keystroke} (slowest typed: {:?})",
        slowest.1
    );

    let mut sorts = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    for _ in 0..qbo_service::sort::SortKey::ALL.len() {
        let took = screen.key(&client, KeyCode::Char('s')).await?;
        if took > slowest.0 {
            slowest = (took, screen.app.table.sort().key.name().to_string());
        }
        sorts.push(took);
    }
    let sort = spread(&sorts);
    println!("  sort change to frame: {sort} (slowest: by {})", slowest.1);

    let before = proc_status_kb(world.pid, "VmRSS:").unwrap_or(0);
    let mut extra = Vec::new();
    for i in 0..EXTRA_CONSOLES {
        let (mut other, feed, _) = first_frame(&client).await?;
        // Each console its own filter and order, as different operators would.
        for c in format!("{}", i + 1).chars() {
            other.key(&client, KeyCode::Char('/')).await?;
            other.key(&client, KeyCode::Char(c)).await?;
        }
        other.key(&client, KeyCode::Char('s')).await?;
        extra.push((other, feed));
    }
    let after = proc_status_kb(world.pid, "VmRSS:").unwrap_or(0);
    let daemon_per_console_kb = (after as i64 - before as i64) / EXTRA_CONSOLES as i64;
    println!(
        "  daemon VmRSS {:.1} MB with one console, {:.1} MB with {} more: {:.1} MB each",
        mb(before),
        mb(after),
        EXTRA_CONSOLES,
        daemon_per_console_kb as f64 / 1024.0
    );
    drop(extra);

    let scrape = match metrics_scrape(world).await {
        Ok(sp) => {
            println!("  GET /metrics: {sp}");
            Some(sp)
        }
        Err(e) => {
            problems.push(format!("/metrics: {e:#}"));
            None
        }
    };

    let listing = match list_json(world) {
        Ok(l) => Some(l),
        Err(e) => {
            problems.push(format!("list --json: {e:#}"));
            None
        }
    };

    let console = match binary(world).await {
        Ok(c) => Some(c),
        Err(e) => {
            problems.push(format!("the binary in tmux: {e:#}"));
            None
        }
    };
    Ok(Figures {
        backend: world.backend,
        n: world.n,
        fill: world.fill,
        roster: world.roster,
        first_frame: first,
        keystroke,
        sort,
        daemon_per_console_kb,
        daemon_hwm_kb: proc_status_kb(world.pid, "VmHWM:").unwrap_or(0),
        console,
        listing,
        scrape,
        problems,
    })
}

/// Twenty scrapes of the daemon's `/metrics`, as Prometheus makes them, each timed whole
/// (request to the last byte of the body).
async fn metrics_scrape(world: &World) -> Result<Spread> {
    let log = std::fs::read_to_string(&world.log_path).context("reading the daemon's log")?;
    let base = log
        .lines()
        .filter(|l| l.contains("qbo-console serving"))
        .find_map(|l| {
            let i = l.find("http://")?;
            l[i..].split_whitespace().next().map(str::to_string)
        })
        .context("the daemon's log names no HTTP listener")?;
    let url = format!("{}/metrics", base.trim_end_matches('/'));
    let http = reqwest::Client::new();
    let mut took = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let body = http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?
            .text()
            .await?;
        took.push(t.elapsed());
        if !body.contains("qbo_connections") {
            bail!("{url} answered without the connection counts");
        }
    }
    Ok(spread(&took))
}

/// A CLI run through the daemon, measured.
struct CliRun {
    took: Duration,
    /// The CLI's peak RSS (KB), from wait4's rusage.
    cli_kb: u64,
    /// The daemon's RSS before, and the most it reached while the CLI ran (KB).
    daemon_before_kb: u64,
    daemon_peak_kb: u64,
    /// The exit code, if it exited.
    code: Option<i32>,
    stderr: String,
}

/// Runs `qbo-console ARGS` through the daemon with stdout to /dev/null, polling the
/// daemon's RSS while it runs.
fn run_cli(world: &World, args: &[&str]) -> Result<CliRun> {
    use std::io::Read;
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_qbo-console"));
    let before = proc_status_kb(world.pid, "VmRSS:").unwrap_or(0);
    let errors = world.dir.path().join("cli.stderr");
    let t = Instant::now();
    let child = std::process::Command::new(&bin)
        .arg("--config")
        .arg(&world.config_path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&errors).context("creating the CLI's stderr file")?)
        .spawn()
        .with_context(|| format!("starting qbo-console {}", args.join(" ")))?;
    let pid = child.id() as libc::pid_t;
    let mut peak_daemon = before;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 on our own child, with WNOHANG, and valid pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        if r < 0 {
            bail!("wait4 failed: {}", std::io::Error::last_os_error());
        }
        peak_daemon = peak_daemon.max(proc_status_kb(world.pid, "VmRSS:").unwrap_or(0));
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = t.elapsed();
    let mut stderr = String::new();
    std::fs::File::open(&errors)
        .and_then(|mut f| f.read_to_string(&mut stderr))
        .context("reading the CLI's stderr")?;
    Ok(CliRun {
        took,
        cli_kb: usage.ru_maxrss as u64,
        daemon_before_kb: before,
        daemon_peak_kb: peak_daemon,
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stderr,
    })
}

/// `qbo-console list --json` through the daemon into /dev/null: its wall time, the CLI's
/// peak RSS and how far it raised the daemon's RSS.
fn list_json(world: &World) -> Result<(Duration, u64, u64, u64)> {
    let run = run_cli(world, &["list", "--json"])?;
    if run.code != Some(0) {
        bail!("list --json failed ({:?}): {}", run.code, run.stderr.trim());
    }
    let daemon_delta = run.daemon_peak_kb as i64 - run.daemon_before_kb as i64;
    println!(
        "  list --json of {} rows: {:.2} s; CLI peak RSS {:.1} MB; daemon RSS rose by {:.1} MB at most",
        world.n,
        run.took.as_secs_f64(),
        mb(run.cli_kb),
        daemon_delta as f64 / 1024.0
    );
    Ok((
        run.took,
        run.cli_kb,
        run.daemon_before_kb,
        run.daemon_peak_kb,
    ))
}

// ---------------------------------------------------------------------------------------
// The world.

struct World {
    backend: Backend,
    dir: tempfile::TempDir,
    config_path: PathBuf,
    socket: PathBuf,
    log_path: PathBuf,
    daemon: ChildGuard,
    pid: u32,
    n: u64,
    fill: Duration,
    roster: Duration,
    /// PostgreSQL: the server and the database made for this world, dropped after.
    pg: Option<(String, String)>,
}

fn write_owner_only(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(value.as_bytes())
}

/// The daemon's config: no Intuit environment is reached (nothing is due), this account is
/// `support`, and the log says when the roster is ready.
fn write_config(dir: &Path, url: &str, account: &str, role: &str) -> Result<PathBuf> {
    let key = qbo_core::vault::generate_key();
    write_owner_only(&dir.join("token.key"), key.as_str()).context("writing the key file")?;
    write_owner_only(&dir.join("sandbox.secret"), "bench-secret")
        .context("writing the client secret")?;
    let signing = qbo_core::vault::generate_key();
    write_owner_only(&dir.join("audit-signing.key"), signing.as_str())
        .context("writing the audit signing key")?;
    let d = dir.display();
    // The daemon's default pool (8): each SQLite connection keeps up to 2 MB of page cache,
    // so the 16 this bench once asked for cost the daemon 26 MB that a default install does
    // not spend (BENCHMARKS.md, "The daemon's peak at a million").
    let text = format!(
        r#"[database]
url = "{url}"

[vault]
key_file = "{d}/token.key"

[environments.sandbox]
client_id = "bench-client"
client_secret_file = "{d}/sandbox.secret"
redirect_uri = "http://localhost:8080/callback"
token_endpoint = "http://127.0.0.1:9/oauth2/v1/tokens/bearer"
revocation_endpoint = "http://127.0.0.1:9/v2/oauth2/tokens/revoke"
api_base = "http://127.0.0.1:9"

[daemon]
socket = "{d}/ops.sock"
http_listen = "127.0.0.1:0"

[api]
listen = "127.0.0.1:0"

[audit]
signing_key_file = "{d}/audit-signing.key"

[roles]
{role} = ["{account}"]

[log]
level = "info"
"#
    );
    let path = dir.join("qbo-console.toml");
    std::fs::write(&path, text).context("writing the config file")?;
    Ok(path)
}

impl World {
    async fn build(s: &Settings, backend: Backend, n: u64) -> Result<World> {
        World::build_as(s, backend, n, "support").await
    }

    /// A world whose account has `role` at the daemon.
    async fn build_as(s: &Settings, backend: Backend, n: u64, role: &str) -> Result<World> {
        let binary = PathBuf::from(env!("CARGO_BIN_EXE_qbo-console"));
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let (url, pg) = match backend {
            Backend::Sqlite => (format!("sqlite://{}/bench.db", dir.path().display()), None),
            Backend::Postgres => {
                let server = s.pg_url.clone().context("no PostgreSQL server")?;
                let name = format!("qbo_bench_{}_{n}", std::process::id());
                let url = pg_database::create(&server, &name).await?;
                (url, Some((server, name)))
            }
        };
        let me = Actor::current_process(Interface::Cli, Role::Admin);
        let config_path = write_config(dir.path(), &url, &me.name(), role)?;
        let t = Instant::now();
        let store = Store::connect(
            &qbo_core::config::DatabaseConfig {
                url: url.clone(),
                max_connections: 4,
                connect_timeout: Duration::from_secs(10),
            },
            None,
        )
        .await
        .context("opening the database")?;
        store.migrate().await?;
        let counts: WorldCounts = store
            .fill_world(n, Utc::now())
            .await
            .context("filling the world")?;
        store.close().await;
        let fill = t.elapsed();
        println!(
            "  world filled through the store in {:.1} s: {counts:?}",
            fill.as_secs_f64()
        );
        if backend == Backend::Postgres {
            let t = Instant::now();
            pg_database::settle(&url).await?;
            println!(
                "  vacuumed and analysed in {:.1} s, as a long-lived database is (not in the fill's time)",
                t.elapsed().as_secs_f64()
            );
        }
        if counts.total() != n {
            bail!("the world holds {} connections, not {n}", counts.total());
        }

        let log_path = dir.path().join("daemon.log");
        let log = std::fs::File::create(&log_path).context("creating the daemon log file")?;
        let t = Instant::now();
        let child = std::process::Command::new(&binary)
            .arg("--config")
            .arg(&config_path)
            .arg("serve")
            .env_remove("QBO_CONSOLE_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("cannot start {} serve", binary.display()))?;
        let mut daemon = ChildGuard(Some(child));
        let pid = daemon.0.as_ref().map(|c| c.id()).unwrap_or_default();
        loop {
            if let Some(c) = daemon.0.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    bail!(
                        "qbo-console serve exited ({status}); its log:\n    {}",
                        log_tail(&log_path)
                    );
                }
            }
            if std::fs::read_to_string(&log_path)
                .unwrap_or_default()
                .contains("consoles' roster ready")
            {
                break;
            }
            if t.elapsed() > Duration::from_secs(300) {
                bail!(
                    "the daemon's roster was not ready within 300 s; its log:\n    {}",
                    log_tail(&log_path)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let roster = t.elapsed();
        println!(
            "  `qbo-console serve` (pid {pid}) started and read its roster in {:.2} s; VmRSS {:.1} MB",
            roster.as_secs_f64(),
            mb(proc_status_kb(pid, "VmRSS:").unwrap_or(0))
        );
        Ok(World {
            backend,
            socket: dir.path().join("ops.sock"),
            dir,
            config_path,
            log_path,
            daemon,
            pid,
            n,
            fill,
            roster,
            pg,
        })
    }

    fn client(&self) -> SocketClient {
        SocketClient::new(&self.socket).declaring(Interface::Tui)
    }

    async fn stop(mut self) {
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if let Some(c) = self.daemon.0.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    self.daemon.0 = None;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let errors = log.lines().filter(|l| l.contains("ERROR")).count();
        if errors > 0 {
            println!(
                "  the daemon logged {errors} ERROR lines; last lines:\n    {}",
                log_tail(&self.log_path)
            );
        }
        if let Some((server, name)) = self.pg.take() {
            pg_database::drop(&server, &name).await;
        }
        drop(self.dir);
    }
}

// ---------------------------------------------------------------------------------------
// Frames in this process.

/// A console on a test terminal: the state, and the terminal it is drawn on.
struct Screen {
    app: App,
    term: Terminal<TestBackend>,
    theme: Theme,
}

impl Screen {
    fn draw(&mut self) -> Result<()> {
        let (app, theme) = (&self.app, &self.theme);
        self.term
            .draw(|f| views::draw(app, theme, app.now, f, f.area()))?;
        Ok(())
    }

    /// A message through `update`, the windows it asks for answered by the daemon as the
    /// console's runtime would, then a frame.
    async fn step(&mut self, client: &SocketClient, msg: Msg) -> Result<Duration> {
        let t = Instant::now();
        let mut queue = vec![msg];
        while let Some(m) = queue.pop() {
            for cmd in update(&mut self.app, m) {
                if let Cmd::Window(query) = cmd {
                    queue.push(window(client, query).await?);
                }
            }
        }
        self.draw()?;
        Ok(t.elapsed())
    }

    async fn key(&mut self, client: &SocketClient, code: KeyCode) -> Result<Duration> {
        self.step(client, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
            .await
    }

    fn tenant_lines(&self) -> usize {
        let buf = self.term.backend().buffer();
        (0..buf.area.height)
            .filter(|&y| {
                let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
                qbo_store::WORLD_WORDS
                    .iter()
                    .any(|w| line.contains(&format!("{w}-")))
            })
            .count()
    }
}

async fn window(client: &SocketClient, query: WindowQuery) -> Result<Msg> {
    let page = client.window(query.clone()).await.context("window")?;
    Ok(Msg::Window { query, page })
}

/// What the console's runtime does before its first frame: subscribe, record the opening,
/// ask for the window the screen needs, then draw.
async fn first_frame(client: &SocketClient) -> Result<(Screen, WatchStream, Duration)> {
    let t = Instant::now();
    let mut feed = client.watch().await.context("watch")?;
    let session = match feed.next().await {
        Some(Ok(WatchEvent::Hello { account, role, .. })) => Session {
            account,
            role,
            embedded: false,
            scheduler_running: true,
            paused: Vec::new(),
            demo: false,
        },
        other => bail!("the watch feed began with {other:?}, not a hello"),
    };
    client
        .session(SessionEvent::Opened)
        .await
        .context("recording the console opened")?;
    let mut screen = Screen {
        app: App::new(session, Keymap::default(), Utc::now(), FRAME_SIZE),
        term: Terminal::new(TestBackend::new(FRAME_SIZE.0, FRAME_SIZE.1))?,
        theme: Theme::dark(),
    };
    screen.step(client, Msg::FeedOpen).await?;
    Ok((screen, feed, t.elapsed()))
}

// ---------------------------------------------------------------------------------------
// The binary.

async fn binary(world: &World) -> Result<(Duration, u64)> {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_qbo-console"));
    let tmux = Tmux {
        name: format!("qbo-console-bench-{}", std::process::id()),
    };
    let command = format!(
        "exec {} --config {} tui",
        bin.display(),
        world.config_path.display()
    );
    let header = format!("{} connections", world.n);
    let t = Instant::now();
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "bench",
        "-x",
        &PANE_SIZE.0.to_string(),
        "-y",
        &PANE_SIZE.1.to_string(),
        &command,
    ])?;
    let pid: u32 = tmux
        .run(&["display-message", "-p", "-t", "bench", "#{pane_pid}"])?
        .trim()
        .parse()
        .context("reading the pane's pid from tmux")?;
    let rows = |screen: &str| {
        screen
            .lines()
            .filter(|l| {
                qbo_store::WORLD_WORDS
                    .iter()
                    .any(|w| l.contains(&format!("{w}-")))
            })
            .count()
    };
    let first = loop {
        let screen = tmux.capture();
        // The header says "N connections", or "N:" when the terminal is narrow for it.
        let counted = screen.contains(&header) || screen.contains(&format!("{}:", world.n));
        if counted && rows(&screen) >= (world.n as usize).min(30) {
            break t.elapsed();
        }
        if t.elapsed() > Duration::from_secs(60) {
            bail!("no full frame within 60 s; the pane shows:\n{screen}");
        }
        if !Path::new(&format!("/proc/{pid}")).exists() {
            bail!("the console exited; the pane showed:\n{screen}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // Scroll a few pages and type a filter, as a person would, before reading its peak.
    for keys in [
        ["PageDown"; 1],
        ["PageDown"; 1],
        ["/"; 1],
        ["a"; 1],
        ["Escape"; 1],
        ["Escape"; 1],
    ] {
        tmux.run(&["send-keys", "-t", "bench", keys[0]])?;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let hwm = proc_status_kb(pid, "VmHWM:").unwrap_or(0);
    println!(
        "  `qbo-console tui` in tmux: first full frame {:.0} ms after start; peak RSS {:.1} MB",
        ms(first),
        mb(hwm)
    );
    tmux.run(&["send-keys", "-t", "bench", "q"])?;
    let t = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() && t.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((first, hwm))
}

// ---------------------------------------------------------------------------------------
// The summary.

fn verdict(meets: bool) -> &'static str {
    if meets {
        "ok"
    } else {
        "FAIL"
    }
}

fn summary(all: &[Figures]) {
    println!("\n== summary (medians and p99 in ms; memory in MB)");
    println!(
        "  {:<10} {:>9} {:>7} {:>7} {:>11} {:>11} {:>9} {:>11} {:>10} {:>10} {:>9}",
        "backend",
        "N",
        "fill s",
        "roster s",
        "first frame",
        "key p99",
        "sort max",
        "tmux frame",
        "console",
        "daemon",
        "per cons."
    );
    for f in all {
        println!(
            "  {:<10} {:>9} {:>7.1} {:>7.2} {:>11.1} {:>11.1} {:>9.1} {:>11} {:>10} {:>10.1} {:>9.1}",
            f.backend.name(),
            f.n,
            f.fill.as_secs_f64(),
            f.roster.as_secs_f64(),
            f.first_frame.median,
            f.keystroke.p99,
            f.sort.max,
            f.console.map_or("-".into(), |(d, _)| format!("{:.0}", ms(d))),
            f.console.map_or("-".into(), |(_, kb)| format!("{:.1}", mb(kb))),
            mb(f.daemon_hwm_kb),
            f.daemon_per_console_kb as f64 / 1024.0,
        );
    }
    println!("\n== targets");
    for f in all {
        let at = format!("{} {}", f.backend.name(), f.n);
        let first_target = match f.n {
            n if n >= 1_000_000 => Some(TARGET_FIRST_FRAME_1M_MS),
            n if n >= 100_000 => Some(TARGET_FIRST_FRAME_100K_MS),
            _ => None,
        };
        if let Some(t) = first_target {
            println!(
                "  {at}: first frame {:.1} ms ≤ {t} ms: {}",
                f.first_frame.median,
                verdict(f.first_frame.median <= t)
            );
        }
        if f.n >= 1_000_000 {
            println!(
                "  {at}: keystroke p99 {:.1} ms ≤ {TARGET_KEYSTROKE_P99_MS} ms: {}",
                f.keystroke.p99,
                verdict(f.keystroke.p99 <= TARGET_KEYSTROKE_P99_MS)
            );
            println!(
                "  {at}: sort change max {:.1} ms ≤ {TARGET_SORT_MS} ms: {}",
                f.sort.max,
                verdict(f.sort.max <= TARGET_SORT_MS)
            );
            if let Some((_, kb)) = f.console {
                println!(
                    "  {at}: console peak RSS {:.1} MB ≤ {TARGET_CONSOLE_RSS_MB} MB: {}",
                    mb(kb),
                    verdict(mb(kb) <= TARGET_CONSOLE_RSS_MB)
                );
            }
            if let Some(sp) = &f.scrape {
                println!(
                    "  {at}: /metrics scrape max {:.1} ms ≤ {TARGET_SCRAPE_MS} ms: {}",
                    sp.max,
                    verdict(sp.max <= TARGET_SCRAPE_MS)
                );
            }
            println!(
                "  {at}: daemon peak RSS {:.1} MB ≤ {TARGET_SERVE_RSS_MB} MB: {}",
                mb(f.daemon_hwm_kb),
                verdict(mb(f.daemon_hwm_kb) <= TARGET_SERVE_RSS_MB)
            );
            let per = f.daemon_per_console_kb as f64 / 1024.0;
            println!(
                "  {at}: daemon per console {per:.1} MB ≤ {TARGET_DAEMON_PER_CONSOLE_MB} MB: {}",
                verdict(per <= TARGET_DAEMON_PER_CONSOLE_MB)
            );
            if let Some(small) = all.iter().find(|s| s.backend == f.backend && s.n <= 1_000) {
                let ratio = f.first_frame.median / small.first_frame.median;
                println!(
                    "  {at}: first frame {:.1} ms is {ratio:.2}× that at {} ({:.1} ms) ≤ {TARGET_FIRST_FRAME_RATIO}×: {}",
                    f.first_frame.median, small.n, small.first_frame.median, verdict(ratio <= TARGET_FIRST_FRAME_RATIO)
                );
            }
        }
        if let (Some((_, cli, before, peak)), Some(small)) = (
            f.listing,
            all.iter()
                .find(|s| s.backend == f.backend && s.n <= 1_000)
                .and_then(|s| s.listing),
        ) {
            if f.n >= 1_000_000 {
                let ratio = cli as f64 / small.1 as f64;
                println!(
                    "  {at}: list --json CLI peak RSS {:.1} MB is {ratio:.2}× that at 1,000 ({:.1} MB) ≤ 2×: {}",
                    mb(cli),
                    mb(small.1),
                    verdict(ratio <= 2.0)
                );
                // The daemon's size follows its connections (the roster), not the listing:
                // the listing is judged on the same daemon, against its RSS just before,
                // which a listing of 1,000 rows there would reach at least.
                let ratio = peak as f64 / before.max(1) as f64;
                println!(
                    "  {at}: list --json daemon peak RSS {:.1} MB is {ratio:.2}× its RSS before the listing ({:.1} MB; the same daemon's at a 1,000-row listing is at least that) ≤ 2×: {}",
                    mb(peak),
                    mb(before),
                    verdict(ratio <= 2.0)
                );
                println!(
                    "  {at}: (a daemon of 1,000 connections: {:.1} MB before its listing, {:.1} MB at most)",
                    mb(small.2),
                    mb(small.3)
                );
            }
        }
        for p in &f.problems {
            println!("  {at}: CHECK FAILED: {p}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Small helpers.

fn source_revision() -> String {
    std::process::Command::new("git")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| format!("git {}", String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or_else(|| "unknown (git describe failed)".into())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|p| p.get().to_string())
        .unwrap_or_else(|_| "?".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {cpu}")
}

fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Median, 99th percentile and maximum of some timings, in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Spread {
    median: f64,
    p99: f64,
    max: f64,
    count: usize,
}

fn spread(timings: &[Duration]) -> Spread {
    let mut v: Vec<f64> = timings.iter().copied().map(ms).collect();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[i]
    };
    Spread {
        median: at(0.5),
        p99: at(0.99),
        max: v.last().copied().unwrap_or(f64::NAN),
        count: v.len(),
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "median {:.2} ms, p99 {:.2} ms, max {:.2} ms over {}",
            self.median, self.p99, self.max, self.count
        )
    }
}

/// Kills a child process if the bench leaves early (an error or a panic).
struct ChildGuard(Option<std::process::Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n    ")
}

/// A tmux server of this bench's own (its own socket name), killed when dropped.
struct Tmux {
    name: String,
}

impl Tmux {
    fn cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new("tmux");
        c.args(["-L", &self.name, "-f", "/dev/null"]);
        c
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let out = self
            .cmd()
            .args(args)
            .output()
            .with_context(|| format!("running tmux {}", args.join(" ")))?;
        if !out.status.success() {
            bail!(
                "tmux {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn capture(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "bench"])
            .unwrap_or_default()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .cmd()
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
