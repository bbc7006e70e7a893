//! A host application's service key, as `apikey list` shows it (never the key itself).

use crate::domain::Environment;
use chrono::{DateTime, Utc};

/// One stored key, without anything that would let someone use it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApiKeyRecord {
    pub id: i64,
    pub name: String,
    /// Realm ids the key may read; empty means every realm.
    pub realms: Vec<String>,
    /// The one environment the key may read; `None` means both.
    pub environment: Option<Environment>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub revoked_at: Option<DateTime<Utc>>,
}
