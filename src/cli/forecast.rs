//! `forecast` as text: the risks grouped by cause (a heading with the count and the one
//! remedy, then one line per connection, soonest first), then the last alerts; and
//! `forecast --json`, every risk written as the daemon finds it.

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
        let groups = f.groups();
        out.push_str(&format!(
            "{} risk{} within {} days if nothing changes, in {} group{} by cause",
            qbo_core::text::thousands(found),
            if found == 1 { "" } else { "s" },
            f.days,
            groups.len(),
            if groups.len() == 1 { "" } else { "s" },
        ));
        if (f.items.len() as u64) < found {
            out.push_str(&format!(
                "; the {} soonest shown (--limit N for more, --json for every one)",
                f.items.len()
            ));
        }
        out.push_str(":\n");
        // One heading per cause with its count and its one remedy, then one line per
        // connection: the date, the tenant and why.
        let tenant_width = f
            .items
            .iter()
            .map(|i| Safe(&i.tenant).to_string().chars().count())
            .max()
            .unwrap_or(0)
            .clamp(6, 32);
        for g in &groups {
            let shown = if (g.items.len() as u64) < g.count {
                format!(", the {} soonest shown", g.items.len())
            } else {
                String::new()
            };
            out.push_str(&format!(
                "\n{} ({}{shown})\n  -> {}\n",
                g.cause.title(),
                qbo_core::text::thousands(g.count),
                g.cause.remedy()
            ));
            for i in &g.items {
                out.push_str(&format!(
                    "  {}  {:>5}  {:<tenant_width$}  {:<11}  {:<20}  {}\n",
                    i.date.format("%Y-%m-%d"),
                    (i.date - f.generated_at).num_days(),
                    Safe(&i.tenant).to_string(),
                    i.environment.as_str(),
                    i.realm_id.as_str(),
                    Safe(&i.reason),
                ));
            }
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
pub(super) async fn print_stream(client: &dyn Client, days: Option<u32>) -> Result<u8, Failure> {
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
            causes,
            alerts,
        } => {
            out.write_all(if *written == 0 { b"]" } else { b"\n  ]" })?;
            write!(
                out,
                ",\n  \"count\": {count},\n  \"by_risk\": {},\n  \"causes\": {},\n  \"alerts\": {}\n}}\n",
                pretty(&by_risk, "  ")?,
                pretty(&causes, "  ")?,
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
