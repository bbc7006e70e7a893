//! Key rotation and the key posture.
//!
//! Rotation re-seals every stored token under the vault's current key, one connection at a
//! time, each under the same database lease a refresh takes: a connection being refreshed
//! is skipped and retried, and a refresh never meets a half-written row. Every sealed value
//! names its key, so the values still under other keys are exactly the work left: an
//! interrupted rotation resumes by running again.

use super::Engine;
use qbo_core::config::ConfigError;
use qbo_core::identity::Actor;
pub use qbo_core::reports::{KeyStatus, KeyUse, RotationFailure, RotationReport};
use qbo_core::vault::{self, FingerprintKeySource, TokenColumn};
use qbo_store::audit::{Action, AuditEvent, Outcome};
use qbo_store::Purpose;
use std::time::Duration;

/// The lease holder name of every rotation, whichever process runs it: a rotation killed
/// while holding a connection's lease is resumed by the next one without waiting for it.
const ROTATION_OWNER: &str = "keys rotate";
/// Progress is recorded in the audit log every this many connections.
const PROGRESS_EVERY: usize = 100;
/// Full passes over connections that turned up under another key again (something still
/// seals with that key) before giving up.
const MAX_PASSES: usize = 10;

impl Engine {
    pub async fn key_status(&self) -> anyhow::Result<KeyStatus> {
        let current = self.vault.current_key_id();
        let old = self.vault.old_key_ids();
        let mut keys: Vec<KeyUse> = self
            .store
            .sealed_by_key()
            .await?
            .into_iter()
            .map(|s| {
                let key_id = vault::hex(&s.key_id);
                let role = if key_id == current {
                    "current"
                } else if old.contains(&key_id) {
                    "old"
                } else {
                    "unknown"
                };
                KeyUse {
                    key_id,
                    role: role.to_string(),
                    connections: s.connections,
                    values: s.values,
                }
            })
            .collect();
        keys.sort_by_key(|k| (k.role != "current", k.key_id.clone()));
        Ok(KeyStatus {
            rotation_complete: keys.iter().all(|k| k.role == "current"),
            current_key_id: current,
            old_key_ids: old,
            fingerprint_key_id: self.vault.fingerprint_key_id(),
            fingerprint_key: self.vault.fingerprint_key_source(),
            keys,
        })
    }

    /// Re-seals every stored value under the current key, which must be `new_key_id` (the
    /// key the operator named). `pace` waits between connections, to leave the database
    /// to the scheduler on a busy installation.
    pub async fn rotate_keys(
        &self,
        actor: &Actor,
        new_key_id: &str,
        pace: Duration,
    ) -> anyhow::Result<RotationReport> {
        let current = self.vault.current_key_id();
        if current != new_key_id {
            return Err(ConfigError(format!(
                "the new key (id {new_key_id}) is not [vault] key_file (key id {current}); set \
                 key_file to the new key, move the old one to old_key_files, restart the daemon, \
                 then run keys rotate again"
            ))
            .into());
        }
        if self.vault.fingerprint_key_source() != FingerprintKeySource::Configured {
            return Err(ConfigError(
                "no [vault] fingerprint_key_file: fingerprints are still derived from the token key \
                 and would change with it; create one that keeps them with `qbo-console keys generate \
                 --fingerprint-from OLD_KEY_FILE --out FILE`, set fingerprint_key_file, restart the \
                 daemon, then rotate"
                    .into(),
            )
            .into());
        }
        let key_bytes = hex_bytes(&current);
        let mut todo = self.store.connections_not_under(&key_bytes).await?;
        let total = todo.len();
        let mut ev = AuditEvent::new(self.clock.now(), actor, Action::KeyRotation, Outcome::Ok);
        ev.reason = Some(format!(
            "started: {total} connection(s) hold values under keys other than {current} \
             (old keys configured: {})",
            list_or_none(&self.vault.old_key_ids())
        ));
        self.record(&ev).await?;

        let lease = chrono::Duration::from_std(self.refresh_cfg.lease)?;
        let mut report = RotationReport {
            key_id: current.clone(),
            resealed: 0,
            already_current: 0,
            failed: Vec::new(),
            complete: false,
        };
        let mut rescans = 0;
        while !todo.is_empty() {
            let mut busy = Vec::new();
            for id in todo {
                let now = self.clock.now();
                if self
                    .store
                    .try_lease(id, ROTATION_OWNER, now, now + lease, Purpose::Other)
                    .await?
                    .is_none()
                {
                    busy.push(id);
                    continue;
                }
                match self.reseal_leased(id).await {
                    Ok(Resealed::Written) => {
                        report.resealed += 1;
                        if report.resealed.is_multiple_of(PROGRESS_EVERY) {
                            let mut ev = AuditEvent::new(
                                self.clock.now(),
                                actor,
                                Action::KeyRotation,
                                Outcome::Ok,
                            );
                            ev.reason = Some(format!(
                                "progress: {} of {total} connection(s) re-sealed under {current}",
                                report.resealed
                            ));
                            self.record(&ev).await?;
                        }
                    }
                    Ok(Resealed::AlreadyCurrent) => report.already_current += 1,
                    Ok(Resealed::Changed) => busy.push(id),
                    Err(e) => {
                        let _ = self.store.release_owned(id, ROTATION_OWNER).await;
                        report.failed.push(RotationFailure {
                            connection_id: id,
                            detail: format!("{e:#}"),
                        });
                    }
                }
                if !pace.is_zero() {
                    tokio::time::sleep(pace).await;
                }
            }
            if !busy.is_empty() {
                // Held by a refresh: its holder is done within a lease.
                tokio::time::sleep(Duration::from_millis(50)).await;
                todo = busy;
                continue;
            }
            // Anything sealed under another key since this run started (a daemon that still
            // seals with the old key) is more work; a failure stays failed.
            todo = self
                .store
                .connections_not_under(&key_bytes)
                .await?
                .into_iter()
                .filter(|id| !report.failed.iter().any(|f| f.connection_id == *id))
                .collect();
            rescans += 1;
            if !todo.is_empty() && rescans >= MAX_PASSES {
                let mut ev = AuditEvent::new(
                    self.clock.now(),
                    actor,
                    Action::KeyRotation,
                    Outcome::Failed,
                );
                ev.reason = Some(format!(
                    "stopped: {} connection(s) keep being sealed under another key than {current}",
                    todo.len()
                ));
                self.record(&ev).await?;
                return Err(anyhow::anyhow!(
                    "{} connection(s) keep being sealed under another key than {current}: a daemon \
                     still runs with the old [vault] key_file; restart it with the new key, then \
                     run keys rotate again",
                    todo.len()
                ));
            }
        }
        report.complete = report.failed.is_empty();
        let outcome = if report.complete {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        let mut ev = AuditEvent::new(self.clock.now(), actor, Action::KeyRotation, outcome);
        ev.reason = Some(if report.complete {
            format!(
                "finished: {} connection(s) re-sealed; every stored value is under {current}; \
                 the old keys may be removed from old_key_files",
                report.resealed
            )
        } else {
            format!(
                "finished incomplete: {} connection(s) re-sealed, {} would not open",
                report.resealed,
                report.failed.len()
            )
        });
        self.record(&ev).await?;
        Ok(report)
    }

    /// Re-seals one connection whose lease the rotation holds; the write releases it.
    async fn reseal_leased(&self, id: i64) -> anyhow::Result<Resealed> {
        let Some(sealed) = self.store.load_sealed(id).await? else {
            self.store.release_owned(id, ROTATION_OWNER).await?;
            return Ok(Resealed::AlreadyCurrent);
        };
        let col = |v: &Option<Vec<u8>>, c: TokenColumn| -> anyhow::Result<Option<Vec<u8>>> {
            match v {
                Some(v) => Ok(self.vault.reseal(id, c, v)?),
                None => Ok(None),
            }
        };
        let access = col(&sealed.access_token, TokenColumn::Access)?;
        let refresh = col(&sealed.refresh_token, TokenColumn::Refresh)?;
        let previous = col(&sealed.previous_refresh_token, TokenColumn::PreviousRefresh)?;
        if access.is_none() && refresh.is_none() && previous.is_none() {
            self.store.release_owned(id, ROTATION_OWNER).await?;
            return Ok(Resealed::AlreadyCurrent);
        }
        let written = self
            .store
            .write_resealed(
                id,
                ROTATION_OWNER,
                sealed.version,
                access.as_deref(),
                refresh.as_deref(),
                previous.as_deref(),
            )
            .await?;
        if written {
            Ok(Resealed::Written)
        } else {
            self.store.release_owned(id, ROTATION_OWNER).await?;
            Ok(Resealed::Changed)
        }
    }

    async fn record(&self, ev: &AuditEvent) -> anyhow::Result<()> {
        let tx = self.store.begin().await?;
        self.commit_audited(tx, std::slice::from_ref(ev)).await?;
        Ok(())
    }
}

enum Resealed {
    Written,
    AlreadyCurrent,
    /// The row changed between the read and the write (the lease was taken over): read it
    /// again later.
    Changed,
}

fn list_or_none(ids: &[String]) -> String {
    if ids.is_empty() {
        "none".into()
    } else {
        ids.join(", ")
    }
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}
