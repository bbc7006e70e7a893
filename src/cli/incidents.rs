//! `incidents` and `incidents show ID`: Intuit-wide failures seen as one.

use super::args::{IncidentsArgs, IncidentsCommand};
use super::{exit, print_json, Failure};
use chrono::{DateTime, Utc};
use qbo_core::text::Safe;
use qbo_service::{Client, ClientError, Incident, IncidentDetail};

pub(super) async fn run(client: &dyn Client, a: IncidentsArgs) -> Result<u8, Failure> {
    match a.show {
        Some(IncidentsCommand::Show { id, json }) => {
            let id = qbo_service::incidents::incident_number(&id).map_err(ClientError::from)?;
            let d = client.incident(id).await?;
            if json {
                print_json(&d)?;
            } else {
                print!("{}", detail(&d));
            }
        }
        None => {
            let all = client.incidents().await?;
            if a.json {
                print_json(&all)?;
            } else {
                print!("{}", table(&all, Utc::now()));
            }
        }
    }
    Ok(exit::OK)
}

/// How long, in whole minutes or hours: `12m`, `3h 05m`.
fn lasted(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let m = (to - from).num_minutes().max(0);
    if m < 60 {
        format!("{m}m")
    } else {
        format!("{}h {:02}m", m / 60, m % 60)
    }
}

fn table(all: &[Incident], now: DateTime<Utc>) -> String {
    if all.is_empty() {
        return "no incidents: Intuit has not failed many connections at once\n".into();
    }
    let mut out = format!(
        "{:<5} {:<7} {:<11} {:<10} {:<15} {:<17} {:<9} {:>11}  SAMPLE INTUIT_TIDS\n",
        "ID", "STATE", "ENV", "ENDPOINT", "CLASS", "STARTED (UTC)", "LASTED", "CONNECTIONS"
    );
    for i in all {
        let (state, end) = match i.ended_at {
            None => ("OPEN", now),
            Some(e) => ("ended", e),
        };
        out.push_str(&format!(
            "{:<5} {:<7} {:<11} {:<10} {:<15} {:<17} {:<9} {:>11}  {}\n",
            i.id,
            state,
            i.environment.as_str(),
            i.endpoint.as_str(),
            i.class.as_str(),
            i.started_at.format("%Y-%m-%d %H:%M"),
            lasted(i.started_at, end),
            i.connections,
            Safe(&i.sample_tids.join(" "))
        ));
    }
    if let Some(open) = all.iter().find(|i| i.is_open()) {
        out.push_str(&format!(
            "\nopen: {}\n→ {}\n",
            open.headline(),
            open.remedy()
        ));
    }
    out
}

fn detail(d: &IncidentDetail) -> String {
    let i = &d.incident;
    let mut out = format!("{}\n", Safe(&i.headline()));
    out.push_str(&format!(
        "  class        {} ({})\n",
        i.class,
        i.class.words()
    ));
    out.push_str(&format!(
        "  scope        {} {} endpoint\n",
        i.environment, i.endpoint
    ));
    out.push_str(&format!("  started      {}\n", i.started_at.to_rfc3339()));
    out.push_str(&format!(
        "  ended        {}\n",
        i.ended_at
            .map(|e| e.to_rfc3339())
            .unwrap_or_else(|| "still open".into())
    ));
    out.push_str(&format!("  intuit said  {}\n", Safe(&i.detail)));
    out.push_str(&format!(
        "  intuit_tids  {}\n",
        if i.sample_tids.is_empty() {
            "none received".to_string()
        } else {
            Safe(&i.sample_tids.join(" ")).to_string()
        }
    ));
    out.push_str(&format!("  what to do   {}\n\n", d.remedy));
    out.push_str(&format!(
        "{:<8} {:<28} {:<20} {:<17} {:<16} INTUIT_TID\n",
        "ID", "TENANT", "REALM", "FAILED (UTC)", "NOW"
    ));
    for m in &d.members {
        out.push_str(&format!(
            "{:<8} {:<28} {:<20} {:<17} {:<16} {}\n",
            m.connection_id,
            qbo_core::present::clip(&qbo_core::text::terminal_safe(&m.tenant), 28),
            m.realm_id,
            m.failed_at.format("%Y-%m-%d %H:%M"),
            m.condition.as_str(),
            Safe(m.intuit_tid.as_deref().unwrap_or("-"))
        ));
    }
    if (d.members.len() as u64) < i.connections {
        out.push_str(&format!(
            "… and {} more (the first {} by when they failed are listed)\n",
            i.connections - d.members.len() as u64,
            d.members.len()
        ));
    }
    out
}
