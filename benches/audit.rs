//! The audit log's throughput, measured on this machine and printed as it comes (figures
//! recorded in BENCHMARKS.md):
//!
//! 1. appending to the chain on SQLite (WAL, synchronous=FULL): one event per durable
//!    commit, and events committed in groups of 256 (the refresh writer's group commit,
//!    which is how the daemon appends under load);
//! 2. `qbo-console --embedded audit export --format jsonl` of N events (default 1,000,000),
//!    a real child process: wall time and its peak RSS;
//! 3. `qbo-console audit verify --export` of that file with an empty environment: wall
//!    time and peak RSS;
//! 4. (between 1 and 2) the log's size on disk per event, and the audit view's page of 200
//!    at the newest, the middle and the oldest events, and narrowed by a rare tenant and by
//!    one with no events.
//!
//! ```sh
//! cargo bench --bench audit
//! QBO_BENCH_AUDIT_N=100000 cargo bench --bench audit   # smoke run
//! ```
//!
//! Figures are reported, not asserted: the process exits 0 whatever they are, and marks a
//! missed target FAIL.

use anyhow::{bail, Context, Result};
use qbo_core::clock::Clock;
use qbo_core::config::Config;
use qbo_core::identity::Actor;
use qbo_service::Service;
use qbo_store::audit::{Action, AuditEvent, Outcome};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

const TARGET_APPEND_RATE: f64 = 5_000.0;
const TARGET_SECS: f64 = 5.0;
/// Events per group commit, as the refresh writer batches them (`MAX_BATCH`).
const GROUP: usize = 256;

fn main() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "FAIL"
    }
}

fn event(i: usize, actor: &Actor) -> AuditEvent {
    let mut ev = AuditEvent::new(chrono::Utc::now(), actor, Action::Refresh, Outcome::Ok)
        .target(
            (i % 10_000) as i64 + 1,
            "sandbox",
            &format!("{}", 9_130_000_000_000_000u64 + (i % 10_000) as u64),
            &format!("tenant-{}", i % 10_000),
        )
        .fingerprint("refresh_used", format!("fp:{:016x}", i as u64 * 7919))
        .fingerprint("refresh_new", format!("fp:{:016x}", i as u64 * 7919 + 1));
    ev.intuit_tid = Some(format!("1-{:08x}-bench", i));
    ev.reason = Some("access token refreshed; refresh token rotated".into());
    ev
}

async fn run() -> Result<()> {
    let n: usize = std::env::var("QBO_BENCH_AUDIT_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    for name in ["token.key", "fingerprint.key", "signing.key"] {
        write_secret(&d.join(name), qbo_core::vault::generate_key().as_str())?;
    }
    let config_path = d.join("qbo-console.toml");
    std::fs::write(
        &config_path,
        format!(
            "[database]\nurl = \"sqlite://{p}/audit.db\"\n\n[vault]\nkey_file = \"{p}/token.key\"\nfingerprint_key_file = \"{p}/fingerprint.key\"\n\n[audit]\nsigning_key_file = \"{p}/signing.key\"\n",
            p = d.display()
        ),
    )?;
    let config = Config::load(Some(&config_path))?;
    let svc = Service::open(&config, Clock::System).await?;
    let store = svc.lifecycle_for_tests().store.clone();
    let actor = Actor::daemon(qbo_core::identity::DaemonTask::Scheduler);

    println!(
        "audit benchmark: SQLite in {} (WAL, synchronous=FULL)",
        d.display()
    );

    // 1a. One event per durable commit.
    let single = 2_000usize;
    let t = Instant::now();
    for i in 0..single {
        let mut tx = store.begin().await?;
        tx.audit(&event(i, &actor)).await?;
        tx.commit().await?;
    }
    let single_rate = single as f64 / t.elapsed().as_secs_f64();
    println!("append, one event per commit: {single} events, {single_rate:.0} events/s");

    // 1b. Group commit, and the fill for the export.
    let t = Instant::now();
    let mut appended = single;
    let grouped_n = 200_000.min(n.max(GROUP));
    while appended < single + grouped_n {
        let events: Vec<AuditEvent> = (appended..appended + GROUP)
            .map(|i| event(i, &actor))
            .collect();
        let refs: Vec<&AuditEvent> = events.iter().collect();
        let mut tx = store.begin().await?;
        tx.audit_many(&refs).await?;
        tx.commit().await?;
        appended += GROUP;
    }
    let group_rate = (appended - single) as f64 / t.elapsed().as_secs_f64();
    println!(
        "append, {GROUP} events per commit (the refresh writer's group commit): {} events, {group_rate:.0} events/s  [{} target {TARGET_APPEND_RATE:.0}/s]",
        appended - single,
        verdict(group_rate >= TARGET_APPEND_RATE)
    );
    // The rest of the fill in larger transactions: only its end state matters.
    let t = Instant::now();
    while appended < n {
        let k = 5_000.min(n - appended);
        let events: Vec<AuditEvent> = (appended..appended + k).map(|i| event(i, &actor)).collect();
        let refs: Vec<&AuditEvent> = events.iter().collect();
        let mut tx = store.begin().await?;
        tx.audit_many(&refs).await?;
        tx.commit().await?;
        appended += k;
    }
    println!(
        "(filled to {appended} events in {:.1} s more)",
        t.elapsed().as_secs_f64()
    );
    paging(&store, appended, d).await?;
    drop(svc);

    // A JSONL export takes about 680 bytes an event: at a hundred million events it needs
    // more disk than most machines have beside the log itself. Say so instead of failing
    // half-way through the file.
    let need = appended as u64 * 700;
    let free = free_bytes(d)?;
    if free < need + (1 << 30) {
        println!(
            "export and offline verify skipped: the file would take about {:.0} GB and {:.0} GB are free",
            need as f64 / 1e9,
            free as f64 / 1e9
        );
        return Ok(());
    }

    // 2. The export, as an operator runs it.
    let bin = env!("CARGO_BIN_EXE_qbo-console");
    let file = d.join("export.jsonl");
    let (secs, peak_kb, out) = measured(
        Command::new(bin)
            .arg("--config")
            .arg(&config_path)
            .args(["--embedded", "audit", "export", "--format", "jsonl", "-o"])
            .arg(&file),
    )?;
    let size = std::fs::metadata(&file)?.len();
    println!(
        "export {} events to JSONL ({:.0} MB): {secs:.2} s, peak RSS {:.1} MB  [{} target {TARGET_SECS} s]\n  {}",
        appended,
        size as f64 / 1e6,
        peak_kb as f64 / 1024.0,
        verdict(secs <= TARGET_SECS),
        out.trim()
    );

    // 3. Offline verification, with nothing but the file, its manifest and the key.
    let key = {
        let o = Command::new(bin)
            .arg("--config")
            .arg(&config_path)
            .args(["--embedded", "audit", "pubkey"])
            .output()?;
        if !o.status.success() {
            bail!(
                "audit pubkey failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        String::from_utf8(o.stdout)?.trim().to_string()
    };
    let (secs, peak_kb, out) = measured(
        Command::new(bin)
            .env_clear()
            .args(["audit", "verify", "--export"])
            .arg(&file)
            .args(["--pubkey", &key]),
    )?;
    println!(
        "verify the export offline: {secs:.2} s, peak RSS {:.1} MB  [{} target {TARGET_SECS} s]\n  {}",
        peak_kb as f64 / 1024.0,
        verdict(secs <= TARGET_SECS && out.contains("export intact")),
        out.trim()
    );
    Ok(())
}

/// The log's size on disk, and the audit view's page of 200 (what the console asks for) at
/// the newest events, the middle and the oldest, and narrowed by a tenant that holds one
/// event in 10,000 and by one that holds none (the worst case: the whole log is read).
async fn paging(store: &qbo_store::Store, n: usize, d: &Path) -> Result<()> {
    use qbo_core::audit::AuditQuery;
    let bytes: u64 = ["audit.db", "audit.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(d.join(f)).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "log on disk: {:.0} MB for {n} events, {:.0} bytes an event (100 million: about {:.0} GB)",
        bytes as f64 / 1e6,
        bytes as f64 / n as f64,
        bytes as f64 / n as f64 * 1e8 / 1e9
    );
    let page = |before: Option<i64>, tenant: Option<&str>| AuditQuery {
        before_seq: before,
        limit: 200,
        tenant: tenant.map(str::to_string),
        actor: None,
        action: None,
        outcome: None,
    };
    let cases = [
        ("newest 200", page(None, None)),
        ("200 from the middle", page(Some(n as i64 / 2), None)),
        ("the oldest 200", page(Some(201), None)),
        // A substring: tenant-42, tenant-420…429, tenant-4200…4299: about 1 event in 9.
        (
            "newest 200 narrowed by tenant~tenant-42",
            page(None, Some("tenant-42")),
        ),
        (
            "narrowed by tenant-4242 (1 event in 10,000)",
            page(None, Some("tenant-4242")),
        ),
        (
            "narrowed by a tenant with no events",
            page(None, Some("no-such-tenant")),
        ),
    ];
    for (what, q) in cases {
        let mut times = Vec::new();
        let mut got = 0;
        for _ in 0..5 {
            let t = Instant::now();
            got = store.audit_page(&q).await?.events.len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "audit view page, {what}: first answer {got} events, median {:.1} ms, max {:.1} ms",
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
    // A narrowed reading to the start of the log, answer after answer (each at most one
    // window of events), as the console goes on while nothing fills its screen.
    let mut q = page(None, Some("no-such-tenant"));
    let (t, mut answers, mut slowest) = (Instant::now(), 0, 0f64);
    loop {
        let one = Instant::now();
        let p = store.audit_page(&q).await?;
        slowest = slowest.max(one.elapsed().as_secs_f64() * 1000.0);
        answers += 1;
        match p.next_before_seq {
            Some(next) => q.before_seq = Some(next),
            None => break,
        }
    }
    println!(
        "a tenant with no events, read to the start of the log: {answers} answers, slowest {slowest:.0} ms, {:.1} s in all",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs a child to completion: wall time, its own peak RSS (kB, from the kernel's rusage
/// for that child alone, via wait4), and what it printed.
fn measured(cmd: &mut Command) -> Result<(f64, i64, String)> {
    use std::io::Read;
    let t = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawn qbo-console")?;
    let pid = child.id() as libc::pid_t;
    let mut so = child.stdout.take().context("stdout")?;
    let mut se = child.stderr.take().context("stderr")?;
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let mut status = 0;
    // SAFETY: wait4 on our own child, filling structs we own; std's Child is not waited
    // on afterwards (dropping it does not reap).
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let secs = t.elapsed().as_secs_f64();
    if rc != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    let text = format!(
        "{}{}",
        t_out.join().unwrap_or_default(),
        t_err.join().unwrap_or_default()
    );
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("child failed (status {status}): {text}");
    }
    Ok((secs, ru.ru_maxrss, text))
}

/// Bytes free to an unprivileged writer on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: statvfs fills a struct we own from a NUL-terminated path we own.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        bail!(
            "statvfs {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}
