//! An export written to a file beside its manifest, whichever client streams it: what
//! `audit export` and the console's `e` share.

use super::{Client, ClientError, ExportSink};
use qbo_core::audit::{manifest_path, ExportFilter, ExportFormat, Manifest};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The file name an export gets when none is given: the time it was made, in the current
/// directory.
pub fn default_export_path(format: ExportFormat, now: chrono::DateTime<chrono::Utc>) -> PathBuf {
    PathBuf::from(format!(
        "audit-export-{}.{}",
        now.format("%Y%m%dT%H%M%SZ"),
        format.as_str()
    ))
}

struct FileSink<'p> {
    out: std::io::BufWriter<std::fs::File>,
    sha: Sha256,
    progress: &'p mut (dyn FnMut(u64) + Send),
}

impl ExportSink for FileSink<'_> {
    fn write(&mut self, bytes: &[u8], rows: u64) -> std::io::Result<()> {
        self.sha.update(bytes);
        self.out.write_all(bytes)?;
        (self.progress)(rows);
        Ok(())
    }
}

/// Streams the export into `path` (which must not exist, nor its manifest), then writes
/// `path.manifest.json`. On any failure both are removed: a file without its manifest
/// proves nothing and would only mislead. `progress` hears the row count per page.
pub async fn export_to_file(
    client: &dyn Client,
    filter: ExportFilter,
    format: ExportFormat,
    path: &Path,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Manifest, ClientError> {
    let mpath = manifest_path(path);
    for p in [path, mpath.as_path()] {
        if p.exists() {
            return Err(ClientError::Input(format!(
                "{} already exists; choose another file with -o or move it away (an export never overwrites)",
                p.display()
            )));
        }
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            ClientError::Input(format!(
                "cannot create {}: {e}; check the directory exists and is writable",
                path.display()
            ))
        })?;
    let mut sink = FileSink {
        out: std::io::BufWriter::with_capacity(1 << 20, file),
        sha: Sha256::new(),
        progress,
    };
    let result = async {
        let m = client.audit_export(filter, format, &mut sink).await?;
        let cannot = |e: std::io::Error, p: &Path| ClientError::Input(format!("cannot write {}: {e}", p.display()));
        sink.out.flush().map_err(|e| cannot(e, path))?;
        sink.out.get_ref().sync_all().map_err(|e| cannot(e, path))?;
        let got = qbo_core::vault::hex(&sink.sha.clone().finalize());
        if got != m.sha256 {
            return Err(ClientError::Protocol(format!(
                "the export arrived with SHA-256 {got} but the daemon signed {}; nothing was kept, run the export again",
                m.sha256
            )));
        }
        let text = m
            .to_pretty()
            .map_err(|e| ClientError::Internal(e.to_string()))?;
        let mut mf = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&mpath)
            .map_err(|e| cannot(e, &mpath))?;
        mf.write_all(text.as_bytes())
            .and_then(|()| mf.sync_all())
            .map_err(|e| cannot(e, &mpath))?;
        Ok(m)
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_file(&mpath);
    }
    result
}
