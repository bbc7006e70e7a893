//! `forecast` as text: one line per connection at risk, soonest first, then the last alerts;
//! and `forecast --json`, every risk written as the daemon finds it.

use super::{exit, Failure};
use qbo_core::text::{terminal_safe_lines, Safe};
use qbo_service::{Client, Forecast, ForecastFrame};
use std::io::Write;

/// How many risks `forecast` prints without `--limit`: the soonest screenfuls, not a
/// million lines.
pub const SHOWN: u32 = 200;

pub fn render(f: &Forecast) -> String {
    let mut out = String::new();
    if f.items.is_empty() {
        out.push_str(&format!(
            "no connection is forecast to die within {} days\n",
            f.days
        ));
    } else {
        let found = f.count.max(f.items.len() as u64);
        out.push_str(&format!(
            "{} risk{} within {} days if nothing changes",
            qbo_core::text::thousands(found),
            if found == 1 { "" } else { "s" },
            f.days
        ));
        if (f.items.len() as u64) < found {
            let by_risk: Vec<String> = f
                .by_risk
                .iter()
                .map(|(r, n)| format!("{r} {}", qbo_core::text::thousands(*n)))
                .collect();
            out.push_str(&format!(
                " ({}); the {} soonest (--limit N for more, --json for every one):\n",
                by_risk.join(", "),
                f.items.len()
            ));
        } else {
            out.push_str(":\n");
        }
        out.push_str(&format!(
            "{:<10}  {:>5}  {:<20}  {:<20}  {:<11}  {:<21}  WHY / WHAT SAVES IT\n",
            "DATE", "DAYS", "TENANT", "REALM", "ENV", "RISK"
        ));
        for i in &f.items {
            let days = (i.date - f.generated_at).num_days();
            out.push_str(&format!(
                "{:<10}  {:>5}  {:<20}  {:<20}  {:<11}  {:<21}  {}\n{:<12}-> {}\n",
                i.date.format("%Y-%m-%d"),
                days,
                Safe(&i.tenant).to_string(),
                i.realm_id.as_str(),
                i.environment.as_str(),
                i.risk.as_str(),
                Safe(&i.reason),
                "",
                Safe(&i.action),
            ));
        }
    }
    if !f.alerts.is_empty() {
        out.push_str("\nlast alerts:\n");
        for a in &f.alerts {
            out.push_str(&format!(
                "{}  {:<9}  {:<12}  {}\n",
                a.created_at.format("%Y-%m-%d %H:%M"),
                a.state,
                Safe(&a.webhook).to_string(),
                Safe(&a.text)
            ));
        }
    }
    terminal_safe_lines(out.trim_end()).into_owned()
}
/// `forecast --json`: the forecast's object written as its frames arrive, the items in
/// connection order, so neither the daemon nor this process holds more than a page of
/// them whatever the number of connections.
pub async fn print_stream(client: &dyn Client, days: Option<u32>) -> Result<u8, Failure> {
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut written = 0u64;
    let mut sink = |frame: ForecastFrame| write_frame(&mut out, frame, &mut written);
    client.forecast_each(days, &mut sink).await?;
    Ok(exit::OK)
}

/// One frame's part of the object `print_json` would have written for the whole forecast.
fn write_frame(
    out: &mut impl Write,
    frame: ForecastFrame,
    written: &mut u64,
) -> std::io::Result<()> {
    match frame {
        ForecastFrame::Head { generated_at, days } => {
            write!(
                out,
                "{{\n  \"generated_at\": {},\n  \"days\": {days},\n  \"items\": [",
                serde_json::to_string(&generated_at)?
            )?;
        }
        ForecastFrame::Items { items } => {
            for i in &items {
                out.write_all(if *written == 0 { b"\n    " } else { b",\n    " })?;
                out.write_all(pretty(i, "    ")?.as_bytes())?;
                *written += 1;
            }
        }
        ForecastFrame::End {
            count,
            by_risk,
            alerts,
        } => {
            out.write_all(if *written == 0 { b"]" } else { b"\n  ]" })?;
            write!(
                out,
                ",\n  \"count\": {count},\n  \"by_risk\": {},\n  \"alerts\": {}\n}}\n",
                pretty(&by_risk, "  ")?,
                pretty(&alerts, "  ")?
            )?;
            out.flush()?;
        }
    }
    Ok(())
}

/// A value's pretty JSON with its lines after the first indented by `indent`: as it sits
/// inside the object `print_json` writes.
fn pretty<T: serde::Serialize>(v: &T, indent: &str) -> std::io::Result<String> {
    let s = serde_json::to_string_pretty(v)?;
    Ok(s.lines().collect::<Vec<_>>().join(&format!("\n{indent}")))
}
