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

/// What a group of risks has in common: one cause, read as one heading with its count and
/// its one remedy (`forecast`, the console's `F`). Finer than [`Risk`] where the remedy
/// differs: a refresh failing because Intuit is failing is waited out, one failing for any
/// other reason is fixed here. In order of gravity, as the groups are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Intuit refused the refresh token (invalid_grant).
    DeadGrant,
    /// The customer disconnected the app inside QuickBooks.
    CustomerDisconnected,
    /// Intuit rejected our client credentials for the environment.
    OurCredentials,
    /// Refreshes failing at Intuit: 5xx, 429, timeouts, garbled answers.
    IntuitFailing,
    /// Refreshes failing for any other reason.
    RefreshError,
    /// Intuit's 5-year limit from the original consent.
    FiveYearLimit,
    /// No successful sync for `[forecast] no_sync_days`.
    NoSync,
    /// A reconnect link sent and not used.
    LinkUnused,
    /// The latest reconnect link expired unused.
    LinkExpired,
}

impl Cause {
    pub const ALL: [Cause; 9] = [
        Cause::DeadGrant,
        Cause::CustomerDisconnected,
        Cause::OurCredentials,
        Cause::IntuitFailing,
        Cause::RefreshError,
        Cause::FiveYearLimit,
        Cause::NoSync,
        Cause::LinkUnused,
        Cause::LinkExpired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::DeadGrant => "dead_grant",
            Cause::CustomerDisconnected => "customer_disconnected",
            Cause::OurCredentials => "our_credentials",
            Cause::IntuitFailing => "intuit_failing",
            Cause::RefreshError => "refresh_error",
            Cause::FiveYearLimit => "five_year_limit",
            Cause::NoSync => "no_sync",
            Cause::LinkUnused => "link_unused",
            Cause::LinkExpired => "link_expired",
        }
    }

    /// The group's heading, in words.
    pub fn title(self) -> &'static str {
        match self {
            Cause::DeadGrant => "Intuit refused the refresh token: the customer must reconnect",
            Cause::CustomerDisconnected => "the customer disconnected the app in QuickBooks",
            Cause::OurCredentials => "Intuit rejected our client credentials",
            Cause::IntuitFailing => "refreshes failing at Intuit (5xx, 429, timeouts)",
            Cause::RefreshError => "refreshes failing for another reason",
            Cause::FiveYearLimit => "Intuit's 5-year limit from the original consent",
            Cause::NoSync => "no successful sync",
            Cause::LinkUnused => "a reconnect link sent and not used",
            Cause::LinkExpired => "the reconnect link expired unused",
        }
    }

    /// The one thing that saves the group's connections.
    pub fn remedy(self) -> &'static str {
        match self {
            Cause::DeadGrant => {
                "send each customer a reconnect link (`l` on the row, `qbo-console link TENANT`): only they can authorize the app again"
            }
            Cause::CustomerDisconnected => {
                "ask the customer whether they meant to disconnect; send a reconnect link"
            }
            Cause::OurCredentials => {
                "fix client_id / client_secret in the environment's [environments.*] section and restart the daemon"
            }
            Cause::IntuitFailing => {
                "check Intuit's status and this host's route to Intuit: the daemon keeps retrying, and one refresh that succeeds saves each"
            }
            Cause::RefreshError => {
                "read the last error (`qbo-console show TENANT`), fix its cause, then `qbo-console refresh` it"
            }
            Cause::FiveYearLimit => {
                "send a reconnect link before the date: no refresh extends this limit"
            }
            Cause::NoSync => {
                "run `qbo-console verify` and fix what it reports (the host app, Intuit or the customer)"
            }
            Cause::LinkUnused => "call the customer; or cancel the link and send a new one",
            Cause::LinkExpired => "call the customer and send a new link",
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One group of the forecast: its cause, heading, remedy and how many risks it holds (of
/// every one found, shown or not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CauseSummary {
    pub cause: Cause,
    pub title: String,
    pub remedy: String,
    pub count: u64,
}

impl CauseSummary {
    /// The groups of `counts` (how many risks of each cause), gravest first, empty ones left
    /// out.
    pub fn of(counts: &std::collections::BTreeMap<Cause, u64>) -> Vec<CauseSummary> {
        counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| CauseSummary {
                cause: *c,
                title: c.title().to_string(),
                remedy: c.remedy().to_string(),
                count: *n,
            })
            .collect()
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
    /// The group it is listed under, with that group's remedy.
    pub cause: Cause,
    pub reason: String,
    /// What saves this connection, in its own terms (a date, a link number).
    pub action: String,
    /// The Intuit incident its failures belong to (`incidents show ID`): while it lasts,
    /// and after it until the connection fails again on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<i64>,
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
    /// The groups, gravest first: each cause's heading, remedy and count of every item.
    #[serde(default)]
    pub causes: Vec<CauseSummary>,
    /// The newest alert deliveries, newest first.
    #[serde(default)]
    pub alerts: Vec<super::AlertDelivery>,
}

/// One group of a forecast's items: those of one cause, soonest first, and how many that
/// cause has in all (shown or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group<'a> {
    pub cause: Cause,
    pub count: u64,
    pub items: Vec<&'a ForecastItem>,
}

impl Forecast {
    /// The items by cause, gravest cause first, each group soonest first: what `forecast`
    /// prints and the console's forecast view shows.
    pub fn groups(&self) -> Vec<Group<'_>> {
        let mut groups: Vec<Group<'_>> = Vec::new();
        for cause in Cause::ALL {
            let items: Vec<&ForecastItem> =
                self.items.iter().filter(|i| i.cause == cause).collect();
            let counted = self
                .causes
                .iter()
                .find(|c| c.cause == cause)
                .map_or(0, |c| c.count);
            if !items.is_empty() {
                groups.push(Group {
                    cause,
                    count: counted.max(items.len() as u64),
                    items,
                });
            }
        }
        groups
    }
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
        causes: Vec<CauseSummary>,
        alerts: Vec<super::AlertDelivery>,
    },
}
