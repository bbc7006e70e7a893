//! `audit export` and `audit pubkey`: the log taken out of the ops box, with a manifest the
//! daemon signs over exactly the bytes it handed out. The caller streams the chunks (to a
//! file in this process, or as frames over the operators' socket) and then asks for the
//! manifest, which is only given once the export is on record.

use super::{Result, Service, ServiceError};
use qbo_core::identity::{Actor, Permission};
use qbo_store::audit::export::signed_manifest;
use qbo_store::audit::export::{ExportFilter, ExportFormat, ExportStream, Manifest};
use qbo_store::audit::signing::ManifestSigner;
use qbo_store::audit::Action;
use serde::{Deserialize, Serialize};

/// One frame of an export over the operators' socket. A `data` frame's line is followed
/// by exactly `len` raw bytes of the file; the `manifest` frame ends the export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExportFrame {
    Data {
        len: u64,
        /// Rows streamed so far, for the client's progress line.
        rows: u64,
    },
    Manifest {
        manifest: Box<Manifest>,
    },
}

/// The fix for an installation without a signing key, named wherever one is needed.
pub(crate) fn no_signing_key() -> ServiceError {
    ServiceError::Input(
        "exports are signed, but the daemon has no signing key: create one with `qbo-console keys generate --out /etc/qbo-console/audit-signing.key` and name it in [audit] signing_key_file, then restart the daemon".into(),
    )
}

impl Service {
    pub(crate) fn signer(&self) -> Result<&ManifestSigner> {
        self.signer.as_deref().ok_or_else(no_signing_key)
    }

    /// Checks the caller's role (a refusal is recorded), the filter and the signing key,
    /// and starts reading at the chain head as it is now.
    pub async fn audit_export_begin(
        &self,
        caller: &Actor,
        filter: ExportFilter,
        format: ExportFormat,
    ) -> Result<ExportStream> {
        self.authorize(caller, Permission::ReadAudit, Action::AuditExport)
            .await?;
        let filter = filter
            .normalized(self.engine.clock.now())
            .map_err(|e| ServiceError::Input(e.0))?;
        self.signer()?;
        Ok(ExportStream::begin(self.store(), filter, format).await?)
    }

    /// Signs the manifest over what was streamed, and records the export; the manifest is
    /// given only once the record is written (fail-closed: an export nobody can see in the
    /// log comes without the proof that makes it worth anything).
    pub async fn audit_export_finish(
        &self,
        caller: &Actor,
        stream: ExportStream,
    ) -> Result<Manifest> {
        let now = self.engine.clock.now();
        let m = signed_manifest(
            &stream.filter,
            stream.format,
            &stream.tally,
            now,
            caller,
            self.signer()?,
        )?;
        let range = match (m.first_seq, m.last_seq) {
            (Some(f), Some(l)) => format!("sequence {f}..{l}"),
            _ => "no events".into(),
        };
        let shown = format!(
            "exported {} events as {} ({}; {range}; sha256 {})",
            m.rows,
            m.file_format.as_str(),
            stream.filter.describe(),
            m.sha256
        );
        self.record_view(caller, Action::AuditExport, None, shown)
            .await?;
        Ok(m)
    }

    /// The key that verifies manifests, as `--pubkey` takes it.
    pub async fn audit_pubkey(&self, caller: &Actor) -> Result<String> {
        self.authorize(caller, Permission::ViewConnections, Action::AuditPubkey)
            .await?;
        let key = self.signer()?.public_key();
        self.record_view(caller, Action::AuditPubkey, None, format!("shown {key}"))
            .await?;
        Ok(key)
    }
}
