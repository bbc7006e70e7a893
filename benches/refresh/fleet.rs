//! Real `qbo-console serve` processes against one `qbo-sim` on loopback:
//!
//! - `cargo bench --bench refresh -- fleet`: refreshes per second with one, two and three
//!   daemons sharing one PostgreSQL database (`QBO_BENCH_PG_URL`, a server; each round
//!   gets a database of its own), `QBO_BENCH_FLEET_N` due connections (default 20,000);
//!   `QBO_BENCH_FLEET_LATENCY_MS` makes each refresh take that long at `qbo-sim` (Intuit's
//!   token endpoint answers in a few hundred milliseconds; default 0) and
//!   `QBO_BENCH_FLEET_CONCURRENCY` sets each daemon's `max_concurrency` (default 64): with a
//!   latency, a daemon's throughput is its concurrency over the latency, and the round
//!   measures whether daemons add up when the machine is not what limits them;
//! - `cargo bench --bench refresh -- catchup`: one daemon meeting `QBO_BENCH_CATCHUP_N`
//!   connections (default 100,000) that all came due while it was down (every access token
//!   expired: an hour of downtime), on SQLite (or PostgreSQL with `QBO_BENCH_PG_URL`):
//!   the time until every one is refreshed, and the daemon's peak RSS.
//!
//! The scheduler runs with the bench's settings (`rate_per_second = 1000000`,
//! `max_concurrency = 64`): the figures are the machinery's, not Intuit's limits.

use super::{
    env_number, import, loadavg, log_tail, machine, mb, proc_status_kb, seed, source_revision,
    start_sim, write_config_for, ChildGuard,
};
use anyhow::{bail, Context, Result};
use qbo_core::clock::Clock;
use qbo_core::config::Config;
use qbo_service::Service;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const TARGET_CATCHUP_SECS: f64 = 300.0;

pub async fn fleet() {
    println!("qbo-console refresh bench: daemons sharing one PostgreSQL");
    println!("  machine: {}", machine());
    println!("  source: {}", source_revision());
    println!("  load average at start: {}", loadavg());
    let Ok(server) = std::env::var("QBO_BENCH_PG_URL") else {
        println!(
            "FAIL: set QBO_BENCH_PG_URL to a PostgreSQL server (postgres://user@host:port/db)"
        );
        return;
    };
    let numbers = (|| -> Result<(usize, u64, usize)> {
        Ok((
            env_number("QBO_BENCH_FLEET_N", 20_000)? as usize,
            env_number("QBO_BENCH_FLEET_LATENCY_MS", 0)?,
            env_number("QBO_BENCH_FLEET_CONCURRENCY", 64)? as usize,
        ))
    })();
    let (n, latency_ms, concurrency) = match numbers {
        Ok(v) => v,
        Err(e) => {
            println!("FAIL: {e:#}");
            return;
        }
    };
    let shape = Shape {
        latency: Duration::from_millis(latency_ms),
        concurrency,
        ..Shape::default()
    };
    println!(
        "  each refresh takes {latency_ms} ms at qbo-sim; max_concurrency {concurrency} per daemon{}",
        if latency_ms > 0 {
            format!(
                " (a daemon alone: at most {:.0}/s)",
                concurrency as f64 * 1000.0 / latency_ms as f64
            )
        } else {
            String::new()
        }
    );
    let mut rates = Vec::new();
    for daemons in 1..=3 {
        println!("\n== {daemons} daemon(s), {n} due connections");
        match round(Some(&server), daemons, n, &shape).await {
            Ok(r) => rates.push((daemons, r)),
            Err(e) => println!("  FAIL: could not measure: {e:#}"),
        }
    }
    println!("\n== summary");
    for (d, r) in &rates {
        println!(
            "  {d} daemon(s): {:.0} refreshes/s ({} refreshed in {:.1} s; each daemon's share: {})",
            r.rate,
            r.refreshed,
            r.span.as_secs_f64(),
            r.shares
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let (Some((_, one)), Some((_, three))) = (
        rates.iter().find(|(d, _)| *d == 1),
        rates.iter().find(|(d, _)| *d == 3),
    ) {
        let ratio = three.rate / one.rate;
        println!(
            "  3 daemons / 1 daemon: {ratio:.2}× (target ≥ 2×): {}",
            if ratio >= 2.0 { "ok" } else { "FAIL" }
        );
    }
}

pub async fn catchup() {
    println!("qbo-console refresh bench: catching up after downtime");
    println!("  machine: {}", machine());
    println!("  source: {}", source_revision());
    println!("  load average at start: {}", loadavg());
    let n = match env_number("QBO_BENCH_CATCHUP_N", 100_000) {
        Ok(n) => n as usize,
        Err(e) => {
            println!("FAIL: {e:#}");
            return;
        }
    };
    let server = std::env::var("QBO_BENCH_PG_URL").ok();
    println!(
        "\n== one daemon, {n} connections all due, on {}",
        if server.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    // The daemon as deployed: its default database pool (8), not the throughput phases' 16.
    let shape = Shape {
        pool: None,
        ..Shape::default()
    };
    match round(server.as_deref(), 1, n, &shape).await {
        Ok(r) => {
            let whole = r.from_start.as_secs_f64();
            println!(
                "  every due connection refreshed {whole:.1} s after the daemon started ({:.0}/s once refreshing); peak RSS {:.1} MB",
                r.rate,
                mb(r.peak_kb.iter().copied().max().unwrap_or(0))
            );
            println!(
                "  catch-up {whole:.1} s ≤ {TARGET_CATCHUP_SECS} s: {}",
                if whole <= TARGET_CATCHUP_SECS {
                    "ok"
                } else {
                    "FAIL"
                }
            );
        }
        Err(e) => println!("  FAIL: could not measure: {e:#}"),
    }
}

struct Round {
    rate: f64,
    refreshed: u64,
    /// From the first refresh to the last.
    span: Duration,
    /// From the daemons' start to the last refresh.
    from_start: Duration,
    /// Refreshes each daemon made, from its metrics.
    shares: Vec<u64>,
    peak_kb: Vec<u64>,
}

/// How Intuit answers and how much each daemon asks of it at once.
struct Shape {
    /// How long qbo-sim takes over each refresh.
    latency: Duration,
    /// Each daemon's `max_concurrency`.
    concurrency: usize,
    /// Each daemon's database pool; `None`: the daemon's default.
    pool: Option<u32>,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            latency: Duration::ZERO,
            concurrency: 64,
            pool: Some(16),
        }
    }
}

/// Seeds `n` grants, imports them (all due), starts `daemons` serve processes on one
/// database, and waits until the emulator has refreshed every one.
async fn round(server: Option<&str>, daemons: usize, n: usize, shape: &Shape) -> Result<Round> {
    let sim = start_sim().await?;
    sim.set_token_latency(shape.latency);
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let (url, dropper) = match server {
        Some(server) => {
            let name = format!("qbo_fleet_{}_{daemons}_{n}", std::process::id());
            let url = super::pg_database::create(server, &name).await?;
            (url, Some((server.to_string(), name)))
        }
        None => (format!("sqlite://{}/bench.db", dir.path().display()), None),
    };
    let key = qbo_core::vault::generate_key();
    let configs: Vec<PathBuf> = (0..daemons)
        .map(|d| {
            let home = dir.path().join(format!("daemon-{d}"));
            std::fs::create_dir(&home)?;
            write_config_for(
                &home,
                &sim.base_url(),
                shape.concurrency,
                &url,
                key.as_str(),
                shape.pool,
            )
        })
        .collect::<Result<_>>()?;
    {
        let config = Config::load(Some(&configs[0]))?;
        let svc = Service::open(&config, Clock::System)
            .await
            .context("Service::open")?;
        let grants = seed(&sim, n)?;
        import(&svc, &grants).await?;
        svc.lifecycle_for_tests().store.close().await;
    }
    if server.is_some() {
        super::pg_database::settle(&url).await?;
    }
    sim.reset_stats();

    let binary = PathBuf::from(env!("CARGO_BIN_EXE_qbo-console"));
    let start = Instant::now();
    let mut children = Vec::new();
    for (d, config) in configs.iter().enumerate() {
        let log = dir.path().join(format!("daemon-{d}.log"));
        let child = std::process::Command::new(&binary)
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env_remove("QBO_CONSOLE_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log)?))
            .spawn()
            .with_context(|| format!("cannot start {} serve", binary.display()))?;
        children.push((ChildGuard(Some(child)), log));
    }
    let pids: Vec<String> = children
        .iter()
        .filter_map(|(c, _)| c.0.as_ref().map(|c| c.id().to_string()))
        .collect();
    let mut cpu_from: Option<CpuUse> = None;
    let mut first: Option<Instant> = None;
    let mut peaks = vec![0u64; daemons];
    let mut last_print = Instant::now();
    loop {
        // Not `stats()`: it copies a count per realm, a million of them, under the lock
        // that every request to the emulator waits for.
        let done = sim.refreshes();
        if done > 0 && first.is_none() {
            first = Some(Instant::now());
            cpu_from = Some(CpuUse::read(&pids));
        }
        for (i, (c, log)) in children.iter_mut().enumerate() {
            if let Some(child) = c.0.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    bail!(
                        "daemon {i} exited ({status}); its log:\n    {}",
                        log_tail(log)
                    );
                }
                let pid = child.id().to_string();
                peaks[i] = peaks[i].max(proc_status_kb(&pid, "VmRSS:").unwrap_or(0));
            }
        }
        if done >= n as u64 {
            break;
        }
        if last_print.elapsed() >= Duration::from_secs(10) {
            // The daemons' memory as it goes, so a peak can be placed in the run.
            let rss: Vec<String> = children
                .iter()
                .filter_map(|(c, _)| c.0.as_ref())
                .map(|c| {
                    let now = proc_status_kb(&c.id().to_string(), "VmRSS:").unwrap_or(0);
                    format!("{:.1} MB", mb(now))
                })
                .collect();
            println!(
                "  {:>4.0} s: {done} of {n} refreshed; RSS {} (peak {})",
                start.elapsed().as_secs_f64(),
                rss.join(", "),
                peaks
                    .iter()
                    .map(|p| format!("{:.1} MB", mb(*p)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            last_print = Instant::now();
        }
        if start.elapsed() > Duration::from_secs(1_800) {
            bail!("only {done} of {n} refreshed after 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let end = Instant::now();
    let cpu = cpu_from.map(|from| CpuUse::read(&pids).since(&from, end - first.unwrap_or(start)));
    let stats = sim.stats();
    let mut shares = Vec::new();
    for (_, log) in &children {
        match refreshes_of(log).await {
            Ok(k) => shares.push(k),
            Err(e) => println!("  CHECK FAILED: {e:#}"),
        }
    }
    for (c, _) in &mut children {
        if let Some(child) = c.0.as_ref() {
            // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
    }
    for (c, _) in &mut children {
        if let Some(mut child) = c.0.take() {
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(30) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    if stats.invalid_grants != 0 {
        println!(
            "  CHECK FAILED: qbo-sim answered {} invalid_grant",
            stats.invalid_grants
        );
    }
    for (i, (_, log)) in children.iter().enumerate() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let errors = text.lines().filter(|l| l.contains("ERROR")).count();
        if errors > 0 {
            println!(
                "  CHECK FAILED: daemon {i} logged {errors} ERROR lines; last lines:\n    {}",
                log_tail(log)
            );
        }
    }
    if let Some(cpu) = &cpu {
        println!("  while refreshing: {cpu}");
    }
    let spent_twice = stats.refreshes > n as u64;
    if spent_twice {
        // Every connection was due once and is not due again for an hour: more refreshes
        // than connections means one was spent twice. Keep the logs for whoever looks.
        let kept = dir.keep();
        println!(
            "  CHECK FAILED: {} refreshes for {n} connections; the daemons' logs are kept in {}",
            stats.refreshes,
            kept.display()
        );
    }
    sim.shutdown().await;
    if let Some((server, name)) = dropper.filter(|(_, name)| {
        if spent_twice {
            println!("  the database {name} is kept too");
        }
        !spent_twice
    }) {
        super::pg_database::drop(&server, &name).await;
    }
    let first = first.unwrap_or(start);
    let span = end.duration_since(first);
    let rate = stats.refreshes as f64 / span.as_secs_f64().max(1e-9);
    println!(
        "  {} refreshed in {:.1} s from the first refresh ({:.1} s from the start): {rate:.0}/s; peak RSS {}",
        stats.refreshes,
        span.as_secs_f64(),
        end.duration_since(start).as_secs_f64(),
        peaks
            .iter()
            .map(|kb| format!("{:.0} MB", mb(*kb)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(Round {
        rate,
        refreshed: stats.refreshes,
        span,
        from_start: end.duration_since(start),
        shares,
        peak_kb: peaks,
    })
}

/// How many refreshes a daemon made, from its `/metrics` (its HTTP listener is on a port it
/// chose, named in its log's "serving" line).
async fn refreshes_of(log: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(log).context("reading the daemon's log")?;
    let base = text
        .lines()
        .filter(|l| l.contains("qbo-console serving"))
        .find_map(|l| {
            let i = l.find("http://")?;
            l[i..]
                .split_whitespace()
                .next()
                .map(|s| s.trim_end_matches(',').to_string())
        })
        .context("the daemon's log names no HTTP listener")?;
    let body = reqwest::get(format!("{base}/metrics"))
        .await
        .with_context(|| format!("GET {base}/metrics"))?
        .text()
        .await?;
    let series = "qbo_refreshes_total{outcome=\"refreshed\"} ";
    body.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .context("the daemon's /metrics has no refreshed count")
}

/// Clock ticks of CPU (user and system) a process has used, from `/proc/PID/stat`.
fn cpu_ticks(pid: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command's closing parenthesis: state is the 3rd field, utime the
    // 14th and stime the 15th of the whole line.
    let Some((_, rest)) = text.rsplit_once(')') else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

/// CPU ticks of every PostgreSQL server process on the machine.
fn postgres_ticks() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(|pid| cpu_ticks(&pid))
        .sum()
}

/// Busy and total ticks of the whole machine, from `/proc/stat`.
fn machine_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    // idle and iowait
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Where the machine's CPU went between two readings.
struct CpuUse {
    machine: (u64, u64),
    daemons: u64,
    postgres: u64,
    bench: u64,
}

impl CpuUse {
    fn read(daemons: &[String]) -> CpuUse {
        CpuUse {
            machine: machine_ticks(),
            daemons: daemons.iter().map(|p| cpu_ticks(p)).sum(),
            postgres: postgres_ticks(),
            bench: cpu_ticks("self"),
        }
    }

    /// "machine 97% busy; daemons 1.10 cores, PostgreSQL 0.55, qbo-sim and the bench 0.30"
    fn since(&self, before: &CpuUse, wall: Duration) -> String {
        let hz = 100.0; // USER_HZ on Linux
        let secs = wall.as_secs_f64().max(1e-9);
        let cores = |t: u64| t as f64 / hz / secs;
        let (busy, total) = (
            self.machine.0.saturating_sub(before.machine.0),
            self.machine.1.saturating_sub(before.machine.1),
        );
        format!(
            "machine {:.0}% busy; CPU in cores: daemons {:.2}, PostgreSQL {:.2}, qbo-sim and the bench {:.2}",
            100.0 * busy as f64 / total.max(1) as f64,
            cores(self.daemons.saturating_sub(before.daemons)),
            cores(self.postgres.saturating_sub(before.postgres)),
            cores(self.bench.saturating_sub(before.bench)),
        )
    }
}
