//! An alert the daemon sent or is sending, as `forecast` and the console list it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One outbox row: a message for one webhook and how its delivery went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct AlertDelivery {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub condition_key: String,
    pub event: String,
    pub webhook: String,
    pub text: String,
    #[serde(skip)]
    pub body: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}
