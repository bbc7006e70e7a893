//! `audit export`, `audit verify --export`, `audit pubkey` and `audit archive`.

use super::args::ExportArgs;
use super::{exit, print_json, Failure};
use qbo_service::FileReport;
use qbo_service::{self as service, Client};
use qbo_service::{ExportFilter, ExportFormat};
use std::io::IsTerminal;
use std::path::Path;

/// Progress lines on stderr once an export is large: every 100,000 events.
const PROGRESS_EVERY: u64 = 100_000;

/// The filter as the flags give it, checked here first: bad input is named before anything
/// is asked of the daemon or written.
pub fn filter_of(a: &ExportArgs) -> Result<(ExportFilter, ExportFormat), Failure> {
    let format: ExportFormat = a.format.parse().map_err(bad_input)?;
    let filter = ExportFilter {
        since: a.since.clone(),
        until: a.until.clone(),
        tenant: a.tenant.clone(),
        realm: a.realm.clone(),
        actor: a.actor.clone(),
        action: a.action.clone(),
        outcome: a.outcome.clone(),
    }
    .normalized(chrono::Utc::now())
    .map_err(bad_input)?;
    Ok((filter, format))
}

fn bad_input(problem: impl std::fmt::Display) -> Failure {
    Failure {
        code: exit::BAD_INPUT,
        message: problem.to_string(),
    }
}

pub async fn export(
    client: &dyn Client,
    filter: ExportFilter,
    format: ExportFormat,
    output: Option<&Path>,
) -> Result<u8, Failure> {
    let path = match output {
        Some(p) => p.to_path_buf(),
        None => service::client::default_export_path(format, chrono::Utc::now()),
    };
    let mut next = PROGRESS_EVERY;
    let tty = std::io::stderr().is_terminal();
    let mut progress = move |rows: u64| {
        if rows >= next {
            next = (rows / PROGRESS_EVERY + 1) * PROGRESS_EVERY;
            if tty {
                eprint!("\rexporting: {rows} events so far");
            } else {
                eprintln!("exporting: {rows} events so far");
            }
        }
    };
    let m = service::client::export_to_file(client, filter, format, &path, &mut progress).await;
    if tty && m.as_ref().is_ok_and(|m| m.rows >= PROGRESS_EVERY) {
        eprintln!();
    }
    let m = m?;
    println!(
        "exported {} events ({}) to {}; manifest {} (sha256 {}, signed by {})",
        m.rows,
        match (m.first_seq, m.last_seq) {
            (Some(f), Some(l)) => format!("sequence {f}..{l}"),
            _ => "none matched".into(),
        },
        path.display(),
        qbo_service::manifest_path(&path).display(),
        m.sha256,
        m.public_key
    );
    Ok(exit::OK)
}

/// `audit verify --export FILE`: runs before any configuration is read.
pub fn verify_file(file: &Path, pubkey: Option<&str>, json: bool) -> Result<u8, Failure> {
    let r = qbo_service::verify_export_file(file, pubkey).map_err(bad_input)?;
    if json {
        print_json(&r)?;
    } else {
        println!("{}", render(&r));
        if r.ok && !r.key_given {
            eprintln!("warning: checked against the key the manifest names; pass --pubkey with the key from `qbo-console audit pubkey` to prove who signed it");
        }
    }
    Ok(if r.ok { exit::OK } else { exit::FAILED })
}

pub(super) fn render(r: &FileReport) -> String {
    let range = match (r.first_seq, r.last_seq) {
        (Some(f), Some(l)) => format!("sequence {f}..{l}"),
        _ => "no events".into(),
    };
    let repairs = super::render::repairs(&r.repairs);
    if r.ok {
        format!(
            "export intact: {} events ({range}{}), signed by {}{repairs}",
            r.rows,
            if r.contiguous {
                ", chain checked"
            } else {
                ", filtered: each event's hash checked"
            },
            r.public_key
        )
    } else {
        let at = r
            .first_bad_seq
            .map(|s| format!(" at sequence {s}"))
            .unwrap_or_default();
        format!(
            "export BROKEN{at} ({}): {}{repairs}",
            r.kind.map_or("damaged", |k| k.as_str()),
            qbo_core::text::Safe(r.problem.as_deref().unwrap_or("unknown problem"))
        )
    }
}

pub async fn quarantine(client: &dyn Client, from: i64, json: bool) -> Result<u8, Failure> {
    let r = client.audit_quarantine(from).await?;
    if json {
        print_json(&r)?;
    } else {
        println!(
            "moved {} row(s) stored past the chain head (sequence {}..{}) to audit_quarantine; recorded as `chain repaired` at sequence {}; the chain continues from sequence {}",
            r.removed, r.from_seq, r.through_seq, r.repair_seq, r.head_seq
        );
        for row in &r.removed_hashes {
            println!("  removed {} hash {}", row.seq, row.hash);
        }
    }
    Ok(exit::OK)
}

pub async fn archive(client: &dyn Client, json: bool) -> Result<u8, Failure> {
    let r = client.audit_archive().await?;
    if json {
        print_json(&r)?;
    } else if r.archived == 0 {
        println!(
            "nothing to archive: no events older than {} days (before {})",
            r.audit_days, r.before
        );
    } else {
        println!(
            "archived {} events through sequence {} to {} (manifest {}); the chain in the database continues from there",
            r.archived,
            r.through_seq.unwrap_or(0),
            r.file.as_deref().unwrap_or(""),
            r.manifest.as_deref().unwrap_or("")
        );
    }
    Ok(exit::OK)
}
