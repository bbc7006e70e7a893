//! The tables of health checks and alerts (migration 0007): when each connection was last
//! checked, the alert conditions open now, and the outbox of messages to deliver.

use super::rows::RECORD_COLUMNS;
use super::{dispatch, dispatch_tx, ConnectionRecord, Store, Tx};
use chrono::{DateTime, Utc};
use qbo_core::domain::Environment;
pub use qbo_core::reports::AlertDelivery;

/// A live connection as the health checker plans it: created when, last checked when.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HealthDue {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub checked_at: Option<DateTime<Utc>>,
}

/// What the forecast needs beyond a connection's record.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct SyncFacts {
    pub id: i64,
    pub last_sync_ok_at: Option<DateTime<Utc>>,
    pub disconnected_at: Option<DateTime<Utc>>,
    /// The connection's latest reconnect link (none if it never had one): its number,
    /// status (open, completed, cancelled, expired), when it was issued, opened and when
    /// it stops working. Only the latest counts: a newer link supersedes older ones.
    pub link_id: Option<i64>,
    pub link_status: Option<String>,
    pub link_created_at: Option<DateTime<Utc>>,
    pub link_opened_at: Option<DateTime<Utc>>,
    pub link_expires_at: Option<DateTime<Utc>>,
}

/// An alert condition that is open (alerted, not yet gone).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AlertCondition {
    pub key: String,
    pub risk: String,
    pub connection_id: Option<i64>,
    pub environment: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub summary: String,
}

/// A message to put in the outbox for one webhook.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub condition_key: String,
    pub event: String,
    pub webhook: String,
    pub text: String,
    pub body: String,
}

const DELIVERY_COLUMNS: &str = "id, created_at, condition_key, event, webhook, text, body, state, \
     attempts, next_attempt_at, last_error, finished_at";

/// How a health check ended, as far as the disconnect mark is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthMark {
    /// CompanyInfo answered: the API accepts the tokens.
    Ok,
    /// 401 fault 3200/3201 right after a successful refresh.
    Disconnected,
    /// Anything else: says nothing about a disconnect either way.
    Inconclusive,
}

impl Store {
    /// A page of the live connections (ids above `after`, at most `limit`, in id order)
    /// with when each was created and last health-checked.
    pub async fn health_candidates(
        &self,
        after: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<HealthDue>> {
        // `status || ''`: no index on status. With one, SQLite read every live row and
        // sorted them for each page (a second a page at a million, 500 pages a pass); the
        // primary key's order finds a page's 2,000 rows among its next few thousand.
        let sql = "SELECT c.id, c.created_at, h.checked_at FROM connections c \
                   LEFT JOIN connection_health h ON h.connection_id = c.id \
                   WHERE (c.status || '') IN ('active', 'expiring') AND c.id > $1 ORDER BY c.id LIMIT $2";
        Ok(dispatch!(self, p => sqlx::query_as(sql).bind(after).bind(limit).fetch_all(p).await)?)
    }

    /// A page of the connections the forecast's rules can find at risk (live, needing a
    /// reconnect, or invited by link and not connected yet), without the last-actor lookups
    /// `list` makes: ids above `after`, at most `limit`,
    /// in id order. The forecast reads the table a page at a time so that its memory does
    /// not grow with the number of connections (the alerts evaluate it every few minutes).
    pub async fn forecast_connections(
        &self,
        after: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<ConnectionRecord>> {
        // `status || ''`: the primary key's order, not the status index (see
        // `health_candidates`).
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM connections \
             WHERE (status || '') IN ('active', 'expiring', 'needs_reconnect', 'pending') AND id > $1 \
             ORDER BY id LIMIT $2"
        );
        Ok(dispatch!(self, p => sqlx::query_as(&sql).bind(after).bind(limit).fetch_all(p).await)?)
    }

    /// The facts the forecast reads beside each record, for the connections with ids in
    /// `first..=last` (one page of `forecast_connections`).
    pub async fn sync_facts(&self, first: i64, last: i64) -> anyhow::Result<Vec<SyncFacts>> {
        let sql = "SELECT c.id, c.last_sync_ok_at, h.disconnected_at, l.id AS link_id, \
                   l.status AS link_status, l.created_at AS link_created_at, \
                   l.opened_at AS link_opened_at, l.expires_at AS link_expires_at \
                   FROM connections c \
                   LEFT JOIN connection_health h ON h.connection_id = c.id \
                   LEFT JOIN link_invitations l ON l.id = \
                   (SELECT MAX(i.id) FROM link_invitations i WHERE i.connection_id = c.id) \
                   WHERE c.id >= $1 AND c.id <= $2";
        Ok(dispatch!(self, p => sqlx::query_as(sql).bind(first).bind(last).fetch_all(p).await)?)
    }

    /// The latest successful refresh in each environment.
    pub async fn last_good_refresh(
        &self,
    ) -> anyhow::Result<Vec<(Environment, Option<DateTime<Utc>>)>> {
        let sql = "SELECT environment, MAX(last_refresh_at) FROM connections \
                   WHERE last_refresh_outcome = 'ok' GROUP BY environment";
        let rows: Vec<(String, Option<DateTime<Utc>>)> =
            dispatch!(self, p => sqlx::query_as(sql).fetch_all(p).await)?;
        rows.into_iter()
            .map(|(e, at)| Ok((e.parse().map_err(anyhow::Error::msg)?, at)))
            .collect()
    }

    /// The open conditions of connections with ids in `after < id <= through` (no upper
    /// bound for `None`): what one page of the alerts' pass compares with.
    pub async fn open_connection_conditions(
        &self,
        after: i64,
        through: Option<i64>,
    ) -> anyhow::Result<Vec<AlertCondition>> {
        let sql = "SELECT key, risk, connection_id, environment, opened_at, summary \
                   FROM alert_conditions WHERE connection_id > $1 \
                   AND ($2 IS NULL OR connection_id <= $2) ORDER BY key";
        Ok(dispatch!(self, p => sqlx::query_as(sql).bind(after).bind(through).fetch_all(p).await)?)
    }

    /// Whether conditions counted by `Tx::add_alert_overflow` wait for their message.
    pub async fn alert_overflow_waiting(&self) -> anyhow::Result<bool> {
        let sql = "SELECT EXISTS (SELECT 1 FROM alert_overflow)";
        Ok(dispatch!(self, p => sqlx::query_scalar(sql).fetch_one(p).await)?)
    }

    /// The open conditions that belong to no connection: environments and the daemon's own.
    pub async fn open_daemon_conditions(&self) -> anyhow::Result<Vec<AlertCondition>> {
        let sql = "SELECT key, risk, connection_id, environment, opened_at, summary \
                   FROM alert_conditions WHERE connection_id IS NULL ORDER BY key";
        Ok(dispatch!(self, p => sqlx::query_as(sql).fetch_all(p).await)?)
    }

    /// Deliveries due now, oldest first.
    pub async fn due_alert_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> anyhow::Result<Vec<AlertDelivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM alert_outbox WHERE state = 'pending' \
             AND (next_attempt_at IS NULL OR next_attempt_at <= $1) ORDER BY id LIMIT $2"
        );
        Ok(dispatch!(self, p => sqlx::query_as(&sql).bind(now).bind(limit).fetch_all(p).await)?)
    }

    /// The newest outbox rows, newest first: what the console shows as the last alerts.
    pub async fn recent_alert_deliveries(&self, limit: i64) -> anyhow::Result<Vec<AlertDelivery>> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM alert_outbox ORDER BY id DESC LIMIT $1");
        Ok(dispatch!(self, p => sqlx::query_as(&sql).bind(limit).fetch_all(p).await)?)
    }

    pub async fn alert_mark(&self, name: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
        let sql = "SELECT at FROM alert_marks WHERE name = $1";
        Ok(dispatch!(self, p => sqlx::query_scalar(sql).bind(name).fetch_optional(p).await)?)
    }
}

impl Tx {
    /// Takes connection `id`'s health check for this interval: true when its last check
    /// (if any) was before `point`, its latest due point, and the check is now marked as
    /// taken at `now`. Several daemons read the same pages of candidates; only the one
    /// whose mark lands calls Intuit, so each check is made once however many run.
    pub async fn take_health_check(
        &mut self,
        id: i64,
        point: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let sql = "INSERT INTO connection_health (connection_id, checked_at) VALUES ($1, $2) \
                   ON CONFLICT (connection_id) DO UPDATE SET checked_at = excluded.checked_at \
                   WHERE connection_health.checked_at IS NULL OR connection_health.checked_at < $3";
        let taken = dispatch_tx!(self, t => sqlx::query(sql).bind(id).bind(now).bind(point).execute(t).await.map(|r| r.rows_affected()))?;
        Ok(taken == 1)
    }

    /// Records that a health check of `id` ran at `at`, and what it says of a disconnect.
    pub async fn record_health_check(
        &mut self,
        id: i64,
        at: DateTime<Utc>,
        mark: HealthMark,
    ) -> anyhow::Result<()> {
        let mark = match mark {
            HealthMark::Ok => "ok",
            HealthMark::Disconnected => "disconnected",
            HealthMark::Inconclusive => "inconclusive",
        };
        let sql = "INSERT INTO connection_health (connection_id, checked_at, disconnected_at) \
                   VALUES ($1, $2, CASE WHEN $3 = 'disconnected' THEN $2 ELSE NULL END) \
                   ON CONFLICT (connection_id) DO UPDATE SET checked_at = excluded.checked_at, \
                   disconnected_at = CASE WHEN $3 = 'ok' THEN NULL \
                       WHEN $3 = 'disconnected' THEN COALESCE(connection_health.disconnected_at, excluded.checked_at) \
                       ELSE connection_health.disconnected_at END";
        dispatch_tx!(self, t => sqlx::query(sql).bind(id).bind(at).bind(mark).execute(t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn open_alert_condition(&mut self, c: &AlertCondition) -> anyhow::Result<()> {
        let sql = "INSERT INTO alert_conditions (key, risk, connection_id, environment, opened_at, summary) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        dispatch_tx!(self, t => sqlx::query(sql).bind(&c.key).bind(&c.risk).bind(c.connection_id)
            .bind(&c.environment).bind(c.opened_at).bind(&c.summary).execute(t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Counts `n` more conditions of `risk` opened without a message of their own.
    pub async fn add_alert_overflow(&mut self, risk: &str, n: i64) -> anyhow::Result<()> {
        let sql = "INSERT INTO alert_overflow (risk, count) VALUES ($1, $2) \
                   ON CONFLICT (risk) DO UPDATE SET count = alert_overflow.count + excluded.count";
        dispatch_tx!(self, t => sqlx::query(sql).bind(risk).bind(n).execute(t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The conditions counted by `add_alert_overflow` since the last take, per risk, and
    /// the count reset: the caller sends the one message that tells of them.
    pub async fn take_alert_overflow(&mut self) -> anyhow::Result<Vec<(String, i64)>> {
        let rows: Vec<(String, i64)> = dispatch_tx!(self, t => sqlx::query_as(
            "SELECT risk, count FROM alert_overflow ORDER BY risk").fetch_all(t).await)?;
        if !rows.is_empty() {
            dispatch_tx!(self, t => sqlx::query("DELETE FROM alert_overflow").execute(t).await.map(|r| r.rows_affected()))?;
        }
        Ok(rows)
    }

    pub async fn close_alert_condition(&mut self, key: &str) -> anyhow::Result<()> {
        let sql = "DELETE FROM alert_conditions WHERE key = $1";
        dispatch_tx!(self, t => sqlx::query(sql).bind(key).execute(t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn enqueue_alert(&mut self, a: &NewAlert, now: DateTime<Utc>) -> anyhow::Result<()> {
        let sql = "INSERT INTO alert_outbox (created_at, condition_key, event, webhook, text, body, state, attempts) \
                   VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0)";
        dispatch_tx!(self, t => sqlx::query(sql).bind(now).bind(&a.condition_key).bind(&a.event)
            .bind(&a.webhook).bind(&a.text).bind(&a.body).execute(t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records one delivery attempt's result: `state` pending (with the next attempt's
    /// time), delivered or failed.
    pub async fn record_alert_attempt(
        &mut self,
        id: i64,
        state: &str,
        next_attempt_at: Option<DateTime<Utc>>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let finished = (state != "pending").then_some(now);
        let sql =
            "UPDATE alert_outbox SET state = $1, attempts = attempts + 1, next_attempt_at = $2, \
                   last_error = $3, finished_at = $4 WHERE id = $5";
        dispatch_tx!(self, t => sqlx::query(sql).bind(state).bind(next_attempt_at).bind(error)
            .bind(finished).bind(id).execute(t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn set_alert_mark(&mut self, name: &str, at: DateTime<Utc>) -> anyhow::Result<()> {
        let sql = "INSERT INTO alert_marks (name, at) VALUES ($1, $2) \
                   ON CONFLICT (name) DO UPDATE SET at = excluded.at";
        dispatch_tx!(self, t => sqlx::query(sql).bind(name).bind(at).execute(t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
