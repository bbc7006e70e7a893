//! Typed configuration: a TOML file, then `QBO_CONSOLE__SECTION__KEY` environment variables
//! on top. Secrets are never inline: each comes from a named environment variable or a file
//! (`*_env` / `*_file`), and is read only by the process that needs it (`SecretSource::read`).
//!
//! One file per section: its struct, its defaults and its check. `validate` below is the
//! list of those checks, in the order a reader of the file meets the sections.

use crate::domain::Environment;
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod api;
mod audit;
mod daemon;
mod database;
mod environments;
mod intuit;
mod listeners;
mod log;
mod monitoring;
mod public;
mod refresh;
mod retention;
mod roles;
mod scheduler;
mod secret;
mod tui;
mod vault;

pub use api::{ApiConfig, RawWebhooksConfig, WebhooksConfig};
pub use audit::AuditConfig;
pub use daemon::DaemonConfig;
pub use database::DatabaseConfig;
pub(crate) use environments::validate_endpoint;
pub use environments::{EnvironmentConfig, KNOWN_SCOPES};
pub use intuit::IntuitConfig;
pub use listeners::{default_share, Listener, ListenerLimits};
pub use log::LogConfig;
pub use monitoring::{AlertsConfig, ForecastConfig, HealthConfig, Webhook, WebhookUrl};
pub use public::PublicConfig;
pub use refresh::RefreshConfig;
pub use retention::RetentionConfig;
pub use roles::RolesConfig;
pub use scheduler::{IncidentsConfig, SchedulerConfig};
pub use secret::SecretSource;
pub use tui::{ThemeName, TuiConfig};
pub use vault::VaultConfig;

pub const ENV_CONFIG_PATH: &str = "QBO_CONSOLE_CONFIG";
pub const ENV_PREFIX: &str = "QBO_CONSOLE__";
pub const DEFAULT_CONFIG_PATH: &str = "qbo-console.toml";

/// A configuration problem, already phrased for the operator: the file, the key, the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// A problem one section's own check found, phrased for the operator (the key and the
/// fix); `Config::validate` puts the file's name in front and makes it a `ConfigError`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SectionError(pub String);

impl From<String> for SectionError {
    fn from(s: String) -> Self {
        SectionError(s)
    }
}

impl From<&str> for SectionError {
    fn from(s: &str) -> Self {
        SectionError(s.to_string())
    }
}

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

/// For `#[serde(default = "…")]` on a flag that is on unless turned off.
pub(crate) fn yes() -> bool {
    true
}

// ---- the file as written ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    database: Option<DatabaseConfig>,
    #[serde(default)]
    vault: Option<vault::RawVault>,
    #[serde(default)]
    environments: BTreeMap<String, environments::RawEnvironment>,
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
    audit: audit::RawAudit,
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

    /// Each section checks itself; the file's own name is put before every message.
    fn validate(source: PathBuf, raw: RawConfig) -> Result<Config, ConfigError> {
        let err = |e: SectionError| ConfigError(format!("config {}: {e}", source.display()));
        let database = raw
            .database
            .map(DatabaseConfig::check)
            .transpose()
            .map_err(err)?;
        let vault = raw.vault.map(|v| v.resolve(&source)).transpose()?;
        let environments = environments::resolve(raw.environments, &source)?;
        raw.refresh.check(&raw.intuit).map_err(err)?;
        raw.scheduler.check().map_err(err)?;
        raw.daemon.check().map_err(err)?;
        raw.api.check().map_err(err)?;
        let webhooks = raw.webhooks.validate(&source)?;
        raw.roles.check().map_err(err)?;
        raw.public.check().map_err(err)?;
        raw.log.check().map_err(err)?;
        monitoring::validate_health(&raw.health).map_err(err)?;
        monitoring::validate_forecast(&raw.forecast).map_err(err)?;
        let mut alerts = raw.alerts;
        monitoring::validate_alerts(&mut alerts, &source).map_err(err)?;
        let audit = raw.audit.resolve(&source)?;
        raw.retention.check().map_err(err)?;
        let config = Config {
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
        };
        config
            .check_listener_shares()
            .map_err(|e| ConfigError(format!("config {}: {e}", config.source.display())))?;
        Ok(config)
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn every_listener_takes_the_same_limit_keys_and_refuses_impossible_ones() {
        let cfg = load_text(
            "[api]\nmax_connections = 40\nmax_connections_per_address = 30\nrequest_timeout = \"3s\"\n\
             [public]\nmax_connections = 12\n\
             [daemon]\nmax_http_connections = 9\nmax_http_connections_per_address = 9\n",
        )
        .unwrap();
        let api = cfg.listener_limits(Listener::Api);
        assert_eq!((api.max_connections, api.max_per_address), (40, 30));
        assert_eq!(api.request_timeout, std::time::Duration::from_secs(3));
        let public = cfg.listener_limits(Listener::Public);
        assert_eq!((public.max_connections, public.max_per_address), (12, 4));
        assert_eq!(public.request_timeout, cfg.daemon.request_timeout);
        // Without its own cap, the public listener keeps [daemon]'s, as before it had one.
        let plain = load_text("").unwrap();
        let public = plain.listener_limits(Listener::Public);
        assert_eq!(public.max_connections, plain.daemon.max_http_connections);
        assert_eq!(public.cap_key, "[daemon] max_http_connections");
        let metrics = cfg.listener_limits(Listener::Metrics);
        assert_eq!((metrics.max_connections, metrics.max_per_address), (9, 9));
        for (text, key) in [
            (
                "[api]\nmax_connections_per_address = 0\n",
                "[api] max_connections_per_address",
            ),
            (
                "[public]\nmax_connections = 8\nmax_connections_per_address = 9\n",
                "[public] max_connections_per_address",
            ),
            (
                "[daemon]\nmax_http_connections_per_address = 500\n",
                "[daemon] max_http_connections_per_address",
            ),
            (
                "[public]\nrequest_timeout = \"0s\"\n",
                "[public] request_timeout",
            ),
        ] {
            let e = load_text(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
