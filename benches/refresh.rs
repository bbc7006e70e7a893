//! Refresh throughput and daemon memory, measured in one run on this machine and printed
//! as they come (see BENCHMARKS.md for recorded figures):
//!
//! 1. the daemon path: N due connections refreshed by the scheduler's `run_once`, the code
//!    `qbo-console serve` runs, in process, against `qbo-sim` on loopback, on SQLite in a
//!    temporary directory (WAL, synchronous=FULL: every refresh is a durable commit);
//! 2. the pattern most teams use: a loop over Intuit's official Python client
//!    (`intuit-oauth`) refreshing each connection and committing it to SQLite in turn;
//! 3. the loopback limit: a bare reqwest client hammering the emulator's token endpoint,
//!    no persistence;
//! 4. the resident memory of a real `qbo-console serve` child process holding M
//!    connections while its scheduler refreshes them.
//!
//! ```sh
//! cargo bench --bench refresh
//! QBO_BENCH_N=500 QBO_BENCH_MEMORY_N=2000 cargo bench --bench refresh   # smoke run
//! ```
//!
//! Environment: `QBO_BENCH_N` (default 10,000), `QBO_BENCH_MEMORY_N` (default 100,000),
//! `QBO_BENCH_PY_N` (connections for the Python loop, default N; the rate is then
//! extrapolated to N), `QBO_BENCH_MEMORY_SECS` (how long the daemon runs, default 25),
//! `QBO_BENCH_PYTHON` (a Python with `intuit-oauth`; otherwise `target/bench-venv` is
//! created and used). Figures are reported, not asserted: the process exits 0 whatever
//! they are, and marks every missed target FAIL.

use anyhow::{anyhow, bail, Context, Result};
use futures_util::stream::{self, StreamExt};
use qbo_core::clock::Clock;
use qbo_core::config::Config;
use qbo_core::identity::{Actor, Interface, Role};
use qbo_service::tasks::scheduler::{Scheduler, TickReport};
use qbo_service::Service;
use qbo_sim::{self as sim, Rotation, SeededGrant, SimEnvironment, SimHandle, SimOptions};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENT_ID: &str = "sim-sandbox-client";
const CLIENT_SECRET: &str = "sim-sandbox-secret";
const REDIRECT_URI: &str = "http://localhost:8080/callback";

/// `[scheduler] max_concurrency` of the daemon path and of the daemon in the memory run,
/// unless `QBO_BENCH_CONCURRENCY` says otherwise.
const MAX_CONCURRENCY: usize = 64;
/// Rows per `Service::import` call (one transaction each).
const IMPORT_CHUNK: usize = 10_000;
/// Requests in flight tried for the loopback limit; the best one counts.
const LOOPBACK_CONCURRENCY: [usize; 3] = [16, 64, 256];

const TARGET_DAEMON_RATE: f64 = 1_000.0;
const TARGET_VS_OFFICIAL: f64 = 10.0;
const TARGET_VS_LOOPBACK: f64 = 0.5;
const TARGET_MEMORY_MB: f64 = 150.0;

struct Settings {
    n: usize,
    memory_n: usize,
    py_n: usize,
    memory_secs: u64,
    /// `[scheduler] max_concurrency` (`QBO_BENCH_CONCURRENCY`).
    concurrency: usize,
    /// `QBO_BENCH_SYNCHRONOUS=normal`: an explanatory experiment only. The daemon path
    /// then runs with `PRAGMA synchronous=NORMAL` set on every pooled connection (commits
    /// no longer wait for fsync), to show what durability costs. Never the default.
    synchronous_normal: bool,
    /// The phases to run (`QBO_BENCH_ONLY`, comma-separated; all by default).
    only: Vec<String>,
}

const PHASES: [&str; 4] = ["daemon", "official", "loopback", "memory"];

fn env_number(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => match v.trim().replace('_', "").parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => bail!("{name}={v:?} is not a positive whole number"),
        },
        _ => Ok(default),
    }
}

fn phases_from_env() -> Result<Vec<String>> {
    let Ok(v) = std::env::var("QBO_BENCH_ONLY") else {
        return Ok(PHASES.iter().map(|p| p.to_string()).collect());
    };
    let mut out = Vec::new();
    for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if !PHASES.contains(&p) {
            bail!(
                "QBO_BENCH_ONLY: unknown phase {p:?}; phases are {}",
                PHASES.join(", ")
            );
        }
        out.push(p.to_string());
    }
    if out.is_empty() {
        bail!(
            "QBO_BENCH_ONLY is empty; name some of {}",
            PHASES.join(", ")
        );
    }
    Ok(out)
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let n = env_number("QBO_BENCH_N", 10_000)? as usize;
        Ok(Settings {
            n,
            memory_n: env_number("QBO_BENCH_MEMORY_N", 100_000)? as usize,
            py_n: env_number("QBO_BENCH_PY_N", n as u64)? as usize,
            memory_secs: env_number("QBO_BENCH_MEMORY_SECS", 25)?,
            concurrency: env_number("QBO_BENCH_CONCURRENCY", MAX_CONCURRENCY as u64)? as usize,
            synchronous_normal: match std::env::var("QBO_BENCH_SYNCHRONOUS") {
                Ok(v) if v.eq_ignore_ascii_case("normal") => true,
                Ok(v) if v.is_empty() || v.eq_ignore_ascii_case("full") => false,
                Ok(v) => {
                    bail!("QBO_BENCH_SYNCHRONOUS={v:?}: expected full (the default) or normal")
                }
                Err(_) => false,
            },
            only: phases_from_env()?,
        })
    }
}

#[path = "refresh/fleet.rs"]
mod fleet;
#[path = "shared/pg_database.rs"]
mod pg_database;

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; `fleet` or `catchup` after `--` runs that instead.
    let mode = std::env::args()
        .skip(1)
        .find(|a| a == "fleet" || a == "catchup");
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    // The same runtime `qbo-console serve` builds: multi-threaded, one worker per core.
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
    // Spawned, so the measured code runs on the runtime's worker threads as it does in
    // `qbo-console serve` (which spawns its scheduler), not on the thread that blocks.
    let bench = match mode.as_deref() {
        Some("fleet") => runtime.spawn(fleet::fleet()),
        Some(_) => runtime.spawn(fleet::catchup()),
        None => runtime.spawn(run(settings)),
    };
    if let Err(e) = runtime.block_on(bench) {
        println!("FAIL: the bench itself panicked: {e}");
    }
    ExitCode::SUCCESS
}

async fn run(s: Settings) {
    let started = Instant::now();
    println!("qbo-console refresh bench");
    println!("  machine: {}", machine());
    println!("  source: {}", source_revision());
    println!(
        "  load average at start: {} (other work on this machine skews every figure)",
        loadavg()
    );
    println!(
        "  N = {} (daemon path, loopback), Python loop over {}, memory run with {} connections for {} s",
        s.n, s.py_n, s.memory_n, s.memory_secs
    );
    if s.only.len() < PHASES.len() {
        println!("  QBO_BENCH_ONLY: running {} only", s.only.join(", "));
    }

    println!("\n[1/4] daemon path: Scheduler::run_once, SQLite WAL + synchronous=FULL, qbo-sim in process");
    let daemon = phase(&s, "daemon", daemon_path(&s)).await;

    println!("\n[2/4] the pattern most teams use: intuit-oauth loop, one durable SQLite commit per refresh");
    let official = phase(&s, "official", official_loop(s.py_n, s.n)).await;

    println!("\n[3/4] loopback limit: bare reqwest client against qbo-sim's token endpoint, no persistence");
    let loopback = phase(&s, "loopback", loopback_limit(s.n)).await;

    println!(
        "\n[4/4] memory: `qbo-console serve` child process with {} connections, {} s of refreshing",
        s.memory_n, s.memory_secs
    );
    let memory = phase(&s, "memory", daemon_memory(&s)).await;

    summary(&s, &daemon, &official, &loopback, &memory);
    println!(
        "\nbench finished in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

/// What became of a phase.
enum Ran<T> {
    Done(T),
    Failed,
    Skipped,
}

impl<T> Ran<T> {
    fn done(&self) -> Option<&T> {
        match self {
            Ran::Done(v) => Some(v),
            _ => None,
        }
    }
}

async fn phase<T>(
    s: &Settings,
    name: &str,
    f: impl std::future::Future<Output = Result<T>>,
) -> Ran<T> {
    if !s.only.iter().any(|p| p == name) {
        println!("  skipped (QBO_BENCH_ONLY)");
        return Ran::Skipped;
    }
    match f.await {
        Ok(v) => Ran::Done(v),
        Err(e) => {
            println!("  FAIL: this phase could not run: {e:#}");
            Ran::Failed
        }
    }
}

/// CPU time used so far by this process (the daemon path, the in-process qbo-sim, the
/// bare client) and by its reaped children (the Python loop), in seconds.
#[derive(Clone, Copy)]
struct Cpu {
    own: f64,
    children: f64,
}

fn cpu_now() -> Cpu {
    fn secs(who: libc::c_int) -> f64 {
        // SAFETY: getrusage only writes into the struct we pass.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut u) } != 0 {
            return f64::NAN;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(u.ru_utime) + tv(u.ru_stime)
    }
    Cpu {
        own: secs(libc::RUSAGE_SELF),
        children: secs(libc::RUSAGE_CHILDREN),
    }
}

fn cores() -> f64 {
    std::thread::available_parallelism()
        .map(|p| p.get() as f64)
        .unwrap_or(1.0)
}

/// "CPU 0.31 ms per refresh, 1.9 of 2 cores busy".
fn cpu_line(cpu_secs: f64, wall_secs: f64, count: usize) -> String {
    format!(
        "CPU {:.3} ms per refresh, {:.2} of {} cores busy",
        cpu_secs * 1000.0 / count.max(1) as f64,
        cpu_secs / wall_secs,
        cores()
    )
}

/// The commit measured, and whether the work tree differed from it.
fn source_revision() -> String {
    std::process::Command::new("git")
        .arg("-C")
        .arg(manifest_dir())
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

// ---------------------------------------------------------------------------------------
// Shared set-up: an emulator, a directory with key, secret and config, seeded grants.

fn sim_options() -> SimOptions {
    // Daily rotation (Intuit's observed behaviour): a refresh returns the same refresh
    // token for 24 h, so a seeded grant can be refreshed any number of times.
    SimOptions {
        rotation: Rotation::Daily,
        ..SimOptions::default()
    }
}

async fn start_sim() -> Result<SimHandle> {
    sim::start(sim_options())
        .await
        .context("starting qbo-sim in process")
}

/// Writes the key, the client secret and a config pointing at the emulator, the way
/// tests/common/mod.rs does, with the bench's scheduler settings.
fn write_config(dir: &Path, sim_base: &str, concurrency: usize) -> Result<PathBuf> {
    let key = qbo_core::vault::generate_key();
    let url = format!("sqlite://{}/bench.db", dir.display());
    write_config_for(dir, sim_base, concurrency, &url, key.as_str(), Some(16))
}

/// The same, for a database at `url` and a given key (daemons sharing one database share
/// its key).
fn write_config_for(
    dir: &Path,
    sim_base: &str,
    concurrency: usize,
    url: &str,
    key: &str,
    pool: Option<u32>,
) -> Result<PathBuf> {
    // Owner-only: qbo-console refuses a key or secret file others can read.
    let owner_only = |name: &str, value: &str| -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join(name))?
            .write_all(value.as_bytes())
    };
    owner_only("token.key", key).context("writing the key file")?;
    owner_only("sandbox.secret", CLIENT_SECRET).context("writing the client secret file")?;
    let d = dir.display();
    // `None`: the daemon's own default pool, as deployed.
    let pool = pool.map_or(String::new(), |n| format!("max_connections = {n}"));
    let text = format!(
        r#"[database]
url = "{url}"
{pool}

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

[intuit]
timeout = "10s"

[refresh]
lease = "60s"

[scheduler]
jitter = "0s"
max_concurrency = {concurrency}
rate_per_second = 1000000

[daemon]
socket = "{d}/ops.sock"
http_listen = "127.0.0.1:0"

[api]
listen = "127.0.0.1:0"

[log]
level = "warn"
"#
    );
    let path = dir.join("qbo-console.toml");
    std::fs::write(&path, text).context("writing the config file")?;
    Ok(path)
}

fn seed(sim: &SimHandle, n: usize) -> Result<Vec<SeededGrant>> {
    let t = Instant::now();
    let grants = (0..n)
        .map(|i| {
            sim.seed_grant(CLIENT_ID, None, None)
                .with_context(|| format!("seeding grant #{i} at qbo-sim"))
        })
        .collect::<Result<Vec<_>>>()?;
    println!(
        "  seeded {n} grants at qbo-sim in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(grants)
}

/// Imports the grants as connections through `Service::import`, in chunks (one
/// transaction each). Imported connections have no `next_attempt_at`: all are due.
async fn import(svc: &Service, grants: &[SeededGrant]) -> Result<()> {
    let t = Instant::now();
    let admin = Actor::current_process(Interface::Cli, Role::Admin);
    for (c, chunk) in grants.chunks(IMPORT_CHUNK).enumerate() {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["tenant", "realm_id", "environment", "refresh_token"])?;
        for (i, g) in chunk.iter().enumerate() {
            let tenant = format!("bench-tenant-{}", c * IMPORT_CHUNK + i);
            w.write_record([
                tenant.as_str(),
                g.realm_id.as_str(),
                "sandbox",
                g.refresh_token.as_str(),
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
        if report.created != chunk.len() as u64 {
            bail!(
                "Service::import of chunk {c} created {} of {} connections",
                report.created,
                chunk.len()
            );
        }
    }
    println!(
        "  imported {} connections through Service::import in {:.1} s (not timed)",
        grants.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn proc_status_kb(pid: &str, key: &str) -> Option<u64> {
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

// ---------------------------------------------------------------------------------------
// 1. The daemon path.

struct DaemonFigures {
    rate: f64,
    /// Problems found by the checks; empty when all N were refreshed cleanly.
    problems: Vec<String>,
    peak_rss_kb: Option<u64>,
}

async fn daemon_path(s: &Settings) -> Result<DaemonFigures> {
    let (n, concurrency) = (s.n, s.concurrency);
    let sim = start_sim().await?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let config_path = write_config(dir.path(), &sim.base_url(), s.concurrency)?;
    let config = Config::load(Some(&config_path))?;
    let svc = Service::open(&config, Clock::System)
        .await
        .context("Service::open")?;
    let grants = seed(&sim, n)?;
    import(&svc, &grants).await?;
    drop(grants);
    if s.synchronous_normal {
        relax_durability(&svc, 16).await?;
        println!(
            "  EXPERIMENT (QBO_BENCH_SYNCHRONOUS=normal): PRAGMA synchronous=NORMAL on all 16 pooled connections; commits do not wait for fsync. Not how the daemon runs."
        );
    }
    sim.reset_stats();

    let scheduler = Scheduler::new(
        svc.lifecycle_for_tests().clone(),
        config.scheduler.clone(),
        Actor::daemon(qbo_core::identity::DaemonTask::Scheduler),
    );
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    println!(
        "  run_once: max_concurrency {concurrency}, rate_per_second 1000000, 16 database connections"
    );
    let cpu = cpu_now();
    let t = Instant::now();
    let report: TickReport = scheduler.run_once(&stop).await.context("run_once")?;
    let secs = t.elapsed().as_secs_f64();
    let cpu_secs = cpu_now().own - cpu.own;
    let stats = sim.stats();
    let rate = report.refreshed as f64 / secs;

    let mut problems = Vec::new();
    if report.refreshed != n {
        problems.push(format!("run_once refreshed {} of {n}", report.refreshed));
    }
    if stats.refreshes != n as u64 {
        problems.push(format!(
            "qbo-sim counted {} refreshes, expected {n}",
            stats.refreshes
        ));
    }
    if stats.invalid_grants != 0 {
        problems.push(format!(
            "qbo-sim answered {} invalid_grant",
            stats.invalid_grants
        ));
    }
    println!(
        "  {} refreshed in {secs:.2} s: {rate:.0} refreshes/s  (report {report:?}; qbo-sim: {} refreshes, {} invalid_grant)",
        report.refreshed, stats.refreshes, stats.invalid_grants
    );
    if problems.is_empty() {
        println!("  check: all {n} refreshed, qbo-sim agrees, 0 invalid_grant");
    } else {
        println!("  CHECK FAILED: {}", problems.join("; "));
    }
    // Little's law: with `concurrency` refreshes in flight, each one took this long.
    if rate > 0.0 {
        println!(
            "  mean time per refresh with {concurrency} in flight: {:.1} ms; {} (daemon path + qbo-sim)",
            concurrency as f64 / rate * 1000.0,
            cpu_line(cpu_secs, secs, report.refreshed)
        );
    }
    let peak_rss_kb = proc_status_kb("self", "VmHWM:");
    if let Some(kb) = peak_rss_kb {
        println!(
            "  peak RSS of this process so far (VmHWM, includes the in-process qbo-sim and its {n} grants): {:.1} MB",
            mb(kb)
        );
    }
    svc.lifecycle_for_tests().store.close().await;
    sim.shutdown().await;
    Ok(DaemonFigures {
        rate,
        problems,
        peak_rss_kb,
    })
}

/// The explanatory experiment: `PRAGMA synchronous=NORMAL` on every connection of the
/// store's pool (all of them held at once, so none is missed).
async fn relax_durability(svc: &Service, pool_size: usize) -> Result<()> {
    let qbo_store::Store::Sqlite(qbo_store::SqliteStore { pool, .. }) =
        &svc.lifecycle_for_tests().store
    else {
        bail!("QBO_BENCH_SYNCHRONOUS applies to SQLite only");
    };
    let mut held = Vec::with_capacity(pool_size);
    for _ in 0..pool_size {
        let mut c = pool
            .acquire()
            .await
            .context("acquiring a pooled connection")?;
        sqlx::query("PRAGMA synchronous=NORMAL")
            .execute(&mut *c)
            .await
            .context("PRAGMA synchronous=NORMAL")?;
        held.push(c);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 2. Intuit's official Python client in a refresh-and-save loop.

struct OfficialFigures {
    /// The per-connection AuthClient loop: the pattern the target compares with.
    rate: f64,
    /// The same loop reusing one AuthClient (and so its HTTP session).
    reuse_rate: Option<f64>,
    problems: Vec<String>,
}

struct LoopResult {
    refreshes: usize,
    failures: usize,
    seconds: f64,
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn imports_intuitlib(python: &Path) -> bool {
    tokio::process::Command::new(python)
        .args(["-c", "import intuitlib.client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

async fn run_checked(cmd: &mut tokio::process::Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .await
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A Python that can import `intuitlib`: `$QBO_BENCH_PYTHON`, else `target/bench-venv`,
/// created with `python3 -m venv` and `pip install intuit-oauth` when missing.
async fn python_with_intuit_oauth() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("QBO_BENCH_PYTHON").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !imports_intuitlib(&p).await {
            bail!(
                "QBO_BENCH_PYTHON={} cannot import intuitlib; `pip install intuit-oauth` into it",
                p.display()
            );
        }
        return Ok(p);
    }
    let venv = manifest_dir().join("target").join("bench-venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        println!("  creating {} (python3 -m venv)", venv.display());
        run_checked(
            tokio::process::Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv),
            "python3 -m venv",
        )
        .await?;
    }
    if !imports_intuitlib(&python).await {
        println!("  installing intuit-oauth into {}", venv.display());
        run_checked(
            tokio::process::Command::new(&python).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "intuit-oauth",
            ]),
            "pip install intuit-oauth",
        )
        .await?;
        if !imports_intuitlib(&python).await {
            bail!(
                "{} still cannot import intuitlib after pip install intuit-oauth",
                python.display()
            );
        }
    }
    Ok(python)
}

async fn run_python_loop(
    python: &Path,
    sim: &SimHandle,
    tokens: &Path,
    db: &Path,
    reuse_client: bool,
) -> Result<LoopResult> {
    let script = manifest_dir()
        .join("benches")
        .join("python")
        .join("official_client_loop.py");
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(&script)
        .arg(sim.discovery_url(SimEnvironment::Sandbox))
        .args([CLIENT_ID, CLIENT_SECRET, REDIRECT_URI])
        .arg(tokens)
        .arg(db);
    if reuse_client {
        cmd.arg("--reuse-client");
    }
    // Progress (stderr) shows as it comes; the RESULT line is read from stdout.
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let out = cmd
        .output()
        .await
        .with_context(|| format!("cannot run {} {}", python.display(), script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(line) = stdout.lines().rev().find(|l| l.starts_with("RESULT ")) else {
        bail!(
            "the Python loop printed no RESULT line (exit {}); its stdout: {}",
            out.status,
            stdout.trim()
        );
    };
    let field = |key: &str| -> Result<&str> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .ok_or_else(|| anyhow!("no {key}= in {line:?}"))
    };
    Ok(LoopResult {
        refreshes: field("refreshes")?.parse()?,
        failures: field("failures")?.parse()?,
        seconds: field("seconds")?.parse()?,
    })
}

async fn official_loop(py_n: usize, n: usize) -> Result<OfficialFigures> {
    let python = python_with_intuit_oauth().await?;
    println!("  python: {}", python.display());
    let sim = start_sim().await?;
    let grants = seed(&sim, py_n)?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let entries: Vec<serde_json::Value> = grants
        .iter()
        .map(|g| serde_json::json!({"realm_id": g.realm_id, "refresh_token": g.refresh_token}))
        .collect();
    let tokens = dir.path().join("tokens.json");
    std::fs::write(&tokens, serde_json::to_vec(&entries)?).context("writing tokens.json")?;
    drop(entries);
    sim.reset_stats();

    let mut problems = Vec::new();
    let mut rates = Vec::new();
    for (reuse, label) in [
        (false, "an AuthClient per connection"),
        (true, "one AuthClient reused (its HTTP session too)"),
    ] {
        let before = sim.stats();
        let db = dir.path().join(format!("official-{reuse}.db"));
        let cpu = cpu_now();
        let r = run_python_loop(&python, &sim, &tokens, &db, reuse).await?;
        let cpu_end = cpu_now();
        let after = sim.stats();
        let rate = r.refreshes as f64 / r.seconds;
        println!(
            "  {label}: {} refreshed, {} failed in {:.2} s: {rate:.0} refreshes/s",
            r.refreshes, r.failures, r.seconds
        );
        println!(
            "    CPU over the whole child run: Python {:.1} s (one core at most: it is one thread), qbo-sim {:.1} s",
            cpu_end.children - cpu.children,
            cpu_end.own - cpu.own
        );
        let counted = after.refreshes - before.refreshes;
        if r.refreshes != py_n || r.failures != 0 || counted != py_n as u64 {
            problems.push(format!(
                "{label}: {} of {py_n} refreshed, {} failed, qbo-sim counted {counted}",
                r.refreshes, r.failures
            ));
        }
        if after.invalid_grants != before.invalid_grants {
            problems.push(format!(
                "{label}: qbo-sim answered {} invalid_grant",
                after.invalid_grants - before.invalid_grants
            ));
        }
        rates.push(rate);
    }
    if py_n < n {
        println!(
            "  QBO_BENCH_PY_N={py_n}: the loop ran over {py_n} of {n} connections; at {:.0}/s, {n} would take about {:.0} s (extrapolated, not measured)",
            rates[0],
            n as f64 / rates[0]
        );
    }
    if problems.is_empty() {
        println!("  check: every refresh answered 200 and was committed, 0 invalid_grant");
    } else {
        println!("  CHECK FAILED: {}", problems.join("; "));
    }
    sim.shutdown().await;
    Ok(OfficialFigures {
        rate: rates[0],
        reuse_rate: rates.get(1).copied(),
        problems,
    })
}

// ---------------------------------------------------------------------------------------
// 3. The loopback limit.

struct LoopbackFigures {
    rate: f64,
    in_flight: usize,
    mode: &'static str,
    problems: Vec<String>,
}

/// One refresh as the product's Intuit client sends it; Ok when 200 with an access token.
async fn bare_refresh(
    http: &reqwest::Client,
    url: &str,
    auth: &str,
    refresh_token: &str,
) -> std::result::Result<(), String> {
    let resp = http
        .post(url)
        .header(reqwest::header::AUTHORIZATION, auth)
        .header(reqwest::header::ACCEPT, "application/json")
        .header("x-include-refresh-token-hard-expires-in", "true")
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("reading the answer failed: {e}"))?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("HTTP {status}"));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("answer is not JSON: {e}"))?;
    if !v["access_token"].is_string() {
        return Err("200 without an access_token".into());
    }
    Ok(())
}

async fn loopback_limit(n: usize) -> Result<LoopbackFigures> {
    let sim = start_sim().await?;
    let grants = seed(&sim, n)?;
    let url = format!("{}/oauth2/v1/tokens/bearer", sim.base_url());
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{CLIENT_ID}:{CLIENT_SECRET}")
        )
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;
    sim.reset_stats();
    let tokens: Arc<Vec<String>> = Arc::new(grants.into_iter().map(|g| g.refresh_token).collect());
    let mut problems = Vec::new();
    let mut best = (0.0_f64, 0_usize, "");
    let mut rounds = 0;
    // "one task": every request polled by a single task, as a `buffer_unordered` stream
    // does (the way the scheduler drives a batch); "spawned": that many tasks pulling from
    // a shared queue, spread over every core. The best round is the limit.
    for mode in ["one task", "spawned"] {
        for in_flight in LOOPBACK_CONCURRENCY {
            let cpu = cpu_now();
            let t = Instant::now();
            let (ok, first_err) = if mode == "spawned" {
                spawned_round(&http, &url, &auth, &tokens, in_flight).await?
            } else {
                let results: Vec<std::result::Result<(), String>> = stream::iter(0..tokens.len())
                    .map(|i| bare_refresh(&http, &url, &auth, &tokens[i]))
                    .buffer_unordered(in_flight)
                    .collect()
                    .await;
                let ok = results.iter().filter(|r| r.is_ok()).count();
                (ok, results.into_iter().find_map(|r| r.err()))
            };
            let secs = t.elapsed().as_secs_f64();
            let cpu_secs = cpu_now().own - cpu.own;
            rounds += 1;
            let rate = ok as f64 / secs;
            println!(
                "  {mode:>8}, {in_flight:>3} in flight: {ok} of {n} answered 200 in {secs:.2} s: {rate:.0}/s; {} (client + qbo-sim)",
                cpu_line(cpu_secs, secs, ok)
            );
            if ok != n {
                problems.push(format!(
                    "{mode}, {in_flight} in flight: {} of {n} failed, first: {}",
                    n - ok,
                    first_err.unwrap_or_default()
                ));
            } else if rate > best.0 {
                best = (rate, in_flight, mode);
            }
        }
    }
    let stats = sim.stats();
    let expected = (n * rounds) as u64;
    if stats.refreshes != expected || stats.invalid_grants != 0 {
        problems.push(format!(
            "qbo-sim counted {} refreshes (expected {expected}) and {} invalid_grant",
            stats.refreshes, stats.invalid_grants
        ));
    }
    if problems.is_empty() {
        println!(
            "  check: all answered 200 with an access token; best {:.0}/s ({}, {} in flight)",
            best.0, best.2, best.1
        );
    } else {
        println!("  CHECK FAILED: {}", problems.join("; "));
    }
    sim.shutdown().await;
    Ok(LoopbackFigures {
        rate: best.0,
        in_flight: best.1,
        mode: best.2,
        problems,
    })
}

/// `in_flight` spawned tasks refresh every token once; returns how many answered 200 and
/// the first failure.
async fn spawned_round(
    http: &reqwest::Client,
    url: &str,
    auth: &str,
    tokens: &Arc<Vec<String>>,
    in_flight: usize,
) -> Result<(usize, Option<String>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..in_flight)
        .map(|_| {
            let (http, url, auth) = (http.clone(), url.to_string(), auth.to_string());
            let (tokens, next) = (tokens.clone(), next.clone());
            tokio::spawn(async move {
                let (mut ok, mut first_err) = (0_usize, None);
                while let Some(tok) = tokens.get(next.fetch_add(1, Ordering::Relaxed)) {
                    match bare_refresh(&http, &url, &auth, tok).await {
                        Ok(()) => ok += 1,
                        Err(e) => {
                            first_err.get_or_insert(e);
                        }
                    }
                }
                (ok, first_err)
            })
        })
        .collect();
    let (mut ok, mut first_err) = (0, None);
    for w in workers {
        let (o, e) = w.await.context("a loopback worker task panicked")?;
        ok += o;
        if first_err.is_none() {
            first_err = e;
        }
    }
    Ok((ok, first_err))
}

// ---------------------------------------------------------------------------------------
// 4. A real `qbo-console serve` holding M connections.

struct MemoryFigures {
    peak_kb: u64,
    problems: Vec<String>,
}

/// Kills the daemon if the bench leaves early (an error or a panic).
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

async fn daemon_memory(s: &Settings) -> Result<MemoryFigures> {
    let (m, secs) = (s.memory_n, s.memory_secs);
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_qbo-console"));
    if !binary.is_file() {
        bail!(
            "{} is missing; `cargo bench` builds it (or run `cargo build --release`)",
            binary.display()
        );
    }
    let sim = start_sim().await?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let config_path = write_config(dir.path(), &sim.base_url(), s.concurrency)?;
    {
        let config = Config::load(Some(&config_path))?;
        let svc = Service::open(&config, Clock::System)
            .await
            .context("Service::open")?;
        let grants = seed(&sim, m)?;
        import(&svc, &grants).await?;
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
    let mut guard = ChildGuard(Some(child));
    let pid = guard.0.as_ref().map(|c| c.id()).unwrap_or_default();
    let pid_s = pid.to_string();

    // Wait until it says it is serving.
    let t = Instant::now();
    loop {
        if let Some(c) = guard.0.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                bail!(
                    "qbo-console serve exited ({status}) before serving; its log:\n    {}",
                    log_tail(&log_path)
                );
            }
        }
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains("qbo-console serving") {
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
        "  pid {pid} serving after {:.2} s; sampling VmRSS every 250 ms",
        t.elapsed().as_secs_f64()
    );

    let run_start = Instant::now();
    let mut max_rss = 0_u64;
    let mut next_print = Duration::from_secs(5);
    while run_start.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let rss = proc_status_kb(&pid_s, "VmRSS:").unwrap_or(0);
        max_rss = max_rss.max(rss);
        if run_start.elapsed() >= next_print {
            println!(
                "  {:>3.0} s: VmRSS {:.1} MB, {} refreshes so far",
                run_start.elapsed().as_secs_f64(),
                mb(rss),
                sim.refreshes()
            );
            next_print += Duration::from_secs(5);
        }
    }
    let hwm = proc_status_kb(&pid_s, "VmHWM:");
    let rss_end = proc_status_kb(&pid_s, "VmRSS:");
    let stats = sim.stats();

    // SIGTERM, and wait for the graceful stop.
    // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let stop_start = Instant::now();
    let mut status = None;
    while stop_start.elapsed() < Duration::from_secs(60) {
        if let Some(c) = guard.0.as_mut() {
            if let Ok(Some(s)) = c.try_wait() {
                status = Some(s);
                guard.0 = None;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut problems = Vec::new();
    let Some(peak_kb) = hwm else {
        bail!(
            "cannot read VmHWM of pid {pid}; its log:\n    {}",
            log_tail(&log_path)
        );
    };
    match status {
        Some(s) if s.success() => println!(
            "  stopped by SIGTERM in {:.2} s ({s})",
            stop_start.elapsed().as_secs_f64()
        ),
        Some(s) => problems.push(format!("qbo-console serve exited with {s} after SIGTERM")),
        None => problems.push("qbo-console serve did not stop within 60 s of SIGTERM".into()),
    }
    if stats.refreshes == 0 {
        problems.push("the daemon refreshed nothing while it ran".into());
    }
    if stats.invalid_grants != 0 {
        problems.push(format!(
            "qbo-sim answered {} invalid_grant",
            stats.invalid_grants
        ));
    }
    let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let errors = log_text.lines().filter(|l| l.contains("ERROR")).count();
    if errors > 0 {
        problems.push(format!(
            "the daemon logged {errors} ERROR lines; last lines:\n    {}",
            log_tail(&log_path)
        ));
    }
    println!(
        "  {m} connections, {secs} s of serving, {} refreshes: peak RSS (VmHWM) {:.1} MB, highest sampled VmRSS {:.1} MB, VmRSS at the end {:.1} MB",
        stats.refreshes,
        mb(peak_kb),
        mb(max_rss),
        mb(rss_end.unwrap_or(0))
    );
    if problems.is_empty() {
        println!("  check: refreshed without errors, 0 invalid_grant, clean stop");
    } else {
        println!("  CHECK FAILED: {}", problems.join("; "));
    }
    sim.shutdown().await;
    Ok(MemoryFigures { peak_kb, problems })
}

// ---------------------------------------------------------------------------------------
// The summary.

fn row(what: &str, value: &str, target: &str, verdict: &str) {
    println!("  {what:<46} {value:>12}  {target:<10} {verdict}");
}

/// A figure as the summary sees it.
#[derive(Clone, Copy)]
enum Figure {
    /// Measured, and its phase's checks passed.
    Checked(f64),
    /// Measured, but its phase's checks failed: shown, never a PASS.
    Unchecked(f64),
    /// Its phase failed to run.
    Missing,
    /// Its phase was not asked for.
    Skipped,
}

impl Figure {
    fn of<T>(r: &Ran<T>, problems: impl Fn(&T) -> &[String], value: impl Fn(&T) -> f64) -> Figure {
        match r {
            Ran::Done(v) if problems(v).is_empty() => Figure::Checked(value(v)),
            Ran::Done(v) => Figure::Unchecked(value(v)),
            Ran::Failed => Figure::Missing,
            Ran::Skipped => Figure::Skipped,
        }
    }

    fn value(self) -> Option<f64> {
        match self {
            Figure::Checked(v) | Figure::Unchecked(v) => Some(v),
            _ => None,
        }
    }

    fn show(self, fmt: impl Fn(f64) -> String) -> String {
        match self {
            Figure::Checked(v) => fmt(v),
            Figure::Unchecked(v) => format!("{}(!)", fmt(v)),
            Figure::Missing => "n/a".into(),
            Figure::Skipped => "skipped".into(),
        }
    }

    /// Combines two figures into a ratio with the same trust.
    fn ratio(self, other: Figure) -> Figure {
        use Figure::*;
        match (self, other) {
            (Skipped, _) | (_, Skipped) => Skipped,
            (Missing, _) | (_, Missing) => Missing,
            (Checked(a), Checked(b)) => Checked(a / b),
            (a, b) => match (a.value(), b.value()) {
                (Some(a), Some(b)) => Unchecked(a / b),
                _ => Missing,
            },
        }
    }

    /// PASS only for a checked figure meeting the target; FAIL otherwise; nothing when
    /// the phase was skipped.
    fn verdict(self, meets: impl Fn(f64) -> bool) -> &'static str {
        match self {
            Figure::Checked(v) if meets(v) => "PASS",
            Figure::Skipped => "",
            _ => "FAIL",
        }
    }
}

fn summary(
    s: &Settings,
    daemon: &Ran<DaemonFigures>,
    official: &Ran<OfficialFigures>,
    loopback: &Ran<LoopbackFigures>,
    memory: &Ran<MemoryFigures>,
) {
    println!("\nsummary ({})", machine());
    if s.synchronous_normal || s.concurrency != MAX_CONCURRENCY {
        println!(
            "  EXPERIMENT: max_concurrency {}, synchronous {}; not the benchmark's settings (64, FULL)",
            s.concurrency,
            if s.synchronous_normal { "NORMAL" } else { "FULL" }
        );
    }
    let d = Figure::of(daemon, |f| &f.problems, |f| f.rate);
    let o = Figure::of(official, |f| &f.problems, |f| f.rate);
    let o_reuse = Figure::of(
        official,
        |f| &f.problems,
        |f| f.reuse_rate.unwrap_or(f64::NAN),
    );
    let l = Figure::of(loopback, |f| &f.problems, |f| f.rate);
    let m = Figure::of(memory, |f| &f.problems, |f| mb(f.peak_kb));
    let per_sec = |v: f64| format!("{v:.0}/s");

    row(
        &format!("daemon path ({} connections)", s.n),
        &d.show(per_sec),
        ">= 1,000/s",
        d.verdict(|v| v >= TARGET_DAEMON_RATE),
    );
    row(
        &format!("official intuit-oauth loop ({} connections)", s.py_n),
        &o.show(per_sec),
        "",
        "",
    );
    row(
        "  same, one AuthClient reused",
        &o_reuse.show(per_sec),
        "",
        "",
    );
    let best = loopback
        .done()
        .map(|f| format!("{}, {} in flight", f.mode, f.in_flight))
        .unwrap_or_default();
    row(
        &format!("loopback limit ({best})"),
        &l.show(per_sec),
        "",
        "",
    );
    let ratio_o = d.ratio(o);
    row(
        "daemon / official loop",
        &ratio_o.show(|v| format!("{v:.1}x")),
        ">= 10x",
        ratio_o.verdict(|v| v >= TARGET_VS_OFFICIAL),
    );
    row(
        "  same, vs one AuthClient reused",
        &d.ratio(o_reuse).show(|v| format!("{v:.1}x")),
        "",
        "",
    );
    let ratio_l = d.ratio(l);
    row(
        "daemon / loopback limit",
        &ratio_l.show(|v| format!("{v:.2}")),
        ">= 0.5",
        ratio_l.verdict(|v| v >= TARGET_VS_LOOPBACK),
    );
    row(
        &format!("serve peak RSS, {} connections", s.memory_n),
        &m.show(|v| format!("{v:.1} MB")),
        "< 150 MB",
        m.verdict(|v| v < TARGET_MEMORY_MB),
    );
    if let Some(kb) = daemon.done().and_then(|f| f.peak_rss_kb) {
        row(
            "bench process peak RSS after [1] (incl. sim)",
            &format!("{:.1} MB", mb(kb)),
            "",
            "",
        );
    }
    let problems = |name: &str, r: Option<&[String]>| {
        if let Some(p) = r.filter(|p| !p.is_empty()) {
            println!("  FAIL: {name} checks: {}", p.join("; "));
        }
    };
    problems("daemon path", daemon.done().map(|f| f.problems.as_slice()));
    problems(
        "official loop",
        official.done().map(|f| f.problems.as_slice()),
    );
    problems("loopback", loopback.done().map(|f| f.problems.as_slice()));
    problems("memory", memory.done().map(|f| f.problems.as_slice()));
    for (name, failed) in [
        ("daemon path", matches!(daemon, Ran::Failed)),
        ("official loop", matches!(official, Ran::Failed)),
        ("loopback", matches!(loopback, Ran::Failed)),
        ("memory", matches!(memory, Ran::Failed)),
    ] {
        if failed {
            println!("  FAIL: {name} did not run (see above)");
        }
    }
    println!("  (!) = measured, but that phase's checks failed (see above)");
    println!("  load average at the end: {}", loadavg());
}

/// The allocator `qbo-console` itself uses (src/main.rs), so the daemon path measured here
/// is the one that ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
