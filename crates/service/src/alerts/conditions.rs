//! Which alert conditions hold now, from the forecast and the scheduler's pauses, and how
//! they differ from the ones already alerted. Pure: no I/O.

use crate::soonest::Soonest;
use chrono::{DateTime, Utc};
use qbo_core::domain::{Environment, PausedEnvironment};
use qbo_engine::forecast::{ForecastItem, Risk};
use qbo_store::audit::ChainBlocked;
use qbo_store::AlertCondition;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A condition as an alert describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    pub key: String,
    pub risk: String,
    /// When the connection dies (or died) by it; for an environment, when it was paused.
    pub date: DateTime<Utc>,
    pub reason: String,
    pub action: String,
    pub connection: Option<ConnectionRef>,
    /// None for a condition of the daemon itself (its audit log).
    pub environment: Option<Environment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionRef {
    pub id: i64,
    pub tenant: String,
    pub realm_id: String,
    pub status: String,
}

pub fn connection_key(id: i64, risk: &str) -> String {
    format!("connection:{id}:{risk}")
}

/// The condition of a blocked audit log (rows stored past the chain head).
pub const AUDIT_BLOCKED_KEY: &str = "audit:chain_blocked";

pub fn environment_key(env: Environment) -> String {
    format!("environment:{env}:credentials_rejected")
}

/// The conditions of connections that hold now: each forecast item within the warning
/// horizon (the forecast was computed over it). A rejected environment is one alert (see
/// `of_environments`), not one per connection in it.
///
/// A failure that is an open (or not yet outlived) Intuit incident's is that incident's one
/// alert, not one per connection: the connection is alerted on its own only if it goes on
/// failing after the incident ended.
pub fn of_connections(items: &[ForecastItem]) -> BTreeMap<String, Condition> {
    let mut out = BTreeMap::new();
    for i in items
        .iter()
        .filter(|i| i.risk != Risk::CredentialsRejected && i.incident.is_none())
    {
        let key = connection_key(i.connection_id, i.risk.as_str());
        out.insert(
            key.clone(),
            Condition {
                key,
                risk: i.risk.as_str().into(),
                date: i.date,
                reason: i.reason.clone(),
                action: i.action.clone(),
                connection: Some(ConnectionRef {
                    id: i.connection_id,
                    tenant: i.tenant.clone(),
                    realm_id: i.realm_id.to_string(),
                    status: i.status.to_string(),
                }),
                environment: Some(i.environment),
            },
        );
    }
    out
}

/// Each environment whose credentials Intuit rejected.
///
/// An environment's condition outlives the pause that raised it: the scheduler lifts a
/// pause after five minutes to probe, and forgets it on restart, but the credentials
/// are only known good once a refresh in that environment has succeeded since the
/// condition opened. Without that, every probe would alert again.
pub fn of_environments(
    paused: &[PausedEnvironment],
    now: DateTime<Utc>,
    open: &[AlertCondition],
    last_good_refresh: &HashMap<Environment, DateTime<Utc>>,
) -> BTreeMap<String, Condition> {
    let mut out = BTreeMap::new();
    for env in Environment::ALL {
        let key = environment_key(env);
        let pause = paused
            .iter()
            .find(|p| p.environment == env && p.until > now);
        let still_open = open.iter().find(|c| c.key == key).filter(|c| {
            last_good_refresh
                .get(&env)
                .is_none_or(|good| *good <= c.opened_at)
        });
        let (date, reason) = match (pause, still_open) {
            (Some(p), _) => (now, p.reason.clone()),
            (None, Some(c)) => (c.opened_at, c.summary.clone()),
            (None, None) => continue,
        };
        out.insert(
            key.clone(),
            Condition {
                key,
                risk: "credentials_rejected".into(),
                date,
                reason: format!("Intuit rejected the {env} client credentials: {reason}"),
                action: format!(
                    "fix client_id / client_secret in [environments.{env}] and restart the daemon; \
                     every {env} refresh is paused until then"
                ),
                connection: None,
                environment: Some(env),
            },
        );
    }
    out
}

/// The condition key of an incident.
pub fn incident_key(id: i64) -> String {
    format!("incident:{id}")
}

/// The incident a condition key names (`incident:ID`).
pub fn incident_of_key(key: &str) -> Option<i64> {
    key.strip_prefix("incident:")?.parse().ok()
}

/// Each open Intuit incident, one condition each (an incident about our own credentials is
/// the environment's `credentials_rejected` condition already).
pub fn of_incidents(open: &[qbo_core::incident::Incident]) -> BTreeMap<String, Condition> {
    open.iter()
        .filter(|i| i.is_open() && !i.class.is_ours())
        .map(|i| {
            let key = incident_key(i.id);
            let tids = if i.sample_tids.is_empty() {
                String::new()
            } else {
                format!("; sample intuit_tids {}", i.sample_tids.join(" "))
            };
            (
                key.clone(),
                Condition {
                    key,
                    risk: "intuit_incident".into(),
                    date: i.started_at,
                    reason: format!("{}: {}{tids}", i.headline(), i.detail),
                    action: i.remedy(),
                    connection: None,
                    environment: Some(i.environment),
                },
            )
        })
        .collect()
}

/// The blocked audit log as a condition: the loudest there is, since every credential
/// action is refused and no connection is refreshed until an admin repairs it. Dated when
/// it was first seen (`open`), so the daily digest does not move it.
pub fn audit_blocked(
    blocked: Option<&ChainBlocked>,
    now: DateTime<Utc>,
    open: &[AlertCondition],
) -> Option<Condition> {
    let b = blocked?;
    let date = open
        .iter()
        .find(|c| c.key == AUDIT_BLOCKED_KEY)
        .map_or(now, |c| c.opened_at);
    Some(Condition {
        key: AUDIT_BLOCKED_KEY.into(),
        risk: "audit_log_blocked".into(),
        date,
        reason: format!(
            "{b}; the scheduler sends no refresh token to Intuit meanwhile, so every connection ages toward its limits"
        ),
        action: format!(
            "an admin runs `qbo-console audit quarantine --from {}` (after `qbo-console audit verify` shows the damage)",
            b.first_seq
        ),
        connection: None,
        environment: None,
    })
}

/// What changed: conditions to open (and alert), and keys to close.
pub fn diff<'a>(
    now: &'a BTreeMap<String, Condition>,
    open: &[AlertCondition],
) -> (Vec<&'a Condition>, Vec<String>) {
    let was: HashSet<&str> = open.iter().map(|o| o.key.as_str()).collect();
    let opened = now
        .values()
        .filter(|c| !was.contains(c.key.as_str()))
        .collect();
    let closed = open
        .iter()
        .filter(|o| !now.contains_key(&o.key))
        .map(|o| o.key.clone())
        .collect();
    (opened, closed)
}

/// What is still open, as a digest tells it: how many conditions of each risk, and the
/// soonest few in full. Fed a page at a time, it holds only those few, so a digest of a
/// million open conditions costs what one of fifty does.
pub struct Still {
    soonest: Soonest<Condition>,
    pub by_risk: BTreeMap<String, u64>,
    pub total: u64,
}

impl Still {
    /// Keeps the `listed` soonest conditions in full.
    pub fn new(listed: usize) -> Still {
        Still {
            soonest: Soonest::new(listed, |a, b| (a.date, &a.key).cmp(&(b.date, &b.key))),
            by_risk: BTreeMap::new(),
            total: 0,
        }
    }

    pub fn extend(&mut self, conditions: impl IntoIterator<Item = Condition>) {
        for c in conditions {
            self.total += 1;
            crate::forecast::count(&mut self.by_risk, &c.risk);
            self.soonest.push(c);
        }
    }

    /// The soonest conditions, soonest first; the counts by risk; the count.
    pub fn listed(self) -> (Vec<Condition>, BTreeMap<String, u64>, u64) {
        (self.soonest.into_sorted(), self.by_risk, self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn open(key: &str, at: DateTime<Utc>) -> AlertCondition {
        AlertCondition {
            key: key.into(),
            risk: "credentials_rejected".into(),
            connection_id: None,
            environment: Some("sandbox".into()),
            opened_at: at,
            summary: "HTTP 401 invalid_client".into(),
        }
    }

    #[test]
    fn a_rejected_environment_stays_alerted_until_a_refresh_succeeds_after_it() {
        let now = Utc::now();
        let key = environment_key(Environment::Sandbox);
        let paused = [PausedEnvironment {
            environment: Environment::Sandbox,
            until: now + Duration::minutes(5),
            reason: "HTTP 401 invalid_client".into(),
        }];
        let c = of_environments(&paused, now, &[], &HashMap::new());
        let (opened, closed) = diff(&c, &[]);
        assert_eq!(opened.len(), 1);
        assert!(closed.is_empty());
        assert!(opened[0].action.contains("[environments.sandbox]"));
        // The pause lifts to probe: still open, nothing new to say.
        let was = [open(&key, now)];
        let later = now + Duration::minutes(6);
        let c = of_environments(&[], later, &was, &HashMap::new());
        assert_eq!(diff(&c, &was), (vec![], vec![]));
        // A refresh before the condition opened proves nothing; one after it closes it.
        let before = HashMap::from([(Environment::Sandbox, now - Duration::minutes(1))]);
        assert!(of_environments(&[], later, &was, &before).contains_key(&key));
        let after = HashMap::from([(Environment::Sandbox, now + Duration::minutes(5))]);
        let c = of_environments(&[], later, &was, &after);
        assert_eq!(diff(&c, &was), (vec![], vec![key]));
    }

    #[test]
    fn the_digest_keeps_the_soonest_few_and_counts_every_one() {
        let now = Utc::now();
        let mut still = Still::new(3);
        still.extend((0..10).rev().map(|i| {
            Condition {
                key: format!("connection:{i}:no_sync"),
                risk: if i % 2 == 0 {
                    "no_sync"
                } else {
                    "needs_reconnect"
                }
                .into(),
                date: now + Duration::days(i),
                reason: String::new(),
                action: String::new(),
                connection: None,
                environment: None,
            }
        }));
        let (listed, by_risk, total) = still.listed();
        let keys: Vec<_> = listed.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "connection:0:no_sync",
                "connection:1:no_sync",
                "connection:2:no_sync"
            ]
        );
        assert_eq!(total, 10);
        assert_eq!(by_risk["no_sync"], 5);
        assert_eq!(by_risk["needs_reconnect"], 5);
    }

    #[test]
    fn a_blocked_audit_log_is_a_condition_naming_the_repair_until_it_is_gone() {
        let now = Utc::now();
        let b = ChainBlocked {
            head_seq: 9,
            first_seq: 10,
            last_seq: 10,
        };
        let c = audit_blocked(Some(&b), now, &[]).unwrap();
        assert_eq!(c.key, AUDIT_BLOCKED_KEY);
        assert!(
            c.action.contains("audit quarantine --from 10"),
            "{}",
            c.action
        );
        assert!(
            c.reason.contains("event 10 is stored past the chain head"),
            "{}",
            c.reason
        );
        let mut was = open(AUDIT_BLOCKED_KEY, now - Duration::hours(1));
        was.environment = None;
        assert_eq!(
            audit_blocked(Some(&b), now, std::slice::from_ref(&was))
                .unwrap()
                .date,
            was.opened_at
        );
        assert!(audit_blocked(None, now, &[was]).is_none());
    }
}
