//! `qbo-console demo`: the whole credential core in one command, against the emulator, on a
//! temporary SQLite database. Nothing here is simulated on the product side: the service,
//! the vault, the store and the Intuit client are the real ones; only Intuit is `qbo-sim`.

use super::render;
use crate::clock::Clock;
use crate::config::Config;
use crate::identity::{Actor, Interface, Role};
use crate::service::{Selection, Service};
use crate::sim::{self, PreviousToken, Rotation, SimEnvironment, SimOptions};
use crate::store::ConnectionFilter;
use anyhow::Context;
use std::fmt::Write as _;

const TENANTS: &[(&str, &str)] = &[
    ("acme-books", "sandbox"),
    ("blue-heron-cafe", "production"),
    ("cedar-dental", "production"),
    ("delta-freight", "sandbox"),
    ("evergreen-law", "production"),
    ("foxglove-studio", "production"),
];

pub async fn run(keep: bool) -> anyhow::Result<()> {
    let sim = sim::start(SimOptions {
        rotation: Rotation::EveryRefresh,
        previous_token: PreviousToken::InvalidAtOnce,
        ..SimOptions::default()
    })
    .await
    .context("cannot start the emulator")?;
    let dir = tempfile_dir()?;
    let config = write_config(&dir, &sim.base_url())?;
    let cfg = Config::load(Some(&config))?;
    let svc = Service::open(&cfg, Clock::System).await?;
    let me = Actor::current_process(Interface::Cli, Role::Admin);

    println!("qbo-sim (Intuit emulator) at {}", sim.base_url());
    println!(
        "database {} (SQLite, WAL), key and config in {}\n",
        cfg.database()?.url,
        dir.display()
    );

    // Customers who connected earlier: grants at the emulator, imported with their tokens.
    let mut csv = String::from("tenant,realm_id,environment,refresh_token,company_name\n");
    let mut realms = Vec::new();
    for (tenant, env) in TENANTS {
        let client = if *env == "sandbox" {
            "sim-sandbox-client"
        } else {
            "sim-production-client"
        };
        let g = sim.seed_grant(client, None, Some(&company(tenant)))?;
        let _ = writeln!(
            csv,
            "{tenant},{},{env},{},{}",
            g.realm_id, g.refresh_token, g.company_name
        );
        realms.push(g.realm_id);
    }
    let report = svc.import(&me, &csv, "demo-import.csv", false).await?;
    println!(
        "$ qbo-console import demo-import.csv\n{}\n",
        render::import_report(&report)
    );

    let now = || svc.engine().clock.now();
    let list = svc.list(&me, &ConnectionFilter::default()).await?;
    println!(
        "$ qbo-console list\n{}\n",
        render::connections_table(&list, now())
    );

    let refreshed = svc.refresh(&me, &Selection::All).await?;
    println!(
        "$ qbo-console refresh --all   (the emulator rotates the refresh token every time)\n{}\n",
        render::refresh_reports(&refreshed, now())
    );

    let verified = svc
        .verify(&me, &[TENANTS[0].0.to_string(), TENANTS[1].0.to_string()])
        .await?;
    println!(
        "$ qbo-console verify {} {}\n{}\n",
        TENANTS[0].0,
        TENANTS[1].0,
        render::verify_reports(&verified)
    );

    sim.disconnect(&realms[2]);
    println!(
        "(the customer of {} disconnects the app inside QuickBooks)\n",
        TENANTS[2].0
    );
    let refreshed = svc.refresh(&me, &Selection::All).await?;
    println!(
        "$ qbo-console refresh --all\n{}\n",
        render::refresh_reports(&refreshed, now())
    );

    let list = svc.list(&me, &ConnectionFilter::default()).await?;
    println!(
        "$ qbo-console list\n{}\n",
        render::connections_table(&list, now())
    );
    let tail = svc.audit_tail(&me, 8).await?;
    println!(
        "$ qbo-console audit tail -n 8\n{}",
        render::audit_lines(&tail)
    );
    let verify = svc.audit_verify(&me).await?;
    println!(
        "$ qbo-console audit verify\n{}\n",
        render::audit_verify(&verify)
    );

    let stats = sim.stats();
    println!(
        "emulator counters: {} refreshes, {} invalid_grant, {} concurrent uses of one refresh token, {} uses of a superseded token",
        stats.refreshes, stats.invalid_grants, stats.concurrent_uses, stats.superseded_uses
    );
    if keep {
        println!(
            "\nThe emulator keeps running. Try, in another shell:\n  qbo-console --config {} list\nPress Ctrl-C to stop.",
            config.display()
        );
        tokio::signal::ctrl_c().await?;
    }
    svc.engine().store.close().await;
    sim.shutdown().await;
    if !keep {
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(())
}

fn company(tenant: &str) -> String {
    tenant
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("qbo-console-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

fn write_config(dir: &std::path::Path, base: &str) -> anyhow::Result<std::path::PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = dir.join("token.key");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&key)?;
    writeln!(f, "{}", crate::vault::generate_key().as_str())?;
    std::fs::write(dir.join("sandbox.secret"), "sim-sandbox-secret")?;
    std::fs::write(dir.join("production.secret"), "sim-production-secret")?;
    let d = dir.display();
    let mut text = format!(
        "[database]\nurl = \"sqlite://{d}/demo.db\"\n\n[vault]\nkey_file = \"{d}/token.key\"\n"
    );
    for (env, redirect) in [
        (SimEnvironment::Sandbox, "http://localhost:8080/callback"),
        (
            SimEnvironment::Production,
            "https://ops.example.com/qbo/callback",
        ),
    ] {
        let name = match env {
            SimEnvironment::Sandbox => "sandbox",
            SimEnvironment::Production => "production",
        };
        let _ = write!(
            text,
            "\n[environments.{name}]\nclient_id = \"sim-{name}-client\"\nclient_secret_file = \"{d}/{name}.secret\"\nredirect_uri = \"{redirect}\"\n\
             authorization_endpoint = \"{base}/connect/oauth2\"\ntoken_endpoint = \"{base}/oauth2/v1/tokens/bearer\"\n\
             revocation_endpoint = \"{base}/v2/oauth2/tokens/revoke\"\napi_base = \"{base}\"\n"
        );
    }
    let path = dir.join("qbo-console.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}
