//! Token API throughput and latency: 8 host clients (one keep-alive connection each)
//! fetching access tokens in a loop from the token API, in process, on SQLite (WAL,
//! synchronous=FULL), with `qbo-sim` on loopback. Two runs:
//!
//! 1. no refresh needed: every token has more than `[api] min_validity` left;
//! 2. refreshes mixed in: every `QBO_BENCH_STALE_EVERY_MS` both clocks jump 45 s, so each
//!    of the connections' 60-second tokens goes stale and the next fetch refreshes it
//!    (once, however many clients ask) while the others wait for it.
//!
//! ```sh
//! cargo bench --bench token_api
//! QBO_BENCH_SECS=2 cargo bench --bench token_api   # smoke run
//! ```
//!
//! Environment: `QBO_BENCH_SECS` (each run, default 10), `QBO_BENCH_CONNECTIONS` (default
//! 8), `QBO_BENCH_STALE_EVERY_MS` (default 1000). Figures are reported, not asserted: the
//! process exits 0 whatever they are, and marks a missed target FAIL.

use anyhow::{Context, Result};
use qbo_core::clock::Clock;
use qbo_core::config::Config;
use qbo_core::identity::{Actor, Interface, Role};
use qbo_service::Service;
use qbo_sim::{self as sim, SimHandle, SimOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const TARGET_RATE: f64 = 10_000.0;
const TARGET_P99_MS: f64 = 5.0;

fn env_number(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name}={v:?} is not a whole number")),
        Err(_) => Ok(default),
    }
}

fn main() -> ExitCode {
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
    match runtime.block_on(runtime.spawn(run())) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => println!("FAIL: {e:#}"),
        Err(e) => println!("FAIL: the bench itself panicked: {e}"),
    }
    ExitCode::SUCCESS
}

fn write_config(dir: &Path, sim_base: &str) -> Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let owner_only = |name: &str, value: &str| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join(name))?
            .write_all(value.as_bytes())
    };
    owner_only("token.key", qbo_core::vault::generate_key().as_str())?;
    owner_only("sandbox.secret", "sim-sandbox-secret")?;
    let d = dir.display();
    let path = dir.join("qbo-console.toml");
    std::fs::write(
        &path,
        format!(
            r#"[database]
url = "sqlite://{d}/bench.db"
max_connections = 8

[vault]
key_file = "{d}/token.key"

[environments.sandbox]
client_id = "sim-sandbox-client"
client_secret_file = "{d}/sandbox.secret"
redirect_uri = "http://localhost:8080/callback"
token_endpoint = "{sim_base}/oauth2/v1/tokens/bearer"
revocation_endpoint = "{sim_base}/v2/oauth2/tokens/revoke"
authorization_endpoint = "{sim_base}/connect/oauth2"
api_base = "{sim_base}"

[daemon]
socket = "{d}/ops.sock"
http_listen = "127.0.0.1:0"

[api]
listen = "127.0.0.1:0"
min_validity = "20s"

[log]
level = "warn"
"#
        ),
    )?;
    Ok(path)
}

struct Figures {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    refreshes: u64,
    errors: usize,
}

async fn load(
    base: &str,
    key: &str,
    realms: &[String],
    secs: u64,
    sim: &Arc<SimHandle>,
    clock: Option<(Clock, Duration)>,
) -> Figures {
    let stop = Arc::new(AtomicBool::new(false));
    let refreshes_before = sim.stats().refreshes;
    // The clock jumper for the run with refreshes.
    let jumper = clock.map(|(clock, every)| {
        let (stop, sim) = (stop.clone(), sim.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(every).await;
                sim.advance(chrono::Duration::seconds(45));
                clock.advance(chrono::Duration::seconds(45));
            }
        })
    });
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (stop, key, realms) = (stop.clone(), key.to_string(), realms.to_vec());
            let base = base.to_string();
            tokio::spawn(async move {
                // One client, one keep-alive connection, as a host app's worker would hold.
                let http = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .expect("reqwest client");
                let mut latencies = Vec::with_capacity(100_000);
                let mut errors = 0;
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let realm = &realms[i % realms.len()];
                    i += 1;
                    let t = Instant::now();
                    let ok = match http
                        .get(format!("{base}/v1/connections/{realm}/access-token"))
                        .bearer_auth(&key)
                        .send()
                        .await
                    {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    latencies.push(t.elapsed().as_micros() as u32);
                    if !ok {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for c in clients {
        let (l, e) = c.await.expect("client task");
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(j) = jumper {
        let _ = j.await;
    }
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1000.0;
    Figures {
        rate: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: *all.last().unwrap_or(&0) as f64 / 1000.0,
        refreshes: sim.stats().refreshes - refreshes_before,
        errors,
    }
}

fn report(what: &str, f: &Figures) {
    let verdict = |ok: bool| if ok { "ok" } else { "FAIL" };
    println!("  {what}:");
    println!(
        "    fetches/s {:>9.0}   target >= {TARGET_RATE:.0}   {}",
        f.rate,
        verdict(f.rate >= TARGET_RATE)
    );
    println!(
        "    p50 {:>6.2} ms   p99 {:>6.2} ms (target <= {TARGET_P99_MS} ms) {}   max {:.1} ms",
        f.p50_ms,
        f.p99_ms,
        verdict(f.p99_ms <= TARGET_P99_MS),
        f.max_ms
    );
    println!(
        "    refreshes at qbo-sim during the run: {}; failed fetches: {}",
        f.refreshes, f.errors
    );
}

async fn run() -> Result<()> {
    let secs = env_number("QBO_BENCH_SECS", 10)?;
    let n = env_number("QBO_BENCH_CONNECTIONS", 8)? as usize;
    let stale_every = Duration::from_millis(env_number("QBO_BENCH_STALE_EVERY_MS", 1000)?);
    println!("qbo-console token API bench");
    println!(
        "  load average at start: {} (other work on this machine skews every figure)",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!(
        "  {CLIENTS} clients, {n} connections, {secs} s per run, SQLite WAL synchronous=FULL, qbo-sim in process"
    );
    let sim = Arc::new(
        sim::start(SimOptions {
            access_token_ttl_secs: 60,
            ..SimOptions::default()
        })
        .await?,
    );
    let dir = tempfile::tempdir()?;
    let config = Config::load(Some(&write_config(dir.path(), &sim.base_url())?))?;
    let clock = Clock::offset();
    let svc = Service::open(&config, clock.clone()).await?;
    let admin = Actor::current_process(Interface::Cli, Role::Admin);
    let mut csv = String::from("tenant,realm_id,environment,refresh_token\n");
    let mut realms = Vec::new();
    for i in 0..n {
        let g = sim.seed_grant("sim-sandbox-client", None, None)?;
        csv.push_str(&format!(
            "bench-{i},{},sandbox,{}\n",
            g.realm_id, g.refresh_token
        ));
        realms.push(g.realm_id);
    }
    svc.import(&admin, &csv, "bench.csv", false)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let key = svc
        .apikey_create(&admin, "bench", &[], None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .key;
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let server =
        qbo_daemon::api::ApiServer::start(svc.clone(), &config, axum::Router::new(), stop).await?;
    let base = server.url();
    // Warm up: the first fetch of each connection refreshes it (imports hold no access
    // token) and records the first hand-out.
    let http = reqwest::Client::new();
    for r in &realms {
        let s = http
            .get(format!("{base}/v1/connections/{r}/access-token"))
            .bearer_auth(&key)
            .send()
            .await?
            .status();
        anyhow::ensure!(s.is_success(), "warm-up fetch for realm {r} answered {s}");
    }

    println!("\n[1/2] no refresh needed");
    let f = load(&base, &key, &realms, secs, &sim, None).await;
    report("8 clients", &f);

    println!(
        "\n[2/2] refreshes mixed in: every token goes stale every {} ms",
        stale_every.as_millis()
    );
    let f = load(&base, &key, &realms, secs, &sim, Some((clock, stale_every))).await;
    report("8 clients", &f);
    let recorded = server.api.flush().await?;
    println!("\n  hand-out summaries recorded at the end: {recorded}");
    Ok(())
}
