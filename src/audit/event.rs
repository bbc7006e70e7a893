//! One audit event, and how its hash is computed.

use super::catalogue::Action;
use crate::identity::Actor;
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

    /// Names the connection the event is about.
    pub fn about(self, rec: &crate::store::ConnectionRecord) -> Self {
        self.target(
            rec.id,
            rec.environment.as_str(),
            rec.realm_id.as_str(),
            &rec.tenant,
        )
    }

    pub fn fingerprint(mut self, label: &str, fp: String) -> Self {
        self.fingerprints.push((label.to_string(), fp));
        self
    }

    /// Joins the chain after `prev_hash`. The time is never earlier than the previous
    /// event's (`last_at`): events are stamped before they wait for the chain head, so a
    /// later one can be stamped a moment earlier than one that overtook it.
    pub(crate) fn seal(&self, seq: i64, prev_hash: &str, last_at: Option<&str>) -> AuditRecord {
        // Microseconds: the precision both backends keep, fixed so the text is stable. The
        // fixed format also makes the text compare like the time.
        let mut at = self.at.to_rfc3339_opts(SecondsFormat::Micros, true);
        if let Some(last) = last_at.filter(|l| **l > *at) {
            at = last.to_string();
        }
        let mut r = AuditRecord {
            seq,
            at,
            actor_account: self.actor.account.clone(),
            actor_uid: i64::from(self.actor.uid),
            actor_ssh: self.actor.ssh_client.clone(),
            interface: self.actor.interface.as_str().to_string(),
            role: self.actor.role.as_str().to_string(),
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
        };
        r.hash = r.compute_hash();
        r
    }
}

/// An event as stored: its place in the chain and its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
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
}

impl AuditRecord {
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
