//! `[api]` and `[webhooks]`: the token API's listener and Intuit's webhook verifier token.

use super::SecretSource;
use super::SectionError;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The token API's own listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Loopback by default; any other address needs TLS (`tls_cert_file`, `tls_key_file`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// PEM certificate chain; with `tls_key_file`, the listener speaks HTTPS only.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key (mode-checked like every secret file).
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// An access token with less than this left is refreshed before it is handed out.
    #[serde(with = "humantime_serde", default = "default_min_validity")]
    pub min_validity: Duration,
    /// Connections served at once; one more gets a 503.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Connections one client address may hold at once; a quarter of `max_connections`
    /// (at least 4) unless set.
    #[serde(default)]
    pub max_connections_per_address: Option<usize>,
    /// A request's headers must arrive within this long of the connection going idle, and
    /// its body within this long of the headers' end; `[daemon] request_timeout` unless set.
    #[serde(with = "humantime_serde", default)]
    pub request_timeout: Option<Duration>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: default_listen(),
            tls_cert_file: None,
            tls_key_file: None,
            min_validity: default_min_validity(),
            max_connections: default_max_connections(),
            max_connections_per_address: None,
            request_timeout: None,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:9188".into()
}
fn default_min_validity() -> Duration {
    Duration::from_secs(5 * 60)
}
fn default_max_connections() -> usize {
    256
}

impl ApiConfig {
    pub(crate) fn check(&self) -> Result<(), SectionError> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(SectionError::from(format!(
                "[api] listen {:?} is not an address such as 127.0.0.1:9188",
                self.listen
            )));
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(SectionError::from(
                "[api] tls_cert_file and tls_key_file go together: set both for HTTPS, or neither",
            ));
        }
        if self.max_connections == 0 {
            return Err(SectionError::from(
                "[api] max_connections is 0, which would refuse every client; use a number such as 256"
            ));
        }
        if self.request_timeout.is_some_and(|t| t.is_zero()) {
            return Err(SectionError::from(
                "[api] request_timeout is 0, which would disconnect every client at once; use a duration such as \"10s\", or remove it for [daemon] request_timeout"
            ));
        }
        if self.min_validity >= Duration::from_secs(55 * 60) {
            return Err(SectionError::from(format!(
                "[api] min_validity ({}) must be well under an access token's hour, or every request would refresh; 5m is a good value",
                humantime::format_duration(self.min_validity)
            )));
        }
        Ok(())
    }

    pub fn tls(&self) -> bool {
        self.tls_cert_file.is_some()
    }
}

/// `[webhooks]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhooksConfig {
    verifier_token_file: Option<PathBuf>,
    verifier_token_env: Option<String>,
}

/// Intuit's webhooks: the verifier token that signs every notification. Without one, the
/// webhook route refuses everything.
#[derive(Debug, Clone, Default)]
pub struct WebhooksConfig {
    pub verifier_token: Option<SecretSource>,
}

impl RawWebhooksConfig {
    pub(crate) fn validate(
        self,
        source: &std::path::Path,
    ) -> Result<WebhooksConfig, crate::config::ConfigError> {
        let verifier_token = match (self.verifier_token_file, self.verifier_token_env) {
            (None, None) => None,
            (f, e) => Some(SecretSource::from_pair(
                f,
                e,
                "[webhooks] verifier_token",
                source,
            )?),
        };
        Ok(WebhooksConfig { verifier_token })
    }
}
