//! What a verification of the chain reports, for the database and an exported file
//! alike: the verdict, the first damage and every repair it walked past.

use super::catalogue::Action;
use super::damage::Damage;
use super::event::AuditRecord;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub events: i64,
    pub last_seq: i64,
    /// The first sequence number at which the chain is broken.
    pub first_bad_seq: Option<i64>,
    /// What kind of damage is found there.
    #[serde(default)]
    pub kind: Option<Damage>,
    pub problem: Option<String>,
    /// When older events were archived ([retention] audit_days): the last archived
    /// sequence number, from whose hash the chain in the database continues.
    #[serde(default)]
    pub archived_through: Option<i64>,
    /// Every `chain repaired` event in the chain walked (`audit quarantine`), with the
    /// hashes of the rows it removed, so a repair is never silent.
    #[serde(default)]
    pub repairs: Vec<RepairNote>,
    /// Set when the verdict was reached but the read could not be recorded in the log
    /// (a blocked chain, a full disk): why. The verdict still stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_not_recorded: Option<String>,
}

/// A `chain repaired` event as a verification lists it: who repaired, when, and what was
/// removed (the event's reason, which holds every removed row's hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairNote {
    pub seq: i64,
    pub at: String,
    pub actor_account: String,
    pub role: String,
    pub reason: String,
}

impl RepairNote {
    /// The note for `r`, when it is a `chain repaired` event.
    pub fn of(r: &AuditRecord) -> Option<RepairNote> {
        (r.action == Action::ChainRepaired.as_str()).then(|| RepairNote {
            seq: r.seq,
            at: r.at.clone(),
            actor_account: r.actor_account.clone(),
            role: r.role.clone(),
            reason: r.reason.clone().unwrap_or_default(),
        })
    }
}

/// What `audit verify --export FILE` finds in an exported file, checked offline against
/// its manifest and signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReport {
    pub ok: bool,
    pub file: String,
    pub rows: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    pub contiguous: bool,
    /// The key the manifest is signed by.
    pub public_key: String,
    /// Whether that key was the one given with `--pubkey` (otherwise only the manifest's
    /// own key was checked, which proves integrity but not who signed).
    pub key_given: bool,
    pub first_bad_seq: Option<i64>,
    pub kind: Option<Damage>,
    pub problem: Option<String>,
    /// The `chain repaired` events in the file (`audit quarantine`): who moved which rows
    /// out of the chain, with their hashes, so a repair is seen wherever the log is read.
    #[serde(default)]
    pub repairs: Vec<RepairNote>,
}

/// What a quarantine moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineReport {
    /// How many rows were moved to `audit_quarantine`.
    pub removed: i64,
    pub from_seq: i64,
    pub through_seq: i64,
    /// Each removed row's sequence number and hash.
    pub removed_hashes: Vec<RemovedRow>,
    /// Of the removed rows, those with a valid hash linked to the row before them.
    pub linked: i64,
    /// The head the chain continues from.
    pub head_seq: i64,
    pub head_hash: String,
    /// The `chain repaired` event.
    pub repair_seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedRow {
    pub seq: i64,
    pub hash: String,
}

impl QuarantineReport {
    /// The `chain repaired` event's reason: everything an auditor needs to see that
    /// nothing was hidden, every removed row's hash included.
    pub fn describe(&self) -> String {
        let hashes: Vec<String> = self
            .removed_hashes
            .iter()
            .map(|r| format!("{}={}", r.seq, r.hash))
            .collect();
        let linked = match self.linked {
            0 => "none of them linked to the chain".to_string(),
            n => format!(
                "{n} of them had a valid hash linked to the row before (they may be genuine events whose head was lost, as in a restore)"
            ),
        };
        format!(
            "moved {} row(s) stored past the chain head to audit_quarantine (kept there): sequence {}..{} (damage: inserted); \
             {linked}; removed hashes: {}; the chain continues from sequence {} (hash {})",
            self.removed,
            self.from_seq,
            self.through_seq,
            hashes.join(" "),
            self.head_seq,
            self.head_hash
        )
    }
}
