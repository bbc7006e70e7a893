//! What an interface may do before, or without, a daemon: read an import file it will
//! send, find the database file a daemon would lock, check an exported audit log. Each is
//! the layer below's own reading, with its error made the service's.

use crate::ServiceError;
use qbo_core::audit::FileReport;
use std::path::{Path, PathBuf};

/// An import file's text, read as the daemon would accept it (a regular file within the
/// limit); the error names the file and the fix.
pub fn read_import_file(path: &Path) -> Result<String, ServiceError> {
    qbo_engine::lifecycle::import::read_file(path).map_err(|e| ServiceError::Input(e.0))
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
