//! Events that could not join the chain when the change they record had to be kept.
//!
//! A refresh that Intuit answered with new tokens must store them: under rotation the old
//! refresh token is already spent, so a failed commit would kill the connection. When the
//! audit insert is what fails (the chain damaged mid-flight, say), the tokens and their
//! event still commit together, the event into `audit_held` instead of the chain, and the
//! next write that can append to the chain appends the held events first, in the order
//! they were held. Nothing is lost and nothing is recorded out of the chain for good.

use super::{Action, AuditEvent, Outcome};
use crate::{dispatch_tx, Tx};
use chrono::{DateTime, Utc};
use qbo_core::identity::Actor;
use serde::{Deserialize, Serialize};

/// An `AuditEvent` as kept in `audit_held`: the same fields, the action by its name.
#[derive(Serialize, Deserialize)]
struct Held {
    at: DateTime<Utc>,
    actor: Actor,
    action: String,
    connection_id: Option<i64>,
    environment: Option<String>,
    realm_id: Option<String>,
    tenant: Option<String>,
    outcome: Outcome,
    error_class: Option<String>,
    reason: Option<String>,
    intuit_tid: Option<String>,
    request_id: Option<String>,
    fingerprints: Vec<(String, String)>,
}

impl Held {
    fn of(e: &AuditEvent) -> Held {
        Held {
            at: e.at,
            actor: e.actor.clone(),
            action: e.action.as_str().to_string(),
            connection_id: e.connection_id,
            environment: e.environment.clone(),
            realm_id: e.realm_id.clone(),
            tenant: e.tenant.clone(),
            outcome: e.outcome,
            error_class: e.error_class.clone(),
            reason: e.reason.clone(),
            intuit_tid: e.intuit_tid.clone(),
            request_id: e.request_id.clone(),
            fingerprints: e.fingerprints.clone(),
        }
    }

    fn into_event(self) -> anyhow::Result<AuditEvent> {
        let action = Action::parse(&self.action).ok_or_else(|| {
            anyhow::anyhow!(
                "a held audit event names an unknown action {:?}",
                self.action
            )
        })?;
        Ok(AuditEvent {
            at: self.at,
            actor: self.actor,
            action,
            connection_id: self.connection_id,
            environment: self.environment,
            realm_id: self.realm_id,
            tenant: self.tenant,
            outcome: self.outcome,
            error_class: self.error_class,
            reason: self.reason,
            intuit_tid: self.intuit_tid,
            request_id: self.request_id,
            fingerprints: self.fingerprints,
        })
    }
}

impl Tx {
    /// Keeps `events` aside, to join the chain with the next write that can append to it.
    pub async fn hold_audit(&mut self, events: &[&AuditEvent]) -> anyhow::Result<()> {
        for e in events {
            let json = serde_json::to_string(&Held::of(e))?;
            dispatch_tx!(self, c => sqlx::query("INSERT INTO audit_held (event) VALUES ($1)")
                .bind(&json).execute(c).await.map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    /// Appends every held event to the chain, oldest first, and forgets them. Returns how
    /// many there were.
    pub async fn flush_held_audit(&mut self) -> anyhow::Result<usize> {
        let rows: Vec<(i64, String)> = dispatch_tx!(self, c =>
            sqlx::query_as("SELECT id, event FROM audit_held ORDER BY id").fetch_all(c).await)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let events = rows
            .iter()
            .map(|(_, json)| serde_json::from_str::<Held>(json)?.into_event())
            .collect::<anyhow::Result<Vec<_>>>()?;
        self.audit_many(&events.iter().collect::<Vec<_>>()).await?;
        let last = rows.last().map(|(id, _)| *id).unwrap_or_default();
        dispatch_tx!(self, c => sqlx::query("DELETE FROM audit_held WHERE id <= $1")
            .bind(last).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(rows.len())
    }
}

impl crate::Store {
    /// How many events wait in `audit_held` for the chain.
    pub async fn held_audit_events(&self) -> anyhow::Result<i64> {
        Ok(crate::dispatch!(self, p =>
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_held").fetch_one(p).await)?)
    }
}
