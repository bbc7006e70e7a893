//! `support-bundle` and `report posture`: reports the service builds and the CLI prints or
//! writes, as Markdown or JSON.

use super::args::SupportBundleArgs;
use super::{exit, print_json, Failure};
use crate::service::{bundle_markdown, posture_markdown, Client};
use std::io::Write;
use std::path::Path;

/// Writes `text` to `path`, created owner-only (0600) when new: a bundle names tenants and
/// realms, which the operator chooses to share, not every account on the host.
pub fn write_report(path: &Path, text: &str) -> Result<(), Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| Failure {
        code: exit::BAD_INPUT,
        message: format!(
            "cannot write {}: {e}; name a writable file with -o FILE",
            path.display()
        ),
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    f.write_all(text.as_bytes()).map_err(fail)?;
    f.sync_all().map_err(fail)
}

fn json_text<T: serde::Serialize>(v: &T) -> Result<String, Failure> {
    serde_json::to_string_pretty(v)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| Failure {
            code: exit::INTERNAL,
            message: e.to_string(),
        })
}

pub(super) async fn support_bundle(
    client: &dyn Client,
    a: SupportBundleArgs,
) -> Result<u8, Failure> {
    let bundle = client.support_bundle(a.target, a.since).await?;
    match a.output {
        None if a.json => print_json(&bundle)?,
        None => print!("{}", bundle_markdown(&bundle)),
        Some(path) => {
            let text = if a.json {
                json_text(&bundle)?
            } else {
                bundle_markdown(&bundle)
            };
            write_report(&path, &text)?;
            eprintln!(
                "wrote the support bundle for {} ({}:{}) to {}: {} Intuit calls since {}",
                crate::text::Safe(&bundle.connection.tenant),
                bundle.connection.environment,
                bundle.connection.realm_id,
                path.display(),
                bundle.intuit_calls.len(),
                bundle.since.to_rfc3339()
            );
        }
    }
    Ok(exit::OK)
}

pub(super) async fn posture(client: &dyn Client, format: &str) -> Result<u8, Failure> {
    let report = client.posture().await?;
    if format == "json" {
        print_json(&report)?;
    } else {
        print!("{}", posture_markdown(&report));
    }
    Ok(exit::OK)
}
