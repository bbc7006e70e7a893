//! Intuit's two webhook payloads, read into one list of data-change events: the legacy
//! `eventNotifications` object and the CloudEvents array Intuit is moving to.
//!
//! A legacy entry has no id, so its id is a hash of the entry itself (the realm and the
//! entity object with its keys sorted): a redelivery of the same payload has the same id
//! whenever it arrives, with or without `lastUpdated`. Nothing the receiver adds (the time
//! it arrived) goes into it, or every redelivery would look new.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use qbo_service::WebhookEvent as Event;

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
    /// Kept as JSON: the id of a legacy entry is a hash of the whole entity object.
    entities: Vec<serde_json::Value>,
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

/// Why a notification's body cannot be read as Intuit's: answered 400 and counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadPayload(pub String);

impl From<String> for BadPayload {
    fn from(s: String) -> Self {
        BadPayload(s)
    }
}

impl From<&str> for BadPayload {
    fn from(s: &str) -> Self {
        BadPayload(s.to_string())
    }
}

const MAX_FIELD: usize = 200;

fn short(field: &str, v: &str) -> Result<(), BadPayload> {
    if v.is_empty() || v.len() > MAX_FIELD {
        return Err(BadPayload::from(format!(
            "{field} is empty or longer than {MAX_FIELD} bytes"
        )));
    }
    Ok(())
}

/// Reads a body in either format; the error says what is wrong with it.
pub fn parse(body: &[u8], received: DateTime<Utc>) -> Result<Vec<Event>, BadPayload> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let mut out = Vec::new();
    if value.is_array() {
        let events: Vec<CloudEvent> =
            serde_json::from_value(value).map_err(|e| format!("not a CloudEvents array: {e}"))?;
        for e in events {
            if e.specversion != "1.0" {
                return Err(BadPayload::from(format!(
                    "CloudEvents specversion {:?} is not 1.0",
                    e.specversion
                )));
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
            for raw in n.data_change_event.entities {
                let e: Entity = serde_json::from_value(raw.clone()).map_err(|e| {
                    format!("an entity of realm {:?} is not readable: {e}", n.realm_id)
                })?;
                short("name", &e.name)?;
                short("id", &e.id)?;
                short("operation", &e.operation)?;
                let at = e.last_updated.unwrap_or(received);
                let what = format!("{} {} {}", e.name, e.id, e.operation);
                out.push(Event {
                    id: legacy_id(&n.realm_id, &raw),
                    realm_id: n.realm_id.clone(),
                    at,
                    what,
                });
            }
        }
    }
    if out.is_empty() {
        return Err(BadPayload::from("no events in the notification"));
    }
    Ok(out)
}

/// The id of a legacy entry: a hash of its realm and its entity object in canonical form
/// (keys sorted at every level, no whitespace), so the same entry delivered again, even
/// with its keys in another order, has the same id.
fn legacy_id(realm: &str, entity: &serde_json::Value) -> String {
    let mut canon = String::new();
    canonical(entity, &mut canon);
    let digest = Sha256::digest(format!("{realm}\n{canon}").as_bytes());
    format!("legacy:{}", &qbo_core::vault::hex(&digest)[..32])
}

/// JSON with object keys sorted, whatever order the parser kept them in.
fn canonical(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
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

    /// Without `lastUpdated` a legacy entry used to get an id that included the time it was
    /// received, so each redelivery was processed again; now the id comes from the payload
    /// alone (and not from the order of its keys), while a different entry differs.
    #[test]
    fn a_legacy_entry_without_last_updated_has_the_same_id_whenever_it_is_delivered() {
        let body = br#"{"eventNotifications":[{"realmId":"123","dataChangeEvent":{"entities":[{"name":"Customer","id":"1","operation":"Update"}]}}]}"#;
        let first = parse(body, Utc::now()).unwrap();
        let later = parse(body, Utc::now() + chrono::Duration::hours(3)).unwrap();
        assert_eq!(first[0].id, later[0].id, "a redelivery hours later");
        let reordered = br#"{"eventNotifications":[{"dataChangeEvent":{"entities":[{"operation":"Update","id":"1","name":"Customer"}]},"realmId":"123"}]}"#;
        assert_eq!(parse(reordered, Utc::now()).unwrap()[0].id, first[0].id);
        for other in [
            &br#"{"eventNotifications":[{"realmId":"124","dataChangeEvent":{"entities":[{"name":"Customer","id":"1","operation":"Update"}]}}]}"#[..],
            br#"{"eventNotifications":[{"realmId":"123","dataChangeEvent":{"entities":[{"name":"Customer","id":"1","operation":"Delete"}]}}]}"#,
            br#"{"eventNotifications":[{"realmId":"123","dataChangeEvent":{"entities":[{"name":"Customer","id":"1","operation":"Update","lastUpdated":"2026-01-01T10:00:00Z"}]}}]}"#,
        ] {
            assert_ne!(parse(other, Utc::now()).unwrap()[0].id, first[0].id);
        }
    }
}
