//! `support-bundle` and `report posture`: reports the service builds and the CLI prints or
//! writes, as Markdown or JSON.

use super::args::SupportBundleArgs;
use super::{exit, print_json, Failure};
use qbo_service::{bundle_markdown, posture_markdown, Client};
use std::path::Path;

fn write_report(path: &Path, text: &str) -> Result<(), Failure> {
    qbo_service::write_owner_only(path, text).map_err(|e| Failure {
        code: exit::BAD_INPUT,
        message: format!(
            "cannot write {}: {e}; name a writable file with -o FILE",
            path.display()
        ),
    })
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
                qbo_core::text::Safe(&bundle.connection.tenant),
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
