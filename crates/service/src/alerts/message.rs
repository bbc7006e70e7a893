//! The JSON an alert POSTs: Slack-compatible `text` for people, and the condition's fields
//! for programs. README.md ("Alerts") documents the shape.

use super::conditions::Condition;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Slack reads `&`, `<` and `>` as markup (links, mentions): escaped as Slack asks, so a
/// tenant or Intuit's error text cannot ping a channel or forge a link.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// One line naming what is at risk, when, why and what to do.
pub fn line(c: &Condition) -> String {
    let who = match (&c.connection, c.environment) {
        (Some(conn), Some(env)) => format!("{} ({env} realm {})", conn.tenant, conn.realm_id),
        (Some(conn), None) => format!("{} (realm {})", conn.tenant, conn.realm_id),
        (None, Some(env)) => format!("environment {env}"),
        // The daemon itself: its audit log.
        (None, None) => "qbo-console".to_string(),
    };
    slack_escape(&format!(
        "{who}: {} ({}) — {}. Action: {}",
        c.risk,
        day(c.date),
        c.reason,
        c.action
    ))
}

fn condition_json(c: &Condition) -> Value {
    json!({
        "key": c.key,
        "risk": c.risk,
        "date": c.date,
        "reason": c.reason,
        "action": c.action,
        "environment": c.environment,
        "connection": c.connection,
    })
}

/// A condition has just opened.
pub fn opened(c: &Condition, now: DateTime<Utc>) -> (String, String) {
    let text = format!("qbo-console alert: {}", line(c));
    let body = json!({
        "source": "qbo-console",
        "event": "opened",
        "at": now,
        "text": text,
        "condition": condition_json(c),
    });
    (text, body.to_string())
}

/// An incident has ended: the one message that answers its opening.
pub fn resolved(
    key: &str,
    incident: &qbo_core::incident::Incident,
    now: DateTime<Utc>,
) -> (String, String) {
    let text = slack_escape(&format!(
        "qbo-console alert RESOLVED: {}. Refreshes in {} go on; the connections it held back are caught up, most urgent first.",
        incident.headline(),
        incident.environment
    ));
    let body = json!({
        "source": "qbo-console",
        "event": "resolved",
        "at": now,
        "text": text,
        "key": key,
        "incident": incident,
    });
    (text, body.to_string())
}

/// Counts per risk as a person reads them: `no_sync 960,000, needs_reconnect 20,000`.
fn counts(by_risk: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<_> = by_risk.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(risk, n)| format!("{risk} {}", qbo_core::text::thousands(**n)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The daily digest of what is still open: `total` conditions, counted by risk, the
/// soonest of them (`listed`) one per line.
pub fn digest(
    listed: &[Condition],
    by_risk: &BTreeMap<String, u64>,
    total: u64,
    now: DateTime<Utc>,
) -> (String, String) {
    let mut text = format!(
        "qbo-console digest: {} condition{} still open",
        qbo_core::text::thousands(total),
        if total == 1 { "" } else { "s" }
    );
    if by_risk.len() > 1 || (listed.len() as u64) < total {
        text.push_str(&format!(" ({})", counts(by_risk)));
    }
    for c in listed {
        text.push_str("\n• ");
        text.push_str(&line(c));
    }
    let more = total.saturating_sub(listed.len() as u64);
    if more > 0 {
        text.push_str(&format!(
            "\n… and {} more, later: `qbo-console forecast` lists every one",
            qbo_core::text::thousands(more)
        ));
    }
    let body = json!({
        "source": "qbo-console",
        "event": "digest",
        "at": now,
        "text": text,
        "count": total,
        "by_risk": by_risk,
        "conditions": listed.iter().map(condition_json).collect::<Vec<_>>(),
    });
    (text, body.to_string())
}

/// Conditions opened in one pass beyond the ones alerted one by one: one message with
/// their count per risk, instead of a message per connection.
pub fn opened_many(by_risk: &BTreeMap<String, u64>, now: DateTime<Utc>) -> (String, String) {
    let total: u64 = by_risk.values().sum();
    let text = format!(
        "qbo-console alert: {} more condition{} opened ({}); `qbo-console forecast` lists them",
        qbo_core::text::thousands(total),
        if total == 1 { "" } else { "s" },
        counts(by_risk)
    );
    let body = json!({
        "source": "qbo-console",
        "event": "opened_many",
        "at": now,
        "text": text,
        "count": total,
        "by_risk": by_risk,
    });
    (text, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::conditions::ConnectionRef;
    use qbo_core::domain::Environment;

    #[test]
    fn the_text_cannot_carry_slack_markup() {
        let c = Condition {
            key: "connection:1:needs_reconnect".into(),
            risk: "needs_reconnect".into(),
            date: Utc::now(),
            reason: "needs reconnect: <!channel> & more".into(),
            action: "send a link".into(),
            connection: Some(ConnectionRef {
                id: 1,
                tenant: "<https://evil|acme>".into(),
                realm_id: "123".into(),
                status: "needs_reconnect".into(),
            }),
            environment: Some(Environment::Sandbox),
        };
        let (text, body) = opened(&c, Utc::now());
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert!(text.contains("&lt;!channel&gt; &amp; more"), "{text}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["text"], text);
        assert_eq!(v["event"], "opened");
        assert_eq!(
            v["condition"]["connection"]["tenant"],
            "<https://evil|acme>"
        );
    }
}
