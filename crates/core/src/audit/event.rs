//! One audit event, and how its hash is computed.

use super::catalogue::Action;
use crate::identity::{Actor, Kind};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Failed,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Denied => "denied",
        }
    }
}

/// An event before it joins the chain.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub action: Action,
    pub connection_id: Option<i64>,
    pub environment: Option<String>,
    pub realm_id: Option<String>,
    pub tenant: Option<String>,
    pub outcome: Outcome,
    pub error_class: Option<String>,
    pub reason: Option<String>,
    pub intuit_tid: Option<String>,
    pub request_id: Option<String>,
    /// Keyed fingerprints of the tokens involved, as `label=fp:…` pairs.
    pub fingerprints: Vec<(String, String)>,
}

impl AuditEvent {
    pub fn new(at: DateTime<Utc>, actor: &Actor, action: Action, outcome: Outcome) -> Self {
        AuditEvent {
            at,
            actor: actor.clone(),
            action,
            connection_id: None,
            environment: None,
            realm_id: None,
            tenant: None,
            outcome,
            error_class: None,
            reason: None,
            intuit_tid: None,
            request_id: actor.request_id.clone(),
            fingerprints: Vec::new(),
        }
    }

    pub fn target(mut self, id: i64, env: &str, realm: &str, tenant: &str) -> Self {
        self.connection_id = Some(id);
        self.environment = Some(env.to_string());
        self.realm_id = Some(realm.to_string());
        self.tenant = Some(tenant.to_string());
        self
    }

    pub fn fingerprint(mut self, label: &str, fp: String) -> Self {
        self.fingerprints.push((label.to_string(), fp));
        self
    }

    /// Joins the chain after `prev_hash`. The time is never earlier than the previous
    /// event's (`last_at`): events are stamped before they wait for the chain head, so a
    /// later one can be stamped a moment earlier than one that overtook it.
    #[doc(hidden)]
    pub fn seal(&self, seq: i64, prev_hash: &str, last_at: Option<&str>) -> AuditRecord {
        // Microseconds: the precision both backends keep, fixed so the text is stable. The
        // fixed format also makes the text compare like the time.
        let mut at = self.at.to_rfc3339_opts(SecondsFormat::Micros, true);
        if let Some(last) = last_at.filter(|l| **l > *at) {
            at = last.to_string();
        }
        let who = self.actor.stored();
        let mut r = AuditRecord {
            seq,
            at,
            actor_account: who.account,
            actor_uid: who.uid,
            actor_ssh: who.from,
            interface: who.interface,
            role: who.role,
            action: self.action.as_str().to_string(),
            connection_id: self.connection_id,
            environment: self.environment.clone(),
            realm_id: self.realm_id.clone(),
            tenant: self.tenant.clone(),
            outcome: self.outcome.as_str().to_string(),
            error_class: self.error_class.clone(),
            reason: self.reason.clone(),
            intuit_tid: self.intuit_tid.clone(),
            request_id: self.request_id.clone(),
            fingerprints: self
                .fingerprints
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            prev_hash: prev_hash.to_string(),
            hash: String::new(),
            actor_kind: Some(who.kind.as_str().to_string()),
        };
        r.hash = r.compute_hash();
        r
    }
}

/// An event as stored: its place in the chain and its hash.
///
/// The actor columns, by kind: an operator's are its OS account, uid, SSH address,
/// interface (cli, tui) and role. Any other actor has no role (`role` is the empty string)
/// and no OS account (`actor_uid` is `identity::NO_UID`, -1); `actor_account` holds its
/// name (the daemon's task, `service:NAME`, `customer:fp:…` or `customer`, `intuit`),
/// `actor_ssh` the browser's address for a customer, and `interface` the door it came
/// through (scheduler, token_api, callback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct AuditRecord {
    pub seq: i64,
    pub at: String,
    pub actor_account: String,
    pub actor_uid: i64,
    pub actor_ssh: Option<String>,
    pub interface: String,
    pub role: String,
    pub action: String,
    pub connection_id: Option<i64>,
    pub environment: Option<String>,
    pub realm_id: Option<String>,
    pub tenant: Option<String>,
    pub outcome: String,
    pub error_class: Option<String>,
    pub reason: Option<String>,
    pub intuit_tid: Option<String>,
    pub request_id: Option<String>,
    pub fingerprints: String,
    pub prev_hash: String,
    pub hash: String,
    /// What kind of actor acted (`identity::Kind`: operator, scheduler, health check,
    /// alerts, retention, revoke retry, link expiry, service, customer, intuit). Set on
    /// every event sealed since it was introduced; absent on older ones, and then left out
    /// of the hashed JSON, so their hashes are what they were sealed with. It is last so
    /// the CSV export's columns keep the field order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_kind: Option<String>,
}

impl AuditRecord {
    /// The kind of actor, for an event sealed with one (`None` for older events, which
    /// name the OS account the daemon or operator ran as).
    pub fn kind(&self) -> Option<Kind> {
        self.actor_kind.as_deref().and_then(Kind::parse)
    }

    /// Who acted, in words, for the CLI and the console: an operator (and an older event)
    /// as `account[@ssh] via interface [role]`; the daemon's work as `scheduler (daemon)`;
    /// a host application as `service:NAME (host app)`; a customer's browser as
    /// `customer (link fp:…) from ADDRESS`; Intuit as `Intuit`. Not terminal-safe: callers
    /// escape it.
    pub fn actor_words(&self) -> String {
        match self.kind() {
            None | Some(Kind::Operator) => {
                let who = match &self.actor_ssh {
                    Some(ip) => format!("{}@{ip}", self.actor_account),
                    None => self.actor_account.clone(),
                };
                format!("{who} via {} [{}]", self.interface, self.role)
            }
            Some(Kind::Service) => format!("{} (host app)", self.actor_account),
            Some(Kind::Customer) => {
                let link = self
                    .actor_account
                    .strip_prefix("customer:")
                    .map(|fp| format!(" (link {fp})"))
                    .unwrap_or_default();
                let from = self
                    .actor_ssh
                    .as_deref()
                    .map(|a| format!(" from {a}"))
                    .unwrap_or_default();
                format!("customer{link}{from}")
            }
            Some(Kind::Intuit) => "Intuit".to_string(),
            Some(daemon) => format!("{daemon} (daemon)"),
        }
    }

    /// Who acted, in a word or two, for a narrow column: an operator's account, the
    /// daemon's task, `service:NAME`, `customer`, `Intuit`.
    pub fn actor_short(&self) -> String {
        match self.kind() {
            None | Some(Kind::Operator) | Some(Kind::Service) => self.actor_account.clone(),
            Some(Kind::Customer) => "customer".to_string(),
            Some(Kind::Intuit) => "Intuit".to_string(),
            Some(daemon) => daemon.as_str().to_string(),
        }
    }

    /// What kind of actor, in words, for the console's event detail.
    pub fn actor_kind_words(&self) -> &'static str {
        match self.kind() {
            None => "not recorded (an event from before kinds were)",
            Some(Kind::Operator) => "operator",
            Some(Kind::Service) => "host application (token API)",
            Some(Kind::Customer) => "customer's browser",
            Some(Kind::Intuit) => "Intuit",
            Some(_) => "the daemon's own work",
        }
    }

    /// SHA-256 over the previous hash and a canonical JSON of every other field (struct
    /// order, `hash` left empty). Any change to any field, the order, or the link breaks it.
    pub fn compute_hash(&self) -> String {
        let mut copy = self.clone();
        copy.hash = String::new();
        // Serializing a struct of strings and integers cannot fail.
        let body = serde_json::to_vec(&copy).expect("audit record serializes");
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(b"\n");
        h.update(&body);
        crate::vault::hex(&h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{DaemonTask, Interface, Role};

    /// An event as sealed before `actor_kind` existed: the daemon's account with the admin
    /// role, as a customer's reconnect was then recorded. Its hash was computed outside
    /// this code (SHA-256 of the previous hash, a newline and the canonical JSON of the
    /// fields in struct order), as any verifier of an old export recomputes it.
    fn sealed_before_actor_kinds() -> AuditRecord {
        AuditRecord {
            seq: 41,
            at: "2026-03-02T11:58:00.123456Z".into(),
            actor_account: "root".into(),
            actor_uid: 0,
            actor_ssh: None,
            interface: "callback".into(),
            role: "admin".into(),
            action: "code exchanged".into(),
            connection_id: Some(7),
            environment: Some("sandbox".into()),
            realm_id: Some("9130000000000007".into()),
            tenant: Some("acme".into()),
            outcome: "ok".into(),
            error_class: None,
            reason: Some("link 3 completed".into()),
            intuit_tid: Some("1-65f0c3b9-a3c2".into()),
            request_id: Some("5d1c0a2b3e4f5a6b".into()),
            fingerprints: "access_new=fp:0123456789abcdef refresh_new=fp:fedcba9876543210".into(),
            prev_hash: "ab".repeat(32),
            hash: "5646356542d9d9ec2c93716524cf4c884900d6ef30c5aa9bd1a735a07fba7161".into(),
            actor_kind: None,
        }
    }

    /// Existing events keep verifying (issue 22): the new field is left out of an old
    /// event's hashed JSON, so its hash is what it was sealed with; and a JSONL line of it,
    /// with or without `"actor_kind": null`, reads back to the same record.
    #[test]
    fn an_event_sealed_before_actor_kinds_still_verifies() {
        let old = sealed_before_actor_kinds();
        assert_eq!(old.compute_hash(), old.hash);
        let line = serde_json::to_string(&old).unwrap();
        assert!(!line.contains("actor_kind"), "{line}");
        let with_null: serde_json::Value = {
            let mut v: serde_json::Value = serde_json::from_str(&line).unwrap();
            v["actor_kind"] = serde_json::Value::Null;
            v
        };
        let back: AuditRecord = serde_json::from_value(with_null).unwrap();
        assert_eq!(back.compute_hash(), old.hash);
    }

    /// The kind is covered by a new event's hash: changing it breaks the chain.
    #[test]
    fn a_new_events_kind_is_covered_by_its_hash() {
        let actor = Actor::daemon(DaemonTask::Scheduler);
        let ev = AuditEvent::new(Utc::now(), &actor, Action::Refresh, Outcome::Ok);
        let rec = ev.seal(1, &"0".repeat(64), None);
        assert_eq!(rec.actor_kind.as_deref(), Some("scheduler"));
        assert_eq!(rec.compute_hash(), rec.hash);
        let mut forged = rec.clone();
        forged.actor_kind = Some("operator".into());
        assert_ne!(forged.compute_hash(), rec.hash);
        forged.actor_kind = None;
        assert_ne!(forged.compute_hash(), rec.hash);
    }

    /// Only an operator's event carries a role, an OS account and a uid.
    #[test]
    fn each_kind_is_stored_with_no_role_unless_an_operator() {
        let seal = |a: &Actor| {
            AuditEvent::new(Utc::now(), a, Action::Refresh, Outcome::Ok).seal(1, "", None)
        };
        let op = seal(&Actor::current_process(Interface::Cli, Role::Support));
        assert_eq!(
            (op.role.as_str(), op.interface.as_str()),
            ("support", "cli")
        );
        assert_eq!(op.actor_kind.as_deref(), Some("operator"));
        for (actor, account, kind, interface) in [
            (
                Actor::daemon(DaemonTask::HealthCheck),
                "health check",
                "health check",
                "scheduler",
            ),
            (
                Actor::daemon(DaemonTask::RevokeRetry),
                "revoke retry",
                "revoke retry",
                "scheduler",
            ),
            (
                Actor::service(Some("books-sync")),
                "service:books-sync",
                "service",
                "token_api",
            ),
            (
                Actor::customer(Some("fp:0011223344556677".into()), "198.51.100.23"),
                "customer:fp:0011223344556677",
                "customer",
                "callback",
            ),
            (Actor::intuit(), "intuit", "intuit", "callback"),
        ] {
            let r = seal(&actor);
            assert_eq!(r.role, "", "{r:?}");
            assert_eq!(r.actor_uid, crate::identity::NO_UID, "{r:?}");
            assert_eq!(r.actor_account, account);
            assert_eq!(r.actor_kind.as_deref(), Some(kind));
            assert_eq!(r.interface, interface);
            assert!(!actor.allows(crate::identity::Permission::ViewConnections));
        }
        let c = seal(&Actor::customer(None, "198.51.100.23"));
        assert_eq!(c.actor_ssh.as_deref(), Some("198.51.100.23"));
        assert_eq!(c.actor_words(), "customer from 198.51.100.23");
    }
}
