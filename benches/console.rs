//! The console at 100,000 connections, against a real daemon over its socket (see
//! BENCHMARKS.md for recorded figures):
//!
//! 0. the world: `qbo-sim` in this process, a SQLite database in a temporary directory with
//!    N connections imported through `Service::import` and refreshed once by the
//!    scheduler's `run_once` (the real flows: 98% come out `active` with an access token good
//!    for an hour, 2% hold refresh tokens `qbo-sim` never issued and come out
//!    `needs_reconnect`), then a real `qbo-console serve` child process on that database.
//!    After that one refresh nothing is due for about 48 minutes (the access tokens last an
//!    hour, `refresh_before_expiry` is 10 minutes, `jitter` 2), so the daemon's scheduler
//!    sits idle through the bench, as it does in a quiet hour of production: the figures are
//!    the console's, not the scheduler's.
//! 1. frames, in this process with the real pieces: `SocketClient` over the daemon's socket
//!    (`watch` hello, then `list` of N views), the console's `App` built by the real
//!    `update` with the `Listed` message, the first frame drawn into a 200×50
//!    `ratatui::backend::TestBackend`. Then filter keystrokes (`/` and characters, each
//!    through `update` and drawn), a redraw with no change, a tick, a live change (one
//!    `Changed` message), and one real change end to end (a refresh asked over the socket,
//!    its row redrawn when the watch feed delivers it).
//! 2. the binary: `qbo-console tui` in `tmux` at 120×40 against the daemon: the wall time
//!    to its first full frame (polling `capture-pane`), its CPU over 10 idle seconds and its
//!    resident memory, from `/proc`; and the daemon's resident memory.
//!
//! ```sh
//! cargo bench --bench console
//! QBO_BENCH_CONSOLE_N=5000 cargo bench --bench console   # smoke run
//! ```
//!
//! Environment: `QBO_BENCH_CONSOLE_N` (connections, default 100,000),
//! `QBO_BENCH_CONSOLE_RUNS` (first-frame runs, default 5), `QBO_BENCH_CONSOLE_IDLE_SECS`
//! (default 10), `QBO_BENCH_CONSOLE_ONLY` (`frames`, `binary`, comma-separated; both by
//! default). Figures are reported, not asserted: the process exits 0 whatever they are and
//! marks every missed target FAIL.

use anyhow::{anyhow, bail, Context, Result};
use chrono::Utc;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use futures_util::StreamExt;
use qbo_core::clock::Clock;
use qbo_core::config::Config;
use qbo_core::identity::{Actor, Interface, Role};
use qbo_service::tasks::scheduler::Scheduler;
use qbo_service::{
    Client, ConnectionFilter, ConnectionView, Selection, Service, SessionEvent, SocketClient,
    Status, WatchEvent, WatchStream,
};
use qbo_sim::{self as sim, Rotation, SimHandle, SimOptions};
use qbo_tui::app::{update, App};
use qbo_tui::event::{Msg, Session};
use qbo_tui::keymap::Keymap;
use qbo_tui::theme::Theme;
use qbo_tui::views;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

const CLIENT_ID: &str = "sim-sandbox-client";
const CLIENT_SECRET: &str = "sim-sandbox-secret";
const REDIRECT_URI: &str = "http://localhost:8080/callback";

/// Rows per `Service::import` call (one transaction each).
const IMPORT_CHUNK: usize = 10_000;
/// One connection in this many holds a refresh token `qbo-sim` never issued.
const DEAD_EVERY: usize = 50;
/// Tenant names are a word and a number, so a typed name narrows the table step by step.
const WORDS: [&str; 20] = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "cyberdyne",
    "soylent",
    "tyrell",
    "wonka",
    "gringotts",
    "oscorp",
    "vandelay",
    "dunder",
    "bluth",
    "sterling",
    "prestige",
    "massive",
    "aperture",
];

/// The in-process frames, as the brief for the console measures them.
const FRAME_SIZE: (u16, u16) = (200, 50);
/// The binary's terminal, as the end-to-end test drives it.
const PANE_SIZE: (u16, u16) = (120, 40);
const REDRAWS: usize = 200;
const LIVE_CHANGES: usize = 100;

const TARGET_FIRST_FRAME_MS: f64 = 1_000.0;
const TARGET_KEYSTROKE_MS: f64 = 50.0;
const TARGET_REDRAW_MS: f64 = 5.0;
const TARGET_IDLE_CPU_PERCENT: f64 = 1.0;
const TARGET_RSS_MB: f64 = 200.0;

const PHASES: [&str; 2] = ["frames", "binary"];

struct Settings {
    n: usize,
    runs: usize,
    idle_secs: u64,
    only: Vec<String>,
}

fn env_number(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => match v.trim().replace('_', "").parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => bail!("{name}={v:?} is not a positive whole number"),
        },
        _ => Ok(default),
    }
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let only = match std::env::var("QBO_BENCH_CONSOLE_ONLY") {
            Err(_) => PHASES.iter().map(|p| p.to_string()).collect(),
            Ok(v) => {
                let mut out = Vec::new();
                for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    if !PHASES.contains(&p) {
                        bail!(
                            "QBO_BENCH_CONSOLE_ONLY: unknown phase {p:?}; phases are {}",
                            PHASES.join(", ")
                        );
                    }
                    out.push(p.to_string());
                }
                if out.is_empty() {
                    bail!(
                        "QBO_BENCH_CONSOLE_ONLY is empty; name some of {}",
                        PHASES.join(", ")
                    );
                }
                out
            }
        };
        Ok(Settings {
            n: env_number("QBO_BENCH_CONSOLE_N", 100_000)? as usize,
            runs: env_number("QBO_BENCH_CONSOLE_RUNS", 5)? as usize,
            idle_secs: env_number("QBO_BENCH_CONSOLE_IDLE_SECS", 10)?,
            only,
        })
    }

    fn wants(&self, phase: &str) -> bool {
        self.only.iter().any(|p| p == phase)
    }
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; there is nothing else to parse.
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
    let bench = runtime.spawn(run(settings));
    if let Err(e) = runtime.block_on(bench) {
        println!("FAIL: the bench itself panicked: {e}");
    }
    ExitCode::SUCCESS
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
    println!(
        "  {} connections; {} first-frame runs; {} s idle",
        s.n, s.runs, s.idle_secs
    );

    println!("\n[0/2] the world: qbo-sim, SQLite, import, one scheduler pass, `qbo-console serve`");
    let world = match World::build(&s).await {
        Ok(w) => w,
        Err(e) => {
            println!("  FAIL: the world could not be built: {e:#}");
            return;
        }
    };

    println!(
        "\n[1/2] frames in this process: SocketClient → App → TestBackend {}×{}",
        FRAME_SIZE.0, FRAME_SIZE.1
    );
    let frames = if s.wants("frames") {
        match frames(&s, &world).await {
            Ok(f) => Some(f),
            Err(e) => {
                println!("  FAIL: this phase could not run: {e:#}");
                None
            }
        }
    } else {
        println!("  skipped (QBO_BENCH_CONSOLE_ONLY)");
        None
    };

    println!(
        "\n[2/2] the binary: `qbo-console tui` in tmux {}×{}",
        PANE_SIZE.0, PANE_SIZE.1
    );
    let binary = if s.wants("binary") {
        match binary(&s, &world).await {
            Ok(f) => Some(f),
            Err(e) => {
                println!("  FAIL: this phase could not run: {e:#}");
                None
            }
        }
    } else {
        println!("  skipped (QBO_BENCH_CONSOLE_ONLY)");
        None
    };

    let daemon = world.daemon_memory();
    summary(&s, frames.as_ref(), binary.as_ref(), daemon);
    world.stop().await;
    println!(
        "\nbench finished in {:.0} s",
        started.elapsed().as_secs_f64()
    );
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

/// utime + stime of a process, in clock ticks (fields 14 and 15 of `/proc/PID/stat`,
/// counted after the parenthesised command name, which may itself hold spaces).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time of all of a process's threads in nanoseconds, from the scheduler's own account
/// (`/proc/PID/task/*/schedstat`): `/proc/PID/stat` counts in ticks of 10 ms, too coarse for
/// a process that should use a few milliseconds in ten seconds.
fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread that ended since the listing has no account left to add.
        if let Ok(text) = std::fs::read_to_string(path) {
            total += text
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Some(total)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; a failure returns -1, handled below.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
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

fn tenant_name(i: usize) -> String {
    format!("{}-{i:06}", WORDS[i % WORDS.len()])
}

/// Lines of a frame that show a tenant: a frame is full when its table is.
fn tenant_lines(frame: &str) -> usize {
    frame
        .lines()
        .filter(|l| WORDS.iter().any(|w| l.contains(&format!("{w}-"))))
        .count()
}

// ---------------------------------------------------------------------------------------
// 0. The world.

struct World {
    dir: tempfile::TempDir,
    sim: SimHandle,
    config_path: PathBuf,
    socket: PathBuf,
    log_path: PathBuf,
    daemon: ChildGuard,
    pid: u32,
    n: usize,
    dead: usize,
}

/// Owner-only, as qbo-console requires of a key or a secret file.
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

/// The daemon's config: the scheduler at its shipped defaults (10 in flight, 50 a second),
/// and this account as `support`, the role the console is used with.
fn write_config(dir: &Path, sim_base: &str, account: &str) -> Result<PathBuf> {
    let key = qbo_core::vault::generate_key();
    write_owner_only(&dir.join("token.key"), key.as_str()).context("writing the key file")?;
    write_owner_only(&dir.join("sandbox.secret"), CLIENT_SECRET)
        .context("writing the client secret file")?;
    let d = dir.display();
    let text = format!(
        r#"[database]
url = "sqlite://{d}/bench.db"
max_connections = 16

[vault]
key_file = "{d}/token.key"

[environments.sandbox]
client_id = "{CLIENT_ID}"
client_secret_file = "{d}/sandbox.secret"
redirect_uri = "{REDIRECT_URI}"
authorization_endpoint = "{sim_base}/connect/oauth2"
token_endpoint = "{sim_base}/oauth2/v1/tokens/bearer"
revocation_endpoint = "{sim_base}/v2/oauth2/tokens/revoke"
api_base = "{sim_base}"

[daemon]
socket = "{d}/ops.sock"
http_listen = "127.0.0.1:0"

[api]
listen = "127.0.0.1:0"

[roles]
support = ["{account}"]

[log]
level = "warn"
"#
    );
    let path = dir.join("qbo-console.toml");
    std::fs::write(&path, text).context("writing the config file")?;
    Ok(path)
}

impl World {
    async fn build(s: &Settings) -> Result<World> {
        let binary = PathBuf::from(env!("CARGO_BIN_EXE_qbo-console"));
        if !binary.is_file() {
            bail!(
                "{} is missing; `cargo bench` builds it (or run `cargo build --release`)",
                binary.display()
            );
        }
        // Daily rotation (Intuit's observed behaviour): the refresh token stays the same for
        // 24 h, so the console's own refresh (the real change in [1]) spends nothing.
        let sim = sim::start(SimOptions {
            rotation: Rotation::Daily,
            ..SimOptions::default()
        })
        .await
        .context("starting qbo-sim in process")?;
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let me = Actor::current_process(Interface::Cli, Role::Admin);
        let config_path = write_config(dir.path(), &sim.base_url(), &me.name())?;
        let config = Config::load(Some(&config_path))?;
        let n = s.n;
        let dead = n / DEAD_EVERY;
        {
            let svc = Service::open(&config, Clock::System)
                .await
                .context("Service::open")?;
            let t = Instant::now();
            let mut rows = Vec::with_capacity(n);
            for i in 0..n {
                let tenant = tenant_name(i);
                if i % DEAD_EVERY == DEAD_EVERY - 1 {
                    rows.push([
                        tenant,
                        format!("{}", 9_130_000_000_000_000u64 + i as u64),
                        format!("{} Holdings", WORDS[(i / 7) % WORDS.len()]),
                        format!("RT-never-issued-{i}"),
                    ]);
                } else {
                    let g = sim
                        .seed_grant(CLIENT_ID, None, None)
                        .with_context(|| format!("seeding grant #{i} at qbo-sim"))?;
                    rows.push([tenant, g.realm_id, g.company_name, g.refresh_token]);
                }
            }
            println!(
                "  seeded {} grants at qbo-sim in {:.1} s",
                n - dead,
                t.elapsed().as_secs_f64()
            );
            let t = Instant::now();
            let admin = Actor::current_process(Interface::Cli, Role::Admin);
            for (c, chunk) in rows.chunks(IMPORT_CHUNK).enumerate() {
                let mut w = csv::Writer::from_writer(Vec::new());
                w.write_record([
                    "tenant",
                    "realm_id",
                    "environment",
                    "company_name",
                    "refresh_token",
                ])?;
                for [tenant, realm, company, token] in chunk {
                    w.write_record([
                        tenant.as_str(),
                        realm.as_str(),
                        "sandbox",
                        company.as_str(),
                        token.as_str(),
                    ])?;
                }
                let bytes = w
                    .into_inner()
                    .map_err(|e| anyhow!("writing the import CSV: {}", e.error()))?;
                let text = String::from_utf8(bytes).context("the import CSV is not UTF-8")?;
                let report = svc
                    .import(&admin, &text, "bench.csv", false)
                    .await
                    .map_err(|e| anyhow!("Service::import of chunk {c}: {e}"))?;
                if report.created != chunk.len() {
                    bail!(
                        "Service::import of chunk {c} created {} of {} connections",
                        report.created,
                        chunk.len()
                    );
                }
            }
            drop(rows);
            println!(
                "  imported {n} connections through Service::import in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            // One pass of the real scheduler, unthrottled, to give every connection the
            // state a refresh leaves; the daemon itself then runs with the shipped limits.
            let mut cfg = config.scheduler.clone();
            cfg.rate_per_second = 1_000_000;
            cfg.max_concurrency = 64;
            let scheduler = Scheduler::new(
                svc.lifecycle_for_tests().clone(),
                cfg,
                Actor::daemon(qbo_core::identity::DaemonTask::Scheduler),
            );
            let (_stop_tx, stop) = tokio::sync::watch::channel(false);
            let t = Instant::now();
            let report = scheduler.run_once(&stop).await.context("run_once")?;
            println!(
                "  one scheduler pass in {:.1} s: {} refreshed, {} need reconnecting ({report:?})",
                t.elapsed().as_secs_f64(),
                report.refreshed,
                report.needs_reconnect
            );
            if report.refreshed != n - dead || report.needs_reconnect != dead {
                bail!(
                    "the scheduler pass refreshed {} (expected {}) and sent {} to needs_reconnect (expected {dead})",
                    report.refreshed,
                    n - dead,
                    report.needs_reconnect
                );
            }
            svc.lifecycle_for_tests().store.close().await;
        }
        sim.reset_stats();

        let log_path = dir.path().join("daemon.log");
        let log = std::fs::File::create(&log_path).context("creating the daemon log file")?;
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
        let t = Instant::now();
        loop {
            if let Some(c) = daemon.0.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    bail!(
                        "qbo-console serve exited ({status}) before serving; its log:\n    {}",
                        log_tail(&log_path)
                    );
                }
            }
            if std::fs::read_to_string(&log_path)
                .unwrap_or_default()
                .contains("qbo-console serving")
            {
                break;
            }
            if t.elapsed() > Duration::from_secs(120) {
                bail!(
                    "qbo-console serve did not start within 120 s; its log:\n    {}",
                    log_tail(&log_path)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!(
            "  `qbo-console serve` (pid {pid}) serving after {:.2} s; VmRSS {:.1} MB",
            t.elapsed().as_secs_f64(),
            mb(proc_status_kb(pid, "VmRSS:").unwrap_or(0))
        );
        let socket = dir.path().join("ops.sock");
        Ok(World {
            dir,
            sim,
            config_path,
            socket,
            log_path,
            daemon,
            pid,
            n,
            dead,
        })
    }

    fn client(&self) -> SocketClient {
        SocketClient::new(&self.socket).declaring(Interface::Tui)
    }

    fn daemon_memory(&self) -> DaemonFigures {
        let f = DaemonFigures {
            hwm_kb: proc_status_kb(self.pid, "VmHWM:"),
            rss_kb: proc_status_kb(self.pid, "VmRSS:"),
        };
        println!(
            "\n  daemon (pid {}): peak RSS (VmHWM) {:.1} MB, VmRSS now {:.1} MB",
            self.pid,
            mb(f.hwm_kb.unwrap_or(0)),
            mb(f.rss_kb.unwrap_or(0))
        );
        f
    }

    async fn stop(mut self) {
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if let Some(c) = self.daemon.0.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.daemon.0 = None;
                    if !status.success() {
                        println!("  the daemon exited with {status} after SIGTERM");
                    }
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
        self.sim.shutdown().await;
        drop(self.dir);
    }
}

struct DaemonFigures {
    hwm_kb: Option<u64>,
    rss_kb: Option<u64>,
}

// ---------------------------------------------------------------------------------------
// 1. Frames in this process.

struct FrameFigures {
    first_frame: Spread,
    list: Spread,
    build: Spread,
    draw: Spread,
    keystroke: Spread,
    keystroke_name: Spread,
    keystroke_term: Spread,
    clear: Spread,
    redraw: Spread,
    tick: Spread,
    change: Spread,
    sort: Spread,
    real_change: Option<(Duration, Duration)>,
    problems: Vec<String>,
}

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

    /// One message through `update`, then a frame: what the runtime does per event.
    fn step(&mut self, msg: Msg) -> Result<Duration> {
        let t = Instant::now();
        update(&mut self.app, msg);
        self.draw()?;
        Ok(t.elapsed())
    }

    fn key(&mut self, code: KeyCode) -> Result<Duration> {
        self.step(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }

    fn typed(&mut self, text: &str) -> Result<Vec<Duration>> {
        text.chars().map(|c| self.key(KeyCode::Char(c))).collect()
    }

    fn text(&self) -> String {
        let buf = self.term.backend().buffer();
        let mut out = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }
}

/// What the console's runtime does before its first frame (crates/console/src/runtime.rs, `follow`):
/// subscribe, record the opening, list, then build the state and draw.
async fn first_frame(client: &SocketClient) -> Result<(Screen, WatchStream, [Duration; 4])> {
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
    // As the console's runtime does: the opening is on the record before the list.
    client
        .session(SessionEvent::Opened)
        .await
        .context("recording the console opened")?;
    let t_list = Instant::now();
    let rows = client
        .list(qbo_service::ListQuery::default())
        .await
        .context("list")?;
    let listed = t_list.elapsed();
    let t_build = Instant::now();
    let mut app = App::new(session, Keymap::default(), Utc::now(), FRAME_SIZE);
    update(&mut app, Msg::Listed(rows));
    let built = t_build.elapsed();
    let t_draw = Instant::now();
    let mut screen = Screen {
        app,
        term: Terminal::new(TestBackend::new(FRAME_SIZE.0, FRAME_SIZE.1))?,
        theme: Theme::dark(),
    };
    screen.draw()?;
    let drawn = t_draw.elapsed();
    Ok((screen, feed, [t.elapsed(), listed, built, drawn]))
}

async fn frames(s: &Settings, world: &World) -> Result<FrameFigures> {
    let client = world.client();
    let mut problems = Vec::new();
    let (mut totals, mut lists, mut builds, mut draws) = (vec![], vec![], vec![], vec![]);
    let mut kept = None;
    for run in 0..s.runs {
        let (screen, feed, [total, list, build, draw]) = first_frame(&client).await?;
        println!(
            "  run {}: first frame after {:.0} ms (watch hello + list {:.0} ms, Listed → App {:.0} ms, draw {:.1} ms)",
            run + 1,
            ms(total),
            ms(list),
            ms(build),
            ms(draw)
        );
        totals.push(total);
        lists.push(list);
        builds.push(build);
        draws.push(draw);
        if run + 1 < s.runs {
            // Closed as the console closes, so the audit log reads like real sessions.
            drop((screen, feed));
            client.session(SessionEvent::Closed).await?;
        } else {
            kept = Some((screen, feed));
        }
    }
    match raw_list(world).await {
        Ok((first_byte, whole, bytes)) => {
            let decode = spread(&lists).median - ms(whole);
            println!(
                "  the list's reply, read raw: first byte after {:.0} ms (the daemon's query and encoding), all {:.1} MB after {:.0} ms; the typed client's decoding adds about {:.0} ms",
                ms(first_byte),
                bytes as f64 / 1e6,
                ms(whole),
                decode
            );
        }
        Err(e) => problems.push(format!("the raw list: {e:#}")),
    }
    if let Err(e) = list_breakdown(world).await {
        problems.push(format!("the list's breakdown: {e:#}"));
    }
    let Some((mut screen, mut feed)) = kept else {
        bail!("no first-frame run (QBO_BENCH_CONSOLE_RUNS is 0?)");
    };
    let text = screen.text();
    let header = format!("{} connections", world.n);
    if !text.contains(&header) || tenant_lines(&text) < world.n.min(30) {
        problems.push(format!(
            "the first frame does not show {header:?} and its rows:\n{text}"
        ));
    }
    if screen.app.table.len() != world.n {
        problems.push(format!(
            "the console holds {} connections, not {}",
            screen.app.table.len(),
            world.n
        ));
    }
    println!(
        "  first frame: {}\n  {}",
        text.lines().next().unwrap_or("").trim_end(),
        text.lines().nth(2).unwrap_or("").trim_end()
    );

    // Filter keystrokes: a tenant's name, typed; a field term, typed.
    let target = tenant_name(world.n * 3 / 7);
    let mut keystrokes = Vec::new();
    let mut name = vec![screen.key(KeyCode::Char('/'))?];
    name.extend(screen.typed(&target)?);
    if screen.app.table.visible_len() != 1
        || screen.app.table.selected().map(|c| c.tenant.as_str()) != Some(target.as_str())
    {
        problems.push(format!(
            "typing {target:?} left {} rows, not that one",
            screen.app.table.visible_len()
        ));
    }
    name.push(screen.key(KeyCode::Enter)?);
    let mut clear = vec![screen.key(KeyCode::Esc)?];
    keystrokes.extend(&name);
    let mut term = vec![screen.key(KeyCode::Char('/'))?];
    term.extend(screen.typed("status:needs_reconnect")?);
    if screen.app.table.visible_len() != world.dead {
        problems.push(format!(
            "status:needs_reconnect left {} rows, expected {}",
            screen.app.table.visible_len(),
            world.dead
        ));
    }
    term.extend(screen.typed(" left>50")?);
    term.push(screen.key(KeyCode::Enter)?);
    clear.push(screen.key(KeyCode::Esc)?);
    keystrokes.extend(&term);
    // Backspacing a term away widens the filter again, one keystroke at a time.
    screen.key(KeyCode::Char('/'))?;
    screen.typed("acme")?;
    let mut widen = Vec::new();
    for _ in 0.."acme".len() {
        widen.push(screen.key(KeyCode::Backspace)?);
    }
    keystrokes.extend(&widen);
    clear.push(screen.key(KeyCode::Esc)?);
    if screen.app.table.visible_len() != world.n {
        problems.push(format!(
            "esc left {} of {} rows shown",
            screen.app.table.visible_len(),
            world.n
        ));
    }
    let keystroke = spread(&keystrokes);
    let keystroke_name = spread(&name);
    let keystroke_term = spread(&term);
    let clear = spread(&clear);
    println!(
        "  filter keystroke → frame, all {} keys: {keystroke}",
        keystroke.count
    );
    println!("    typing /{target} + enter: {keystroke_name}");
    println!("    typing /status:needs_reconnect left>50 + enter: {keystroke_term}");
    println!("    backspacing /acme away: {}", spread(&widen));
    println!("  esc (filter cleared, all rows back) → frame: {clear}");

    // A redraw with nothing changed, and a tick (what an idle console does each second).
    let mut redraws = Vec::with_capacity(REDRAWS);
    for _ in 0..REDRAWS {
        let t = Instant::now();
        screen.draw()?;
        redraws.push(t.elapsed());
    }
    let redraw = spread(&redraws);
    println!("  redraw, no change: {redraw}");
    let mut ticks = Vec::with_capacity(REDRAWS);
    let mut now = screen.app.now;
    for _ in 0..REDRAWS {
        now += chrono::Duration::seconds(1);
        ticks.push(screen.step(Msg::Tick(now))?);
    }
    let tick = spread(&ticks);
    println!("  tick (countdowns move) → frame: {tick}");

    // Live changes: rows from all over the table, each changed as a failed refresh would
    // leave it, so it moves to the top of the urgency order.
    let mut changes = Vec::with_capacity(LIVE_CHANGES);
    let mut now_failing = std::collections::HashSet::new();
    let step = (world.n / LIVE_CHANGES).max(1);
    for k in 0..LIVE_CHANGES {
        let Some(mut c) = screen
            .app
            .table
            .window(k * step % world.n.max(1), 1)
            .next()
            .cloned()
        else {
            continue;
        };
        if c.status.is_live() {
            now_failing.insert(c.id);
        }
        c.consecutive_failures += 1;
        c.last_refresh_outcome = Some(qbo_service::LastRefresh::Failed);
        c.last_error_class = Some("transient".into());
        changes.push(screen.step(Msg::Changed(c))?);
    }
    let change = spread(&changes);
    println!("  live change (one Changed message) → frame: {change}");
    if screen.app.table.failing() != now_failing.len() {
        problems.push(format!(
            "after live changes that left {} connections failing the header counts {}",
            now_failing.len(),
            screen.app.table.failing()
        ));
    }

    // Sorting by another column re-sorts every row: not a target, shown for scale.
    let mut sorts = Vec::new();
    for _ in 0..qbo_tui::urgency::SortKey::ALL.len() {
        sorts.push(screen.key(KeyCode::Char('s'))?);
    }
    let sort = spread(&sorts);
    println!("  sort key (every column in turn) → frame: {sort}");

    // One real change, end to end: a refresh asked over the socket, its row redrawn when
    // the watch feed brings it.
    let real_change = match real_change(world, &mut screen, &mut feed).await {
        Ok(r) => {
            println!(
                "  a real change: refresh of one connection over the socket answered in {:.0} ms; its row redrawn {:.0} ms after the request",
                ms(r.0),
                ms(r.1)
            );
            Some(r)
        }
        Err(e) => {
            problems.push(format!("the real change: {e:#}"));
            None
        }
    };
    drop(feed);
    client.session(SessionEvent::Closed).await?;

    if problems.is_empty() {
        println!("  check: all rows listed and shown, filters narrowed to the expected rows");
    } else {
        println!("  CHECK FAILED: {}", problems.join("; "));
    }
    Ok(FrameFigures {
        first_frame: spread(&totals),
        list: spread(&lists),
        build: spread(&builds),
        draw: spread(&draws),
        keystroke,
        keystroke_name,
        keystroke_term,
        clear,
        redraw,
        tick,
        change,
        sort,
        real_change,
        problems,
    })
}

/// The list request's reply read as bytes, without decoding: when its first byte arrives
/// (the daemon has queried and encoded it all by then), when its last, and its size.
async fn raw_list(world: &World) -> Result<(Duration, Duration, usize)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = Instant::now();
    let mut stream = tokio::net::UnixStream::connect(&world.socket).await?;
    stream
        .write_all(b"{\"op\":\"list\",\"interface\":\"tui\"}\n")
        .await?;
    let mut buf = vec![0u8; 1 << 20];
    let mut first = None;
    let mut total = 0usize;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!("the daemon hung up after {total} bytes");
        }
        first.get_or_insert_with(|| t.elapsed());
        total += n;
        if buf[..n].ends_with(b"\n") {
            break;
        }
    }
    Ok((first.unwrap_or_default(), t.elapsed(), total))
}

/// Where the daemon's time for a list goes, repeated in this process on the same database
/// (SQLite lets a second process read beside the daemon): the query, the views, the JSON.
async fn list_breakdown(world: &World) -> Result<()> {
    let config = Config::load(Some(&world.config_path))?;
    let svc = Service::open(&config, Clock::System)
        .await
        .context("Service::open beside the daemon")?;
    let store = &svc.lifecycle_for_tests().store;
    let t = Instant::now();
    let records = store.list_connections(&ConnectionFilter::default()).await?;
    let queried = t.elapsed();
    let t = Instant::now();
    let now = Utc::now();
    let views: Vec<ConnectionView> = records
        .into_iter()
        .map(|r| ConnectionView::from_record(r, now))
        .collect();
    let viewed = t.elapsed();
    let t = Instant::now();
    let json = serde_json::value::to_raw_value(&views)?;
    let encoded = t.elapsed();
    let t = Instant::now();
    let me = Actor::current_process(Interface::Tui, Role::Support);
    svc.list(&me, &qbo_service::ListQuery::default())
        .await
        .map_err(|e| anyhow!("Service::list: {e}"))?;
    let whole = t.elapsed();
    println!(
        "  the daemon's part, repeated here: query {:.0} ms, views {:.0} ms, JSON {:.0} ms ({:.1} MB); Service::list with its audit record {:.0} ms",
        ms(queried),
        ms(viewed),
        ms(encoded),
        json.get().len() as f64 / 1e6,
        ms(whole)
    );
    drop((views, json));
    store.close().await;
    Ok(())
}

/// Refreshes one live connection through a second client and waits for the console's feed
/// to bring the change; returns (the refresh's answer, the change drawn), both from the
/// request.
async fn real_change(
    world: &World,
    screen: &mut Screen,
    feed: &mut WatchStream,
) -> Result<(Duration, Duration)> {
    let target = screen
        .app
        .table
        .window(0, screen.app.table.visible_len())
        .find(|c| c.status == Status::Active)
        .cloned()
        .ok_or_else(|| anyhow!("no active connection to refresh"))?;
    let before = target.last_refresh_at;
    let t = Instant::now();
    let reports = world
        .client()
        .refresh(Selection::Named(vec![target.tenant.clone()]))
        .await
        .context("refresh over the socket")?;
    let answered = t.elapsed();
    if reports.len() != 1 {
        bail!("the refresh reported {} outcomes", reports.len());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ev = tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), feed.next())
            .await
            .map_err(|_| {
                anyhow!(
                    "the feed brought no change to {} within 10 s",
                    target.tenant
                )
            })?;
        match ev {
            Some(Ok(WatchEvent::Change {
                connection: Some(c),
                ..
            })) if c.id == target.id => {
                let c: ConnectionView = *c;
                if c.last_refresh_at == before {
                    continue;
                }
                screen.step(Msg::Changed(c))?;
                return Ok((answered, t.elapsed()));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => bail!("the feed failed: {e}"),
            None => bail!("the feed ended"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// 2. The binary in tmux.

struct BinaryFigures {
    first_frame: Duration,
    idle_cpu_percent: f64,
    hwm_kb: u64,
    rss_kb: u64,
    daemon_idle_cpu_percent: Option<f64>,
    problems: Vec<String>,
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

async fn binary(s: &Settings, world: &World) -> Result<BinaryFigures> {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_qbo-console"));
    let tmux = Tmux {
        name: format!("qbo-console-bench-{}", std::process::id()),
    };
    let mut problems = Vec::new();
    // `exec`, so the pane's process is the console itself and its /proc is what we read.
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
    let first_frame = loop {
        let screen = tmux.capture();
        if screen.contains(&header) && tenant_lines(&screen) >= world.n.min(30) {
            break t.elapsed();
        }
        if t.elapsed() > Duration::from_secs(60) {
            bail!("no full frame within 60 s; the pane shows:\n{screen}");
        }
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            bail!("the console exited; the pane showed:\n{screen}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    println!(
        "  `qbo-console tui` (pid {pid}) showed its first full frame {:.0} ms after tmux started it",
        ms(first_frame)
    );
    let shown = tmux.capture();
    for line in shown.lines().take(4) {
        println!("    | {}", line.trim_end());
    }

    // Let the start-up settle (the first frame's allocations, the feed's hello), then count.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tck = clock_ticks_per_second();
    let (c0, n0, d0) = (cpu_ticks(pid), cpu_ns(pid), cpu_ns(world.pid));
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(s.idle_secs)).await;
    let (c1, n1, d1) = (cpu_ticks(pid), cpu_ns(pid), cpu_ns(world.pid));
    let secs = t0.elapsed().as_secs_f64();
    let (Some(c0), Some(c1), Some(n0), Some(n1)) = (c0, c1, n0, n1) else {
        bail!("cannot read /proc/{pid}/stat or schedstat: did the console exit?");
    };
    let idle_cpu_percent = (n1 - n0) as f64 / 1e9 / secs * 100.0;
    let daemon_idle_cpu_percent = match (d0, d1) {
        (Some(a), Some(b)) => Some((b - a) as f64 / 1e9 / secs * 100.0),
        _ => None,
    };
    let hwm_kb = proc_status_kb(pid, "VmHWM:").unwrap_or(0);
    let rss_kb = proc_status_kb(pid, "VmRSS:").unwrap_or(0);
    println!(
        "  idle for {secs:.1} s: {:.1} ms of CPU, {:.3}% of a core ({} ticks of 1/{tck} s in /proc/{pid}/stat); daemon meanwhile {}",
        (n1 - n0) as f64 / 1e6,
        idle_cpu_percent,
        c1 - c0,
        daemon_idle_cpu_percent.map_or("n/a".into(), |p| format!("{p:.2}%"))
    );
    println!(
        "  console memory: peak RSS (VmHWM) {:.1} MB, VmRSS {:.1} MB",
        mb(hwm_kb),
        mb(rss_kb)
    );
    if world.sim.stats().refreshes > 1 {
        problems.push(format!(
            "qbo-sim saw {} refreshes while the console ran: the scheduler was not idle",
            world.sim.stats().refreshes
        ));
    }

    // q quits; the pane (and with it the session) goes away.
    tmux.run(&["send-keys", "-t", "bench", "q"])?;
    let t = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        if t.elapsed() > Duration::from_secs(10) {
            problems.push("the console did not quit within 10 s of q".into());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if problems.is_empty() {
        println!("  check: the frame showed every connection; q quit the console");
    } else {
        println!("  CHECK FAILED: {}", problems.join("; "));
    }
    Ok(BinaryFigures {
        first_frame,
        idle_cpu_percent,
        hwm_kb,
        rss_kb,
        daemon_idle_cpu_percent,
        problems,
    })
}

// ---------------------------------------------------------------------------------------
// The summary.

fn row(what: &str, value: &str, target: &str, verdict: &str) {
    println!("  {what:<52} {value:>14}  {target:<10} {verdict}");
}

fn verdict(checked: bool, meets: bool) -> &'static str {
    match (checked, meets) {
        (true, true) => "PASS",
        _ => "FAIL",
    }
}

fn summary(
    s: &Settings,
    frames: Option<&FrameFigures>,
    binary: Option<&BinaryFigures>,
    daemon: DaemonFigures,
) {
    println!("\nsummary ({}, {} connections)", machine(), s.n);
    match frames {
        Some(f) => {
            let ok = f.problems.is_empty();
            row(
                "first full frame: watch + list + App + draw (median)",
                &format!("{:.0} ms", f.first_frame.median),
                "<= 1 s",
                verdict(ok, f.first_frame.median <= TARGET_FIRST_FRAME_MS),
            );
            row(
                "  of which list over the socket (median)",
                &format!("{:.0} ms", f.list.median),
                "",
                "",
            );
            row(
                "  of which Listed → App (median)",
                &format!("{:.0} ms", f.build.median),
                "",
                "",
            );
            row(
                "  of which the first draw (median)",
                &format!("{:.1} ms", f.draw.median),
                "",
                "",
            );
            row(
                "filter keystroke → frame (median)",
                &format!("{:.1} ms", f.keystroke.median),
                "<= 50 ms",
                verdict(ok, f.keystroke.median <= TARGET_KEYSTROKE_MS),
            );
            row(
                "filter keystroke → frame (p99)",
                &format!("{:.1} ms", f.keystroke.p99),
                "<= 50 ms",
                verdict(ok, f.keystroke.p99 <= TARGET_KEYSTROKE_MS),
            );
            row(
                "  typing a tenant's name (median / max)",
                &format!(
                    "{:.1} / {:.1} ms",
                    f.keystroke_name.median, f.keystroke_name.max
                ),
                "",
                "",
            );
            row(
                "  typing field terms (median / max)",
                &format!(
                    "{:.1} / {:.1} ms",
                    f.keystroke_term.median, f.keystroke_term.max
                ),
                "",
                "",
            );
            row(
                "esc: filter cleared → frame (max)",
                &format!("{:.1} ms", f.clear.max),
                "",
                "",
            );
            row(
                "redraw, no change (median)",
                &format!("{:.2} ms", f.redraw.median),
                "<= 5 ms",
                verdict(ok, f.redraw.median <= TARGET_REDRAW_MS),
            );
            row(
                "tick → frame (median)",
                &format!("{:.2} ms", f.tick.median),
                "",
                "",
            );
            row(
                "live change → frame (median / p99)",
                &format!("{:.2} / {:.2} ms", f.change.median, f.change.p99),
                "",
                "",
            );
            row(
                "sort by another column → frame (median)",
                &format!("{:.0} ms", f.sort.median),
                "",
                "",
            );
            if let Some((answered, drawn)) = f.real_change {
                row(
                    "real refresh over the socket → row redrawn",
                    &format!("{:.0} ms", ms(drawn)),
                    "",
                    &format!("(answer {:.0} ms)", ms(answered)),
                );
            }
        }
        None => row("frames in this process", "n/a", "", "FAIL"),
    }
    match binary {
        Some(b) => {
            let ok = b.problems.is_empty();
            row(
                "`qbo-console tui`: first full frame in tmux",
                &format!("{:.0} ms", ms(b.first_frame)),
                "<= 1 s",
                verdict(ok, ms(b.first_frame) <= TARGET_FIRST_FRAME_MS),
            );
            row(
                &format!("`qbo-console tui`: idle CPU over {} s", s.idle_secs),
                &format!("{:.3}%", b.idle_cpu_percent),
                "< 1%",
                verdict(ok, b.idle_cpu_percent < TARGET_IDLE_CPU_PERCENT),
            );
            row(
                "`qbo-console tui`: peak RSS (VmHWM)",
                &format!("{:.1} MB", mb(b.hwm_kb)),
                "<= 200 MB",
                verdict(ok, mb(b.hwm_kb) <= TARGET_RSS_MB),
            );
            row(
                "`qbo-console tui`: RSS when idle (VmRSS)",
                &format!("{:.1} MB", mb(b.rss_kb)),
                "<= 200 MB",
                verdict(ok, mb(b.rss_kb) <= TARGET_RSS_MB),
            );
            if let Some(p) = b.daemon_idle_cpu_percent {
                row(
                    "daemon CPU over the same idle seconds",
                    &format!("{p:.2}%"),
                    "",
                    "",
                );
            }
        }
        None => row("`qbo-console tui` in tmux", "n/a", "", "FAIL"),
    }
    row(
        "daemon peak RSS (VmHWM) after all of the above",
        &daemon
            .hwm_kb
            .map_or("n/a".into(), |k| format!("{:.1} MB", mb(k))),
        "",
        "",
    );
    row(
        "daemon RSS at the end (VmRSS)",
        &daemon
            .rss_kb
            .map_or("n/a".into(), |k| format!("{:.1} MB", mb(k))),
        "",
        "",
    );
    for p in frames
        .map(|f| &f.problems)
        .into_iter()
        .chain(binary.map(|b| &b.problems))
        .flatten()
    {
        println!("  FAIL: {p}");
    }
    println!("  load average at the end: {}", loadavg());
}

/// The allocator `qbo-console` itself uses (src/main.rs), so what is measured in this
/// process allocates as the console does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
