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

/// Time left before `at`, in days and hours or hours and minutes; `expired` once past.
fn expires_in(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let left = (at - now).num_minutes();
    if left <= 0 {
        "expired".into()
    } else if left >= 60 * 24 {
        format!("{}d {}h", left / (60 * 24), left % (60 * 24) / 60)
    } else {
        format!("{}h {}m", left / 60, left % 60)
    }
}

fn row(i: &LinkView, now: DateTime<Utc>) -> String {
    let expires = expires_in(i.expires_at, now);
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

/// `link --where FILTER --csv FILE`: the request and the file it will be written to,
/// already created (new, mode 0600) so a name in use refuses before any link is made.
pub(super) struct CampaignCall {
    request: qbo_service::CampaignRequest,
    csv: std::path::PathBuf,
    file: std::fs::File,
    json: bool,
}

impl CampaignCall {
    pub(super) fn parse(a: LinkArgs) -> Result<CampaignCall, Failure> {
        let (Some(filter), Some(csv)) = (a.filter, a.csv) else {
            return Err(ClientError::Input("link --where needs --csv FILE".into()).into());
        };
        let file = create_secret_file(&csv)?;
        Ok(CampaignCall {
            request: qbo_service::CampaignRequest {
                filter,
                expect: a.expect,
                expires_secs: a.expires.map(|d| d.as_secs().max(u64::from(!d.is_zero()))),
            },
            csv,
            file,
            json: a.json,
        })
    }
}

/// Creates the campaign's file: new (an existing file is never overwritten: it may hold
/// links already sent or not yet sent), readable by its owner only.
fn create_secret_file(path: &std::path::Path) -> Result<std::fs::File, Failure> {
    qbo_core::file_modes::create_secret_file(path).map_err(|e| Failure {
        code: exit::BAD_INPUT,
        message: if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!(
                "link --csv {}: the file exists; a campaign never overwrites one (it may hold \
                     live links): give a new name, or remove the old file once its links are sent",
                path.display()
            )
        } else {
            format!("link --csv {}: cannot create it: {e}", path.display())
        },
    })
}

/// The columns of a campaign's CSV, in order.
pub(super) const CSV_HEADER: [&str; 6] = [
    "tenant",
    "company",
    "realm_id",
    "environment",
    "link",
    "expires_at",
];

/// A cell as a spreadsheet will read it: text that a spreadsheet would take for a formula
/// (a company name is the customer's own text) is kept as text with a leading quote.
fn cell(text: &str) -> String {
    let safe = qbo_core::text::terminal_safe(text);
    if safe.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{safe}")
    } else {
        safe.into_owned()
    }
}

fn write_csv(file: std::fs::File, links: &[qbo_service::CampaignLink]) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    w.write_record(CSV_HEADER)?;
    for l in links {
        w.write_record([
            cell(&l.tenant),
            cell(l.company.as_deref().unwrap_or("")),
            l.realm_id.clone().unwrap_or_default(),
            l.environment.as_str().to_string(),
            l.url.clone(),
            l.expires_at.to_rfc3339(),
        ])?;
    }
    let buffered = w.into_inner().map_err(|e| e.into_error())?;
    let file = buffered.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

/// Makes the campaign, then writes its links to the file made for them.
pub(super) async fn campaign(client: &dyn Client, call: CampaignCall) -> Result<u8, Failure> {
    let CampaignCall {
        request,
        csv,
        file,
        json,
    } = call;
    let issued = match client.link_campaign(request).await {
        Ok(i) => i,
        Err(e) => {
            // Nothing was made: the empty file made for it goes too.
            drop(file);
            let _ = std::fs::remove_file(&csv);
            return Err(e.into());
        }
    };
    let c = &issued.campaign;
    if let Err(e) = write_csv(file, &issued.links) {
        return Err(Failure {
            code: exit::INTERNAL,
            message: format!(
                "campaign {} was made ({} links) but {} could not be written: {e}. The links \
                 cannot be shown again: cancel them with `qbo-console link cancel N` (see \
                 `qbo-console links`) and make the campaign anew",
                c.id,
                c.links,
                csv.display()
            ),
        });
    }
    if json {
        print_json(&serde_json::json!({
            "campaign": c,
            "csv": csv.display().to_string(),
            "left_out": issued.left_out,
        }))?;
    } else {
        println!(
            "campaign {}: {} reconnect links for {:?}, valid until {}",
            c.id,
            c.links,
            c.filter,
            c.expires_at.to_rfc3339()
        );
        for l in &issued.left_out {
            println!(
                "  left out {} ({}): {}",
                qbo_core::text::Safe(&l.tenant),
                l.connection_id,
                l.why
            );
        }
    }
    eprintln!(
        "wrote {} (mode 0600): tenant, company, realm_id, environment, link, expires_at for each. \
         It holds live reconnect links and is a secret until they are sent: delete it once the \
         mail merge is done. `qbo-console links --campaign {}` follows the campaign.",
        csv.display(),
        c.id
    );
    Ok(exit::OK)
}

/// `links --campaign ID` (one) or `links --campaigns` (the newest).
pub(super) async fn campaigns(
    client: &dyn Client,
    id: Option<i64>,
    json: bool,
) -> Result<u8, Failure> {
    let all = match id {
        Some(id) => vec![client.campaign(id).await?],
        None => client.campaigns().await?,
    };
    match (json, id) {
        (true, Some(_)) => print_json(&all[0])?,
        (true, None) => print_json(&all)?,
        (false, _) if all.is_empty() => {
            println!("no reconnect campaigns yet; `link --where FILTER --csv FILE` makes one")
        }
        (false, _) => {
            let now = Utc::now();
            println!(
                "{:<6} {:>6} {:>7} {:>9} {:>7} {:>9} {:<16} {:<14} FILTER",
                "CAMP",
                "LINKS",
                "OPENED",
                "COMPLETED",
                "EXPIRED",
                "CANCELLED",
                "MADE",
                "EXPIRES IN"
            );
            for c in &all {
                println!(
                    "{:<6} {:>6} {:>7} {:>9} {:>7} {:>9} {:<16} {:<14} {}",
                    c.id,
                    c.links,
                    c.opened,
                    c.completed,
                    c.expired,
                    c.cancelled,
                    c.created_at.format("%Y-%m-%d %H:%M"),
                    expires_in(c.expires_at, now),
                    qbo_core::text::Safe(&c.filter)
                );
            }
        }
    }
    Ok(exit::OK)
}
