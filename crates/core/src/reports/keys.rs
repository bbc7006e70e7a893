//! What `keys status` and `keys rotate` report: which keys seal what, and what a rotation did.

use crate::vault::FingerprintKeySource;
use serde::{Deserialize, Serialize};

/// Which keys seal what, for `keys status`. Key ids only, never key material.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyStatus {
    /// The key new values are sealed with.
    pub current_key_id: String,
    /// Older keys configured for opening.
    pub old_key_ids: Vec<String>,
    pub fingerprint_key_id: String,
    pub fingerprint_key: FingerprintKeySource,
    /// Every key id found in the database, current first.
    pub keys: Vec<KeyUse>,
    /// Whether every stored value is sealed under the current key.
    pub rotation_complete: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyUse {
    pub key_id: String,
    /// `current`, `old` (configured for opening) or `unknown` (not configured: those
    /// values cannot be opened).
    pub role: String,
    pub connections: i64,
    pub values: i64,
}

/// What a rotation did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RotationReport {
    pub key_id: String,
    /// Connections re-sealed by this run.
    pub resealed: usize,
    /// Connections that were left for an earlier run or already under the key.
    pub already_current: usize,
    /// Connections whose values would not open (damaged, or under a key that is not
    /// configured), with the reason; the rotation is incomplete while any remain.
    pub failed: Vec<RotationFailure>,
    pub complete: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RotationFailure {
    pub connection_id: i64,
    pub detail: String,
}
