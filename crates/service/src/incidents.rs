//! `incidents` and `incidents show ID`: what the scheduler recognised as Intuit-wide (or
//! our credentials') failures, with the connections each held back. The detection and
//! the circuit breaker are in `tasks::incidents`.

use super::{Permission, Result, Service, ServiceError};
use chrono::{DateTime, Utc};
use qbo_core::domain::{Condition, Environment, SyncStatus};
use qbo_core::identity::Actor;
use qbo_core::incident::{Endpoint, Incident};
use qbo_store::audit::Action;
use serde::{Deserialize, Serialize};

/// Incidents `incidents` lists, newest first.
pub const INCIDENTS_SHOWN: i64 = 100;
/// Connections `incidents show` names (the count is whole).
pub const MEMBERS_SHOWN: i64 = 500;

/// One connection an incident held back, as it stands now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentMemberView {
    pub connection_id: i64,
    pub tenant: String,
    pub realm_id: String,
    pub environment: Environment,
    pub failed_at: DateTime<Utc>,
    pub intuit_tid: Option<String>,
    /// How it is now: `active` again once caught up, `failing` if it still fails.
    pub condition: Condition,
}

/// `incidents show ID`: the incident, what to do, and its connections (the first
/// `MEMBERS_SHOWN` by when they failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentDetail {
    pub incident: Incident,
    pub remedy: String,
    pub members: Vec<IncidentMemberView>,
}

impl Service {
    /// The incident a failing connection's failures belong to: its newest, while it lasts
    /// or until the connection is tried again after it. Failing refreshes are the token
    /// endpoint's incidents'; a failed last sync (a health check) the accounting API's; a
    /// revoke waiting on a retry the revoke endpoint's.
    pub(crate) async fn incident_holding(
        &self,
        rec: &qbo_store::ConnectionRecord,
    ) -> anyhow::Result<Option<Incident>> {
        let tried = [
            (
                Endpoint::Token,
                rec.consecutive_failures > 0,
                rec.last_refresh_at,
            ),
            (
                Endpoint::Accounting,
                rec.last_sync_status == Some(SyncStatus::Failed),
                rec.last_sync_at,
            ),
            // A revoke's retry writes the row: its last write is its last try.
            (
                Endpoint::Revoke,
                rec.status == qbo_core::domain::Status::Revoking,
                Some(rec.updated_at),
            ),
        ];
        for (endpoint, failing, last) in tried {
            if !failing {
                continue;
            }
            if let Some(i) = self.store().incident_of(rec.id, endpoint).await? {
                if qbo_core::incident::still_holds(i.ended_at, last) {
                    return Ok(Some(i));
                }
            }
        }
        Ok(None)
    }

    /// The newest incidents, open ones included, newest first.
    pub async fn incidents(&self, caller: &Actor) -> Result<Vec<Incident>> {
        self.authorize(caller, Permission::ViewConnections, Action::IncidentsShown)
            .await?;
        let all = self.store().incidents(INCIDENTS_SHOWN).await?;
        let open = all.iter().filter(|i| i.is_open()).count();
        let shown = format!("listed {} incidents, {open} open", all.len());
        self.record_view(caller, Action::IncidentsShown, None, shown)
            .await?;
        Ok(all)
    }

    /// One incident with its connections as they stand now.
    pub async fn incident(&self, caller: &Actor, id: i64) -> Result<IncidentDetail> {
        self.authorize(caller, Permission::ViewConnections, Action::IncidentsShown)
            .await?;
        let Some(incident) = self.store().incident(id).await? else {
            return Err(ServiceError::NotFound(format!(
                "no incident {id}; `qbo-console incidents` lists them"
            )));
        };
        let found = self.store().incident_members(id, MEMBERS_SHOWN).await?;
        let ids: Vec<i64> = found.iter().map(|m| m.connection_id).collect();
        let records = self.records_in_order(&ids).await?;
        let members = found
            .into_iter()
            .filter_map(|m| {
                let r = records.iter().find(|r| r.id == m.connection_id)?;
                Some(IncidentMemberView {
                    connection_id: r.id,
                    tenant: r.tenant.clone(),
                    realm_id: r.realm_id.to_string(),
                    environment: r.environment,
                    failed_at: m.failed_at,
                    intuit_tid: m.intuit_tid,
                    condition: Condition::of(r.status, r.consecutive_failures),
                })
            })
            .collect();
        let shown = format!(
            "shown incident {id} ({}, {} connections)",
            incident.class, incident.connections
        );
        self.record_view(caller, Action::IncidentsShown, None, shown)
            .await?;
        Ok(IncidentDetail {
            remedy: incident.remedy(),
            incident,
            members,
        })
    }
}

/// Parses an incident's number as `incidents show` takes it (`7` or `#7`).
pub fn incident_number(text: &str) -> Result<i64> {
    crate::number_in(text).ok_or_else(|| {
        ServiceError::Input(format!(
            "incidents show {text:?}: expected an incident's number, as `incidents` lists it"
        ))
    })
}
