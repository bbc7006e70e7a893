//! What the service hands to interfaces: stable, documented, serializable shapes that never
//! contain a token. `--json` output is exactly these.

use chrono::{DateTime, Utc};
use qbo_core::audit::AuditRecord;
use qbo_core::domain::{Condition, Environment, LastRefresh, Status, SyncStatus};
use qbo_core::reports::{RefreshOutcome, VerifyOutcome};
use qbo_store::ConnectionRecord;
use serde::{Deserialize, Serialize};

/// Intuit's rolling refresh-token window (INTUIT.md, "The two clocks").
pub const REFRESH_WINDOW_DAYS: i64 = 100;

/// One connection as every interface shows it. Its JSON carries `condition` beside the
/// fields (see [`ConnectionView::condition`]); it is worked out when written, never stored,
/// so it cannot disagree with `status` and `consecutive_failures`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct ConnectionView {
    pub id: i64,
    pub tenant: String,
    pub realm_id: String,
    pub environment: Environment,
    pub company_name: Option<String>,
    pub status: Status,
    pub status_reason: Option<String>,
    pub access_expires_at: Option<DateTime<Utc>>,
    /// Seconds until the access token expires; negative once expired.
    pub access_expires_in_secs: Option<i64>,
    pub refresh_issued_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// Days used of the 100-day window (100 minus days left).
    pub refresh_window_age_days: Option<i64>,
    pub refresh_days_left: Option<i64>,
    pub hard_expires_at: Option<DateTime<Utc>>,
    pub last_refresh_at: Option<DateTime<Utc>>,
    pub last_refresh_outcome: Option<LastRefresh>,
    pub last_error_class: Option<String>,
    pub last_error_detail: Option<String>,
    pub last_intuit_tid: Option<String>,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_sync_status: Option<SyncStatus>,
    pub last_sync_detail: Option<String>,
    pub consecutive_failures: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Who acted on this connection last, from the audit log (reads aside; `scheduler` for
    /// the daemon's own refreshes). Optional so that views from an older daemon decode.
    #[serde(default)]
    pub last_actor: Option<String>,
    /// What that account did last (`refresh`, `verify`, …).
    #[serde(default)]
    pub last_action: Option<String>,
    /// The last data change Intuit's webhooks reported for this realm, and what it was
    /// ("Customer 1 Create"). Optional so that views from an older daemon decode.
    #[serde(default)]
    pub last_data_change_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_data_change: Option<String>,
}

impl Serialize for ConnectionView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'a> {
            #[serde(flatten, serialize_with = "fields")]
            view: &'a ConnectionView,
            condition: Condition,
        }
        fn fields<S: serde::Serializer>(v: &&ConnectionView, s: S) -> Result<S::Ok, S::Error> {
            ConnectionView::serialize(v, s)
        }
        Shown {
            view: self,
            condition: self.condition(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ConnectionView {
    /// `condition` is read again from the fields, whatever the JSON said.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ConnectionView::deserialize(d)
    }
}

impl ConnectionView {
    /// How the connection is, as support reads it: `failing` for a live one whose
    /// refreshes fail, else its lifecycle state.
    pub fn condition(&self) -> Condition {
        Condition::of(self.status, self.consecutive_failures)
    }

    pub fn from_record(r: ConnectionRecord, now: DateTime<Utc>) -> Self {
        let days_left = r.refresh_expires_at.map(|t| (t - now).num_days());
        ConnectionView {
            id: r.id,
            tenant: r.tenant,
            realm_id: r.realm_id.to_string(),
            environment: r.environment,
            company_name: r.company_name,
            status: r.status,
            status_reason: r.status_reason,
            access_expires_at: r.access_expires_at,
            access_expires_in_secs: r.access_expires_at.map(|t| (t - now).num_seconds()),
            refresh_issued_at: r.refresh_issued_at,
            refresh_expires_at: r.refresh_expires_at,
            refresh_window_age_days: days_left
                .map(|d| (REFRESH_WINDOW_DAYS - d).clamp(0, REFRESH_WINDOW_DAYS)),
            refresh_days_left: days_left,
            hard_expires_at: r.hard_expires_at,
            last_refresh_at: r.last_refresh_at,
            last_refresh_outcome: r.last_refresh_outcome,
            last_error_class: r.last_error_class,
            last_error_detail: r.last_error_detail,
            last_intuit_tid: r.last_intuit_tid,
            last_sync_at: r.last_sync_at,
            last_sync_status: r.last_sync_status,
            last_sync_detail: r.last_sync_detail,
            consecutive_failures: r.consecutive_failures,
            next_attempt_at: r.next_attempt_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_actor: r.last_actor,
            last_action: r.last_action,
            last_data_change_at: r.last_data_change_at,
            last_data_change: r.last_data_change,
        }
    }
}

/// `show`: the connection and its recent audit events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionDetail {
    pub connection: ConnectionView,
    pub recent_events: Vec<AuditRecord>,
    /// The Intuit incident its failures belong to: one that lasts, or one it has not
    /// failed on its own since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<qbo_core::incident::Incident>,
}

/// Which connection an outcome is about.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    pub connection_id: i64,
    pub tenant: String,
    pub realm_id: String,
    pub environment: Environment,
}

impl Target {
    pub fn of(r: &ConnectionRecord) -> Self {
        Target {
            connection_id: r.id,
            tenant: r.tenant.clone(),
            realm_id: r.realm_id.to_string(),
            environment: r.environment,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshReport {
    #[serde(flatten)]
    pub target: Target,
    #[serde(flatten)]
    pub outcome: RefreshOutcome,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    #[serde(flatten)]
    pub target: Target,
    #[serde(flatten)]
    pub outcome: VerifyOutcome,
}

/// Which connections `list` returns: a status and an environment the store selects by,
/// then the console's filter language (`--where`) and a cap on the rows (`--limit`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub status: Option<Status>,
    pub environment: Option<Environment>,
    pub filter: Option<String>,
    pub limit: Option<u64>,
}

impl ListQuery {
    /// The query's filter, parsed, once its parts are known to be sensible: a bad filter
    /// term or `--limit 0` is refused before anything is read or recorded.
    pub(crate) fn checked_filter(&self) -> crate::Result<Option<crate::filter::Filter>> {
        let filter = self
            .filter
            .as_deref()
            .map(crate::filter::Filter::parse)
            .transpose()
            .map_err(|e| crate::ServiceError::Input(format!("list --where: {e}")))?;
        if self.limit == Some(0) {
            return Err(crate::ServiceError::Input(
                "list --limit 0 would list nothing; give a positive number or leave it out".into(),
            ));
        }
        Ok(filter)
    }

    /// What the query asked for, as the audit record of the read says it:
    /// `(status any, environment sandbox, where "…", limit 5)`.
    pub(crate) fn described(&self) -> String {
        let mut shown = format!(
            "(status {}, environment {}",
            self.status.map_or("any".into(), |s| s.to_string()),
            self.environment.map_or("any".into(), |e| e.to_string()),
        );
        if let Some(f) = &self.filter {
            shown.push_str(&format!(", where {f:?}"));
        }
        if let Some(n) = self.limit {
            shown.push_str(&format!(", limit {n}"));
        }
        shown.push(')');
        shown
    }
}

impl From<qbo_core::domain::ConnectionFilter> for ListQuery {
    fn from(f: qbo_core::domain::ConnectionFilter) -> Self {
        ListQuery {
            status: f.status,
            environment: f.environment,
            ..ListQuery::default()
        }
    }
}
