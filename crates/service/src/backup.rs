//! `db backup FILE` and `db restore-check FILE`: a credential store's backups go stale as
//! tokens rotate, so a backup comes with a signed manifest of what it holds, and a drill
//! says, from the live database's own records and without a call to Intuit, what restoring
//! it now would cost each connection.

use super::{Permission, Result, Service, ServiceError};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use qbo_core::domain::Environment;
use qbo_core::identity::Actor;
use qbo_core::vault::TokenColumn;
use qbo_store::audit::signing::{parse_public_key, signature_valid};
use qbo_store::audit::{Action, AuditEvent, Outcome};
use qbo_store::{BackupFacts, StoredRefresh};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The manifest's format, checked by `db verify-backup`.
pub const BACKUP_FORMAT: &str = "qbo-console backup 1";

/// How long Intuit may still honour a refresh token after it was replaced (the generous
/// reading of "the previous one stays usable for at most 24 hours").
pub const GRACE: ChronoDuration = ChronoDuration::hours(24);

/// What a backup holds, signed by the daemon's audit signing key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupManifest {
    pub format: String,
    /// The backup's file name (the manifest travels beside it).
    pub file: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub schema_version: i64,
    pub connections: i64,
    pub audit_head_seq: i64,
    pub audit_head_hash: String,
    pub sha256: String,
    pub bytes: u64,
    /// What the backup does not hold, said where it will be read.
    pub not_included: String,
    pub public_key: String,
    pub signature: String,
}

impl BackupManifest {
    fn signed_bytes(&self) -> Vec<u8> {
        let unsigned = BackupManifest {
            signature: String::new(),
            ..self.clone()
        };
        serde_json::to_vec(&unsigned).unwrap_or_default()
    }
}

/// What `db backup` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupReport {
    pub path: PathBuf,
    pub manifest_path: PathBuf,
    pub manifest: BackupManifest,
}

/// The manifest's path beside a backup.
pub fn manifest_of(backup: &Path) -> PathBuf {
    let mut s = backup.as_os_str().to_owned();
    s.push(".manifest.json");
    PathBuf::from(s)
}

/// What restoring a backup now would do to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The backup holds the refresh token the live database holds: nothing lost.
    Live,
    /// The backup's token was replaced less than 24 hours ago: Intuit may still take it
    /// (refresh it at once after restoring).
    Recoverable,
    /// Replaced longer ago (or twice since): the customer must reconnect.
    Lost,
    /// The connection is no longer in the live database (purged).
    Gone,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillItem {
    pub connection_id: i64,
    pub tenant: String,
    pub environment: Environment,
    pub realm_id: Option<String>,
    pub verdict: Verdict,
    /// When the live database replaced the backup's token, when it knows.
    pub replaced_at: Option<DateTime<Utc>>,
}

/// What `db restore-check` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreDrill {
    pub checked_at: DateTime<Utc>,
    pub backup: PathBuf,
    pub backup_schema_version: i64,
    pub live: u64,
    pub recoverable: u64,
    pub lost: u64,
    pub gone: u64,
    /// Connections the backup holds without a refresh token (pending, revoked).
    pub without_token: u64,
    /// Audit events the live log holds past the backup's head.
    pub audit_events_missing: i64,
    pub items: Vec<DrillItem>,
}

impl RestoreDrill {
    pub fn summary(&self) -> String {
        format!(
            "{} live, {} recoverable within Intuit's 24-hour grace, {} lost (the customer must reconnect), {} gone since; {} audit events the backup lacks",
            self.live, self.recoverable, self.lost, self.gone, self.audit_events_missing
        )
    }
}

fn input(m: impl Into<String>) -> ServiceError {
    ServiceError::Input(m.into())
}

/// SHA-256 and size of a file, read in pieces.
fn digest(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((qbo_core::vault::hex(&h.finalize()), n))
}

impl Service {
    fn sqlite_only(&self, verb: &str) -> Result<()> {
        if matches!(self.store(), qbo_store::Store::Postgres(_)) {
            return Err(input(format!(
                "{verb} works on SQLite; this daemon's database is PostgreSQL: back it up with \
                 pg_dump --format=custom of the whole database (every table: connections, \
                 audit_events, audit_head, audit_quarantine, link_invitations, link_campaigns, \
                 incidents, alert tables, api keys and _sqlx_migrations), or better continuously \
                 (streaming replication or point-in-time recovery; README: Backups)"
            )));
        }
        Ok(())
    }

    /// Takes an online snapshot of the SQLite database to `path` (absolute, new), writes
    /// the signed manifest beside it, and records the backup.
    pub async fn db_backup(&self, caller: &Actor, path: &str) -> Result<BackupReport> {
        self.authorize(caller, Permission::ManageDatabase, Action::DatabaseBackup)
            .await?;
        self.sqlite_only("db backup")?;
        let path = PathBuf::from(path);
        if !path.is_absolute() {
            return Err(input(format!(
                "db backup {}: give an absolute path (the daemon writes the file, from its own directory)",
                path.display()
            )));
        }
        let manifest_path = manifest_of(&path);
        let signer = self.signer()?;
        // New, owner-only, before the snapshot fills it: SQLite writes into an empty file.
        qbo_core::file_modes::create_secret_file(&path).map_err(|e| {
            input(format!(
                "db backup {}: {e}; a backup never overwrites a file",
                path.display()
            ))
        })?;
        let made = async {
            self.store().backup_into(&path).await?;
            let facts = qbo_store::read_backup_facts(&path).await?;
            let (sha256, bytes) = digest(&path)?;
            anyhow::Ok((facts, sha256, bytes))
        }
        .await;
        let (facts, sha256, bytes) = match made {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(ServiceError::Internal(e.context("the snapshot failed")));
            }
        };
        let now = self.engine.clock.now();
        let mut manifest = BackupManifest {
            format: BACKUP_FORMAT.into(),
            file: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            created_at: now,
            created_by: caller.name(),
            schema_version: facts.schema_version,
            connections: facts.connections,
            audit_head_seq: facts.audit_head_seq,
            audit_head_hash: facts.audit_head_hash.clone(),
            sha256: sha256.clone(),
            bytes,
            not_included: "the token encryption key ([vault]), the fingerprint key and the audit \
                           signing key: without the token key the tokens in this backup cannot \
                           be opened (README: Backups)"
                .into(),
            public_key: signer.public_key(),
            signature: String::new(),
        };
        manifest.signature = signer.sign(&manifest.signed_bytes());
        let written = qbo_core::file_modes::create_secret_file(&manifest_path).and_then(|mut f| {
            use std::io::Write;
            serde_json::to_writer_pretty(&mut f, &manifest)?;
            f.write_all(b"\n")?;
            f.sync_all()
        });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&path);
            return Err(input(format!(
                "db backup: cannot write the manifest {}: {e}; the backup was removed",
                manifest_path.display()
            )));
        }
        let mut ev = AuditEvent::new(now, caller, Action::DatabaseBackup, Outcome::Ok);
        ev.reason = Some(format!(
            "backup {} ({bytes} bytes, sha256 {sha256}): schema {}, {} connections, audit head {}",
            path.display(),
            facts.schema_version,
            facts.connections,
            facts.audit_head_seq
        ));
        let tx = self.store().begin().await?;
        self.engine.commit_audited(tx, &[ev]).await?;
        Ok(BackupReport {
            path,
            manifest_path,
            manifest,
        })
    }

    /// The restore drill: what restoring `path` now would cost each connection, from the
    /// live database's records (its current and previous refresh tokens, and when the
    /// previous was replaced). Sends nothing to Intuit.
    pub async fn db_restore_check(&self, caller: &Actor, path: &str) -> Result<RestoreDrill> {
        self.authorize(caller, Permission::ManageDatabase, Action::RestoreCheck)
            .await?;
        let drill = self.restore_drill(Path::new(path)).await?;
        let mut ev = AuditEvent::new(drill.checked_at, caller, Action::RestoreCheck, Outcome::Ok);
        ev.reason = Some(format!("drill of {path}: {}", drill.summary()));
        let tx = self.store().begin().await?;
        self.engine.commit_audited(tx, &[ev]).await?;
        Ok(drill)
    }

    /// The drill itself, unrecorded (`db restore` records it with the restore).
    pub async fn restore_drill(&self, path: &Path) -> Result<RestoreDrill> {
        if !path.is_file() {
            return Err(input(format!(
                "{}: no such backup file (db backup FILE makes one)",
                path.display()
            )));
        }
        let (facts, rows) = qbo_store::read_backup(path).await.map_err(|e| {
            input(format!(
                "{} is not a readable qbo-console backup: {e:#}",
                path.display()
            ))
        })?;
        let live = self.store().stored_refresh_tokens().await?;
        let live_facts = self.store().backup_facts().await?;
        let now = self.engine.clock.now();
        Ok(drill(
            &self.engine.vault,
            path,
            &facts,
            &rows,
            &live,
            &live_facts,
            now,
        ))
    }
}

impl Service {
    /// Records a restore, as the first event of the restored chain after the backup's head.
    /// Only `db restore` calls it, on the restored database with the daemon stopped.
    pub async fn record_restore(&self, caller: &Actor, reason: String) -> Result<()> {
        self.authorize(caller, Permission::ManageDatabase, Action::DatabaseRestored)
            .await?;
        let mut ev = AuditEvent::new(
            self.engine.clock.now(),
            caller,
            Action::DatabaseRestored,
            Outcome::Ok,
        );
        ev.reason = Some(reason);
        let tx = self.store().begin().await?;
        self.engine.commit_audited(tx, &[ev]).await?;
        Ok(())
    }
}

/// Compares each backup connection's refresh token with the live one's current and
/// previous tokens (opened with the vault: a re-sealed token reads the same).
fn drill(
    vault: &qbo_core::vault::Vault,
    path: &Path,
    facts: &BackupFacts,
    rows: &[StoredRefresh],
    live: &[StoredRefresh],
    live_facts: &BackupFacts,
    now: DateTime<Utc>,
) -> RestoreDrill {
    let mut d = RestoreDrill {
        checked_at: now,
        backup: path.to_path_buf(),
        backup_schema_version: facts.schema_version,
        live: 0,
        recoverable: 0,
        lost: 0,
        gone: 0,
        without_token: 0,
        audit_events_missing: (live_facts.audit_head_seq - facts.audit_head_seq).max(0),
        items: Vec::new(),
    };
    let open = |id: i64, col: TokenColumn, sealed: &Option<Vec<u8>>| {
        sealed
            .as_deref()
            .and_then(|s| vault.open(id, col, s).ok())
            .map(|t| t.to_string())
    };
    for b in rows {
        let Some(token) = open(b.id, TokenColumn::Refresh, &b.refresh_token) else {
            d.without_token += 1;
            continue;
        };
        // Both read in id order: a search, not a scan per connection.
        let now_row = live
            .binary_search_by_key(&b.id, |l| l.id)
            .ok()
            .map(|i| &live[i]);
        let (verdict, replaced_at) = match now_row {
            None => (Verdict::Gone, None),
            Some(l)
                if open(l.id, TokenColumn::Refresh, &l.refresh_token).as_deref()
                    == Some(&token) =>
            {
                (Verdict::Live, None)
            }
            Some(l)
                if open(
                    l.id,
                    TokenColumn::PreviousRefresh,
                    &l.previous_refresh_token,
                )
                .as_deref()
                    == Some(&token) =>
            {
                match l.previous_refresh_replaced_at {
                    Some(at) if now - at < GRACE => (Verdict::Recoverable, Some(at)),
                    at => (Verdict::Lost, at),
                }
            }
            Some(_) => (Verdict::Lost, None),
        };
        match verdict {
            Verdict::Live => d.live += 1,
            Verdict::Recoverable => d.recoverable += 1,
            Verdict::Lost => d.lost += 1,
            Verdict::Gone => d.gone += 1,
        }
        d.items.push(DrillItem {
            connection_id: b.id,
            tenant: b.tenant.clone(),
            environment: b.environment,
            realm_id: b.realm_id.clone(),
            verdict,
            replaced_at,
        });
    }
    d
}

/// Checks a backup against its manifest: the file's SHA-256 and size, and the signature
/// (by `pubkey` when given, else the key the manifest names). Offline: no daemon.
pub fn verify_backup(path: &Path, pubkey: Option<&str>) -> Result<BackupManifest> {
    let mpath = manifest_of(path);
    let text =
        std::fs::read_to_string(&mpath).map_err(|e| input(format!("{}: {e}", mpath.display())))?;
    let m: BackupManifest = serde_json::from_str(&text)
        .map_err(|e| input(format!("{} is not a backup manifest: {e}", mpath.display())))?;
    if m.format != BACKUP_FORMAT {
        return Err(input(format!(
            "{}: format {:?}, expected {BACKUP_FORMAT:?}",
            mpath.display(),
            m.format
        )));
    }
    let (sha256, bytes) = digest(path).map_err(|e| input(format!("{}: {e}", path.display())))?;
    if sha256 != m.sha256 || bytes != m.bytes {
        return Err(input(format!(
            "{} does not match its manifest: sha256 {sha256} ({bytes} bytes), the manifest says {} ({} bytes)",
            path.display(),
            m.sha256,
            m.bytes
        )));
    }
    let key = parse_public_key(pubkey.unwrap_or(&m.public_key))
        .map_err(|e| input(format!("the public key: {e}")))?;
    if !signature_valid(&key, &m.signed_bytes(), &m.signature) {
        return Err(input(format!(
            "{}: the signature does not verify{}",
            mpath.display(),
            if pubkey.is_some() {
                " with the key given"
            } else {
                ""
            }
        )));
    }
    Ok(m)
}
