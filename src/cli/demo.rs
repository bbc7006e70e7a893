//! `qbo-console demo`: the whole credential core in one command, against the emulator, on a
//! temporary SQLite database. Nothing here is simulated on the product side: the service,
//! the vault, the store and the Intuit client are the real ones; only Intuit is `qbo-sim`.

use super::{demo_world, render, Failure};
use anyhow::Context;
use chrono::Utc;
use qbo_core::clock::Clock;
use qbo_core::config::Config;
use qbo_daemon::Daemon;
use qbo_service::{Client, LastRefresh, LinkRequest, Selection, SocketClient};
use qbo_sim::{self as sim, PreviousToken, Rotation, SimOptions};
use std::fmt::Write as _;

const TENANTS: &[(&str, &str)] = &[
    ("acme-books", "sandbox"),
    ("blue-heron-cafe", "production"),
    // Sandbox: its reconnect link below ends at the demo's plain-http callback, which
    // Intuit allows for sandbox apps only.
    ("cedar-dental", "sandbox"),
    ("delta-freight", "sandbox"),
    ("evergreen-law", "production"),
    ("foxglove-studio", "production"),
];

pub async fn run(keep: bool) -> Result<(), Failure> {
    let port = demo_world::free_loopback_port()?;
    let sim = sim::start(demo_world::sim_options(
        SimOptions {
            rotation: Rotation::EveryRefresh,
            previous_token: PreviousToken::InvalidAtOnce,
            ..SimOptions::default()
        },
        port,
    ))
    .await
    .context("cannot start the emulator")?;
    let dir = tempfile_dir()?;
    // A quick tick and little jitter, so the walk-through's scheduler is seen at work.
    let config = demo_world::write_config(
        &dir,
        &sim.base_url(),
        "jitter = \"30s\"\ntick = \"200ms\"\n",
        port,
    )?;
    let cfg = Config::load(Some(&config))?;
    let daemon = Daemon::start(&cfg, Clock::System).await?;
    let socket = cfg.daemon.socket.clone();
    let client = SocketClient::new(socket.clone());

    println!("qbo-sim (Intuit emulator) at {}", sim.base_url());
    println!(
        "qbo-console serve: socket {}, http://{}",
        socket.display(),
        daemon.http_addr
    );
    println!(
        "database {} (SQLite, WAL); key and config in {}\n",
        cfg.database()?.url,
        dir.display()
    );

    // Customers who connected earlier: grants at the emulator, imported with their tokens,
    // through the daemon's socket like every command below.
    let mut csv = String::from("tenant,realm_id,environment,refresh_token,company_name\n");
    let mut realms = Vec::new();
    for (tenant, env) in TENANTS {
        let client = if *env == "sandbox" {
            "sim-sandbox-client"
        } else {
            "sim-production-client"
        };
        let g = sim
            .seed_grant(client, None, Some(&company(tenant)))
            .context("cannot seed the emulator")?;
        let _ = writeln!(
            csv,
            "{tenant},{},{env},{},{}",
            g.realm_id, g.refresh_token, g.company_name
        );
        realms.push(g.realm_id);
    }
    let report = client.import("demo-import.csv".into(), csv, false).await?;
    println!(
        "$ qbo-console import demo-import.csv\n{}\n",
        render::import_report(&report)
    );

    // Imported connections are due at once: the scheduler picks them up by itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let list = loop {
        let list = client.list(qbo_service::ListQuery::default()).await?;
        if list
            .iter()
            .all(|c| c.last_refresh_outcome == Some(LastRefresh::Ok))
            || std::time::Instant::now() > deadline
        {
            break list;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    println!("(the daemon's scheduler refreshed every imported connection on its own)");
    println!(
        "$ qbo-console list\n{}\n",
        render::connections_table(&list, Utc::now())
    );

    let targets = vec![TENANTS[0].0.to_string(), TENANTS[1].0.to_string()];
    let verified = client
        .verify(qbo_service::Selection::Named(targets.clone()))
        .await?;
    println!(
        "$ qbo-console verify {}\n{}\n",
        targets.join(" "),
        render::verify_reports(&verified)
    );

    sim.disconnect(&realms[2]);
    println!(
        "(the customer of {} disconnects the app inside QuickBooks)\n",
        TENANTS[2].0
    );
    let refreshed = client.refresh(Selection::All).await?;
    println!(
        "$ qbo-console refresh --all   (the emulator rotates the refresh token every time)\n{}\n",
        render::refresh_reports(&refreshed, Utc::now())
    );

    let forecast = client.forecast(None, Some(super::forecast::SHOWN)).await?;
    println!(
        "$ qbo-console forecast\n{}\n",
        super::forecast::render(&forecast)
    );

    reconnect(&client, TENANTS[2].0, &realms[2], port).await?;

    let tail = client.audit_tail(6).await?;
    println!(
        "$ qbo-console audit tail -n 6\n{}",
        render::audit_lines(&tail)
    );
    let verify = client.audit_verify().await?;
    println!(
        "$ qbo-console audit verify\n{}\n",
        render::audit_verify(&verify)
    );

    let export = dir.join("audit.jsonl");
    println!("$ qbo-console audit export --output {}", export.display());
    super::audit_export::export(
        &client,
        qbo_service::ExportFilter::default(),
        qbo_service::ExportFormat::Jsonl,
        Some(&export),
    )
    .await?;
    let checked = qbo_service::verify_export_file(&export, None)
        .map_err(|m| anyhow::anyhow!("the demo's export does not verify: {m}"))?;
    println!(
        "$ qbo-console audit verify --export {}   (offline: no database, no daemon)\n{}\n",
        export.display(),
        super::audit_export::render(&checked)
    );

    let metrics = reqwest::get(format!("http://{}/metrics", daemon.http_addr))
        .await
        .and_then(|r| r.error_for_status())
        .context("cannot read /metrics")?
        .text()
        .await
        .context("cannot read /metrics")?;
    println!(
        "$ curl http://{}/metrics | grep -v ' 0$'   (excerpt)",
        daemon.http_addr
    );
    for line in metrics.lines().filter(|l| {
        (l.starts_with("qbo_connections{") || l.starts_with("qbo_refreshes_total"))
            && !l.ends_with(" 0")
    }) {
        println!("{line}");
    }

    let stats = sim.stats();
    println!(
        "\nemulator counters: {} refreshes, {} invalid_grant, {} concurrent uses of one refresh token, {} uses of a superseded token",
        stats.refreshes, stats.invalid_grants, stats.concurrent_uses, stats.superseded_uses
    );
    if keep {
        println!(
            "\nThe daemon and the emulator keep running. In another shell:\n  qbo-console --config {} list\n  qbo-console --config {} watch\nPress Ctrl-C to stop.",
            config.display(),
            config.display()
        );
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
    }
    daemon.shutdown().await;
    sim.shutdown().await;
    if !keep {
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(())
}

/// A reconnect link for the dead connection of `tenant`, and its customer completing it: a
/// browser (an HTTP client) opens the link on the public listener, approves at qbo-sim's
/// consent page for their company, and is sent back to the listener's callback.
async fn reconnect(
    client: &SocketClient,
    tenant: &str,
    realm: &str,
    port: u16,
) -> anyhow::Result<()> {
    let link = client
        .link(LinkRequest {
            target: Some(tenant.to_string()),
            new_tenant: None,
            environment: None,
            expires_secs: None,
        })
        .await?;
    println!(
        "$ qbo-console link {tenant}\n{}\n(single use, valid until {})\n",
        link.url,
        link.expires_at.to_rfc3339()
    );
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("cannot build the demo's browser")?;
    let to = |r: &reqwest::Response, what: &str| -> anyhow::Result<String> {
        r.headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("{what} answered {} without a redirect", r.status()))
    };
    let opened = browser
        .get(&link.url)
        .send()
        .await
        .context("cannot open the link")?;
    let intuit = to(&opened, "the link")?;
    let cookie = opened
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .unwrap_or_default()
        .to_string();
    // What a person does on the consent page: choose their company and press Connect.
    let consented = browser
        .get(&intuit)
        .header("x-sim-decision", "approve")
        .header("x-sim-realm-id", realm)
        .send()
        .await
        .context("cannot reach qbo-sim's consent page")?;
    let callback = to(&consented, "qbo-sim's consent page")?;
    let page = browser
        .get(&callback)
        .header("cookie", cookie)
        .send()
        .await
        .context("cannot reach the callback")?;
    let status = page.status();
    let body = page
        .text()
        .await
        .context("cannot read the callback's page")?;
    let title = body
        .split_once("<title>")
        .and_then(|(_, rest)| rest.split_once("</title>"))
        .map_or("", |(t, _)| t);
    println!(
        "(the customer opens it: {} sends the browser to qbo-sim's consent page; they choose their company and approve; qbo-sim sends them back to {})",
        demo_world::public_base(port),
        demo_world::sandbox_redirect_uri(port)
    );
    println!("callback page: HTTP {} \"{title}\"", status.as_u16());
    let row = client
        .list(qbo_service::ListQuery::default())
        .await?
        .into_iter()
        .find(|c| c.tenant == tenant)
        .ok_or_else(|| anyhow::anyhow!("{tenant} is no longer listed"))?;
    println!(
        "$ qbo-console list   (its row)\n{}\n",
        render::connections_table(std::slice::from_ref(&row), Utc::now())
    );
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
