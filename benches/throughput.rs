//! Refresh throughput and daemon memory, measured in one run on this machine:
//!
//! 1. the daemon's scheduler (`Scheduler::run_once`, exactly what `qbo-console serve`
//!    runs) refreshing N due connections against `qbo-sim` on loopback, SQLite, durable
//!    commits (WAL, synchronous=FULL);
//! 2. the pattern most teams use: a loop over Intuit's official Python client
//!    (`intuit-oauth`) refreshing and saving each token to SQLite in turn;
//! 3. the loopback limit: a bare client hammering the emulator's token endpoint, no
//!    persistence;
//! 4. the resident memory of a real `qbo-console serve` with M connections.
//!
//! `cargo bench --bench throughput` (N = QBO_BENCH_N, default 10,000; M =
//! QBO_BENCH_MEMORY_N, default 100,000; QBO_BENCH_PY_N limits the Python loop). Figures
//! are printed, not asserted: see BENCHMARKS.md.

use futures_util::stream::{self, StreamExt};
use qbo_console::clock::Clock;
use qbo_console::config::Config;
use qbo_console::daemon::scheduler::Scheduler;
use qbo_console::identity::{Actor, Interface, Role};
use qbo_console::service::Service;
use qbo_console::sim::{self, SeededGrant, SimHandle, SimOptions};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CLIENT: &str = "sim-sandbox-client";
const SECRET: &str = "sim-sandbox-secret";
const REDIRECT: &str = "http://localhost:8080/callback";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn write_config(dir: &Path, base: &str, extra_scheduler: &str) -> PathBuf {
    std::fs::write(
        dir.join("token.key"),
        qbo_console::vault::generate_key().as_str(),
    )
    .unwrap();
    std::fs::write(dir.join("sandbox.secret"), SECRET).unwrap();
    let d = dir.display();
    let text = format!(
        "[database]\nurl = \"sqlite://{d}/bench.db\"\nmax_connections = 16\n\n[vault]\nkey_file = \"{d}/token.key\"\n\n\
         [environments.sandbox]\nclient_id = \"{CLIENT}\"\nclient_secret_file = \"{d}/sandbox.secret\"\nredirect_uri = \"{REDIRECT}\"\n\
         authorization_endpoint = \"{base}/connect/oauth2\"\ntoken_endpoint = \"{base}/oauth2/v1/tokens/bearer\"\n\
         revocation_endpoint = \"{base}/v2/oauth2/tokens/revoke\"\napi_base = \"{base}\"\n\n\
         [intuit]\ntimeout = \"20s\"\n\n[refresh]\nlease = \"60s\"\n\n[daemon]\nsocket = \"{d}/ops.sock\"\nhttp_listen = \"127.0.0.1:0\"\n\n\
         [scheduler]\njitter = \"0s\"\n{extra_scheduler}\n[log]\nlevel = \"error\"\n"
    );
    let path = dir.join("qbo-console.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn seed(sim: &SimHandle, n: usize) -> Vec<SeededGrant> {
    (0..n)
        .map(|_| sim.seed_grant(CLIENT, None, None).expect("seed grant"))
        .collect()
}

async fn import(svc: &Service, grants: &[SeededGrant], offset: usize) {
    let admin = Actor::current_process(Interface::Cli, Role::Admin);
    for (chunk_no, chunk) in grants.chunks(10_000).enumerate() {
        let mut csv = String::from("tenant,realm_id,environment,refresh_token\n");
        for (i, g) in chunk.iter().enumerate() {
            let _ = writeln!(
                csv,
                "t{},{},sandbox,{}",
                offset + chunk_no * 10_000 + i,
                g.realm_id,
                g.refresh_token
            );
        }
        svc.import(&admin, &csv, "bench.csv", false)
            .await
            .expect("import");
    }
}

/// 1. The daemon's scheduler refreshing `n` due connections.
async fn daemon_rate(n: usize) -> (f64, String) {
    let sim = sim::start(SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = write_config(
        dir.path(),
        &sim.base_url(),
        "max_concurrency = 64\nrate_per_second = 1000000\n",
    );
    let cfg = Config::load(Some(&cfg_path)).unwrap();
    let svc = Service::open(&cfg, Clock::System).await.unwrap();
    let grants = seed(&sim, n);
    import(&svc, &grants, 0).await;
    sim.reset_stats();
    let scheduler = Scheduler::new(
        svc.engine().clone(),
        cfg.scheduler.clone(),
        Actor::current_process(Interface::Scheduler, Role::Admin),
    );
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let start = Instant::now();
    let report = scheduler.run_once(&rx).await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    let stats = sim.stats();
    let check =
        if report.refreshed == n && stats.refreshes as usize == n && stats.invalid_grants == 0 {
            "all refreshed, 0 invalid_grant".to_string()
        } else {
            format!(
                "CHECK FAILED: {report:?}, emulator refreshes {}, invalid_grants {}",
                stats.refreshes, stats.invalid_grants
            )
        };
    svc.engine().store.close().await;
    sim.shutdown().await;
    (
        n as f64 / secs,
        format!("{n} refreshes in {secs:.2}s ({check})"),
    )
}

/// 3. A bare client against the emulator's token endpoint.
async fn loopback_rate(n: usize) -> (f64, String) {
    let sim = sim::start(SimOptions::default()).await.unwrap();
    let grants = seed(&sim, n);
    let url = format!("{}/oauth2/v1/tokens/bearer", sim.base_url());
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{CLIENT}:{SECRET}")
        )
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let start = Instant::now();
    let ok = stream::iter(grants.iter())
        .map(|g| {
            let http = http.clone();
            let (url, auth) = (url.clone(), auth.clone());
            async move {
                let r = http
                    .post(url)
                    .header("Authorization", auth)
                    .header("Accept", "application/json")
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", g.refresh_token.as_str()),
                    ])
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                }
            }
        })
        .buffer_unordered(64)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    let secs = start.elapsed().as_secs_f64();
    sim.shutdown().await;
    (
        ok as f64 / secs,
        format!("{ok} of {n} answered 200 in {secs:.2}s"),
    )
}

fn python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("QBO_BENCH_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-venv");
    let py = venv.join("bin/python");
    if !py.exists() {
        let ok = std::process::Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
    }
    let pip = std::process::Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "intuit-oauth",
        ])
        .status();
    pip.is_ok_and(|s| s.success()).then_some(py)
}

/// 2. Intuit's official Python client in a refresh-and-save loop.
async fn official_loop_rate(n: usize) -> (f64, String) {
    let Some(py) = python() else {
        return (
            f64::NAN,
            "could not set up a Python virtualenv with intuit-oauth".into(),
        );
    };
    let sim = sim::start(SimOptions::default()).await.unwrap();
    let grants = seed(&sim, n);
    let dir = tempfile::tempdir().unwrap();
    let tokens: Vec<serde_json::Value> = grants
        .iter()
        .map(|g| serde_json::json!({"realm_id": g.realm_id, "refresh_token": g.refresh_token}))
        .collect();
    let tokens_path = dir.path().join("tokens.json");
    std::fs::write(&tokens_path, serde_json::to_vec(&tokens).unwrap()).unwrap();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python/official_client_loop.py");
    let discovery = sim.discovery_url(sim::SimEnvironment::Sandbox);
    let out = tokio::process::Command::new(&py)
        .arg(script)
        .args([discovery.as_str(), CLIENT, SECRET, REDIRECT])
        .arg(&tokens_path)
        .arg(dir.path().join("loop.db"))
        .output()
        .await
        .unwrap();
    sim.shutdown().await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(last) = stdout.lines().rev().find(|l| l.starts_with("RESULT ")) else {
        return (
            f64::NAN,
            format!(
                "the Python loop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        );
    };
    let field = |k: &str| -> f64 {
        last.split_whitespace()
            .find_map(|kv| kv.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let (done, secs) = (field("refreshes="), field("seconds="));
    (done / secs, format!("{done} refreshes in {secs:.2}s"))
}

fn proc_status(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// 4. A real `qbo-console serve` with `m` connections, refreshing, for `secs` seconds.
async fn daemon_memory(m: usize, secs: u64) -> (f64, String) {
    let sim = sim::start(SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = write_config(dir.path(), &sim.base_url(), "");
    let cfg = Config::load(Some(&cfg_path)).unwrap();
    {
        let svc = Service::open(&cfg, Clock::System).await.unwrap();
        let grants = seed(&sim, m);
        import(&svc, &grants, 0).await;
        svc.engine().store.close().await;
    }
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_qbo-console"))
        .arg("--config")
        .arg(&cfg_path)
        .arg("serve")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let hwm = proc_status(pid, "VmHWM:").unwrap_or(0);
    let rss = proc_status(pid, "VmRSS:").unwrap_or(0);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait().await;
    let refreshed = sim.stats().refreshes;
    sim.shutdown().await;
    (
        hwm as f64 / 1024.0,
        format!("{m} connections, {secs}s of serving ({refreshed} refreshes): peak RSS {:.1} MB, RSS at the end {:.1} MB", hwm as f64 / 1024.0, rss as f64 / 1024.0),
    )
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let n = env_usize("QBO_BENCH_N", 10_000);
    let m = env_usize("QBO_BENCH_MEMORY_N", 100_000);
    let py_n = env_usize("QBO_BENCH_PY_N", n);
    println!("qbo-console throughput bench: N = {n}, memory M = {m}, Python loop over {py_n}");
    println!(
        "machine: {} cores",
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(0)
    );

    let (daemon, d_note) = daemon_rate(n).await;
    println!("daemon (scheduler, SQLite durable):  {daemon:>8.0} refreshes/s  [{d_note}]");
    let (loopback, l_note) = loopback_rate(n).await;
    println!("loopback limit (bare client):        {loopback:>8.0} refreshes/s  [{l_note}]");
    let (official, o_note) = official_loop_rate(py_n).await;
    println!("official intuit-oauth loop + SQLite: {official:>8.0} refreshes/s  [{o_note}]");
    let (mem, m_note) = daemon_memory(m, 20).await;
    println!("daemon memory:                       {mem:>8.1} MB peak  [{m_note}]");

    println!("\nsummary");
    println!(
        "  daemon >= 1,000 refreshes/s         {:>8.0}   {}",
        daemon,
        verdict(daemon >= 1000.0)
    );
    println!(
        "  daemon / official loop >= 10x       {:>8.1}x  {}",
        daemon / official,
        verdict(daemon / official >= 10.0)
    );
    println!(
        "  daemon / loopback limit >= 0.5      {:>8.2}   {}",
        daemon / loopback,
        verdict(daemon / loopback >= 0.5)
    );
    println!(
        "  resident memory, {m} conns < 150 MB {:>8.1}   {}",
        mem,
        verdict(mem > 0.0 && mem < 150.0)
    );
}
