//! `forecast` as text: one line per connection at risk, soonest first, then the last alerts.

use qbo_core::text::{terminal_safe_lines, Safe};
use qbo_service::Forecast;

pub fn render(f: &Forecast) -> String {
    let mut out = String::new();
    if f.items.is_empty() {
        out.push_str(&format!(
            "no connection is forecast to die within {} days\n",
            f.days
        ));
    } else {
        out.push_str(&format!(
            "{} connection{} will die within {} days if nothing changes:\n",
            f.items.len(),
            if f.items.len() == 1 { "" } else { "s" },
            f.days
        ));
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
