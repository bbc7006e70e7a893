//! The status model of a connection.
//!
//! ```text
//! pending ──consent──▶ active ◀──refresh ok── expiring (near the 5-year limit)
//!                        │  invalid_grant
//!                        ▼
//!                  needs_reconnect ──consent──▶ active
//! active/expiring/needs_reconnect ──revoke──▶ revoking ──Intuit confirms──▶ revoked
//! ```
//! Transient failures never change the status; they live in the failure counters.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created, waiting for the customer's first consent; holds no tokens.
    Pending,
    /// Tokens are live.
    Active,
    /// Live, but within the warning window of Intuit's 5-year hard limit.
    Expiring,
    /// Intuit answered invalid_grant: only the customer can bring it back.
    NeedsReconnect,
    /// A revoke was asked for and Intuit has not confirmed it yet.
    Revoking,
    /// Revoked at Intuit; local ciphertexts destroyed.
    Revoked,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Pending,
        Status::Active,
        Status::Expiring,
        Status::NeedsReconnect,
        Status::Revoking,
        Status::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Active => "active",
            Status::Expiring => "expiring",
            Status::NeedsReconnect => "needs_reconnect",
            Status::Revoking => "revoking",
            Status::Revoked => "revoked",
        }
    }

    /// Human wording with a symbol, so the state never depends on colour alone.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pending => "… pending",
            Status::Active => "✓ active",
            Status::Expiring => "⚠ expiring",
            Status::NeedsReconnect => "✗ needs reconnect",
            Status::Revoking => "… revoking",
            Status::Revoked => "– revoked",
        }
    }

    /// Whether the connection holds tokens that can be refreshed.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Active | Status::Expiring)
    }

    /// Whether a refresh may be attempted at all (manually, for a dead one).
    pub fn has_tokens(self) -> bool {
        matches!(
            self,
            Status::Active | Status::Expiring | Status::NeedsReconnect
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == norm)
            .ok_or_else(|| {
                format!(
                    "unknown status {s:?}: expected one of {}",
                    Status::ALL.map(|s| s.as_str()).join(", ")
                )
            })
    }
}
