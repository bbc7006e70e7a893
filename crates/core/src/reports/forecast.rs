//! What the forecast finds: each connection at risk, when, why and what to do.

use crate::domain::{Environment, RealmId, Status};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Why a connection is at risk. Listed in order of gravity: on the same date the graver
/// one comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Intuit answered invalid_grant: it is already dead.
    NeedsReconnect,
    /// The API refuses freshly refreshed tokens (401 fault 3200/3201).
    CustomerDisconnected,
    /// Its environment is paused: Intuit rejected our client credentials.
    CredentialsRejected,
    /// Refreshes keep failing, so the refresh token lapses after 100 days unused.
    RefreshFailing,
    /// Intuit's 5-year limit from the original consent.
    HardLimit,
    /// No successful sync for `[forecast] no_sync_days`.
    NoSync,
    /// A reconnect link sent `[forecast] link_unused_days` ago is still open, unused.
    LinkUnused,
    /// The latest reconnect link expired unused and the connection is still dead.
    LinkExpired,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::NeedsReconnect => "needs_reconnect",
            Risk::CustomerDisconnected => "customer_disconnected",
            Risk::CredentialsRejected => "credentials_rejected",
            Risk::RefreshFailing => "refresh_failing",
            Risk::HardLimit => "hard_limit",
            Risk::NoSync => "no_sync",
            Risk::LinkUnused => "link_unused",
            Risk::LinkExpired => "link_expired",
        }
    }
}

impl std::fmt::Display for Risk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the forecast: one risk of one connection. A connection at risk in two
/// ways has two lines (a refresh failing for weeks has usually stopped its syncs too),
/// each with its own date and its own remedy; alerts track them one by one as well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForecastItem {
    pub connection_id: i64,
    pub tenant: String,
    pub realm_id: RealmId,
    pub environment: Environment,
    pub status: Status,
    pub date: DateTime<Utc>,
    pub risk: Risk,
    pub reason: String,
    pub action: String,
}

/// The forecast as `forecast` prints it and the console shows it, with the last alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forecast {
    pub generated_at: DateTime<Utc>,
    pub days: u32,
    /// The soonest items, soonest first: all of them, or as many as were asked for.
    pub items: Vec<ForecastItem>,
    /// Every item found, shown or not.
    #[serde(default)]
    pub count: u64,
    /// How many items of each risk were found.
    #[serde(default)]
    pub by_risk: std::collections::BTreeMap<String, u64>,
    /// The newest alert deliveries, newest first.
    #[serde(default)]
    pub alerts: Vec<super::AlertDelivery>,
}

/// One frame of a streamed forecast (`forecast --json`): where and when it was made, its
/// items a page at a time in connection order, then the counts and the last alerts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ForecastFrame {
    Head {
        generated_at: DateTime<Utc>,
        days: u32,
    },
    Items {
        items: Vec<ForecastItem>,
    },
    End {
        count: u64,
        by_risk: std::collections::BTreeMap<String, u64>,
        alerts: Vec<super::AlertDelivery>,
    },
}
