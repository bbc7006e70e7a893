//! Service API keys (only their SHA-256 is stored), webhook idempotency and the host app's
//! and Intuit's reports about a connection (last sync, last data change).

use super::{dispatch, dispatch_tx, Store, Tx};
use chrono::{DateTime, Utc};
use qbo_core::domain::Environment;
pub use qbo_core::reports::ApiKeyRecord;

type KeyRow = (
    i64,
    String,
    String,
    Option<String>,
    DateTime<Utc>,
    String,
    Option<DateTime<Utc>>,
);

const KEY_COLUMNS: &str = "id, name, realms, environment, created_at, created_by, revoked_at";

fn record(r: KeyRow) -> anyhow::Result<ApiKeyRecord> {
    let (id, name, realms, env, created_at, created_by, revoked_at) = r;
    Ok(ApiKeyRecord {
        id,
        name,
        realms: realms.split_whitespace().map(str::to_string).collect(),
        environment: env
            .map(|e| e.parse::<Environment>())
            .transpose()
            .map_err(|m| anyhow::anyhow!("api_keys row {id}: {m}"))?,
        created_at,
        created_by,
        revoked_at,
    })
}

impl Store {
    /// The key whose SHA-256 (hex) is `hash`, revoked or not.
    pub async fn api_key_by_hash(&self, hash: &str) -> anyhow::Result<Option<ApiKeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1");
        let row: Option<KeyRow> =
            dispatch!(self, p => sqlx::query_as(&sql).bind(hash).fetch_optional(p).await)?;
        row.map(record).transpose()
    }

    pub async fn list_api_keys(&self) -> anyhow::Result<Vec<ApiKeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id");
        let rows: Vec<KeyRow> = dispatch!(self, p => sqlx::query_as(&sql).fetch_all(p).await)?;
        rows.into_iter().map(record).collect()
    }

    /// The latest data change recorded for a connection: when, and what.
    pub async fn data_change(
        &self,
        id: i64,
    ) -> anyhow::Result<(Option<DateTime<Utc>>, Option<String>)> {
        let sql = "SELECT last_data_change_at, last_data_change FROM connections WHERE id = $1";
        let row: Option<(Option<DateTime<Utc>>, Option<String>)> =
            dispatch!(self, p => sqlx::query_as(sql).bind(id).fetch_optional(p).await)?;
        Ok(row.unwrap_or((None, None)))
    }
}

impl Tx {
    /// Records a webhook event id; false when it was already recorded (a replay). In the
    /// same transaction as the event's effect, so an id is never kept without its effect.
    /// On PostgreSQL a concurrent insert of the same id waits for the other transaction,
    /// then counts as a replay if that one committed.
    pub async fn first_webhook_event(
        &mut self,
        event_id: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let sql = "INSERT INTO webhook_events (event_id, received_at) VALUES ($1, $2) \
                   ON CONFLICT (event_id) DO NOTHING";
        let n = dispatch_tx!(self, c => sqlx::query(sql).bind(event_id).bind(at)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Records the latest data change Intuit reported for a realm, on every connection to
    /// it; an older report never replaces a newer one. Returns how many connections it
    /// changed.
    pub async fn record_data_change(
        &mut self,
        realm: &str,
        at: DateTime<Utc>,
        what: &str,
    ) -> anyhow::Result<u64> {
        let sql = "UPDATE connections SET last_data_change_at = $1, last_data_change = $2 \
                   WHERE realm_id = $3 \
                   AND (last_data_change_at IS NULL OR last_data_change_at <= $1)";
        dispatch_tx!(self, c => sqlx::query(sql).bind(at).bind(what).bind(realm)
            .execute(c).await.map(|r| r.rows_affected()))
    }

    pub async fn insert_api_key(
        &mut self,
        name: &str,
        hash: &str,
        realms: &[String],
        env: Option<Environment>,
        at: DateTime<Utc>,
        by: &str,
    ) -> anyhow::Result<i64> {
        let sql =
            "INSERT INTO api_keys (name, key_hash, realms, environment, created_at, created_by) \
                   VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
        let realms = realms.join(" ");
        dispatch_tx!(self, c => sqlx::query_scalar(sql).bind(name).bind(hash).bind(realms)
            .bind(env.map(|e| e.as_str())).bind(at).bind(by).fetch_one(c).await)
    }

    /// Marks a key revoked; returns it as it was, or `None` when no key has that id.
    pub async fn revoke_api_key(
        &mut self,
        id: i64,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Option<ApiKeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
        let row: Option<KeyRow> =
            dispatch_tx!(self, c => sqlx::query_as(&sql).bind(id).fetch_optional(c).await)?;
        let Some(rec) = row.map(record).transpose()? else {
            return Ok(None);
        };
        if rec.revoked_at.is_none() {
            let sql = "UPDATE api_keys SET revoked_at = $1 WHERE id = $2";
            dispatch_tx!(self, c => sqlx::query(sql).bind(at).bind(id).execute(c).await.map(|_| ()))?;
        }
        Ok(Some(rec))
    }
}
