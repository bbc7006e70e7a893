//! `[health]`, `[forecast]` and `[alerts]`: the daemon's own CompanyInfo checks, the
//! forecast's horizon and rules, and where alerts go.

use super::SectionError;
use super::{validate_endpoint, ConfigError, SecretSource};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Intuit allows 10 concurrent requests per app and realm (INTUIT.md, "Throttling").
pub const INTUIT_MAX_CONCURRENT: usize = 10;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Every live connection is checked once per interval, at its own point in it, so the
    /// checks are spread evenly rather than all at once.
    #[serde(with = "humantime_serde", default = "default_interval")]
    pub interval: Duration,
    /// Checks in flight at once (at most Intuit's 10).
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            interval: default_interval(),
            max_concurrency: default_concurrency(),
        }
    }
}

fn default_interval() -> Duration {
    Duration::from_secs(86_400)
}
fn default_concurrency() -> usize {
    INTUIT_MAX_CONCURRENT
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastConfig {
    /// The horizon `forecast` and the console use when none is given.
    #[serde(default = "default_days")]
    pub days: u32,
    /// A live connection without a successful sync (health check, verify or host app) for
    /// this many days is listed.
    #[serde(default = "default_no_sync_days")]
    pub no_sync_days: u32,
    /// An open reconnect link not used this many days after it was issued is listed
    /// (`link_unused`): long enough for a customer to act, short enough to chase them
    /// while the link still works. 0 lists it at once.
    #[serde(default = "default_link_unused_days")]
    pub link_unused_days: u32,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig {
            days: default_days(),
            no_sync_days: default_no_sync_days(),
            link_unused_days: default_link_unused_days(),
        }
    }
}

fn default_days() -> u32 {
    30
}
fn default_no_sync_days() -> u32 {
    7
}
fn default_link_unused_days() -> u32 {
    2
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Alert when the forecast puts a connection's end within this many days.
    #[serde(default = "default_warn_days")]
    pub warn_days: u32,
    /// How often a digest of the conditions still open is sent.
    #[serde(with = "humantime_serde", default = "default_digest_interval")]
    pub digest_interval: Duration,
    /// Delivery attempts per message before it is given up (recorded as failed).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The wait before the second attempt; each further wait doubles, up to an hour.
    #[serde(with = "humantime_serde", default = "default_retry_base")]
    pub retry_base: Duration,
    /// How long one POST may take.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    #[serde(default, rename = "webhook")]
    raw_webhooks: Vec<RawWebhook>,
    /// Validated from `[[alerts.webhook]]`.
    #[serde(skip)]
    pub webhooks: Vec<Webhook>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            warn_days: default_warn_days(),
            digest_interval: default_digest_interval(),
            max_attempts: default_max_attempts(),
            retry_base: default_retry_base(),
            timeout: default_timeout(),
            raw_webhooks: Vec::new(),
            webhooks: Vec::new(),
        }
    }
}

fn default_warn_days() -> u32 {
    14
}
fn default_digest_interval() -> Duration {
    Duration::from_secs(86_400)
}
fn default_max_attempts() -> u32 {
    8
}
fn default_retry_base() -> Duration {
    Duration::from_secs(30)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    name: String,
    url: Option<String>,
    url_env: Option<String>,
    url_file: Option<PathBuf>,
}

/// One place alerts are POSTed to. Only its name is ever shown or stored: a Slack
/// incoming-webhook URL is itself a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub name: String,
    pub url: WebhookUrl,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookUrl {
    /// Written in the file (a receiver whose URL carries no secret).
    Inline(String),
    /// Read when the daemon starts, like the client secrets.
    Secret(SecretSource),
}

impl Webhook {
    /// The URL, read from its file or variable if need be, and checked (https, or http on
    /// loopback only).
    pub fn resolve(&self) -> Result<String, ConfigError> {
        let key = format!("[[alerts.webhook]] {:?}", self.name);
        let url = match &self.url {
            WebhookUrl::Inline(u) => u.clone(),
            WebhookUrl::Secret(s) => s.read(&format!("{key} url"))?.trim().to_string(),
        };
        // The message names the webhook, never the URL read from a secret.
        validate_endpoint(&url).map_err(|m| match &self.url {
            WebhookUrl::Inline(_) => ConfigError(format!("{key} url {m}")),
            WebhookUrl::Secret(_) => ConfigError(format!(
                "{key}: the URL read from url_file/url_env must use https:// (plain http:// is \
                 allowed only on loopback); fix the file or variable"
            )),
        })?;
        Ok(url)
    }
}

pub(super) fn validate_health(h: &HealthConfig) -> Result<(), SectionError> {
    if h.max_concurrency == 0 || h.max_concurrency > INTUIT_MAX_CONCURRENT {
        return Err(SectionError::from(format!(
            "[health] max_concurrency {} must be between 1 and {INTUIT_MAX_CONCURRENT} \
             (Intuit allows {INTUIT_MAX_CONCURRENT} concurrent requests per app and realm)",
            h.max_concurrency
        )));
    }
    // A check makes at most two CompanyInfo calls; once a minute keeps any realm far under
    // Intuit's 500 calls a minute.
    if h.interval < Duration::from_secs(60) {
        return Err(SectionError::from(format!(
            "[health] interval ({}) must be at least 1m; \"1d\" is a good value",
            humantime::format_duration(h.interval)
        )));
    }
    Ok(())
}

pub(super) fn validate_forecast(f: &ForecastConfig) -> Result<(), SectionError> {
    if f.days == 0 || f.days > 3650 || f.no_sync_days == 0 {
        return Err(SectionError::from(format!(
            "[forecast] days ({}) must be 1 to 3650 and no_sync_days ({}) at least 1; 30 and 7 are good values",
            f.days, f.no_sync_days
        )));
    }
    // A link lives at most 90 days: a longer wait would never list one.
    if f.link_unused_days > 90 {
        return Err(SectionError::from(format!(
            "[forecast] link_unused_days ({}) must be 0 to 90 (a link lives at most 90 days); 2 is a good value",
            f.link_unused_days
        )));
    }
    Ok(())
}

pub(super) fn validate_alerts(a: &mut AlertsConfig, source: &Path) -> Result<(), SectionError> {
    if a.max_attempts == 0 || a.retry_base.is_zero() || a.timeout.is_zero() {
        return Err(SectionError::from(
            "[alerts] max_attempts, retry_base and timeout must be above zero; 8, \"30s\" and \"10s\" are good values"
        ));
    }
    if a.digest_interval < Duration::from_secs(60) {
        return Err(SectionError::from(format!(
            "[alerts] digest_interval ({}) must be at least 1m; \"1d\" is a good value",
            humantime::format_duration(a.digest_interval)
        )));
    }
    let mut webhooks = Vec::new();
    for w in std::mem::take(&mut a.raw_webhooks) {
        let name = w.name.trim().to_string();
        if name.is_empty() || webhooks.iter().any(|x: &Webhook| x.name == name) {
            return Err(SectionError::from(format!(
                "[[alerts.webhook]] name {:?} is empty or used twice; give each webhook its own name",
                w.name
            )));
        }
        let url = match (w.url, w.url_env, w.url_file) {
            (Some(u), None, None) => {
                let u = u.trim().to_string();
                validate_endpoint(&u)
                    .map_err(|m| format!("[[alerts.webhook]] {name:?} url {m}"))?;
                WebhookUrl::Inline(u)
            }
            (None, env, file) if env.is_some() != file.is_some() => WebhookUrl::Secret(
                SecretSource::from_pair(
                    file,
                    env,
                    &format!("[[alerts.webhook]] {name:?} url"),
                    source,
                )
                .map_err(|e| e.0)?,
            ),
            _ => {
                return Err(SectionError::from(format!(
                    "[[alerts.webhook]] {name:?}: set exactly one of url, url_env or url_file \
                     (url_env/url_file for a URL that carries a secret, such as Slack's)"
                )))
            }
        };
        webhooks.push(Webhook { name, url });
    }
    a.webhooks = webhooks;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(url: WebhookUrl) -> Webhook {
        Webhook {
            name: "ops".into(),
            url,
        }
    }

    #[test]
    fn a_webhook_url_from_a_file_is_read_and_checked_without_being_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hook.url");
        std::fs::write(&file, "https://hooks.example.com/services/T0/B0/SECRET\n").unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let w = webhook(WebhookUrl::Secret(SecretSource::File(file.clone())));
        assert_eq!(
            w.resolve().unwrap(),
            "https://hooks.example.com/services/T0/B0/SECRET"
        );
        std::fs::write(&file, "http://hooks.example.com/services/T0/B0/SECRET").unwrap();
        let e = w.resolve().unwrap_err().0;
        assert!(e.contains("\"ops\"") && e.contains("https://"), "{e}");
        assert!(!e.contains("SECRET"), "the URL stays out of the error: {e}");
        // Inline, on loopback, plain http is fine.
        let local = webhook(WebhookUrl::Inline("http://127.0.0.1:9000/hook".into()));
        assert_eq!(local.resolve().unwrap(), "http://127.0.0.1:9000/hook");
    }

    #[test]
    fn a_webhook_needs_exactly_one_url_and_a_name_of_its_own() {
        let raw = |name: &str, url: Option<&str>, env: Option<&str>| RawWebhook {
            name: name.into(),
            url: url.map(str::to_string),
            url_env: env.map(str::to_string),
            url_file: None,
        };
        let mut a = AlertsConfig {
            raw_webhooks: vec![raw("ops", Some("https://a.example.com/x"), Some("HOOK"))],
            ..AlertsConfig::default()
        };
        let e = validate_alerts(&mut a, Path::new("c.toml")).unwrap_err();
        assert!(
            e.0.contains("exactly one of url, url_env or url_file"),
            "{e}"
        );
        let mut a = AlertsConfig {
            raw_webhooks: vec![
                raw("ops", Some("https://a.example.com/x"), None),
                raw("ops", None, Some("HOOK")),
            ],
            ..AlertsConfig::default()
        };
        let e = validate_alerts(&mut a, Path::new("c.toml")).unwrap_err();
        assert!(e.0.contains("used twice"), "{e}");
        let mut a = AlertsConfig {
            raw_webhooks: vec![
                raw("ops", Some("https://a.example.com/x"), None),
                raw("slack", None, Some("HOOK")),
            ],
            ..AlertsConfig::default()
        };
        validate_alerts(&mut a, Path::new("c.toml")).unwrap();
        assert_eq!(a.webhooks.len(), 2);
        assert_eq!(
            a.webhooks[1].url,
            WebhookUrl::Secret(SecretSource::Env("HOOK".into()))
        );
    }
}
