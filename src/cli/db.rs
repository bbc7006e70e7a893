//! `db backup`, `db restore-check` and `db verify-backup`: backups that say what they hold
//! and what restoring them would cost.

use super::{exit, print_json, Failure};
use qbo_service::backup::{verify_backup, BackupManifest, RestoreDrill, Verdict};
use qbo_service::{Client, ClientError};
use std::path::{Path, PathBuf};

/// The path as the daemon must read it: absolute, from this shell's directory.
fn absolute(file: &Path) -> Result<String, Failure> {
    let abs = std::path::absolute(file).map_err(|e| Failure {
        code: exit::BAD_INPUT,
        message: format!("{}: {e}", file.display()),
    })?;
    abs.to_str().map(str::to_string).ok_or_else(|| Failure {
        code: exit::BAD_INPUT,
        message: format!("{}: the path is not UTF-8", abs.display()),
    })
}

fn manifest_lines(m: &BackupManifest) -> String {
    format!(
        "schema {} · {} connections · audit head {} · {} bytes · sha256 {}\nsigned by {} ({})\n{}\n",
        m.schema_version,
        m.connections,
        m.audit_head_seq,
        m.bytes,
        m.sha256,
        m.public_key,
        m.created_at.to_rfc3339(),
        m.not_included
    )
}

pub(super) async fn backup(client: &dyn Client, file: PathBuf, json: bool) -> Result<u8, Failure> {
    let r = client.db_backup(absolute(&file)?).await?;
    if json {
        print_json(&r)?;
    } else {
        println!(
            "backed up to {} (mode 0600), manifest {}",
            r.path.display(),
            r.manifest_path.display()
        );
        print!("{}", manifest_lines(&r.manifest));
    }
    Ok(exit::OK)
}

pub(super) async fn restore_check(
    client: &dyn Client,
    file: PathBuf,
    json: bool,
) -> Result<u8, Failure> {
    let d = client.db_restore_check(absolute(&file)?).await?;
    if json {
        print_json(&d)?;
    } else {
        print!("{}", drill_text(&d));
    }
    Ok(exit::OK)
}

pub(super) fn drill_text(d: &RestoreDrill) -> String {
    let mut s = format!(
        "restoring {} now (schema {}): {}\n",
        d.backup.display(),
        d.backup_schema_version,
        d.summary()
    );
    for (v, what) in [
        (
            Verdict::Lost,
            "lost: the customer must reconnect (`qbo-console link TENANT` after restoring)",
        ),
        (
            Verdict::Recoverable,
            "recoverable: refresh at once after restoring, within 24 hours of the time shown",
        ),
        (
            Verdict::Gone,
            "gone from the live database since the backup",
        ),
    ] {
        let items: Vec<_> = d.items.iter().filter(|i| i.verdict == v).collect();
        if items.is_empty() {
            continue;
        }
        s.push_str(&format!("\n{} {what}\n", items.len()));
        for i in items.iter().take(50) {
            s.push_str(&format!(
                "  {:<8} {:<28} {:<11} {}\n",
                i.connection_id,
                qbo_core::present::clip(&qbo_core::text::terminal_safe(&i.tenant), 28),
                i.environment.as_str(),
                i.replaced_at
                    .map(|t| format!("replaced {}", t.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_default()
            ));
        }
        if items.len() > 50 {
            s.push_str(&format!(
                "  … and {} more (--json lists all)\n",
                items.len() - 50
            ));
        }
    }
    s
}

pub(super) fn verify(file: PathBuf, pubkey: Option<String>, json: bool) -> Result<u8, Failure> {
    let m = verify_backup(&file, pubkey.as_deref()).map_err(ClientError::from)?;
    if json {
        print_json(&m)?;
    } else {
        println!(
            "{}: intact, matches its signed manifest ({})",
            file.display(),
            if pubkey.is_some() {
                "signature checked with the key given"
            } else {
                "signature checked with the key the manifest names; pass --pubkey to pin it"
            }
        );
        print!("{}", manifest_lines(&m));
    }
    Ok(exit::OK)
}

/// `db restore FILE --yes`: in this process, with the daemon's lock held so no `serve` runs
/// meanwhile (and none is running now).
pub(super) async fn restore(
    config: &qbo_core::config::Config,
    file: PathBuf,
    yes: bool,
) -> Result<u8, Failure> {
    let bad = |m: String| Failure {
        code: exit::BAD_INPUT,
        message: m,
    };
    let url = &config.database()?.url;
    let Some(db) = qbo_service::sqlite_file(url).map_err(ClientError::from)? else {
        return Err(bad(
            "db restore puts a SQLite backup in place; this configuration's database is not a SQLite file: restore PostgreSQL with pg_restore (README: Backups)".into(),
        ));
    };
    let manifest = verify_backup(&file, None).map_err(ClientError::from)?;
    let _lock = qbo_daemon::lock::DaemonLock::acquire(&db).map_err(|e| {
        bad(format!(
            "db restore refuses while serve runs: {e:#}. Stop the daemon first (systemctl stop qbo-console)"
        ))
    })?;
    let clock = qbo_core::clock::Clock::System;
    let caller =
        qbo_service::Actor::current_process(qbo_service::Interface::Cli, qbo_service::Role::Admin);
    let live = qbo_service::Service::open(config, clock.clone()).await?;
    let drill = live.restore_drill(&file).await.map_err(ClientError::from)?;
    live.close().await;
    print!("{}", drill_text(&drill));
    if !yes {
        println!(
            "\nnothing was changed; rerun with --yes to restore {}",
            file.display()
        );
        return Ok(exit::OK);
    }
    let kept = PathBuf::from(format!(
        "{}.before-restore-{}",
        db.display(),
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    let moved = |from: &Path, to: &Path| {
        std::fs::rename(from, to).map_err(|e| Failure {
            code: exit::INTERNAL,
            message: format!("cannot move {} to {}: {e}", from.display(), to.display()),
        })
    };
    moved(&db, &kept)?;
    for side in ["-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{side}", db.display()));
        if from.exists() {
            moved(&from, &PathBuf::from(format!("{}{side}", kept.display())))?;
        }
    }
    let copied = (|| {
        use std::io::Write;
        let mut to = qbo_core::file_modes::create_secret_file(&db)?;
        let mut from = std::fs::File::open(&file)?;
        std::io::copy(&mut from, &mut to)?;
        to.flush()?;
        to.sync_all()
    })();
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&db);
        moved(&kept, &db)?;
        return Err(Failure {
            code: exit::INTERNAL,
            message: format!(
                "cannot copy {} into place: {e}; the database was put back as it was",
                file.display()
            ),
        });
    }
    let restored = qbo_service::Service::open(config, clock).await?;
    restored
        .record_restore(
            &caller,
            format!(
                "restored {} (sha256 {}, audit head {}); the replaced database is kept at {}; drill: {}",
                file.display(),
                manifest.sha256,
                manifest.audit_head_seq,
                kept.display(),
                drill.summary()
            ),
        )
        .await
        .map_err(ClientError::from)?;
    restored.close().await;
    println!(
        "\nrestored {}; the replaced database is kept at {}. Start the daemon; refresh the recoverable connections at once (`qbo-console refresh --where ...` or let the scheduler catch up), and send the lost ones reconnect links.",
        file.display(),
        kept.display()
    );
    Ok(exit::OK)
}
