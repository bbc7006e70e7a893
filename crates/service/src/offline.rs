//! What an interface may do before, or without, a daemon: open an import file it will
//! send, find the database file a daemon would lock, check an exported audit log. Each is
//! the layer below's own reading, with its error made the service's.

use crate::ServiceError;
use qbo_core::audit::FileReport;
use std::path::{Path, PathBuf};

/// An import file opened for sending (a regular file), with its size; the error names the
/// file and the fix.
pub fn open_import_file(path: &Path) -> Result<(std::fs::File, u64), ServiceError> {
    qbo_engine::lifecycle::import::open_file(path).map_err(|e| ServiceError::Input(e.0))
}

/// The SQLite file a database URL names, or `None` for PostgreSQL.
pub fn sqlite_file(url: &str) -> Result<Option<PathBuf>, ServiceError> {
    qbo_store::sqlite_file(url).map_err(|e| ServiceError::Input(e.0))
}

/// Checks an exported audit log against its manifest and signature, offline: with the
/// public key alone, no database and no daemon.
pub fn verify_export_file(file: &Path, pubkey: Option<&str>) -> Result<FileReport, ServiceError> {
    qbo_store::audit::export::offline::verify_export(file, pubkey)
        .map_err(|e| ServiceError::Input(e.0))
}
