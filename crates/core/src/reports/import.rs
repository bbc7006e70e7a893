//! What an import did, row by row.

use crate::domain::Environment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub rows: Vec<ImportedRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportedRow {
    pub line: usize,
    pub connection_id: i64,
    pub tenant: String,
    pub realm_id: String,
    pub environment: Environment,
    pub action: String,
}
