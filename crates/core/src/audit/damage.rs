//! The kinds of damage a verification names, the same words for the database and for an
//! exported file, so an auditor reads one vocabulary.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Damage {
    /// An event's content no longer matches its hash.
    Changed,
    /// An event is absent from the middle of the chain.
    Missing,
    /// An event that does not belong to the chain sits in it (or past its end).
    Inserted,
    /// Genuine events are out of order.
    Reordered,
    /// The chain stops before its recorded end.
    Truncated,
    /// The manifest's signature is not that key's (or does not match the manifest).
    NotSigned,
    /// The file's SHA-256 is not the one its manifest records.
    HashMismatch,
}

impl Damage {
    pub fn as_str(self) -> &'static str {
        match self {
            Damage::Changed => "changed",
            Damage::Missing => "missing",
            Damage::Inserted => "inserted",
            Damage::Reordered => "reordered",
            Damage::Truncated => "truncated",
            Damage::NotSigned => "not signed",
            Damage::HashMismatch => "hash mismatch",
        }
    }
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
