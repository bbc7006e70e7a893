//! A page of the log, newest first, and the query that asks for it: what the console's
//! audit view scrolls through and `audit tail` filters by.

use super::event::AuditRecord;
use serde::{Deserialize, Serialize};

/// The most events one page may ask for.
pub const MAX_PAGE: i64 = 1000;

/// Which page of the log, and what it is narrowed to. Each text matches as a
/// case-insensitive substring (`actor: "ali"` finds alice), the way the console's filter
/// matches as it is typed; several narrow together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Only events older than this sequence number: the page after one already read.
    #[serde(default)]
    pub before_seq: Option<i64>,
    pub limit: i64,
    #[serde(default)]
    pub tenant: Option<String>,
    /// The operator's account (or the scheduler's, the token API's).
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    /// ok, failed or denied.
    #[serde(default)]
    pub outcome: Option<String>,
}

impl AuditQuery {
    /// The narrowing terms, as `field~text` words, for the record of who read what.
    pub fn describe(&self) -> String {
        describe_terms(
            "~",
            &[
                ("tenant", &self.tenant),
                ("actor", &self.actor),
                ("action", &self.action),
                ("outcome", &self.outcome),
            ],
        )
    }
}

/// Filter terms as `field{op}"value"` words (the ones set), or "all events": how the log
/// records which slice a caller read or exported.
pub(super) fn describe_terms(op: &str, terms: &[(&str, &Option<String>)]) -> String {
    let words: Vec<String> = terms
        .iter()
        .filter_map(|(f, v)| v.as_ref().map(|v| format!("{f}{op}{v:?}")))
        .collect();
    if words.is_empty() {
        "all events".into()
    } else {
        words.join(" ")
    }
}

/// One page, newest first. `next_before_seq` asks for the page after it; `None` when this
/// one reached the oldest event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub events: Vec<AuditRecord>,
    pub next_before_seq: Option<i64>,
}
