//! `apikey create | list | revoke`: the service keys of the token API (admin only). A key
//! is printed once, at creation, and stored only as its hash.

use super::service_keys as keys;
use super::{Result, Service, ServiceError};
use qbo_core::domain::{Environment, RealmId};
use qbo_core::identity::{Actor, Permission};
use qbo_core::reports::ApiKeyRecord;
use qbo_store::audit::{Action, AuditEvent, Outcome};
use serde::{Deserialize, Serialize};

/// A new key, as `apikey create` prints it: the only time the key is shown.
#[derive(Clone, Serialize, Deserialize)]
pub struct CreatedApiKey {
    pub key: String,
    pub id: i64,
    pub name: String,
    pub realms: Vec<String>,
    pub environment: Option<Environment>,
}

impl std::fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiKey")
            .field("key", &"<redacted>")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

/// A service name: what the audit log calls the key's requests (`service:NAME`).
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::Input(format!(
            "api key name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.', naming the service that will use it"
        )))
    }
}

fn describe_scope(realms: &[String], env: Option<Environment>) -> String {
    let realms = if realms.is_empty() {
        "every realm".to_string()
    } else {
        format!("realms {}", realms.join(", "))
    };
    let env = env.map_or("both environments".to_string(), |e| e.to_string());
    format!("{realms} in {env}")
}

impl Service {
    pub async fn apikey_create(
        &self,
        caller: &Actor,
        name: &str,
        realms: &[String],
        environment: Option<Environment>,
    ) -> Result<CreatedApiKey> {
        self.authorize(caller, Permission::ManageKeys, Action::ApiKeyCreated)
            .await?;
        check_name(name)?;
        let mut scoped = Vec::new();
        for r in realms {
            let id = RealmId::parse(r.trim()).map_err(|m| {
                ServiceError::Input(format!("--realm {r:?}: {m}; give a QuickBooks realm id"))
            })?;
            if !scoped.contains(&id.as_str().to_string()) {
                scoped.push(id.as_str().to_string());
            }
        }
        let key = keys::generate();
        let now = self.engine.clock.now();
        let mut tx = self.store().begin().await?;
        let id = tx
            .insert_api_key(
                name,
                &keys::hash(&key),
                &scoped,
                environment,
                now,
                &caller.name(),
            )
            .await?;
        let mut ev = AuditEvent::new(now, caller, Action::ApiKeyCreated, Outcome::Ok)
            .fingerprint("api_key", self.engine.vault.fingerprint(&key));
        ev.reason = Some(format!(
            "api key {id} for service {name}: may read {}",
            describe_scope(&scoped, environment)
        ));
        self.engine.commit_audited(tx, &[ev]).await?;
        Ok(CreatedApiKey {
            key: key.to_string(),
            id,
            name: name.to_string(),
            realms: scoped,
            environment,
        })
    }

    pub async fn apikey_list(&self, caller: &Actor) -> Result<Vec<ApiKeyRecord>> {
        self.authorize(caller, Permission::ManageKeys, Action::ApiKeysListed)
            .await?;
        let keys = self.store().list_api_keys().await?;
        let live = keys.iter().filter(|k| k.revoked_at.is_none()).count();
        let shown = format!("listed {} api keys ({live} not revoked)", keys.len());
        self.record_view(caller, Action::ApiKeysListed, None, shown)
            .await?;
        Ok(keys)
    }

    pub async fn apikey_revoke(&self, caller: &Actor, id: i64) -> Result<ApiKeyRecord> {
        self.authorize(caller, Permission::ManageKeys, Action::ApiKeyRevoked)
            .await?;
        let now = self.engine.clock.now();
        let mut tx = self.store().begin().await?;
        let Some(before) = tx.revoke_api_key(id, now).await? else {
            tx.rollback().await?;
            return Err(ServiceError::NotFound(format!(
                "no api key has id {id}; `qbo-console apikey list` shows them"
            )));
        };
        if before.revoked_at.is_some() {
            tx.rollback().await?;
            return Ok(before);
        }
        let mut ev = AuditEvent::new(now, caller, Action::ApiKeyRevoked, Outcome::Ok);
        ev.reason = Some(format!("api key {id} of service {} revoked", before.name));
        self.engine.commit_audited(tx, &[ev]).await?;
        // Before the caller hears of it: no request after this answer uses the key.
        keys::keys_changed();
        Ok(ApiKeyRecord {
            revoked_at: Some(now),
            ..before
        })
    }
}
