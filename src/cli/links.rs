//! `link`, `link cancel` and `links`: reconnect links from the command line.

use super::args::{LinkArgs, LinkCommand};
use super::{exit, print_json, Failure};
use chrono::{DateTime, Utc};
use qbo_core::domain::InvalidValue;
use qbo_service::{Client, ClientError, LinkRequest, LinkView, Request};
use std::io::Write;

/// The request `link …` stands for, and whether to print JSON. Bad input is refused here,
/// before anything is opened.
pub(super) fn request(a: LinkArgs) -> Result<(Request, bool), Failure> {
    if let Some(LinkCommand::Cancel { id, json }) = a.cancel {
        return Ok((Request::LinkCancel { id }, json));
    }
    let environment = a
        .environment
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|m: InvalidValue| ClientError::Input(format!("link --env: {m}")))?;
    Ok((
        Request::Link {
            target: a.target,
            new_tenant: if a.new { a.tenant } else { None },
            environment,
            expires_secs: a.expires.map(|d| d.as_secs().max(u64::from(!d.is_zero()))),
        },
        a.json,
    ))
}

pub(super) async fn perform(
    client: &dyn Client,
    request: Request,
    json: bool,
    now: DateTime<Utc>,
) -> Result<u8, Failure> {
    match request {
        Request::Link {
            target,
            new_tenant,
            environment,
            expires_secs,
        } => {
            let link = client
                .link(LinkRequest {
                    target,
                    new_tenant,
                    environment,
                    expires_secs,
                })
                .await?;
            if json {
                print_json(&link)?
            } else {
                println!("{}", link.url);
                eprintln!(
                    "single use, valid until {} (connection {}); `qbo-console links` lists open links",
                    link.expires_at.to_rfc3339(),
                    link.connection_id
                );
            }
        }
        Request::Links => print_links(client, json, now).await?,
        Request::LinkCancel { id } => {
            let inv = client.link_cancel(id).await?;
            if json {
                print_json(&inv)?
            } else {
                println!(
                    "link {} for {} ({}) cancelled",
                    inv.id,
                    qbo_core::text::Safe(&inv.tenant),
                    inv.environment
                );
            }
        }
        _ => unreachable!("only link requests are sent here"),
    }
    Ok(exit::OK)
}

/// `links`: each open link written as it is read (the JSON array as `print_json` would
/// write it, or a table row of fixed widths), so any number of them takes a page's memory.
async fn print_links(client: &dyn Client, json: bool, now: DateTime<Utc>) -> Result<(), Failure> {
    let out = std::io::BufWriter::new(std::io::stdout());
    let failed = |e: std::io::Error| Failure {
        code: exit::INTERNAL,
        message: format!("cannot write the links: {e}"),
    };
    if json {
        let mut array = super::list_stream::Array {
            out,
            lines: false,
            written: 0,
        };
        let mut sink = |l: &LinkView| array.row(l);
        client.links_each(&mut sink).await?;
        return array.finish().map_err(failed);
    }
    let mut out = out;
    let mut count = 0u64;
    let mut sink = |l: &LinkView| {
        if count == 0 {
            out.write_all(header().as_bytes())?;
        }
        count += 1;
        out.write_all(row(l, now).as_bytes())
    };
    client.links_each(&mut sink).await?;
    if count == 0 {
        out.write_all(b"no open reconnect links\n")
            .map_err(failed)?;
    }
    out.flush().map_err(failed)
}

fn header() -> String {
    format!(
        "{:<6} {:<24} {:<11} {:<20} {:<14} {:<10} {}\n",
        "LINK", "TENANT", "ENV", "REALM", "EXPIRES IN", "OPENED", "BY"
    )
}

fn row(i: &LinkView, now: DateTime<Utc>) -> String {
    let left = (i.expires_at - now).num_minutes().max(0);
    let expires = if left >= 60 * 24 {
        format!("{}d {}h", left / (60 * 24), left % (60 * 24) / 60)
    } else {
        format!("{}h {}m", left / 60, left % 60)
    };
    format!(
        "{:<6} {:<24} {:<11} {:<20} {:<14} {:<10} {}\n",
        i.id,
        qbo_core::text::truncate_chars(&qbo_core::text::terminal_safe(&i.tenant), 24),
        i.environment.as_str(),
        i.expected_realm.as_deref().unwrap_or("(new)"),
        expires,
        if i.opened_at.is_some() { "yes" } else { "no" },
        qbo_core::text::terminal_safe(&i.created_by)
    )
}
