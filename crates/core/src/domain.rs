//! Small value types shared by every layer: which Intuit environment, which company, what
//! state a connection is in and how its last refresh and sync went.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A value that is not one of the domain's words or shapes (an environment, a status, a
/// realm id), already phrased for the person who typed or stored it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

impl From<String> for InvalidValue {
    fn from(s: String) -> Self {
        InvalidValue(s)
    }
}

impl From<&str> for InvalidValue {
    fn from(s: &str) -> Self {
        InvalidValue(s.to_string())
    }
}

/// Longest tenant or company name kept, in characters. An import over it is refused; a
/// longer company name from Intuit's CompanyInfo is stored cut to it.
pub const MAX_NAME_CHARS: usize = 200;

/// An Intuit key set. A connection belongs to exactly one; its keys and redirect URI are
/// never used with the other (INTUIT.md, "Apps, environments, keys").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Sandbox,
    Production,
}

impl Environment {
    pub const ALL: [Environment; 2] = [Environment::Sandbox, Environment::Production];

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::Production => "production",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Environment {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sandbox" => Ok(Environment::Sandbox),
            "production" => Ok(Environment::Production),
            other => Err(InvalidValue::from(format!(
                "unknown environment {other:?}: expected \"sandbox\" or \"production\""
            ))),
        }
    }
}

/// An Intuit company id. Digits only; Intuit's are 10–19 long in practice, we accept 1–20
/// so that sandbox companies with short ids still fit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RealmId(String);

impl RealmId {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let t = s.trim();
        if t.is_empty() || t.len() > 20 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidValue::from(format!(
                "invalid realm id {t:?}: expected 1 to 20 digits (Intuit's company id)"
            )));
        }
        Ok(RealmId(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The realm of a company invited with `link --new` before its owner has consented:
    /// stored as NULL, shown as an empty string. Never sent to Intuit (a pending
    /// connection holds no tokens).
    pub fn unknown() -> Self {
        RealmId(String::new())
    }

    pub fn is_unknown(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for RealmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RealmId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RealmId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// How an Intuit call failed. Callers branch on this: only `InvalidGrant` means the tenant
/// must reconnect; `InvalidClient` is our own configuration; the rest are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    InvalidGrant,
    InvalidClient,
    RateLimited,
    Transient,
    Other,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::InvalidGrant => "invalid_grant",
            ErrorClass::InvalidClient => "invalid_client",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::Transient => "transient",
            ErrorClass::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "invalid_grant" => ErrorClass::InvalidGrant,
            "invalid_client" => ErrorClass::InvalidClient,
            "rate_limited" => ErrorClass::RateLimited,
            "transient" => ErrorClass::Transient,
            "other" => ErrorClass::Other,
            _ => return None,
        })
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status model of a connection.
///
/// ```text
/// pending ──consent──▶ active ◀──refresh ok── expiring (near the 5-year limit)
///                        │  invalid_grant
///                        ▼
///                  needs_reconnect ──consent──▶ active
/// active/expiring/needs_reconnect ──revoke──▶ revoking ──Intuit confirms──▶ revoked
/// ```
/// Transient failures never change the status; they live in the failure counters.
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

/// A status word as people type it (`needs-reconnect`, `Needs Reconnect`), among `all`.
fn status_named<T: Copy, const N: usize>(
    s: &str,
    all: [T; N],
    name: fn(T) -> &'static str,
) -> Result<T, InvalidValue> {
    let norm = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
    all.into_iter().find(|v| name(*v) == norm).ok_or_else(|| {
        InvalidValue(format!(
            "unknown status {s:?}: expected one of {}",
            all.map(name).join(", ")
        ))
    })
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        status_named(s, Status::ALL, Status::as_str)
    }
}

/// How a connection is, as support reads it: its lifecycle [`Status`], except that a live
/// connection whose refreshes keep failing is `Failing`. The console's first cell, its
/// header's counts, the `status:` filter, the CLI's `list` and `/metrics` all count by
/// this, so "26 failing" in one place is 26 rows that say so in every other; the lifecycle
/// state stays in the detail pane and in JSON (`status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    Pending,
    Active,
    /// Live (active or expiring), and its last refreshes failed: Intuit may still take the
    /// token, but nothing has renewed it since the first failure.
    Failing,
    Expiring,
    NeedsReconnect,
    Revoking,
    Revoked,
}

impl Condition {
    pub const ALL: [Condition; 7] = [
        Condition::Pending,
        Condition::Active,
        Condition::Failing,
        Condition::Expiring,
        Condition::NeedsReconnect,
        Condition::Revoking,
        Condition::Revoked,
    ];

    pub fn of(status: Status, consecutive_failures: i64) -> Condition {
        match status {
            Status::Active | Status::Expiring if consecutive_failures > 0 => Condition::Failing,
            Status::Pending => Condition::Pending,
            Status::Active => Condition::Active,
            Status::Expiring => Condition::Expiring,
            Status::NeedsReconnect => Condition::NeedsReconnect,
            Status::Revoking => Condition::Revoking,
            Status::Revoked => Condition::Revoked,
        }
    }

    /// The lifecycle state every connection in this condition has: `None` for `Failing`,
    /// which is active or expiring.
    pub fn lifecycle(self) -> Option<Status> {
        match self {
            Condition::Failing => None,
            Condition::Pending => Some(Status::Pending),
            Condition::Active => Some(Status::Active),
            Condition::Expiring => Some(Status::Expiring),
            Condition::NeedsReconnect => Some(Status::NeedsReconnect),
            Condition::Revoking => Some(Status::Revoking),
            Condition::Revoked => Some(Status::Revoked),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.lifecycle().map_or("failing", Status::as_str)
    }

    /// Its place in [`Condition::ALL`]: counts kept per condition are arrays in that order.
    pub fn index(self) -> usize {
        Condition::ALL
            .iter()
            .position(|c| *c == self)
            .expect("every condition is in ALL")
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Condition {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        status_named(s, Condition::ALL, Condition::as_str)
    }
}

/// How a connection's last refresh attempt ended, as its row keeps it: `ok`, or `failed`
/// (the error class and detail are kept beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LastRefresh {
    Ok,
    Failed,
}

/// How a connection's last sync (a verify's CompanyInfo call) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    Ok,
    Failed,
}

macro_rules! ok_or_failed {
    ($t:ident, $what:literal) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self {
                    $t::Ok => "ok",
                    $t::Failed => "failed",
                }
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $t {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    "ok" => Ok($t::Ok),
                    "failed" => Ok($t::Failed),
                    other => Err(InvalidValue::from(format!(
                        concat!("unknown ", $what, " {:?}: expected \"ok\" or \"failed\""),
                        other
                    ))),
                }
            }
        }
    };
}

ok_or_failed!(LastRefresh, "refresh outcome");
ok_or_failed!(SyncStatus, "sync status");

#[derive(Debug, Clone, Default)]
pub struct ConnectionFilter {
    pub status: Option<Status>,
    pub environment: Option<Environment>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_ids_are_digits_only() {
        assert!(RealmId::parse("9130347596723456").is_ok());
        assert!(RealmId::parse("12a").is_err());
        assert!(RealmId::parse("").is_err());
        assert!(RealmId::parse("123456789012345678901").is_err());
    }

    #[test]
    fn environments_parse_case_insensitively() {
        assert_eq!("Sandbox".parse::<Environment>(), Ok(Environment::Sandbox));
        assert!("staging".parse::<Environment>().is_err());
    }

    #[test]
    fn refresh_and_sync_outcomes_keep_the_words_stored_and_shown_today() {
        for (o, word) in [(LastRefresh::Ok, "ok"), (LastRefresh::Failed, "failed")] {
            assert_eq!(serde_json::to_value(o).unwrap(), word);
            assert_eq!(word.parse::<LastRefresh>(), Ok(o));
        }
        for (s, word) in [(SyncStatus::Ok, "ok"), (SyncStatus::Failed, "failed")] {
            assert_eq!(serde_json::to_value(s).unwrap(), word);
            assert_eq!(word.parse::<SyncStatus>(), Ok(s));
        }
        let bad = "refreshed".parse::<LastRefresh>().unwrap_err();
        assert!(
            bad.0.contains("\"refreshed\"") && bad.0.contains("\"ok\""),
            "{bad}"
        );
    }
}

/// What the daemon's scheduler is doing, as the console's header shows it: whether it runs
/// at all (an embedded service has none) and which environments Intuit's rejection of our
/// client credentials has paused, until when and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerState {
    pub running: bool,
    #[serde(default)]
    pub paused: Vec<PausedEnvironment>,
    /// Rows stored past the audit chain's head stop the scheduler (it sends nothing to
    /// Intuit it could not record): what blocks it, until an admin runs `audit quarantine`.
    #[serde(default)]
    pub audit_blocked: Option<ChainBlocked>,
    /// The Intuit incidents open now (the console's banner): their environments' refreshes
    /// stop but for probes until they end.
    #[serde(default)]
    pub incidents: Vec<crate::incident::Incident>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PausedEnvironment {
    pub environment: Environment,
    pub until: chrono::DateTime<chrono::Utc>,
    pub reason: String,
}

impl SchedulerState {
    /// The environments still paused at `now` (a pause ends by itself when its time is up).
    pub fn paused_at(&self, now: chrono::DateTime<chrono::Utc>) -> Vec<Environment> {
        self.paused
            .iter()
            .filter(|p| p.until > now)
            .map(|p| p.environment)
            .collect()
    }
}

/// The chain cannot be appended to: rows are stored past its head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainBlocked {
    /// The last sequence number of the chain (`audit_head.last_seq`).
    pub head_seq: i64,
    /// The first row stored past it: the `--from` that repairs it.
    pub first_seq: i64,
    /// The last row stored past it.
    pub last_seq: i64,
}

impl std::fmt::Display for ChainBlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows = if self.last_seq > self.first_seq {
            format!(", rows {}..{}", self.first_seq, self.last_seq)
        } else {
            String::new()
        };
        write!(
            f,
            "the audit log cannot be written: event {} is stored past the chain head (sequence {}) \
             without being part of the chain (damage: inserted{rows}); audited actions are refused until an admin \
             runs `qbo-console audit quarantine --from {}` (`qbo-console audit verify` names the damage)",
            self.first_seq, self.head_seq, self.first_seq
        )
    }
}

impl std::error::Error for ChainBlocked {}

// Read back from database columns (the store decodes rows through these).
impl TryFrom<String> for Environment {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        s.parse()
    }
}

impl TryFrom<String> for Status {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        s.parse()
    }
}

impl TryFrom<String> for LastRefresh {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        s.parse()
    }
}

impl TryFrom<String> for SyncStatus {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        s.parse()
    }
}

impl TryFrom<String> for RealmId {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        RealmId::parse(&s)
    }
}

/// Something live views (the console, `watch`, the token API's caches) want to hear about:
/// an audit event was appended, usually with the connection it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub audit_seq: i64,
    pub connection_id: Option<i64>,
}
