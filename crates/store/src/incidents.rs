//! Incidents (migration 0015): opened by whichever daemon first sees the correlated
//! failures (a second one joins the open row: the partial unique index allows one open per
//! environment, endpoint and kind), probed by one daemon at a time (a conditional update
//! of `probe_at`), closed once (a conditional update of `ended_at`).

use super::{dispatch, dispatch_tx, Store, Tx};
use chrono::{DateTime, Utc};
use qbo_core::domain::Environment;
use qbo_core::incident::{Endpoint, Incident, IncidentClass};

/// Sample `intuit_tid`s kept per incident.
pub const SAMPLE_TIDS: usize = 5;

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    environment: String,
    endpoint: String,
    class: String,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    connections: i64,
    sample_tids: String,
    detail: String,
}

impl Row {
    fn into_incident(self) -> anyhow::Result<Incident> {
        Ok(Incident {
            id: self.id,
            environment: self.environment.parse::<Environment>()?,
            endpoint: self.endpoint.parse::<Endpoint>()?,
            class: self.class.parse::<IncidentClass>()?,
            started_at: self.started_at,
            ended_at: self.ended_at,
            connections: u64::try_from(self.connections).unwrap_or(0),
            sample_tids: self
                .sample_tids
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            detail: self.detail,
        })
    }
}

const COLUMNS: &str =
    "id, environment, endpoint, class, started_at, ended_at, connections, sample_tids, detail";

fn kind(class: IncidentClass) -> &'static str {
    if class.is_ours() {
        "ours"
    } else {
        "intuit"
    }
}

/// One connection's failure as part of an incident.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IncidentMember {
    pub connection_id: i64,
    pub failed_at: DateTime<Utc>,
    pub intuit_tid: Option<String>,
}

/// What another daemon has seen of one class of failure in a scope within its window:
/// failures, the connections they were of, and every call it made to the scope (`class`
/// `None`: a row of calls alone, written now and then while all is well).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub owner: String,
    pub class: Option<IncidentClass>,
    pub failures: i64,
    pub connections: i64,
    pub attempts: i64,
    pub at: DateTime<Utc>,
}

fn all(rows: Vec<Row>) -> anyhow::Result<Vec<Incident>> {
    rows.into_iter().map(Row::into_incident).collect()
}

impl Store {
    /// The incidents still open, oldest first.
    pub async fn open_incidents(&self) -> anyhow::Result<Vec<Incident>> {
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE ended_at IS NULL ORDER BY id");
        all(dispatch!(self, p => sqlx::query_as::<_, Row>(&sql).fetch_all(p).await)?)
    }

    /// The newest `n` incidents, open or ended, newest first.
    pub async fn incidents(&self, n: i64) -> anyhow::Result<Vec<Incident>> {
        let sql = format!("SELECT {COLUMNS} FROM incidents ORDER BY id DESC LIMIT $1");
        all(dispatch!(self, p => sqlx::query_as::<_, Row>(&sql).bind(n).fetch_all(p).await)?)
    }

    /// The incidents open at or since `from`, oldest first.
    pub async fn incidents_since(&self, from: DateTime<Utc>) -> anyhow::Result<Vec<Incident>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM incidents WHERE ended_at IS NULL OR ended_at >= $1 ORDER BY id"
        );
        all(dispatch!(self, p => sqlx::query_as::<_, Row>(&sql).bind(from).fetch_all(p).await)?)
    }

    pub async fn incident(&self, id: i64) -> anyhow::Result<Option<Incident>> {
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE id = $1");
        dispatch!(self, p => sqlx::query_as::<_, Row>(&sql).bind(id).fetch_optional(p).await)?
            .map(Row::into_incident)
            .transpose()
    }

    /// The newest incident at `endpoint` a connection's failures belonged to, if any.
    pub async fn incident_of(
        &self,
        connection_id: i64,
        endpoint: Endpoint,
    ) -> anyhow::Result<Option<Incident>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM incidents WHERE id = (SELECT MAX(m.incident_id) \
             FROM incident_connections m JOIN incidents i ON i.id = m.incident_id \
             WHERE m.connection_id = $1 AND i.endpoint = $2)"
        );
        dispatch!(self, p => sqlx::query_as::<_, Row>(&sql).bind(connection_id)
            .bind(endpoint.as_str()).fetch_optional(p).await)?
        .map(Row::into_incident)
        .transpose()
    }

    /// The incidents a connection's failures were part of.
    pub async fn incidents_with(&self, connection_id: i64) -> anyhow::Result<Vec<i64>> {
        let sql = "SELECT incident_id FROM incident_connections WHERE connection_id = $1 ORDER BY incident_id";
        Ok(dispatch!(self, p => sqlx::query_scalar(sql).bind(connection_id).fetch_all(p).await)?)
    }

    /// Up to `n` of an incident's connections, in the order they failed.
    pub async fn incident_members(&self, id: i64, n: i64) -> anyhow::Result<Vec<IncidentMember>> {
        let sql = "SELECT connection_id, failed_at, intuit_tid FROM incident_connections \
                   WHERE incident_id = $1 ORDER BY failed_at, connection_id LIMIT $2";
        Ok(dispatch!(self, p => sqlx::query_as(sql).bind(id).bind(n).fetch_all(p).await)?)
    }

    /// Among `ids`, the connections that were part of an incident at `endpoint`: each one's newest
    /// incident and when that ended (`None`: it lasts), for the forecast and the alerts to
    /// tell an incident's failure from a connection's own.
    pub async fn incidents_of(
        &self,
        ids: &[i64],
        endpoint: Endpoint,
    ) -> anyhow::Result<std::collections::HashMap<i64, (i64, Option<DateTime<Utc>>)>> {
        let mut out = std::collections::HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        // Ids are numbers: written into the statement, as many as a page has.
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let sql = format!(
            "SELECT m.connection_id, i.id, i.ended_at FROM incident_connections m \
             JOIN incidents i ON i.id = m.incident_id WHERE m.connection_id IN ({list}) \
             AND i.endpoint = $1"
        );
        let rows: Vec<(i64, i64, Option<DateTime<Utc>>)> = dispatch!(self, p =>
            sqlx::query_as(&sql).bind(endpoint.as_str()).fetch_all(p).await)?;
        for (conn, id, ended) in rows {
            let e = out.entry(conn).or_insert((id, ended));
            if id > e.0 {
                *e = (id, ended);
            }
        }
        Ok(out)
    }

    /// Starts a probe of an open incident unless another daemon (or this one) started one
    /// less than `every` ago. Returns whether this caller probes.
    pub async fn claim_probe(
        &self,
        id: i64,
        now: DateTime<Utc>,
        every: chrono::Duration,
    ) -> anyhow::Result<bool> {
        let sql = "UPDATE incidents SET probe_at = $2 WHERE id = $1 AND ended_at IS NULL \
                   AND (probe_at IS NULL OR probe_at <= $3)";
        let n = dispatch!(self, p => sqlx::query(sql).bind(id).bind(now).bind(now - every)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// What the other daemons recorded of a scope since `since`.
    pub async fn evidence_of_others(
        &self,
        owner: &str,
        env: Environment,
        endpoint: Endpoint,
        since: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Evidence>> {
        let sql =
            "SELECT owner, class, failures, connections, attempts, at FROM incident_evidence \
                   WHERE environment = $1 AND endpoint = $2 AND owner <> $3 AND at >= $4";
        let rows: Vec<(String, String, i64, i64, i64, DateTime<Utc>)> = dispatch!(self, p =>
            sqlx::query_as(sql).bind(env.as_str()).bind(endpoint.as_str()).bind(owner)
            .bind(since).fetch_all(p).await)?;
        rows.into_iter()
            .map(|(owner, class, failures, connections, attempts, at)| {
                Ok(Evidence {
                    owner,
                    class: match class.as_str() {
                        "" => None,
                        c => Some(c.parse::<IncidentClass>()?),
                    },
                    failures,
                    connections,
                    attempts,
                    at,
                })
            })
            .collect()
    }

    /// A live connection of the incident to probe with, drawn at random: a company Intuit
    /// fails on its own (among the members by bad luck) never holds the incident open for
    /// long, since the next probe goes elsewhere.
    pub async fn probe_member(&self, id: i64) -> anyhow::Result<Option<i64>> {
        let sql = "SELECT m.connection_id FROM incident_connections m \
                   JOIN connections c ON c.id = m.connection_id \
                   WHERE m.incident_id = $1 AND c.status IN ('active', 'expiring') \
                   ORDER BY random() LIMIT 1";
        Ok(dispatch!(self, p => sqlx::query_scalar(sql).bind(id).fetch_optional(p).await)?)
    }

    /// The incident's tenants still `revoking` (waiting on a retry of their revoke).
    pub async fn revokes_waiting(&self, id: i64) -> anyhow::Result<i64> {
        let sql = "SELECT COUNT(*) FROM incident_connections m \
                   JOIN connections c ON c.id = m.connection_id \
                   WHERE m.incident_id = $1 AND c.status = 'revoking'";
        Ok(dispatch!(self, p => sqlx::query_scalar(sql).bind(id).fetch_one(p).await)?)
    }

    /// Records a probe's verdict: a success adds to the successes in a row (returned), a
    /// failure starts them again from zero.
    pub async fn probe_result(&self, id: i64, ok: bool) -> anyhow::Result<i64> {
        let sql = if ok {
            "UPDATE incidents SET probe_successes = probe_successes + 1 WHERE id = $1 RETURNING probe_successes"
        } else {
            "UPDATE incidents SET probe_successes = 0 WHERE id = $1 RETURNING probe_successes"
        };
        Ok(
            dispatch!(self, p => sqlx::query_scalar(sql).bind(id).fetch_optional(p).await)?
                .unwrap_or(0),
        )
    }
}

impl Tx {
    /// Opens an incident unless one of the same environment, endpoint and kind is open
    /// already; returns the new one's id, or `None` when another is open (join it).
    #[allow(clippy::too_many_arguments)]
    pub async fn open_incident(
        &mut self,
        env: Environment,
        endpoint: Endpoint,
        class: IncidentClass,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
        detail: &str,
    ) -> anyhow::Result<Option<i64>> {
        let sql = "INSERT INTO incidents (environment, endpoint, class, kind, started_at, opened_at, detail) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id";
        Ok(dispatch_tx!(self, c => sqlx::query_scalar(sql)
            .bind(env.as_str()).bind(endpoint.as_str()).bind(class.as_str()).bind(kind(class))
            .bind(started_at).bind(now).bind(detail)
            .fetch_optional(c).await)?)
    }

    /// The open incident of this environment, endpoint and class's kind, if any.
    pub async fn open_incident_of(
        &mut self,
        env: Environment,
        endpoint: Endpoint,
        class: IncidentClass,
    ) -> anyhow::Result<Option<i64>> {
        let sql = "SELECT id FROM incidents WHERE environment = $1 AND endpoint = $2 \
                   AND kind = $3 AND ended_at IS NULL";
        Ok(dispatch_tx!(self, c => sqlx::query_scalar(sql)
            .bind(env.as_str()).bind(endpoint.as_str()).bind(kind(class))
            .fetch_optional(c).await)?)
    }

    /// Adds connections' failures to an incident (a connection already in it is kept with
    /// its first failure) and updates its count and sample `intuit_tid`s. Returns the
    /// connections newly added.
    pub async fn add_incident_members(
        &mut self,
        id: i64,
        members: &[IncidentMember],
    ) -> anyhow::Result<u64> {
        let mut added = 0;
        for m in members {
            let sql = "INSERT INTO incident_connections (incident_id, connection_id, failed_at, intuit_tid) \
                       VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
            added += dispatch_tx!(self, c => sqlx::query(sql).bind(id).bind(m.connection_id)
                .bind(m.failed_at).bind(m.intuit_tid.as_deref())
                .execute(c).await.map(|r| r.rows_affected()))?;
        }
        let tids: String = dispatch_tx!(self, c => sqlx::query_scalar(
            "SELECT sample_tids FROM incidents WHERE id = $1").bind(id).fetch_one(c).await)?;
        let mut sample: Vec<String> = tids.split_whitespace().map(str::to_string).collect();
        for t in members.iter().filter_map(|m| m.intuit_tid.as_deref()) {
            let t = t.trim();
            if sample.len() < SAMPLE_TIDS
                && !t.is_empty()
                && !t.contains(char::is_whitespace)
                && !sample.iter().any(|s| s == t)
            {
                sample.push(t.to_string());
            }
        }
        let sql = "UPDATE incidents SET connections = \
                   (SELECT COUNT(*) FROM incident_connections WHERE incident_id = $1), \
                   sample_tids = $2 WHERE id = $1";
        dispatch_tx!(self, c => sqlx::query(sql).bind(id).bind(sample.join(" "))
            .execute(c).await.map(|_| ()))?;
        Ok(added)
    }

    /// Ends an open incident; `false` when it had ended already (another daemon closed it).
    pub async fn close_incident(&mut self, id: i64, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let sql = "UPDATE incidents SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL";
        let n = dispatch_tx!(self, c => sqlx::query(sql).bind(id).bind(now)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Makes the incident's live connections that are still failing due at once (their
    /// backoff was the incident's, not theirs); returns how many.
    pub async fn reschedule_members(&mut self, id: i64, now: DateTime<Utc>) -> anyhow::Result<u64> {
        // Only those still failing: a member a probe refreshed is fresh, not behind.
        let sql =
            "UPDATE connections SET next_attempt_at = $2 WHERE status IN ('active', 'expiring') \
                   AND consecutive_failures > 0 AND next_attempt_at > $2 AND id IN \
                   (SELECT connection_id FROM incident_connections WHERE incident_id = $1)";
        Ok(dispatch_tx!(self, c => sqlx::query(sql).bind(id).bind(now)
            .execute(c).await.map(|r| r.rows_affected()))?)
    }

    /// Makes the revoke retries of the incident's tenants still `revoking` due at once (their
    /// backoff was the incident's); returns how many.
    pub async fn reschedule_revokes(&mut self, id: i64, now: DateTime<Utc>) -> anyhow::Result<u64> {
        let sql = "UPDATE connections SET next_attempt_at = $2 WHERE status = 'revoking' \
                   AND next_attempt_at > $2 AND id IN \
                   (SELECT connection_id FROM incident_connections WHERE incident_id = $1)";
        Ok(dispatch_tx!(self, c => sqlx::query(sql).bind(id).bind(now)
            .execute(c).await.map(|r| r.rows_affected()))?)
    }

    /// Makes the health checks of the incident's connections whose last sync failed due
    /// at once (their failure was the accounting API's, not theirs); returns how many.
    pub async fn recheck_members(&mut self, id: i64) -> anyhow::Result<u64> {
        // Checked "long ago": due at the next pass, whatever each one's point in the interval.
        let sql = "UPDATE connection_health SET checked_at = $2 WHERE connection_id IN \
                   (SELECT m.connection_id FROM incident_connections m \
                    JOIN connections c ON c.id = m.connection_id \
                    WHERE m.incident_id = $1 AND c.last_sync_status = 'failed' \
                    AND c.status IN ('active', 'expiring'))";
        Ok(
            dispatch_tx!(self, c => sqlx::query(sql).bind(id).bind(DateTime::<Utc>::UNIX_EPOCH)
            .execute(c).await.map(|r| r.rows_affected()))?,
        )
    }

    /// Records what this daemon (`owner`) has seen in a scope within its window: one row
    /// per class of failure (`None`: its calls alone), replaced each time.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_evidence(
        &mut self,
        owner: &str,
        env: Environment,
        endpoint: Endpoint,
        class: Option<IncidentClass>,
        failures: i64,
        connections: i64,
        attempts: i64,
        at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let sql = "INSERT INTO incident_evidence \
                   (owner, environment, endpoint, class, failures, connections, attempts, at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                   ON CONFLICT (owner, environment, endpoint, class) DO UPDATE SET \
                   failures = excluded.failures, connections = excluded.connections, \
                   attempts = excluded.attempts, at = excluded.at";
        let class = class.map_or("", IncidentClass::as_str);
        dispatch_tx!(self, c => sqlx::query(sql).bind(owner).bind(env.as_str())
            .bind(endpoint.as_str()).bind(class).bind(failures).bind(connections)
            .bind(attempts).bind(at).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Forgets evidence older than `before`: rows of daemons that stopped (each process is
    /// an owner of its own).
    pub async fn prune_evidence(&mut self, before: DateTime<Utc>) -> anyhow::Result<()> {
        let sql = "DELETE FROM incident_evidence WHERE at < $1";
        dispatch_tx!(self, c => sqlx::query(sql).bind(before).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Forgets every daemon's evidence of a scope: an incident opened or ended over it.
    pub async fn clear_evidence(
        &mut self,
        env: Environment,
        endpoint: Endpoint,
    ) -> anyhow::Result<()> {
        let sql = "DELETE FROM incident_evidence WHERE environment = $1 AND endpoint = $2";
        dispatch_tx!(self, c => sqlx::query(sql).bind(env.as_str()).bind(endpoint.as_str())
            .execute(c).await.map(|_| ()))?;
        Ok(())
    }
}
