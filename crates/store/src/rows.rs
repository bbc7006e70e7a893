//! Row types: what a connection looks like in the database, without and with its sealed
//! tokens. Listing never loads ciphertexts.

use chrono::{DateTime, Utc};
pub use qbo_core::domain::ConnectionFilter;
use qbo_core::domain::{Environment, LastRefresh, RealmId, Status, SyncStatus};

/// Everything about a connection except its tokens.
#[derive(Debug, Clone)]
pub struct ConnectionRecord {
    pub id: i64,
    pub tenant: String,
    pub realm_id: RealmId,
    pub environment: Environment,
    pub company_name: Option<String>,
    pub scopes: String,
    pub status: Status,
    pub status_reason: Option<String>,
    pub access_expires_at: Option<DateTime<Utc>>,
    pub refresh_issued_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
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
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub previous_refresh_replaced_at: Option<DateTime<Utc>>,
    /// Who last acted on the connection and how (the newest audit event naming it that is
    /// not a read), when the query asked for it (`LAST_ACT_COLUMNS`); `None` otherwise.
    pub last_actor: Option<String>,
    pub last_action: Option<String>,
    /// The last data change Intuit's webhooks reported for the realm: when, and what.
    pub last_data_change_at: Option<DateTime<Utc>>,
    pub last_data_change: Option<String>,
}

impl<'r, R> sqlx::FromRow<'r, R> for ConnectionRecord
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(ConnectionRecord {
            id: row.try_get("id")?,
            tenant: row.try_get("tenant")?,
            // NULL for a company invited with `link --new` that has not consented yet.
            realm_id: optional_text(row, "realm_id")?.unwrap_or_else(RealmId::unknown),
            environment: text(row, "environment")?,
            company_name: row.try_get("company_name")?,
            scopes: row.try_get("scopes")?,
            status: text(row, "status")?,
            status_reason: row.try_get("status_reason")?,
            access_expires_at: row.try_get("access_expires_at")?,
            refresh_issued_at: row.try_get("refresh_issued_at")?,
            refresh_expires_at: row.try_get("refresh_expires_at")?,
            hard_expires_at: row.try_get("hard_expires_at")?,
            last_refresh_at: row.try_get("last_refresh_at")?,
            last_refresh_outcome: optional_text(row, "last_refresh_outcome")?,
            last_error_class: row.try_get("last_error_class")?,
            last_error_detail: row.try_get("last_error_detail")?,
            last_intuit_tid: row.try_get("last_intuit_tid")?,
            last_sync_at: row.try_get("last_sync_at")?,
            last_sync_status: optional_text(row, "last_sync_status")?,
            last_sync_detail: row.try_get("last_sync_detail")?,
            consecutive_failures: row.try_get("consecutive_failures")?,
            next_attempt_at: row.try_get("next_attempt_at")?,
            lease_owner: row.try_get("lease_owner")?,
            lease_until: row.try_get("lease_until")?,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            previous_refresh_replaced_at: row.try_get("previous_refresh_replaced_at")?,
            // Only the queries that show a connection to a person select these.
            last_actor: optional_column(row, "last_actor")?,
            last_action: optional_column(row, "last_action")?,
            last_data_change_at: row.try_get("last_data_change_at")?,
            last_data_change: row.try_get("last_data_change")?,
        })
    }
}

/// A text column that only some queries select: absent reads as `None`.
fn optional_column<'r, R>(row: &'r R, col: &str) -> Result<Option<String>, sqlx::Error>
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    match row.try_get(col) {
        Err(sqlx::Error::ColumnNotFound(_)) => Ok(None),
        other => other,
    }
}

/// Reads a text column into a validated type, naming the column if the value is bad.
fn text<'r, R, T>(row: &'r R, col: &str) -> Result<T, sqlx::Error>
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    T: TryFrom<String, Error = qbo_core::domain::InvalidValue>,
{
    let raw: String = row.try_get(col)?;
    T::try_from(raw).map_err(|e| sqlx::Error::ColumnDecode {
        index: col.to_string(),
        source: e.into(),
    })
}

/// As `text`, for a column that may be NULL.
fn optional_text<'r, R, T>(row: &'r R, col: &str) -> Result<Option<T>, sqlx::Error>
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    T: TryFrom<String, Error = qbo_core::domain::InvalidValue>,
{
    let raw: Option<String> = row.try_get(col)?;
    raw.map(T::try_from)
        .transpose()
        .map_err(|e| sqlx::Error::ColumnDecode {
            index: col.to_string(),
            source: e.into(),
        })
}

pub(crate) const RECORD_COLUMNS: &str =
    "id, tenant, realm_id, environment, company_name, scopes, status, \
    status_reason, access_expires_at, refresh_issued_at, refresh_expires_at, hard_expires_at, \
    last_refresh_at, last_refresh_outcome, last_error_class, last_error_detail, last_intuit_tid, \
    last_sync_at, last_sync_status, last_sync_detail, consecutive_failures, next_attempt_at, \
    lease_owner, lease_until, version, created_at, updated_at, previous_refresh_replaced_at, \
    last_data_change_at, last_data_change";

/// Who acted last on a connection and what they did: the newest audit event naming it,
/// reads (`show`) aside, found through the `(connection_id, seq)` index. The scheduler
/// shows as `scheduler`, whichever account runs the daemon.
pub(crate) const LAST_ACT_COLUMNS: &str =
    "(SELECT CASE WHEN a.actor_kind = 'customer' THEN 'customer' WHEN a.actor_kind IS NOT NULL THEN a.actor_account \
       WHEN a.interface = 'scheduler' THEN 'scheduler' ELSE a.actor_account END \
       FROM audit_events a WHERE a.connection_id = connections.id AND a.action <> 'show' \
       ORDER BY a.seq DESC LIMIT 1) AS last_actor, \
     (SELECT a.action FROM audit_events a \
       WHERE a.connection_id = connections.id AND a.action <> 'show' \
       ORDER BY a.seq DESC LIMIT 1) AS last_action";

/// The sealed tokens of one connection, with the version they were read at.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SealedTokens {
    pub version: i64,
    pub access_token: Option<Vec<u8>>,
    pub refresh_token: Option<Vec<u8>>,
    pub previous_refresh_token: Option<Vec<u8>>,
}

/// A connection about to be inserted (import, or a first consent).
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub tenant: String,
    pub realm_id: RealmId,
    pub environment: Environment,
    pub company_name: Option<String>,
    pub scopes: String,
    pub status: Status,
    pub access_expires_at: Option<DateTime<Utc>>,
    pub refresh_issued_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

/// What a successful refresh writes.
#[derive(Debug, Clone)]
pub struct TokenUpdate {
    pub access_token: Vec<u8>,
    pub refresh_token: Vec<u8>,
    /// The replaced refresh token, resealed for its new column, when Intuit rotated it.
    pub previous_refresh_token: Option<Vec<u8>>,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_issued_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: DateTime<Utc>,
    pub hard_expires_at: Option<DateTime<Utc>>,
    pub status: Status,
    pub intuit_tid: Option<String>,
    /// When the scheduler should refresh it next.
    pub next_attempt_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
}
