//! What an import did. Each row's own record is its audit event ("created from FILE line
//! N"), so the report stays the same size whatever the file's.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// The file as the caller named it.
    pub file: String,
    pub created: u64,
    pub updated: u64,
    /// The lines the first and the last imported rows start on.
    pub first_line: Option<usize>,
    pub last_line: Option<usize>,
    /// Rows that start before this line were left alone (`--from-line`); 1 when none were.
    pub from_line: usize,
}

/// The two readings of an import file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportPass {
    /// Every row read and checked; nothing written.
    Check,
    /// Every row read again and written, a batch per transaction.
    Write,
}

/// How far a reading has gone, for the progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportProgress {
    pub pass: ImportPass,
    /// Rows checked (or written) so far.
    pub rows: u64,
    /// Bytes of the file taken so far.
    pub bytes: u64,
}

/// What a finished reading counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportTally {
    pub rows: u64,
    /// Rows that make a new connection, and rows that replace an existing one's tokens
    /// (for the check: that would).
    pub created: u64,
    pub updated: u64,
    pub first_line: Option<usize>,
    pub last_line: Option<usize>,
}
