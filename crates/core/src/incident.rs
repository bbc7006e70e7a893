//! Incidents: many connections of one environment failing at Intuit the same way at the
//! same time, seen as one thing. What an incident is about (its class and scope) and what
//! `incidents` shows of one. The detection and the circuit breaker are the scheduler's.

use crate::domain::{Environment, ErrorClass, InvalidValue};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How Intuit failed. Only failures that are Intuit's (or our credentials') count: a dead
/// grant or a customer's disconnect is that customer's alone and never part of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentClass {
    /// 5xx answers.
    ServerError,
    /// 429 answers.
    RateLimited,
    /// Timeouts, refused or cut connections.
    Unreachable,
    /// Answers that are not what Intuit's protocol says (truncated JSON, HTML).
    Garbled,
    /// Intuit rejected our client id and secret: about us, not Intuit.
    InvalidClient,
}

impl IncidentClass {
    pub const ALL: [IncidentClass; 5] = [
        IncidentClass::ServerError,
        IncidentClass::RateLimited,
        IncidentClass::Unreachable,
        IncidentClass::Garbled,
        IncidentClass::InvalidClient,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentClass::ServerError => "server_error",
            IncidentClass::RateLimited => "rate_limited",
            IncidentClass::Unreachable => "unreachable",
            IncidentClass::Garbled => "garbled",
            IncidentClass::InvalidClient => "invalid_client",
        }
    }

    /// What is happening, in words, for banners and alerts.
    pub fn words(self) -> &'static str {
        match self {
            IncidentClass::ServerError => "Intuit answering 5xx",
            IncidentClass::RateLimited => "Intuit rate limiting (429)",
            IncidentClass::Unreachable => "Intuit unreachable or timing out",
            IncidentClass::Garbled => "Intuit answering garbage",
            IncidentClass::InvalidClient => "Intuit rejecting OUR client credentials",
        }
    }

    /// Whether the incident is about our own configuration rather than Intuit.
    pub fn is_ours(self) -> bool {
        self == IncidentClass::InvalidClient
    }

    /// The class of a failure as the engine recorded it (its error class and detail), or
    /// `None` for a failure that is the connection's own.
    pub fn of_failure(class: ErrorClass, detail: &str) -> Option<IncidentClass> {
        match class {
            ErrorClass::InvalidGrant | ErrorClass::Other => None,
            ErrorClass::InvalidClient => Some(IncidentClass::InvalidClient),
            ErrorClass::RateLimited => Some(IncidentClass::RateLimited),
            ErrorClass::Transient => Some(
                match crate::present::failure(Some("transient"), Some(detail)).as_str() {
                    "garbled" => IncidentClass::Garbled,
                    "timed out" | "unreachable" | "cut off" => IncidentClass::Unreachable,
                    _ => IncidentClass::ServerError,
                },
            ),
        }
    }
}

impl std::fmt::Display for IncidentClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for IncidentClass {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        IncidentClass::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| InvalidValue(format!("unknown incident class {s:?}")))
    }
}

/// Which of Intuit's services an incident is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// The OAuth token endpoint (refreshes).
    Token,
    /// The revoke endpoint.
    Revoke,
    /// The accounting API (verify's CompanyInfo).
    Accounting,
}

impl Endpoint {
    pub const ALL: [Endpoint; 3] = [Endpoint::Token, Endpoint::Revoke, Endpoint::Accounting];

    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Token => "token",
            Endpoint::Revoke => "revoke",
            Endpoint::Accounting => "accounting",
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Endpoint {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        Endpoint::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| InvalidValue(format!("unknown endpoint {s:?}")))
    }
}

/// An incident as `incidents` lists it and the console's banner names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: i64,
    pub environment: Environment,
    pub endpoint: Endpoint,
    pub class: IncidentClass,
    /// The first failure of the window that opened it.
    pub started_at: DateTime<Utc>,
    /// When probes found Intuit well again; `None` while it lasts.
    pub ended_at: Option<DateTime<Utc>>,
    /// Connections whose refreshes failed with it.
    pub connections: u64,
    /// A few of Intuit's `intuit_tid`s from failed calls, for Intuit's support.
    pub sample_tids: Vec<String>,
    /// One failure's detail, as Intuit answered.
    pub detail: String,
}

/// Whether a member's failures are still an incident's: while it lasts, and after it until
/// the connection is tried again (a failure after the end is its own problem).
pub fn still_holds(
    ended_at: Option<DateTime<Utc>>,
    last_refresh_at: Option<DateTime<Utc>>,
) -> bool {
    match (ended_at, last_refresh_at) {
        (None, _) | (Some(_), None) => true,
        (Some(end), Some(last)) => last <= end,
    }
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.ended_at.is_none()
    }

    /// Whether it holds back the daemon's calls to `endpoint`: open, there, and Intuit's (an
    /// incident about our own credentials pauses the environment another way).
    pub fn holds_back(&self, endpoint: Endpoint) -> bool {
        self.is_open() && self.endpoint == endpoint && !self.class.is_ours()
    }

    /// One line: what, where, since when, how many.
    pub fn headline(&self) -> String {
        let scope = format!("{} {} endpoint", self.environment, self.endpoint);
        let span = match self.ended_at {
            None => format!("since {}", self.started_at.format("%Y-%m-%d %H:%M UTC")),
            Some(end) => format!(
                "{} to {}",
                self.started_at.format("%Y-%m-%d %H:%M"),
                end.format("%H:%M UTC")
            ),
        };
        format!(
            "incident {}: {} ({scope}) {span}, {} connection{}",
            self.id,
            self.class.words(),
            self.connections,
            if self.connections == 1 { "" } else { "s" }
        )
    }

    /// What to do about it, in one sentence.
    pub fn remedy(&self) -> String {
        if self.class.is_ours() {
            format!(
                "fix client_id / client_secret in [environments.{}] and restart the daemon: \
                 no customer is at fault and none is marked dead",
                self.environment
            )
        } else if self.endpoint == Endpoint::Revoke {
            "nothing to do per tenant: the daemon has paused this environment's revoke retries \
             and probes Intuit's revoke endpoint; the tenants stay `revoking` (their tokens kept \
             sealed, never used) until Intuit confirms, and when it recovers every retry is due \
             at once. Quote the sample intuit_tids to Intuit's support if it lasts"
                .into()
        } else if self.endpoint == Endpoint::Accounting {
            "nothing to do per connection: the daemon has paused this environment's health \
             checks and probes Intuit's accounting API (refreshes go on, tokens stay alive); \
             when it recovers the companies it failed on are checked again at once. The host \
             app's syncs fail meanwhile: quote the sample intuit_tids to Intuit's support if it lasts"
                .into()
        } else {
            "nothing to do per connection: the scheduler has paused this environment's \
             refreshes and probes Intuit; when Intuit recovers it catches up, most urgent first. \
             Quote the sample intuit_tids to Intuit's support if it lasts"
                .into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_intuits_failures_and_ours_are_incident_classes() {
        use IncidentClass as I;
        let of = IncidentClass::of_failure;
        assert_eq!(of(ErrorClass::InvalidGrant, "x"), None);
        assert_eq!(of(ErrorClass::Other, "x"), None);
        assert_eq!(of(ErrorClass::Transient, "HTTP 503"), Some(I::ServerError));
        assert_eq!(
            of(ErrorClass::Transient, "timed out waiting for Intuit"),
            Some(I::Unreachable)
        );
        assert_eq!(
            of(ErrorClass::Transient, "could not connect to Intuit"),
            Some(I::Unreachable)
        );
        assert_eq!(
            of(ErrorClass::RateLimited, "HTTP 429"),
            Some(I::RateLimited)
        );
        assert_eq!(of(ErrorClass::InvalidClient, ""), Some(I::InvalidClient));
        for c in IncidentClass::ALL {
            assert_eq!(c.as_str().parse::<IncidentClass>().unwrap(), c);
        }
    }
}
