//! Intuit's two webhook payloads, read into one list of data-change events: the legacy
//! `eventNotifications` object and the CloudEvents array Intuit is moving to.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// One data change at one realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// CloudEvents' `id`; for a legacy notification (which has none), a hash of what
    /// identifies the change, so a redelivery has the same id.
    pub id: String,
    pub realm_id: String,
    /// When the change happened, as Intuit says (or when it was received).
    pub at: DateTime<Utc>,
    /// "Customer 1 Create", "qbo.customer.created.v1 1".
    pub what: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Legacy {
    event_notifications: Vec<Notification>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    realm_id: String,
    data_change_event: DataChange,
}

#[derive(Deserialize)]
struct DataChange {
    entities: Vec<Entity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entity {
    name: String,
    id: String,
    operation: String,
    #[serde(default)]
    last_updated: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct CloudEvent {
    specversion: String,
    id: String,
    #[serde(rename = "type")]
    kind: String,
    intuitaccountid: String,
    #[serde(default)]
    intuitentityid: Option<String>,
    #[serde(default)]
    time: Option<DateTime<Utc>>,
}

const MAX_FIELD: usize = 200;

fn short(field: &str, v: &str) -> Result<(), String> {
    if v.is_empty() || v.len() > MAX_FIELD {
        return Err(format!("{field} is empty or longer than {MAX_FIELD} bytes"));
    }
    Ok(())
}

/// Reads a body in either format; the error says what is wrong with it.
pub fn parse(body: &[u8], received: DateTime<Utc>) -> Result<Vec<Event>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let mut out = Vec::new();
    if value.is_array() {
        let events: Vec<CloudEvent> =
            serde_json::from_value(value).map_err(|e| format!("not a CloudEvents array: {e}"))?;
        for e in events {
            if e.specversion != "1.0" {
                return Err(format!(
                    "CloudEvents specversion {:?} is not 1.0",
                    e.specversion
                ));
            }
            short("id", &e.id)?;
            short("intuitaccountid", &e.intuitaccountid)?;
            short("type", &e.kind)?;
            let entity = e.intuitentityid.unwrap_or_default();
            out.push(Event {
                id: e.id,
                realm_id: e.intuitaccountid,
                at: e.time.unwrap_or(received),
                what: format!("{} {entity}", e.kind).trim().to_string(),
            });
        }
    } else {
        let legacy: Legacy = serde_json::from_value(value)
            .map_err(|e| format!("not an eventNotifications object: {e}"))?;
        for n in legacy.event_notifications {
            short("realmId", &n.realm_id)?;
            for e in n.data_change_event.entities {
                short("name", &e.name)?;
                short("id", &e.id)?;
                short("operation", &e.operation)?;
                let at = e.last_updated.unwrap_or(received);
                let what = format!("{} {} {}", e.name, e.id, e.operation);
                let id = format!(
                    "legacy:{}",
                    &crate::vault::hex(&Sha256::digest(
                        format!("{}\n{what}\n{}", n.realm_id, at.to_rfc3339()).as_bytes()
                    ))[..32]
                );
                out.push(Event {
                    id,
                    realm_id: n.realm_id.clone(),
                    at,
                    what,
                });
            }
        }
    }
    if out.is_empty() {
        return Err("no events in the notification".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_read_into_the_same_events() {
        let now = Utc::now();
        let legacy = br#"{"eventNotifications":[{"realmId":"123","dataChangeEvent":{"entities":[{"name":"Customer","id":"1","operation":"Create","lastUpdated":"2026-01-01T10:00:00Z"}]}}]}"#;
        let ev = parse(legacy, now).unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].realm_id, "123");
        assert_eq!(ev[0].what, "Customer 1 Create");
        assert!(ev[0].id.starts_with("legacy:"));
        assert_eq!(
            parse(legacy, now).unwrap()[0].id,
            ev[0].id,
            "a redelivery has the same id"
        );
        let cloud = br#"[{"specversion":"1.0","id":"ev-1","type":"qbo.customer.created.v1","source":"intuit","intuitaccountid":"123","intuitentityid":"1","time":"2026-01-01T10:00:00Z","data":{}}]"#;
        let ev = parse(cloud, now).unwrap();
        assert_eq!(
            (ev[0].id.as_str(), ev[0].realm_id.as_str()),
            ("ev-1", "123")
        );
        assert_eq!(ev[0].what, "qbo.customer.created.v1 1");
        for bad in [
            &b"{"[..],
            b"[]",
            b"{\"eventNotifications\":[]}",
            b"{\"x\":1}",
            b"[{\"specversion\":\"0.3\",\"id\":\"a\",\"type\":\"t\",\"intuitaccountid\":\"1\"}]",
        ] {
            assert!(parse(bad, now).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
