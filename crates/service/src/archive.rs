//! `[retention] audit_days`: events older than that are written to an archive in
//! `[retention] archive_dir` (a JSON-lines export with its signed manifest), the archive is
//! read back and verified, and only then are the events removed, in the transaction that
//! records the archived head. The daemon does this once a day; `audit archive` (admin) does
//! it now.

use super::{Result, Service, ServiceError};
use chrono::{Duration as ChronoDuration, SecondsFormat};
use qbo_core::identity::{Actor, Permission};
use qbo_store::audit::export::signed_manifest;
use qbo_store::audit::export::{
    manifest_path, offline, ExportFilter, ExportFormat, ExportStream, Manifest,
};
use qbo_store::audit::retention::ArchiveRecord;
use qbo_store::audit::{Action, AuditEvent, Outcome};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveReport {
    pub audit_days: u32,
    /// Events stamped before this were due.
    pub before: String,
    /// How many events were archived and removed (0: nothing was due).
    pub archived: u64,
    /// The archived head the chain in the database now continues from.
    pub through_seq: Option<i64>,
    pub file: Option<String>,
    pub manifest: Option<String>,
    pub sha256: Option<String>,
}

impl Service {
    /// `audit archive`: an admin archives now what is due.
    pub async fn audit_archive(&self, caller: &Actor) -> Result<ArchiveReport> {
        self.authorize(caller, Permission::Revoke, Action::AuditArchive)
            .await?;
        self.archive_due_events(caller).await
    }

    /// Archives what `[retention] audit_days` makes due, as `caller` (the daemon's own
    /// account on its daily run). A failure is recorded as `failed` and nothing is removed.
    pub async fn archive_due_events(&self, caller: &Actor) -> Result<ArchiveReport> {
        let (Some(days), Some(dir)) = (
            self.retention.audit_days,
            self.retention.archive_dir.clone(),
        ) else {
            return Err(ServiceError::Input(
                "[retention] audit_days is not set, so audit events are kept forever; set audit_days and archive_dir to archive older ones".into(),
            ));
        };
        self.signer()?;
        let now = self.engine.clock.now();
        let before = (now - ChronoDuration::days(i64::from(days)))
            .to_rfc3339_opts(SecondsFormat::Micros, true);
        let mut report = ArchiveReport {
            audit_days: days,
            before: before.clone(),
            archived: 0,
            through_seq: None,
            file: None,
            manifest: None,
            sha256: None,
        };
        let after = self
            .store()
            .archived_head()
            .await?
            .map_or(0, |h| h.through_seq);
        let through = match self.store().last_seq_before(&before).await? {
            Some(t) if t > after => t,
            _ => return Ok(report),
        };
        match self
            .write_archive(caller, &dir, &before, after, through)
            .await
        {
            Ok((path, m)) => {
                let text = m.to_pretty().map_err(anyhow::Error::from)?;
                let file = path.display().to_string();
                let last_hash = m.last_hash.clone().unwrap_or_default();
                let mut tx = self.store().begin().await?;
                let removed = tx
                    .archive_through(&ArchiveRecord {
                        through_seq: through,
                        through_hash: &last_hash,
                        archived_at: &m.exported_at,
                        file: &file,
                        sha256: &m.sha256,
                        manifest: &text,
                    })
                    .await?;
                let mut ev = AuditEvent::new(now, caller, Action::AuditArchive, Outcome::Ok);
                ev.reason = Some(format!(
                    "archived {removed} events (sequence {}..{through}, older than {days} days) to {file} (sha256 {}); the chain continues from sequence {through}, hash {last_hash}",
                    after + 1,
                    m.sha256
                ));
                self.engine.commit_audited(tx, &[ev]).await?;
                report.archived = removed;
                report.through_seq = Some(through);
                report.manifest = Some(manifest_path(&path).display().to_string());
                report.file = Some(file);
                report.sha256 = Some(m.sha256);
                Ok(report)
            }
            Err(e) => {
                let mut ev = AuditEvent::new(now, caller, Action::AuditArchive, Outcome::Failed);
                ev.reason = Some(format!("nothing removed: {e}"));
                let tx = self.store().begin().await?;
                self.engine.commit_audited(tx, &[ev]).await?;
                Err(e)
            }
        }
    }

    /// Writes events `after+1..=through` with their manifest, and reads them back.
    async fn write_archive(
        &self,
        caller: &Actor,
        dir: &Path,
        before: &str,
        after: i64,
        through: i64,
    ) -> Result<(PathBuf, Manifest)> {
        let filter = ExportFilter {
            until: Some(before.to_string()),
            ..ExportFilter::default()
        };
        let mut stream = ExportStream::begin(self.store(), filter, ExportFormat::Jsonl)
            .await?
            .after(after)
            .upto(through);
        let path = dir.join(format!("audit-{:012}-{through:012}.jsonl", after + 1));
        let cannot = |e: std::io::Error, p: &Path| {
            ServiceError::Internal(anyhow::anyhow!(
                "cannot write the audit archive {}: {e}; check [retention] archive_dir exists and the daemon may write there",
                p.display()
            ))
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| cannot(e, &path))?;
        while let Some(chunk) = stream.next_chunk().await? {
            file.write_all(&chunk).map_err(|e| cannot(e, &path))?;
        }
        file.sync_all().map_err(|e| cannot(e, &path))?;
        let m = signed_manifest(
            &stream.filter,
            stream.format,
            &stream.tally,
            self.engine.clock.now(),
            caller,
            self.signer()?,
        )?;
        let mp = manifest_path(&path);
        let mut mf = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&mp)
            .map_err(|e| cannot(e, &mp))?;
        mf.write_all(m.to_pretty().map_err(anyhow::Error::from)?.as_bytes())
            .and_then(|()| mf.sync_all())
            .map_err(|e| cannot(e, &mp))?;
        // Read back before anything is removed: the archive must prove itself first.
        let check = offline::verify_export(&path, Some(&m.public_key))
            .map_err(|e| ServiceError::Internal(anyhow::anyhow!(e)))?;
        if !check.ok || check.rows != (through - after) as u64 {
            return Err(ServiceError::Internal(anyhow::anyhow!(
                "the audit archive {} does not verify ({}); nothing was removed",
                path.display(),
                check.problem.unwrap_or_else(|| format!(
                    "{} of {} events",
                    check.rows,
                    through - after
                ))
            )));
        }
        Ok((path, m))
    }
}
