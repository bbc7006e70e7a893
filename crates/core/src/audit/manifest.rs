//! An export's manifest: what the file holds, who exported it, and the signature over
//! both. The store signs and checks it; everyone else reads it.

use super::export_filter::{ExportFilter, ExportFormat};
use crate::identity::Actor;
use serde::{Deserialize, Serialize};

/// The manifest's own format, named in it so a later change is told apart.
pub const MANIFEST_FORMAT: &str = "qbo-console audit export manifest 1";

/// Who exported: the account and role the daemon identified, never what a client claimed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedBy {
    pub account: String,
    pub uid: u32,
    pub role: String,
    pub interface: String,
}

impl ExportedBy {
    /// Exports are an operator's act; any other actor is named as the log names it, with
    /// no role.
    pub fn of(a: &Actor) -> ExportedBy {
        let who = a.stored();
        ExportedBy {
            account: who.account,
            uid: u32::try_from(who.uid).unwrap_or(u32::MAX),
            role: who.role,
            interface: who.interface,
        }
    }
}

/// Every field is covered by the signature: it is made over this struct serialized with
/// `signature` empty (struct order, no spaces), which the verifier rebuilds from the
/// parsed fields, so reformatting the file does not matter and changing a value does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    /// `jsonl` or `csv`.
    pub file_format: ExportFormat,
    pub filters: ExportFilter,
    /// True when no term picks rows by content: the file is one contiguous stretch of the
    /// chain, and its links are checked too.
    pub contiguous: bool,
    pub rows: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// The chain hash before the first row (that row's `prev_hash`).
    pub first_prev_hash: Option<String>,
    /// The chain hash of the last row.
    pub last_hash: Option<String>,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
    pub bytes: u64,
    /// When the export was made (RFC 3339, UTC).
    pub exported_at: String,
    pub exported_by: ExportedBy,
    /// The key that signed (`ed25519:` and base64), as `audit pubkey` prints it.
    pub public_key: String,
    /// Base64 Ed25519 signature over the rest.
    pub signature: String,
}

impl Manifest {
    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> serde_json::Result<Vec<u8>> {
        let mut copy = self.clone();
        copy.signature = String::new();
        let mut out = b"qbo-console audit export manifest\n".to_vec();
        serde_json::to_writer(&mut out, &copy)?;
        Ok(out)
    }

    /// The manifest as written beside the file.
    pub fn to_pretty(&self) -> serde_json::Result<String> {
        let mut s = serde_json::to_string_pretty(self)?;
        s.push('\n');
        Ok(s)
    }
}
