//! Typed configuration: a TOML file, then `QBO_CONSOLE__SECTION__KEY` environment variables
//! on top. Secrets are never inline: each comes from a named environment variable or a file
//! (`*_env` / `*_file`), and is read only by the process that needs it (`SecretSource::read`).

use crate::domain::Environment;
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

mod api;
mod monitoring;
pub use api::{ApiConfig, RawWebhooksConfig, WebhooksConfig};
pub use monitoring::{AlertsConfig, ForecastConfig, HealthConfig, Webhook, WebhookUrl};

pub const ENV_CONFIG_PATH: &str = "QBO_CONSOLE_CONFIG";
pub const ENV_PREFIX: &str = "QBO_CONSOLE__";
pub const DEFAULT_CONFIG_PATH: &str = "qbo-console.toml";

/// Scopes Intuit's OAuth service knows (INTUIT.md, "Authorization").
pub const KNOWN_SCOPES: &[&str] = &[
    "com.intuit.quickbooks.accounting",
    "com.intuit.quickbooks.payment",
    "openid",
    "profile",
    "email",
    "phone",
    "address",
];

/// A configuration problem, already phrased for the operator: the file, the key, the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

#[derive(Debug, Clone)]
pub struct Config {
    /// The file the configuration came from, named in every error.
    pub source: PathBuf,
    /// Needed by the processes that hold the data: `serve`, `--embedded`, `db migrate`.
    /// A client of the daemon's socket needs neither this nor `vault`.
    database: Option<DatabaseConfig>,
    vault: Option<VaultConfig>,
    pub environments: BTreeMap<Environment, EnvironmentConfig>,
    pub intuit: IntuitConfig,
    pub refresh: RefreshConfig,
    pub scheduler: SchedulerConfig,
    pub daemon: DaemonConfig,
    pub roles: RolesConfig,
    pub log: LogConfig,
    pub tui: TuiConfig,
    pub retention: RetentionConfig,
    // Health checks, the forecast and alerts (issue 16).
    pub health: HealthConfig,
    pub forecast: ForecastConfig,
    pub alerts: AlertsConfig,
    pub public: PublicConfig,
    /// The token API's listener (`[api]`).
    pub api: ApiConfig,
    /// Intuit's webhooks (`[webhooks]`).
    pub webhooks: WebhooksConfig,
    pub audit: AuditConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long opening the database may take before the process gives up and says so
    /// (an unreachable PostgreSQL host otherwise holds the start for a minute).
    #[serde(with = "humantime_serde", default = "default_database_connect_timeout")]
    pub connect_timeout: Duration,
}

fn default_max_connections() -> u32 {
    8
}
fn default_database_connect_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Where a secret lives. Holding one of these never holds the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

impl SecretSource {
    pub(crate) fn from_pair(
        file: Option<PathBuf>,
        env: Option<String>,
        key: &str,
        source: &Path,
    ) -> Result<Self, ConfigError> {
        match (file, env) {
            (Some(f), None) => Ok(SecretSource::File(f)),
            (None, Some(e)) => Ok(SecretSource::Env(e)),
            (Some(_), Some(_)) => Err(ConfigError(format!(
                "config {}: {key}_file and {key}_env are both set; keep exactly one",
                source.display()
            ))),
            (None, None) => Err(ConfigError(format!(
                "config {}: missing {key}_file or {key}_env (secrets are never written inline; \
                 name the environment variable or file that holds it)",
                source.display()
            ))),
        }
    }

    /// Reads the secret, trimmed of surrounding whitespace. The error names where it looked,
    /// never what it found.
    pub fn read(&self, what: &str) -> Result<Zeroizing<String>, ConfigError> {
        let value = match self {
            SecretSource::Env(name) => std::env::var(name).map_err(|_| {
                ConfigError(format!(
                    "{what}: environment variable {name} is not set; export it or point the \
                     config at a file with the *_file key"
                ))
            })?,
            SecretSource::File(path) => {
                use std::io::Read;
                let cannot = |e: std::io::Error| {
                    ConfigError(format!(
                        "{what}: cannot read secret file {}: {e}",
                        path.display()
                    ))
                };
                // Opened once and checked on that descriptor: through a symlink, the mode
                // that counts is the target's, which is the file actually read.
                let mut file = std::fs::File::open(path).map_err(cannot)?;
                crate::file_modes::refuse_shared_secret(&file, path, what)?;
                let mut text = String::new();
                file.read_to_string(&mut text).map_err(cannot)?;
                text
            }
        };
        let value = Zeroizing::new(value);
        let trimmed = Zeroizing::new(value.trim().to_string());
        if trimmed.is_empty() {
            return Err(ConfigError(format!("{what}: {} is empty", self.describe())));
        }
        Ok(trimmed)
    }

    pub fn describe(&self) -> String {
        match self {
            SecretSource::Env(n) => format!("environment variable {n}"),
            SecretSource::File(p) => format!("file {}", p.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// The key new values are sealed with.
    pub key: SecretSource,
    /// Older keys still accepted for opening, so keys can rotate without a flag day.
    pub old_keys: Vec<SecretSource>,
    /// The key token fingerprints are made with: never rotated with the token key, so a
    /// token keeps its fingerprint forever. Absent on installs from before it existed (the
    /// vault then derives one from the token key, and `keys rotate` refuses).
    pub fingerprint_key: Option<SecretSource>,
}

#[derive(Debug, Clone)]
pub struct EnvironmentConfig {
    pub environment: Environment,
    pub client_id: String,
    pub client_secret: SecretSource,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub api_base: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntuitConfig {
    /// Whole-request timeout for every call to Intuit.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    #[serde(with = "humantime_serde", default = "default_connect_timeout")]
    pub connect_timeout: Duration,
    /// Ask for `x_refresh_token_hard_expires_in` (the 5-year limit) on every token call.
    #[serde(default = "yes")]
    pub request_hard_expiry: bool,
}

impl Default for IntuitConfig {
    fn default() -> Self {
        IntuitConfig {
            timeout: default_timeout(),
            connect_timeout: default_connect_timeout(),
            request_hard_expiry: true,
        }
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(20)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
pub(crate) fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshConfig {
    /// How long a refresher may hold a connection before others may take it over. Must
    /// outlast an Intuit call, or a slow holder and a taker could both use one token.
    #[serde(with = "humantime_serde", default = "default_lease")]
    pub lease: Duration,
    /// First retry delay after a transient failure; doubles per consecutive failure.
    #[serde(with = "humantime_serde", default = "default_backoff_base")]
    pub backoff_base: Duration,
    /// Upper bound on the retry delay.
    #[serde(with = "humantime_serde", default = "default_backoff_cap")]
    pub backoff_cap: Duration,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        RefreshConfig {
            lease: default_lease(),
            backoff_base: default_backoff_base(),
            backoff_cap: default_backoff_cap(),
        }
    }
}

fn default_lease() -> Duration {
    Duration::from_secs(60)
}
fn default_backoff_base() -> Duration {
    Duration::from_secs(30)
}
fn default_backoff_cap() -> Duration {
    Duration::from_secs(30 * 60)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Refresh an access token this long before it expires; also what `refresh --due` means.
    #[serde(with = "humantime_serde", default = "default_before_expiry")]
    pub refresh_before_expiry: Duration,
    /// Keep every live connection's access token fresh (the token API then answers at once).
    /// When false, the scheduler only keeps refresh tokens from lapsing.
    #[serde(default = "yes")]
    pub refresh_access_tokens: bool,
    /// Refresh any live connection whose refresh token has not been used for this long, so
    /// none ever reaches Intuit's 100-day idle limit.
    #[serde(with = "humantime_serde", default = "default_keep_alive")]
    pub keep_alive_after: Duration,
    /// Spread: each next refresh is scheduled between half this and this much earlier than
    /// strictly needed, at random, so an hour's refreshes do not land in the same second.
    #[serde(with = "humantime_serde", default = "default_jitter")]
    pub jitter: Duration,
    /// Flag connections this many days before Intuit's 5-year hard limit as `expiring`.
    #[serde(default = "default_hard_expiry_warning_days")]
    pub hard_expiry_warning_days: u32,
    /// How often the scheduler looks for due work.
    #[serde(with = "humantime_serde", default = "default_tick")]
    pub tick: Duration,
    /// Refreshes in flight at once, across environments.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Calls to Intuit per second, per environment.
    #[serde(default = "default_rate_per_second")]
    pub rate_per_second: u32,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            refresh_before_expiry: default_before_expiry(),
            refresh_access_tokens: true,
            keep_alive_after: default_keep_alive(),
            jitter: default_jitter(),
            hard_expiry_warning_days: default_hard_expiry_warning_days(),
            tick: default_tick(),
            max_concurrency: default_max_concurrency(),
            rate_per_second: default_rate_per_second(),
        }
    }
}

fn default_before_expiry() -> Duration {
    Duration::from_secs(10 * 60)
}
fn default_keep_alive() -> Duration {
    Duration::from_secs(30 * 86_400)
}
fn default_jitter() -> Duration {
    Duration::from_secs(120)
}
fn default_hard_expiry_warning_days() -> u32 {
    30
}
fn default_tick() -> Duration {
    Duration::from_secs(1)
}
/// Intuit allows 10 concurrent requests per app and realm; single flight keeps us at one
/// per realm, and this bounds the app as a whole.
fn default_max_concurrency() -> usize {
    10
}
fn default_rate_per_second() -> u32 {
    50
}

/// The daemon: its operators' socket and its HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// The operators' Unix socket; the CLI connects here unless `--embedded`.
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// Group that owns the socket (mode 0660), so its members can connect.
    #[serde(default)]
    pub socket_group: Option<String>,
    /// Group given read access (mode 0640) to the database and log files this program
    /// creates; without it they are owner-only (0600). Not `socket_group`: operators reach
    /// the data through the socket and their roles, never by reading the files.
    #[serde(default)]
    pub file_group: Option<String>,
    /// Health and metrics listener; loopback by default.
    #[serde(default = "default_http_listen")]
    pub http_listen: String,
    /// On SIGTERM, in-flight refreshes get this long to finish before they are abandoned
    /// (safely: an abandoned refresh leaves its lease to expire and its token in place).
    #[serde(with = "humantime_serde", default = "default_shutdown_grace")]
    pub shutdown_grace: Duration,
    /// A request must arrive whole within this long of its first byte (the socket), or its
    /// headers within this long of the connection going idle (HTTP): a client that stops
    /// half-way is disconnected instead of holding a connection forever.
    #[serde(with = "humantime_serde", default = "default_request_timeout")]
    pub request_timeout: Duration,
    /// How long an operators' socket connection may sit between requests.
    #[serde(with = "humantime_serde", default = "default_idle_timeout")]
    pub idle_timeout: Duration,
    /// Connections served at once on the operators' socket; one more is answered with an
    /// error line and closed.
    #[serde(default = "default_max_socket_connections")]
    pub max_socket_connections: usize,
    /// Connections served at once on the HTTP listener; one more gets a 503 and is closed,
    /// so HTTP clients cannot use up the file descriptors the operators' socket needs.
    #[serde(default = "default_max_http_connections")]
    pub max_http_connections: usize,
}

impl DaemonConfig {
    /// The limits must let something through: a zero would lock every client out.
    fn check_limits(&self) -> Result<(), String> {
        for (key, d) in [
            ("request_timeout", self.request_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if d.is_zero() {
                return Err(format!(
                    "[daemon] {key} is 0, which would disconnect every client at once; use a \
                     duration such as \"10s\""
                ));
            }
        }
        for (key, n) in [
            ("max_socket_connections", self.max_socket_connections),
            ("max_http_connections", self.max_http_connections),
        ] {
            if n == 0 {
                return Err(format!(
                    "[daemon] {key} is 0, which would refuse every client; use a number such as 64"
                ));
            }
        }
        Ok(())
    }
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            socket: default_socket(),
            socket_group: None,
            file_group: None,
            http_listen: default_http_listen(),
            shutdown_grace: default_shutdown_grace(),
            request_timeout: default_request_timeout(),
            idle_timeout: default_idle_timeout(),
            max_socket_connections: default_max_socket_connections(),
            max_http_connections: default_max_http_connections(),
        }
    }
}

fn default_socket() -> PathBuf {
    PathBuf::from("/run/qbo-console/ops.sock")
}
fn default_http_listen() -> String {
    "127.0.0.1:9187".into()
}
fn default_shutdown_grace() -> Duration {
    Duration::from_secs(20)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(5 * 60)
}
fn default_max_socket_connections() -> usize {
    64
}
fn default_max_http_connections() -> usize {
    128
}

/// Who may do what, by OS account or `@group`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesConfig {
    #[serde(default)]
    pub admin: Vec<String>,
    #[serde(default)]
    pub support: Vec<String>,
    #[serde(default)]
    pub auditor: Vec<String>,
    #[serde(default)]
    pub viewer: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// tracing filter, e.g. "info" or "qbo_engine=debug" for the lifecycle only.
    #[serde(default = "default_log_level")]
    pub level: String,
    /// "text" or "json".
    #[serde(default = "default_log_format")]
    pub format: String,
    /// Append logs here instead of stderr.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_log_level(),
            format: default_log_format(),
            file: None,
        }
    }
}

fn default_log_level() -> String {
    "warn".into()
}
fn default_log_format() -> String {
    "text".into()
}

/// The console: its colours and its keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuiConfig {
    /// "dark" or "light"; `NO_COLOR` in the environment wins over both.
    #[serde(default)]
    pub theme: ThemeName,
    /// Key (as written: "x", "ctrl-r", "f5") to action name ("refresh", "none" to unbind).
    /// Checked by the console when it builds its keymap, which names this key on a mistake.
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
    /// Meaning ("error", "ok", "selected", …) to colour ("red", "#1a7f37", "208"), on top
    /// of the theme. Checked by the console before it opens, naming the key on a mistake.
    #[serde(default)]
    pub colors: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThemeName {
    #[default]
    Dark,
    Light,
}

/// How long revoked tenants are kept before `purge` may delete them. Serialized for the
/// posture report, which shows every retention key as configured.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days after its revocation a revoked connection is kept (its audit history stays).
    #[serde(default = "default_revoked_days")]
    pub revoked_days: u32,
    /// Audit events older than this many days are archived (an export with its signed
    /// manifest in `archive_dir`) and then removed from the database. Absent: never.
    #[serde(default)]
    pub audit_days: Option<u32>,
    /// Where archives of the audit log are written (needed with `audit_days`).
    #[serde(default)]
    pub archive_dir: Option<PathBuf>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            revoked_days: default_revoked_days(),
            audit_days: None,
            archive_dir: None,
        }
    }
}

/// `[audit]`: the key that signs export manifests.
#[derive(Debug, Clone, Default)]
pub struct AuditConfig {
    /// Ed25519 seed (base64 of 32 random bytes, as `keys generate` writes), held by the
    /// daemon; absent, exports and archives are refused with the fix.
    pub signing_key: Option<SecretSource>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    signing_key_file: Option<PathBuf>,
    signing_key_env: Option<String>,
}

fn default_revoked_days() -> u32 {
    90
}

/// The public HTTP listener customers' browsers reach (reconnect links, the OAuth
/// callback, Intuit's Reconnect and Disconnect URLs), separate from the operators' socket
/// and from `/metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicConfig {
    /// Where `serve` listens for browsers, e.g. `127.0.0.1:8080`; no public listener without it.
    #[serde(default)]
    pub listen: Option<String>,
    /// The address customers' browsers use, as links print it: `https://` except for
    /// `localhost` and `127.0.0.1`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// How long a reconnect link stays valid when `link` is not given `--expires`.
    #[serde(with = "humantime_serde", default = "default_link_expires")]
    pub link_expires: Duration,
    /// How long the OAuth `state` made when a link is opened stays valid: the customer
    /// must finish consenting at Intuit within it.
    #[serde(with = "humantime_serde", default = "default_state_expires")]
    pub state_expires: Duration,
    /// Requests one browser address may make per minute; more get 429.
    #[serde(default = "default_rate_limit_per_minute")]
    pub rate_limit_per_minute: u32,
    /// Take the browser's address from the last `X-Forwarded-For` entry (set this only
    /// behind a reverse proxy that writes it; otherwise browsers could choose their address).
    #[serde(default)]
    pub trust_forwarded_for: bool,
    /// PEM certificate chain and private key: `serve` terminates TLS itself when both are set.
    #[serde(default)]
    pub tls_cert_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub tls_key_file: Option<std::path::PathBuf>,
}

impl Default for PublicConfig {
    fn default() -> Self {
        PublicConfig {
            listen: None,
            base_url: None,
            link_expires: default_link_expires(),
            state_expires: default_state_expires(),
            rate_limit_per_minute: default_rate_limit_per_minute(),
            trust_forwarded_for: false,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

fn default_link_expires() -> Duration {
    Duration::from_secs(7 * 86_400)
}
fn default_state_expires() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_rate_limit_per_minute() -> u32 {
    60
}

impl PublicConfig {
    fn check(&self) -> Result<(), String> {
        if let Some(l) = &self.listen {
            if l.parse::<std::net::SocketAddr>().is_err() {
                return Err(format!(
                    "[public] listen {l:?} is not an address such as 127.0.0.1:8080"
                ));
            }
            if self.base_url.is_none() {
                return Err(format!(
                    "[public] listen is set ({l:?}) but base_url is not; set base_url to the address customers' browsers use, e.g. \"https://connect.example.com\""
                ));
            }
        }
        if let Some(b) = &self.base_url {
            check_base_url(b).map_err(|m| format!("[public] base_url {m}"))?;
        }
        if self.link_expires.is_zero() || self.state_expires.is_zero() {
            return Err(
                "[public] link_expires and state_expires must be positive, e.g. \"7d\" and \"15m\""
                    .into(),
            );
        }
        if self.rate_limit_per_minute == 0 {
            return Err(
                "[public] rate_limit_per_minute is 0, which would refuse every browser; use a number such as 60".into(),
            );
        }
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(_), None) | (None, Some(_)) => Err(
                "[public] tls_cert_file and tls_key_file go together; set both (serve terminates TLS) or neither (plain HTTP behind a reverse proxy)".into(),
            ),
            _ => Ok(()),
        }
    }

    /// The base URL without its trailing slash, or why `link` cannot print one.
    pub fn base(&self, source: &Path) -> Result<String, ConfigError> {
        self.base_url
            .as_deref()
            .map(|b| b.trim_end_matches('/').to_string())
            .ok_or_else(|| {
                ConfigError(format!(
                    "config {}: no [public] base_url; links are printed as {{base_url}}/connect/{{id}}, so set it to the address customers' browsers use, e.g. \"https://connect.example.com\"",
                    source.display()
                ))
            })
    }
}

/// `https://HOST[:PORT][/PATH]`, or `http://` for `localhost` and `127.0.0.1` only; no
/// query or fragment (links are built by appending to it).
fn check_base_url(v: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(v).map_err(|e| {
        format!("{v:?} is not a URL ({e}); use https://HOST, e.g. \"https://connect.example.com\"")
    })?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{v:?} carries a query or fragment; give the bare address"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{v:?} carries credentials; give the bare address"));
    }
    match (url.scheme(), url.host_str()) {
        ("https", Some(_)) => Ok(()),
        ("http", Some("localhost" | "127.0.0.1")) => Ok(()),
        ("http", _) => Err(format!(
            "{v:?} must use https:// (customers' browsers carry consent through it); plain http:// is allowed only for localhost and 127.0.0.1"
        )),
        _ => Err(format!("{v:?}: expected an https:// URL")),
    }
}

// ---- the file as written ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    database: Option<DatabaseConfig>,
    #[serde(default)]
    vault: Option<RawVault>,
    #[serde(default)]
    environments: BTreeMap<String, RawEnvironment>,
    #[serde(default)]
    intuit: IntuitConfig,
    #[serde(default)]
    refresh: RefreshConfig,
    #[serde(default)]
    scheduler: SchedulerConfig,
    #[serde(default)]
    daemon: DaemonConfig,
    #[serde(default)]
    roles: RolesConfig,
    #[serde(default)]
    log: LogConfig,
    #[serde(default)]
    tui: TuiConfig,
    #[serde(default)]
    retention: RetentionConfig,
    // Health checks, the forecast and alerts (issue 16).
    #[serde(default)]
    health: HealthConfig,
    #[serde(default)]
    forecast: ForecastConfig,
    #[serde(default)]
    alerts: AlertsConfig,
    #[serde(default)]
    public: PublicConfig,
    #[serde(default)]
    api: ApiConfig,
    #[serde(default)]
    webhooks: RawWebhooksConfig,
    #[serde(default)]
    audit: RawAudit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVault {
    key_file: Option<PathBuf>,
    key_env: Option<String>,
    #[serde(default)]
    old_key_files: Vec<PathBuf>,
    #[serde(default)]
    old_key_envs: Vec<String>,
    fingerprint_key_file: Option<PathBuf>,
    fingerprint_key_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    client_id: String,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    redirect_uri: String,
    #[serde(default = "default_scopes")]
    scopes: Vec<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    api_base: Option<String>,
}

fn default_scopes() -> Vec<String> {
    vec!["com.intuit.quickbooks.accounting".into()]
}

/// Intuit's real endpoints (INTUIT.md, discovery documents and API base).
fn intuit_defaults(env: Environment) -> (&'static str, &'static str, &'static str, &'static str) {
    let api = match env {
        Environment::Production => "https://quickbooks.api.intuit.com",
        Environment::Sandbox => "https://sandbox-quickbooks.api.intuit.com",
    };
    (
        "https://appcenter.intuit.com/connect/oauth2",
        "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
        "https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
        api,
    )
}

impl Config {
    /// Finds the file: `--config`, else `$QBO_CONSOLE_CONFIG`, else `./qbo-console.toml`.
    pub fn locate(explicit: Option<&Path>) -> PathBuf {
        if let Some(p) = explicit {
            return p.to_path_buf();
        }
        match std::env::var_os(ENV_CONFIG_PATH) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from(DEFAULT_CONFIG_PATH),
        }
    }

    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let path = Self::locate(explicit);
        if path.is_dir() {
            return Err(ConfigError(format!(
                "config {}: is a directory; pass the configuration file itself, e.g. --config {}",
                path.display(),
                path.join(DEFAULT_CONFIG_PATH).display()
            )));
        }
        if !path.is_file() {
            return Err(ConfigError(format!(
                "config {}: file not found; pass --config PATH, set {ENV_CONFIG_PATH}, or copy \
                 config.example.toml to ./{DEFAULT_CONFIG_PATH}",
                path.display()
            )));
        }
        let figment = Figment::new()
            .merge(Toml::file_exact(&path))
            .merge(Env::prefixed(ENV_PREFIX).split("__"));
        let raw: RawConfig = figment.extract().map_err(|e| describe_figment(&path, e))?;
        Self::validate(path, raw)
    }

    fn validate(source: PathBuf, raw: RawConfig) -> Result<Config, ConfigError> {
        let err = |msg: String| ConfigError(format!("config {}: {msg}", source.display()));

        let database = match raw.database {
            Some(db) => {
                let url = db.url.trim().to_string();
                if !(url.starts_with("sqlite:")
                    || url.starts_with("postgres:")
                    || url.starts_with("postgresql:"))
                {
                    return Err(err(format!(
                        "[database] url {:?}: unsupported scheme; use sqlite://PATH or postgres://USER@HOST/DB",
                        redact_url(&url)
                    )));
                }
                sqlite_file(&url)
                    .map_err(|m| err(format!("[database] url {:?}: {m}", redact_url(&url))))?;
                if db.connect_timeout.is_zero() {
                    return Err(err(
                        "[database] connect_timeout must be positive; 10s is a good value".into(),
                    ));
                }
                Some(DatabaseConfig {
                    url,
                    max_connections: db.max_connections.max(1),
                    connect_timeout: db.connect_timeout,
                })
            }
            None => None,
        };
        let vault = match raw.vault {
            Some(v) => {
                let key = SecretSource::from_pair(v.key_file, v.key_env, "[vault] key", &source)?;
                let mut old_keys: Vec<SecretSource> = v
                    .old_key_files
                    .into_iter()
                    .map(SecretSource::File)
                    .collect();
                old_keys.extend(v.old_key_envs.into_iter().map(SecretSource::Env));
                let fingerprint_key = match (v.fingerprint_key_file, v.fingerprint_key_env) {
                    (None, None) => None,
                    (f, e) => Some(SecretSource::from_pair(
                        f,
                        e,
                        "[vault] fingerprint_key",
                        &source,
                    )?),
                };
                Some(VaultConfig {
                    key,
                    old_keys,
                    fingerprint_key,
                })
            }
            None => None,
        };

        let mut environments = BTreeMap::new();
        for (name, e) in raw.environments {
            let env: Environment = name
                .parse()
                .map_err(|m: String| err(format!("[environments.{name}]: {m}")))?;
            let section = format!("[environments.{name}]");
            if e.client_id.trim().is_empty() {
                return Err(err(format!("{section} client_id is empty")));
            }
            let client_secret = SecretSource::from_pair(
                e.client_secret_file,
                e.client_secret_env,
                &format!("{section} client_secret"),
                &source,
            )?;
            validate_redirect_uri(env, &e.redirect_uri)
                .map_err(|m| err(format!("{section} redirect_uri: {m}")))?;
            if e.scopes.is_empty() {
                return Err(err(format!(
                    "{section} scopes is empty; use [\"com.intuit.quickbooks.accounting\"]"
                )));
            }
            for s in &e.scopes {
                if !KNOWN_SCOPES.contains(&s.as_str()) {
                    return Err(err(format!(
                        "{section} scopes: unknown scope {s:?}; known scopes are {}",
                        KNOWN_SCOPES.join(", ")
                    )));
                }
            }
            let (auth, token, revoke, api) = intuit_defaults(env);
            let endpoint =
                |v: Option<String>, default: &str, key: &str| -> Result<String, ConfigError> {
                    let v = v.unwrap_or_else(|| default.to_string());
                    validate_endpoint(&v).map_err(|m| err(format!("{section} {key} {m}")))?;
                    Ok(v.trim_end_matches('/').to_string())
                };
            environments.insert(
                env,
                EnvironmentConfig {
                    environment: env,
                    client_id: e.client_id.trim().to_string(),
                    client_secret,
                    redirect_uri: e.redirect_uri,
                    scopes: e.scopes,
                    authorization_endpoint: endpoint(
                        e.authorization_endpoint,
                        auth,
                        "authorization_endpoint",
                    )?,
                    token_endpoint: endpoint(e.token_endpoint, token, "token_endpoint")?,
                    revocation_endpoint: endpoint(
                        e.revocation_endpoint,
                        revoke,
                        "revocation_endpoint",
                    )?,
                    api_base: endpoint(e.api_base, api, "api_base")?,
                },
            );
        }

        if raw.refresh.lease < raw.intuit.timeout * 2 {
            return Err(err(format!(
                "[refresh] lease ({}) must be at least twice [intuit] timeout ({}), so a slow \
                 refresh is never taken over while its answer may still arrive",
                humantime::format_duration(raw.refresh.lease),
                humantime::format_duration(raw.intuit.timeout)
            )));
        }
        if raw.refresh.backoff_base.is_zero() || raw.refresh.backoff_cap < raw.refresh.backoff_base
        {
            return Err(err(
                "[refresh] backoff_base must be positive and backoff_cap at least backoff_base"
                    .into(),
            ));
        }
        let sched = &raw.scheduler;
        if sched.max_concurrency == 0 || sched.rate_per_second == 0 || sched.tick.is_zero() {
            return Err(err(
                "[scheduler] max_concurrency, rate_per_second and tick must be above zero".into(),
            ));
        }
        if sched.keep_alive_after >= Duration::from_secs(90 * 86_400)
            || sched.keep_alive_after.is_zero()
        {
            return Err(err(format!(
                "[scheduler] keep_alive_after ({}) must be positive and well under Intuit's 100-day idle limit; 30d is a good value",
                humantime::format_duration(sched.keep_alive_after)
            )));
        }
        if raw
            .daemon
            .http_listen
            .parse::<std::net::SocketAddr>()
            .is_err()
        {
            return Err(err(format!(
                "[daemon] http_listen {:?} is not an address such as 127.0.0.1:9187",
                raw.daemon.http_listen
            )));
        }
        raw.daemon.check_limits().map_err(err)?;
        raw.api.check().map_err(err)?;
        let webhooks = raw.webhooks.validate(&source)?;
        for (role, members) in [
            ("admin", &raw.roles.admin),
            ("support", &raw.roles.support),
            ("auditor", &raw.roles.auditor),
            ("viewer", &raw.roles.viewer),
        ] {
            if let Some(bad) = members
                .iter()
                .find(|m| m.trim().is_empty() || m.trim() == "@")
            {
                return Err(err(format!(
                    "[roles] {role} has an empty member {bad:?}; use an account name or @group"
                )));
            }
        }
        for (key, group) in [
            ("socket_group", &raw.daemon.socket_group),
            ("file_group", &raw.daemon.file_group),
        ] {
            if group.as_deref().is_some_and(|g| g.trim().is_empty()) {
                return Err(err(format!(
                    "[daemon] {key} is empty; name a group or remove the key"
                )));
            }
        }
        raw.public.check().map_err(err)?;
        if !matches!(raw.log.format.as_str(), "text" | "json") {
            return Err(err(format!(
                "[log] format {:?}: expected \"text\" or \"json\"",
                raw.log.format
            )));
        }

        // Health checks, the forecast and alerts (issue 16).
        monitoring::validate_health(&raw.health).map_err(err)?;
        monitoring::validate_forecast(&raw.forecast).map_err(err)?;
        let mut alerts = raw.alerts;
        monitoring::validate_alerts(&mut alerts, &source).map_err(err)?;

        let audit = AuditConfig {
            signing_key: match (raw.audit.signing_key_file, raw.audit.signing_key_env) {
                (None, None) => None,
                (f, e) => Some(SecretSource::from_pair(
                    f,
                    e,
                    "[audit] signing_key",
                    &source,
                )?),
            },
        };
        if raw.retention.audit_days == Some(0) {
            return Err(err(
                "[retention] audit_days is 0, which would archive every event at once; use a number of days such as 400, or remove it to keep events forever".into(),
            ));
        }
        if raw.retention.audit_days.is_some() && raw.retention.archive_dir.is_none() {
            return Err(err(
                "[retention] audit_days is set but archive_dir is not; name the directory the archives go to (events are only removed once archived)".into(),
            ));
        }
        Ok(Config {
            source,
            database,
            vault,
            environments,
            intuit: raw.intuit,
            refresh: raw.refresh,
            scheduler: raw.scheduler,
            daemon: raw.daemon,
            roles: raw.roles,
            log: raw.log,
            tui: raw.tui,
            retention: raw.retention,
            health: raw.health,
            forecast: raw.forecast,
            alerts,
            public: raw.public,
            api: raw.api,
            webhooks,
            audit,
        })
    }

    /// The database section, or an error saying who needs it.
    pub fn database(&self) -> Result<&DatabaseConfig, ConfigError> {
        self.database.as_ref().ok_or_else(|| {
            ConfigError(format!(
                "config {}: no [database] section; the daemon, --embedded and `db migrate` need `url` \
                 (clients of the daemon's socket do not)",
                self.source.display()
            ))
        })
    }

    /// The vault section, or an error saying who needs it.
    pub fn vault(&self) -> Result<&VaultConfig, ConfigError> {
        self.vault.as_ref().ok_or_else(|| {
            ConfigError(format!(
                "config {}: no [vault] section; the daemon and --embedded need key_file or key_env \
                 (clients of the daemon's socket do not)",
                self.source.display()
            ))
        })
    }

    /// What a client of the daemon uses when no configuration file exists: the defaults
    /// (the socket at its standard path).
    pub fn client_defaults(source: PathBuf) -> Config {
        Config {
            source,
            database: None,
            vault: None,
            environments: BTreeMap::new(),
            intuit: IntuitConfig::default(),
            refresh: RefreshConfig::default(),
            scheduler: SchedulerConfig::default(),
            daemon: DaemonConfig::default(),
            roles: RolesConfig::default(),
            log: LogConfig::default(),
            tui: TuiConfig::default(),
            retention: RetentionConfig::default(),
            health: HealthConfig::default(),
            forecast: ForecastConfig::default(),
            alerts: AlertsConfig::default(),
            public: PublicConfig::default(),
            api: ApiConfig::default(),
            webhooks: WebhooksConfig::default(),
            audit: AuditConfig::default(),
        }
    }

    pub fn environment(&self, env: Environment) -> Result<&EnvironmentConfig, ConfigError> {
        self.environments.get(&env).ok_or_else(|| {
            ConfigError(format!(
                "config {}: no [environments.{env}] section, but a connection needs it; add \
                 client_id, client_secret_env and redirect_uri for {env}",
                self.source.display()
            ))
        })
    }
}

/// Intuit's rules: https only, `http://localhost` for sandbox only, no IP addresses, no
/// query string (context travels in `state`).
fn validate_redirect_uri(env: Environment, uri: &str) -> Result<(), String> {
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| format!("{uri:?} is not an absolute URL"))?;
    if uri.contains('?') || uri.contains('#') {
        return Err(format!(
            "{uri:?} carries a query string or fragment; Intuit requires an exact URI without one (pass context in state)"
        ));
    }
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(authority);
    if host.is_empty() {
        return Err(format!("{uri:?} has no host"));
    }
    let is_ip = host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[');
    match scheme {
        "https" if is_ip => Err(format!(
            "{uri:?} uses an IP address; Intuit only accepts host names"
        )),
        "https" => Ok(()),
        "http" if host == "localhost" && env == Environment::Sandbox => Ok(()),
        "http" if host == "localhost" => Err(format!(
            "{uri:?}: http://localhost is allowed for sandbox only; production needs https://"
        )),
        _ => Err(format!(
            "{uri:?} must use https:// (http://localhost is allowed for sandbox only)"
        )),
    }
}

/// Refresh tokens and the client secret travel to these endpoints: https only, except on
/// this machine's loopback (the emulator in tests and the demo), which never leaves it.
pub(crate) fn validate_endpoint(v: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(v)
        .map_err(|e| format!("{v:?} is not a URL ({e}); use https://HOST/PATH"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(format!(
            "{v:?} must use https:// (plain http:// is allowed only on loopback: localhost, \
             127.0.0.0/8, [::1]), or tokens and the client secret would travel in cleartext"
        )),
        _ => Err(format!("{v:?}: expected an https:// URL")),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    // The URL parser has already normalised the host (127.1 → 127.0.0.1, case folded), and
    // writes an IPv6 address in brackets.
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The file a `sqlite:` URL names (`Ok(None)` for other schemes). A database that lives
/// only in memory or in a nameless temporary file loses every connection and the audit log
/// when the process exits, so neither is accepted.
pub fn sqlite_file(url: &str) -> Result<Option<PathBuf>, String> {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Ok(None);
    };
    let (path, params) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path == ":memory:"
        || params
            .split('&')
            .any(|p| p.eq_ignore_ascii_case("mode=memory"));
    if in_memory {
        return Err(
            "an in-memory database loses every connection and the audit log when \
                    the process exits; use sqlite:///var/lib/qbo-console/qbo-console.db"
                .into(),
        );
    }
    if path.is_empty() {
        return Err(
            "names no file (SQLite would use a temporary one per connection); use \
                    sqlite://PATH, e.g. sqlite:///var/lib/qbo-console/qbo-console.db"
                .into(),
        );
    }
    let path = urlencoding::decode(path)
        .map_err(|_| "the path is not valid UTF-8 once percent-decoded".to_string())?;
    Ok(Some(PathBuf::from(path.into_owned())))
}

fn describe_figment(path: &Path, e: figment::Error) -> ConfigError {
    let mut lines = Vec::new();
    for one in e {
        let key = one.path.join(".");
        let from = match &one.metadata {
            Some(m) if m.name.contains("environment") => "environment variable".to_string(),
            _ => format!("config {}", path.display()),
        };
        let what = match &one.kind {
            figment::error::Kind::UnknownField(field, expected) => format!(
                "unknown key `{}`; expected one of {}",
                qualify(&key, field),
                expected
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            figment::error::Kind::MissingField(field) => {
                format!("missing key `{}`", qualify(&key, field))
            }
            other => {
                if key.is_empty() {
                    format!("{other}")
                } else {
                    format!("key `{key}`: {other}")
                }
            }
        };
        lines.push(format!("{from}: {what}"));
    }
    if lines.is_empty() {
        lines.push(format!("config {}: cannot be read", path.display()));
    }
    ConfigError(lines.join("; "))
}

fn qualify(section: &str, field: &str) -> String {
    if section.is_empty() || section.ends_with(field) {
        if section.is_empty() {
            field.to_string()
        } else {
            section.to_string()
        }
    } else {
        format!("{section}.{field}")
    }
}

/// Strips a password from a database URL before it is shown anywhere.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            let user = userinfo.split(':').next().unwrap_or("");
            return format!("{scheme}://{user}:***@{host}");
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_base_url_needs_https_except_on_this_machine() {
        assert!(check_base_url("https://connect.example.com").is_ok());
        assert!(check_base_url("https://connect.example.com/qbo/").is_ok());
        assert!(check_base_url("http://localhost:8080").is_ok());
        assert!(check_base_url("http://127.0.0.1:8080").is_ok());
        let e = check_base_url("http://connect.example.com").unwrap_err();
        assert!(e.contains("https://") && e.contains("localhost"), "{e}");
        assert!(check_base_url("https://connect.example.com/?next=x").is_err());
        assert!(check_base_url("connect.example.com").is_err());
        let p = PublicConfig {
            listen: Some("127.0.0.1:8080".into()),
            ..PublicConfig::default()
        };
        assert!(p.check().unwrap_err().contains("base_url"));
        let p = PublicConfig {
            tls_cert_file: Some("c.pem".into()),
            ..PublicConfig::default()
        };
        assert!(p.check().unwrap_err().contains("tls_key_file"));
    }

    #[test]
    fn redirect_uris_follow_intuits_rules() {
        use Environment::*;
        assert!(validate_redirect_uri(Production, "https://ops.example.com/cb").is_ok());
        assert!(validate_redirect_uri(Sandbox, "http://localhost:8080/cb").is_ok());
        assert!(validate_redirect_uri(Production, "http://localhost:8080/cb").is_err());
        assert!(validate_redirect_uri(Production, "http://ops.example.com/cb").is_err());
        assert!(validate_redirect_uri(Production, "https://10.0.0.1/cb").is_err());
        assert!(validate_redirect_uri(Production, "https://ops.example.com/cb?x=1").is_err());
    }

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path))
    }

    #[test]
    fn the_tui_section_takes_a_theme_and_key_overrides() {
        let cfg =
            load_text("[tui]\ntheme = \"light\"\n[tui.keys]\n\"ctrl-r\" = \"refresh\"\n").unwrap();
        assert_eq!(cfg.tui.theme, ThemeName::Light);
        assert_eq!(
            cfg.tui.keys.get("ctrl-r").map(String::as_str),
            Some("refresh")
        );
        assert_eq!(load_text("").unwrap().tui.theme, ThemeName::Dark);
    }

    #[test]
    fn a_bad_tui_theme_names_the_key_and_the_choices() {
        let e = load_text("[tui]\ntheme = \"blue\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tui.theme") && e.contains("blue"), "{e}");
        assert!(e.contains("dark") && e.contains("light"), "{e}");
        let e = load_text("[tui]\ncolour = 1\n").unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn intuit_endpoints_need_https_except_on_loopback() {
        for ok in [
            "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
            "http://127.0.0.1:8080/oauth2/v1/tokens/bearer",
            "http://127.1.2.3/x",
            "http://localhost:9000",
            "http://LOCALHOST:9000",
            "http://[::1]:9000/x",
        ] {
            assert!(validate_endpoint(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
            "http://10.0.0.1/x",
            "http://127.0.0.1.example.com/x",
            "http://localhost.example.com/x",
            "http://127.0.0.1@evil.example.com/x",
            "http://[::2]/x",
            "ftp://127.0.0.1/x",
            "oauth.platform.intuit.com/tokens",
        ] {
            assert!(validate_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sqlite_urls_must_name_a_file() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/q.db"),
            Ok(Some(PathBuf::from("/var/lib/q.db")))
        );
        assert_eq!(
            sqlite_file("sqlite://a%20b.db?mode=rwc"),
            Ok(Some(PathBuf::from("a b.db")))
        );
        assert_eq!(sqlite_file("postgres://x/y"), Ok(None));
        for bad in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://q.db?mode=memory",
            "sqlite://",
            "sqlite:",
            "sqlite://?cache=shared",
        ] {
            assert!(sqlite_file(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_redacted_from_database_urls() {
        assert_eq!(
            redact_url("postgres://ops:hunter2@db/qbo"),
            "postgres://ops:***@db/qbo"
        );
    }
}
