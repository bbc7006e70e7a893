//! Configuration of an emulator instance: registered apps, rotation policy,
//! token lifetimes and fault injection.

use crate::SimError;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Intuit gives every app two key sets; a connection lives in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimEnvironment {
    Sandbox,
    Production,
}

impl fmt::Display for SimEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SimEnvironment::Sandbox => "sandbox",
            SimEnvironment::Production => "production",
        })
    }
}

impl FromStr for SimEnvironment {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        match s.to_ascii_lowercase().as_str() {
            "sandbox" | "development" | "dev" => Ok(SimEnvironment::Sandbox),
            "production" | "prod" => Ok(SimEnvironment::Production),
            other => Err(SimError::from(format!(
                "unknown environment {other:?} (expected sandbox or production)"
            ))),
        }
    }
}

/// One registered key set of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimClient {
    pub client_id: String,
    pub client_secret: String,
    pub environment: SimEnvironment,
    /// Compared byte for byte with the `redirect_uri` of authorize and code exchange.
    pub redirect_uris: Vec<String>,
}

/// When a refresh hands out a new refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rotation {
    /// Intuit's observed behaviour: the same value for 24 h after it was issued, then a new one.
    Daily,
    /// A new refresh token on every successful refresh.
    EveryRefresh,
}

impl FromStr for Rotation {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "daily" => Ok(Rotation::Daily),
            "every_refresh" => Ok(Rotation::EveryRefresh),
            other => Err(SimError::from(format!(
                "unknown rotation {other:?} (expected daily or every-refresh)"
            ))),
        }
    }
}

/// What happens to a refresh token once a newer one was issued for its grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreviousToken {
    /// Intuit's FAQ: still usable for 24 h after it was replaced.
    #[serde(rename = "grace_24h")]
    Grace24h,
    /// The stricter Intuit article: dead the moment it is replaced.
    InvalidAtOnce,
}

impl FromStr for PreviousToken {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "grace_24h" | "grace" => Ok(PreviousToken::Grace24h),
            "invalid_at_once" | "strict" => Ok(PreviousToken::InvalidAtOnce),
            other => Err(SimError::from(format!(
                "unknown previous-token policy {other:?} (expected grace-24h or invalid-at-once)"
            ))),
        }
    }
}

/// A way Intuit fails to give a normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// 503 with an HTML page, as an outage or a load balancer gives.
    #[serde(alias = "503")]
    ServiceUnavailable,
    /// Hold the connection for `FaultConfig::timeout_hold`, then close it without an answer.
    Timeout,
    /// 429 with Intuit's XML `IntuitResponse` body and a `Retry-After` header.
    #[serde(alias = "429")]
    RateLimited,
    /// 200 whose body is not JSON although the content type says so.
    Garbage,
    /// The request is processed completely (a refresh rotates, a revoke revokes), then the
    /// connection is closed without an answer: the response was lost after Intuit acted.
    #[serde(alias = "lost")]
    LostResponse,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::ServiceUnavailable,
        FaultKind::Timeout,
        FaultKind::RateLimited,
        FaultKind::Garbage,
        FaultKind::LostResponse,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::ServiceUnavailable => "service_unavailable",
            FaultKind::Timeout => "timeout",
            FaultKind::RateLimited => "rate_limited",
            FaultKind::Garbage => "garbage",
            FaultKind::LostResponse => "lost_response",
        }
    }
}

impl FromStr for FaultKind {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "503" | "service_unavailable" => Ok(FaultKind::ServiceUnavailable),
            "timeout" => Ok(FaultKind::Timeout),
            "429" | "rate_limited" => Ok(FaultKind::RateLimited),
            "garbage" => Ok(FaultKind::Garbage),
            "lost" | "lost_response" => Ok(FaultKind::LostResponse),
            other => Err(SimError::from(format!(
                "unknown fault {other:?} (expected 503, timeout, 429, garbage or lost)"
            ))),
        }
    }
}

/// Fault injection for the token, revoke and companyinfo endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Fraction of answers replaced by a fault, 0.0..=1.0.
    pub rate: f64,
    /// Drawn uniformly for each faulted request.
    pub kinds: Vec<FaultKind>,
    /// How long a `Timeout` fault holds the connection before closing it.
    pub timeout_hold: Duration,
    /// The endpoints faulted; empty: all of them. An outage of Intuit's accounting API
    /// leaves its OAuth service answering, and the other way round.
    pub surfaces: Vec<Surface>,
}

/// One of the endpoints qbo-sim serves that faults can replace the answers of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Surface {
    /// `POST /oauth2/v1/tokens/bearer`.
    Token,
    /// `POST /v2/oauth2/tokens/revoke`.
    Revoke,
    /// The accounting API's companyinfo.
    #[serde(alias = "accounting")]
    CompanyInfo,
}

impl Surface {
    pub const ALL: [Surface; 3] = [Surface::Token, Surface::Revoke, Surface::CompanyInfo];

    pub fn name(self) -> &'static str {
        match self {
            Surface::Token => "token",
            Surface::Revoke => "revoke",
            Surface::CompanyInfo => "company_info",
        }
    }
}

impl FromStr for Surface {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "token" => Ok(Surface::Token),
            "revoke" => Ok(Surface::Revoke),
            "company_info" | "companyinfo" | "accounting" => Ok(Surface::CompanyInfo),
            other => Err(SimError::from(format!(
                "unknown endpoint {other:?} (expected token, revoke or company_info)"
            ))),
        }
    }
}

impl FaultConfig {
    pub fn none() -> Self {
        FaultConfig {
            rate: 0.0,
            kinds: Vec::new(),
            timeout_hold: Duration::from_secs(30),
            surfaces: Vec::new(),
        }
    }

    /// The same faults on `surfaces` alone.
    pub fn only_on(self, surfaces: &[Surface]) -> Self {
        FaultConfig {
            surfaces: surfaces.to_vec(),
            ..self
        }
    }

    /// Whether a request to `surface` may be faulted.
    pub(crate) fn covers(&self, surface: Surface) -> bool {
        self.surfaces.is_empty() || self.surfaces.contains(&surface)
    }

    /// Every answer replaced by `kind`.
    pub fn always(kind: FaultKind) -> Self {
        FaultConfig {
            rate: 1.0,
            kinds: vec![kind],
            ..FaultConfig::none()
        }
    }

    pub(crate) fn validate(&self) -> Result<(), SimError> {
        if !(0.0..=1.0).contains(&self.rate) {
            return Err(SimError::from(format!(
                "fault rate {} is outside 0.0..=1.0",
                self.rate
            )));
        }
        if self.rate > 0.0 && self.kinds.is_empty() {
            return Err(SimError::from(
                "a fault rate above 0 needs at least one fault kind",
            ));
        }
        Ok(())
    }
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig::none()
    }
}

pub const DEFAULT_ACCESS_TOKEN_TTL_SECS: i64 = 3600;
/// 100 days, restarted by every use of the refresh token.
pub const DEFAULT_REFRESH_IDLE_SECS: i64 = 100 * 86_400;
/// Five years of 365 days from the original consent.
pub const DEFAULT_HARD_LIMIT_SECS: i64 = 5 * 365 * 86_400;

#[derive(Debug, Clone)]
pub struct SimOptions {
    /// `127.0.0.1:0` for an ephemeral port.
    pub bind: SocketAddr,
    pub clients: Vec<SimClient>,
    pub rotation: Rotation,
    pub previous_token: PreviousToken,
    pub access_token_ttl_secs: i64,
    pub refresh_idle_secs: i64,
    pub hard_limit_secs: i64,
    /// Delay inside the token endpoint while the presented refresh token is marked in flight.
    pub token_latency: Duration,
    pub faults: FaultConfig,
}

impl SimOptions {
    pub(crate) fn validate(&self) -> Result<(), SimError> {
        if self.clients.is_empty() {
            return Err(SimError::from("at least one client must be registered"));
        }
        for (i, c) in self.clients.iter().enumerate() {
            if c.client_id.is_empty() || c.client_secret.is_empty() {
                return Err(SimError::from(format!(
                    "client #{i} has an empty id or secret"
                )));
            }
            if self.clients[..i].iter().any(|o| o.client_id == c.client_id) {
                return Err(SimError::from(format!(
                    "client id {:?} is registered twice",
                    c.client_id
                )));
            }
            if c.redirect_uris.is_empty() {
                return Err(SimError::from(format!(
                    "client {:?} has no redirect URI",
                    c.client_id
                )));
            }
            for uri in &c.redirect_uris {
                if !(uri.starts_with("https://") || uri.starts_with("http://")) {
                    return Err(SimError::from(format!(
                        "redirect URI {uri:?} of client {:?} is not http(s)",
                        c.client_id
                    )));
                }
                // INTUIT.md: registered redirect URIs carry no query string.
                if uri.contains('?') || uri.contains('#') {
                    return Err(SimError::from(format!(
                        "redirect URI {uri:?} of client {:?} has a query or fragment",
                        c.client_id
                    )));
                }
            }
        }
        for (name, v) in [
            ("access_token_ttl_secs", self.access_token_ttl_secs),
            ("refresh_idle_secs", self.refresh_idle_secs),
            ("hard_limit_secs", self.hard_limit_secs),
        ] {
            if v <= 0 {
                return Err(SimError::from(format!("{name} must be positive, got {v}")));
            }
        }
        self.faults.validate()
    }
}

impl Default for SimOptions {
    fn default() -> Self {
        let redirects = vec![
            "http://localhost:8080/callback".to_string(),
            "https://ops.example.com/qbo/callback".to_string(),
        ];
        SimOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            clients: vec![
                SimClient {
                    client_id: "sim-sandbox-client".into(),
                    client_secret: "sim-sandbox-secret".into(),
                    environment: SimEnvironment::Sandbox,
                    redirect_uris: redirects.clone(),
                },
                SimClient {
                    client_id: "sim-production-client".into(),
                    client_secret: "sim-production-secret".into(),
                    environment: SimEnvironment::Production,
                    redirect_uris: redirects,
                },
            ],
            rotation: Rotation::Daily,
            previous_token: PreviousToken::Grace24h,
            access_token_ttl_secs: DEFAULT_ACCESS_TOKEN_TTL_SECS,
            refresh_idle_secs: DEFAULT_REFRESH_IDLE_SECS,
            hard_limit_secs: DEFAULT_HARD_LIMIT_SECS,
            token_latency: Duration::ZERO,
            faults: FaultConfig::none(),
        }
    }
}
