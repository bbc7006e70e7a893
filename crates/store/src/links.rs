//! Reconnect invitations (`link_invitations`) and the connection writes the OAuth callback
//! makes. Secrets never reach these queries: the link's id, the OAuth state and the browser
//! binding arrive as SHA-256 hashes. Every state change is a conditional UPDATE, so two
//! callbacks racing for one state (a double click, a refresh, two daemons) cannot both win.

use super::{dispatch, dispatch_tx, Store, Tx};
use chrono::{DateTime, Utc};
use qbo_core::domain::{Environment, RealmId, Status};
use serde::{Deserialize, Serialize};

/// One invitation as stored, without any of its hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub id: i64,
    pub connection_id: i64,
    pub environment: Environment,
    /// The realm the consent must come back with; none for a company invited with
    /// `link --new` (any realm not already connected elsewhere is then accepted).
    pub expected_realm: Option<String>,
    pub tenant: String,
    /// open, completed, cancelled or expired.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: DateTime<Utc>,
    pub opened_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The campaign (`link --where`) the link was made in, if any.
    pub campaign_id: Option<i64>,
    /// When the state of the latest opening stops being accepted.
    #[serde(skip)]
    pub state_expires_at: Option<DateTime<Utc>>,
    /// SHA-256 of the browser binding cookie set at the latest opening.
    #[serde(skip)]
    pub state_binding_hash: Option<String>,
    /// SHA-256 of the link's URL id: what the customer's fingerprint in the log is made of.
    #[serde(skip)]
    pub token_hash: String,
}

impl<'r, R> sqlx::FromRow<'r, R> for Invitation
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let env: String = row.try_get("environment")?;
        Ok(Invitation {
            id: row.try_get("id")?,
            connection_id: row.try_get("connection_id")?,
            environment: env.parse().map_err(|e: qbo_core::domain::InvalidValue| {
                sqlx::Error::ColumnDecode {
                    index: "environment".into(),
                    source: e.into(),
                }
            })?,
            expected_realm: row.try_get("expected_realm")?,
            tenant: row.try_get("tenant")?,
            status: row.try_get("status")?,
            created_at: row.try_get("created_at")?,
            created_by: row.try_get("created_by")?,
            expires_at: row.try_get("expires_at")?,
            opened_at: row.try_get("opened_at")?,
            closed_at: row.try_get("closed_at")?,
            campaign_id: row.try_get("campaign_id")?,
            state_expires_at: row.try_get("state_expires_at")?,
            state_binding_hash: row.try_get("state_binding_hash")?,
            token_hash: row.try_get("token_hash")?,
        })
    }
}

const COLUMNS: &str =
    "id, connection_id, environment, expected_realm, tenant, status, created_at, \
    created_by, expires_at, opened_at, closed_at, campaign_id, state_expires_at, state_binding_hash, token_hash";

/// A campaign as stored, with its links counted by state: `opened` counts the links a
/// customer opened at least once, whatever became of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Campaign {
    pub id: i64,
    pub filter: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: DateTime<Utc>,
    pub link_count: i64,
    pub open: i64,
    pub opened: i64,
    pub completed: i64,
    pub expired: i64,
    pub cancelled: i64,
}

const CAMPAIGN_SELECT: &str = "SELECT c.id, c.filter, c.created_at, c.created_by, c.expires_at, \
     c.link_count, \
     COUNT(CASE WHEN i.status = 'open' THEN 1 END) AS open, \
     COUNT(i.opened_at) AS opened, \
     COUNT(CASE WHEN i.status = 'completed' THEN 1 END) AS completed, \
     COUNT(CASE WHEN i.status = 'expired' THEN 1 END) AS expired, \
     COUNT(CASE WHEN i.status = 'cancelled' THEN 1 END) AS cancelled \
     FROM link_campaigns c LEFT JOIN link_invitations i ON i.campaign_id = c.id";
const CAMPAIGN_GROUP: &str =
    "c.id, c.filter, c.created_at, c.created_by, c.expires_at, c.link_count";

/// What a callback's state hash was found as.
#[derive(Debug, Clone)]
pub enum StateMatch {
    /// The live state of this invitation's latest opening.
    Live(Invitation),
    /// A state already consumed by an earlier callback: this one is a repeat.
    Used(Invitation),
}

/// The tokens and clocks a completed consent writes, sealed.
#[derive(Debug, Clone)]
pub struct Reconnected {
    pub realm_id: RealmId,
    pub access_token: Vec<u8>,
    pub refresh_token: Vec<u8>,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_expires_at: DateTime<Utc>,
    pub hard_expires_at: Option<DateTime<Utc>>,
    pub intuit_tid: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub status: Status,
    pub at: DateTime<Utc>,
}

impl Store {
    /// Open invitations, oldest first.
    pub async fn open_invitations(&self) -> anyhow::Result<Vec<Invitation>> {
        let sql =
            format!("SELECT {COLUMNS} FROM link_invitations WHERE status = 'open' ORDER BY id");
        Ok(dispatch!(self, p => sqlx::query_as(&sql).fetch_all(p).await)?)
    }

    /// Up to `n` open invitations with ids after `after`, in id order: `links` a page at a
    /// time.
    pub async fn open_invitations_after(
        &self,
        after: i64,
        n: i64,
    ) -> anyhow::Result<Vec<Invitation>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM link_invitations WHERE status = 'open' AND id > $1 ORDER BY id LIMIT $2"
        );
        Ok(dispatch!(self, p => sqlx::query_as(&sql).bind(after).bind(n).fetch_all(p).await)?)
    }

    /// Open invitations whose time is up at `now`.
    pub async fn lapsed_invitations(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> anyhow::Result<Vec<Invitation>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM link_invitations WHERE status = 'open' AND expires_at <= $1 \
             ORDER BY expires_at, id LIMIT $2"
        );
        Ok(dispatch!(self, p => sqlx::query_as(&sql).bind(now).bind(limit).fetch_all(p).await)?)
    }

    /// One campaign with how its links stand now.
    pub async fn campaign(&self, id: i64) -> anyhow::Result<Option<Campaign>> {
        let sql = format!("{CAMPAIGN_SELECT} WHERE c.id = $1 GROUP BY {CAMPAIGN_GROUP}");
        Ok(dispatch!(self, p => sqlx::query_as(&sql).bind(id).fetch_optional(p).await)?)
    }

    /// The newest `n` campaigns with how their links stand now, newest first.
    pub async fn campaigns(&self, n: i64) -> anyhow::Result<Vec<Campaign>> {
        let sql =
            format!("{CAMPAIGN_SELECT} GROUP BY {CAMPAIGN_GROUP} ORDER BY c.id DESC LIMIT $1");
        Ok(dispatch!(self, p => sqlx::query_as(&sql).bind(n).fetch_all(p).await)?)
    }

    pub async fn invitation(&self, id: i64) -> anyhow::Result<Option<Invitation>> {
        let sql = format!("SELECT {COLUMNS} FROM link_invitations WHERE id = $1");
        Ok(dispatch!(self, p => sqlx::query_as(&sql).bind(id).fetch_optional(p).await)?)
    }

    /// The invitation a link's secret (hashed) belongs to, whatever its status.
    pub async fn invitation_by_token(
        &self,
        token_hash: &str,
    ) -> anyhow::Result<Option<Invitation>> {
        let sql = format!("SELECT {COLUMNS} FROM link_invitations WHERE token_hash = $1");
        Ok(dispatch!(self, p => sqlx::query_as(&sql).bind(token_hash).fetch_optional(p).await)?)
    }

    /// The invitation a callback's state (hashed) belongs to, live or already used.
    pub async fn invitation_by_state(
        &self,
        state_hash: &str,
    ) -> anyhow::Result<Option<StateMatch>> {
        let live = format!("SELECT {COLUMNS} FROM link_invitations WHERE state_hash = $1");
        let found: Option<Invitation> =
            dispatch!(self, p => sqlx::query_as(&live).bind(state_hash).fetch_optional(p).await)?;
        if let Some(inv) = found {
            return Ok(Some(StateMatch::Live(inv)));
        }
        let used = format!("SELECT {COLUMNS} FROM link_invitations WHERE used_state_hash = $1");
        let found: Option<Invitation> =
            dispatch!(self, p => sqlx::query_as(&used).bind(state_hash).fetch_optional(p).await)?;
        Ok(found.map(StateMatch::Used))
    }
}

impl Tx {
    /// A connection for a company not connected yet (`link --new`): pending, no realm, no
    /// tokens, so nothing refreshes or verifies it until its owner consents.
    pub async fn insert_pending_connection(
        &mut self,
        tenant: &str,
        env: Environment,
        scopes: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<i64> {
        let sql = "INSERT INTO connections (tenant, realm_id, environment, scopes, status, status_reason, \
                   created_at, updated_at) VALUES ($1, NULL, $2, $3, 'pending', $4, $5, $5) RETURNING id";
        Ok(dispatch_tx!(self, c => sqlx::query_scalar(sql)
            .bind(tenant).bind(env.as_str()).bind(scopes)
            .bind("invited with a reconnect link; waiting for the company's consent").bind(now)
            .fetch_one(c).await)?)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_invitation(
        &mut self,
        token_hash: &str,
        connection_id: i64,
        env: Environment,
        expected_realm: Option<&str>,
        tenant: &str,
        created_by: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        campaign_id: Option<i64>,
    ) -> anyhow::Result<i64> {
        let sql = "INSERT INTO link_invitations (token_hash, connection_id, environment, expected_realm, \
                   tenant, status, created_at, created_by, expires_at, campaign_id) \
                   VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8, $9) RETURNING id";
        Ok(dispatch_tx!(self, c => sqlx::query_scalar(sql)
            .bind(token_hash).bind(connection_id).bind(env.as_str()).bind(expected_realm)
            .bind(tenant).bind(now).bind(created_by).bind(expires_at).bind(campaign_id)
            .fetch_one(c).await)?)
    }

    /// Opens a campaign of `count` links over `filter`; its links are inserted after it in
    /// the same transaction.
    pub async fn insert_campaign(
        &mut self,
        filter: &str,
        created_by: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        count: i64,
    ) -> anyhow::Result<i64> {
        let sql =
            "INSERT INTO link_campaigns (filter, created_at, created_by, expires_at, link_count) \
                   VALUES ($1, $2, $3, $4, $5) RETURNING id";
        Ok(dispatch_tx!(self, c => sqlx::query_scalar(sql)
            .bind(filter).bind(now).bind(created_by).bind(expires_at).bind(count)
            .fetch_one(c).await)?)
    }

    /// Gives an open, unexpired invitation a fresh state (replacing any earlier one, which
    /// then matches nothing). Returns whether it did.
    pub async fn set_state(
        &mut self,
        id: i64,
        state_hash: &str,
        binding_hash: &str,
        state_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let sql = "UPDATE link_invitations SET state_hash = $1, state_binding_hash = $2, \
                   state_expires_at = $3, opened_at = $4 \
                   WHERE id = $5 AND status = 'open' AND expires_at > $4";
        let n = dispatch_tx!(self, c => sqlx::query(sql).bind(state_hash).bind(binding_hash)
            .bind(state_expires_at).bind(now).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Consumes a live state: exactly one caller gets `true` for it, ever.
    pub async fn claim_state(&mut self, id: i64, state_hash: &str) -> anyhow::Result<bool> {
        let sql = "UPDATE link_invitations SET used_state_hash = state_hash, state_hash = NULL, \
                   state_binding_hash = NULL, state_expires_at = NULL \
                   WHERE id = $1 AND state_hash = $2";
        let n = dispatch_tx!(self, c => sqlx::query(sql).bind(id).bind(state_hash)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Ends an open invitation (completed, cancelled or expired). Returns whether it was open.
    pub async fn close_invitation(
        &mut self,
        id: i64,
        status: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let sql = "UPDATE link_invitations SET status = $1, closed_at = $2, state_hash = NULL, \
                   state_binding_hash = NULL WHERE id = $3 AND status = 'open'";
        let n = dispatch_tx!(self, c => sqlx::query(sql).bind(status).bind(now).bind(id)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Whether another connection of `env` already holds `realm`.
    pub async fn realm_taken_elsewhere(
        &mut self,
        env: Environment,
        realm: &RealmId,
        id: i64,
    ) -> anyhow::Result<Option<(i64, String)>> {
        let sql = "SELECT id, tenant FROM connections WHERE environment = $1 AND realm_id = $2 AND id <> $3";
        Ok(
            dispatch_tx!(self, c => sqlx::query_as(sql).bind(env.as_str()).bind(realm.as_str()).bind(id)
            .fetch_optional(c).await)?,
        )
    }

    /// Writes a completed consent onto the same row (id and history kept): the new tokens,
    /// the realm (for a pending row; a known realm is only ever rewritten with itself),
    /// status active, failure counters and the previous grant's leftovers cleared. Only
    /// while `owner` holds the lease; returns whether it wrote.
    pub async fn apply_reconnect(
        &mut self,
        id: i64,
        owner: &str,
        r: &Reconnected,
    ) -> anyhow::Result<bool> {
        let sql = "UPDATE connections SET realm_id = $1, access_token = $2, refresh_token = $3, \
                   previous_refresh_token = NULL, previous_refresh_replaced_at = NULL, \
                   access_expires_at = $4, refresh_issued_at = $5, refresh_expires_at = $6, \
                   hard_expires_at = $7, status = $8, status_reason = NULL, \
                   last_refresh_at = $5, last_refresh_outcome = 'ok', last_error_class = NULL, \
                   last_error_detail = NULL, last_intuit_tid = $9, consecutive_failures = 0, \
                   next_attempt_at = $10, lease_owner = NULL, lease_until = NULL, \
                   version = version + 1, updated_at = $5 \
                   WHERE id = $11 AND lease_owner = $12 AND (realm_id IS NULL OR realm_id = $1)";
        let n = dispatch_tx!(self, c => sqlx::query(sql)
            .bind(r.realm_id.as_str()).bind(&r.access_token).bind(&r.refresh_token)
            .bind(r.access_expires_at).bind(r.at).bind(r.refresh_expires_at).bind(r.hard_expires_at)
            .bind(r.status.as_str()).bind(&r.intuit_tid).bind(r.next_attempt_at)
            .bind(id).bind(owner)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
