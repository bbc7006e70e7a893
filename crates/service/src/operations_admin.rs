//! Operations the CLI runs in its own process beside (or without) the daemon: applying
//! migrations, re-sealing under a new key, and what the demo needs to build its world
//! (a connection that never held tokens, the scheduler's backlog).

use crate::Service;
use chrono::{DateTime, Utc};
use qbo_core::config::Config;
use qbo_core::domain::{Environment, RealmId, Status};
use qbo_core::identity::Actor;
use qbo_engine::lifecycle::RotationReport;
use qbo_store::audit::{Action, AuditEvent, Outcome};
use qbo_store::{NewConnection, Store};

/// Applies every migration the database lacks (`db migrate`), on one connection; returns
/// how many ran.
pub async fn migrate_database(config: &Config) -> anyhow::Result<usize> {
    let db = qbo_core::config::DatabaseConfig {
        max_connections: 1,
        ..config.database()?.clone()
    };
    let store = Store::connect(&db, config.daemon.file_group.as_deref()).await?;
    let n = store.migrate().await?;
    store.close().await;
    Ok(n)
}

/// What `db migrate` would apply, in order, without applying it.
pub async fn pending_migrations(config: &Config) -> anyhow::Result<Vec<(i64, &'static str)>> {
    let db = qbo_core::config::DatabaseConfig {
        max_connections: 1,
        ..config.database()?.clone()
    };
    // A SQLite file not made yet would be made by connecting: a dry run makes nothing.
    if let Some(file) = qbo_store::sqlite_file(&db.url).map_err(|e| anyhow::anyhow!(e.0))? {
        if !file.exists() {
            return Ok(qbo_store::migrations_of(qbo_store::Backend::Sqlite));
        }
    }
    let store = Store::connect(&db, config.daemon.file_group.as_deref()).await?;
    let pending = store.pending_migrations().await;
    store.close().await;
    pending
}

/// What `doctor` learns of a database: whether it is behind, current or newer than this
/// binary, and whether its audit chain's head stands.
pub struct Checkup {
    /// Pending migrations, or why none can be applied (a newer schema).
    pub pending: anyhow::Result<Vec<(i64, &'static str)>>,
    /// The event the chain's head names, and whether the head names it truly.
    pub head_seq: i64,
    pub head_consistent: bool,
    /// Rows stored past the head, which block every audited write.
    pub blocked: Option<qbo_core::domain::ChainBlocked>,
}

/// Connects to the configured database (nothing is created or migrated) and looks it over.
pub async fn database_checkup(config: &Config) -> anyhow::Result<Checkup> {
    let db = qbo_core::config::DatabaseConfig {
        max_connections: 1,
        connect_timeout: std::time::Duration::from_secs(5),
        ..config.database()?.clone()
    };
    let store = Store::connect(&db, None).await?;
    let pending = store.pending_migrations().await;
    let head = store.audit_head_check().await;
    let blocked = store.audit_blocked().await;
    store.close().await;
    let head = head?;
    Ok(Checkup {
        pending,
        head_seq: head.head_seq,
        head_consistent: head.consistent(),
        blocked: blocked?,
    })
}

/// A connection the demo shows without tokens: one waiting for its first consent, or one
/// revoked at Intuit before the demo began.
pub struct TokenlessSeed<'a> {
    pub tenant: &'a str,
    pub realm_id: &'a str,
    pub environment: Environment,
    pub company_name: &'a str,
    pub status: Status,
    pub reason: &'a str,
}

impl Service {
    /// Re-seals every stored value under the current key, which must be `new_key_id` (the
    /// key the operator named); `pace` waits between connections. Each connection is
    /// re-sealed under the lease a refresh takes, so the two never race.
    pub async fn rotate_keys(
        &self,
        caller: &Actor,
        new_key_id: &str,
        pace: std::time::Duration,
    ) -> anyhow::Result<RotationReport> {
        self.engine.rotate_keys(caller, new_key_id, pace).await
    }

    /// How far behind the scheduler is: live connections never scheduled, and the oldest
    /// attempt overdue by now.
    pub async fn scheduler_backlog(&self) -> anyhow::Result<(i64, Option<DateTime<Utc>>)> {
        let store = self.store();
        Ok((
            store.unscheduled_live().await?,
            store.oldest_overdue(self.now()).await?,
        ))
    }

    /// The incidents open now, unrecorded: for the daemon's own use (the demo's settling
    /// waits for no backlog an incident holds back on purpose).
    pub async fn open_incidents(&self) -> anyhow::Result<Vec<qbo_core::incident::Incident>> {
        self.store().open_incidents().await
    }

    /// Writes a demo connection without tokens, with its `demo seed` audit event.
    pub async fn seed_tokenless(
        &self,
        seed: TokenlessSeed<'_>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let new = NewConnection {
            tenant: seed.tenant.to_string(),
            realm_id: RealmId::parse(seed.realm_id).map_err(anyhow::Error::msg)?,
            environment: seed.environment,
            company_name: Some(seed.company_name.to_string()),
            scopes: "com.intuit.quickbooks.accounting".into(),
            status: seed.status,
            access_expires_at: None,
            refresh_issued_at: None,
            refresh_expires_at: None,
        };
        let mut tx = self.store().begin().await?;
        let id = tx.insert_demo_connection(&new, seed.reason, now).await?;
        let mut ev = AuditEvent::new(now, actor, Action::DemoSeed, Outcome::Ok).target(
            id,
            seed.environment.as_str(),
            seed.realm_id,
            seed.tenant,
        );
        ev.reason = Some(seed.reason.to_string());
        self.engine.commit_audited(tx, &[ev]).await?;
        Ok(())
    }
}
