//! `[public]`: the listener customers' browsers reach, and how long links live.

use super::ConfigError;
use super::SectionError;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

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
    /// Connections served at once; one more gets a 503. `[daemon] max_http_connections`
    /// unless set (the public listener shared that cap before it had its own).
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Connections one client address may hold at once; a quarter of `max_connections`
    /// (at least 4) unless set (behind a
    /// trusted proxy every connection shares the proxy's address, so the cap is the whole of
    /// `max_connections` and the rate limit applies to each browser instead).
    #[serde(default)]
    pub max_connections_per_address: Option<usize>,
    /// A request's headers must arrive within this long of the connection going idle, and
    /// its body within this long of the headers' end; `[daemon] request_timeout` unless set.
    #[serde(with = "humantime_serde", default)]
    pub request_timeout: Option<Duration>,
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
            max_connections: None,
            max_connections_per_address: None,
            request_timeout: None,
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
    pub(super) fn check(&self) -> Result<(), SectionError> {
        if let Some(l) = &self.listen {
            if l.parse::<std::net::SocketAddr>().is_err() {
                return Err(SectionError::from(format!(
                    "[public] listen {l:?} is not an address such as 127.0.0.1:8080"
                )));
            }
            if self.base_url.is_none() {
                return Err(SectionError::from(format!(
                    "[public] listen is set ({l:?}) but base_url is not; set base_url to the address customers' browsers use, e.g. \"https://connect.example.com\""
                )));
            }
        }
        if let Some(b) = &self.base_url {
            check_base_url(b).map_err(|m| format!("[public] base_url {m}"))?;
        }
        if self.link_expires.is_zero() || self.state_expires.is_zero() {
            return Err(SectionError::from(
                "[public] link_expires and state_expires must be positive, e.g. \"7d\" and \"15m\"",
            ));
        }
        if self.max_connections == Some(0) {
            return Err(SectionError::from(
                "[public] max_connections is 0, which would refuse every browser; use a number such as 128"
            ));
        }
        if self.request_timeout.is_some_and(|t| t.is_zero()) {
            return Err(SectionError::from(
                "[public] request_timeout is 0, which would disconnect every browser at once; use a duration such as \"10s\", or remove it for [daemon] request_timeout"
            ));
        }
        if self.rate_limit_per_minute == 0 {
            return Err(SectionError::from(
                "[public] rate_limit_per_minute is 0, which would refuse every browser; use a number such as 60"
            ));
        }
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(_), None) | (None, Some(_)) => Err(SectionError::from(
                "[public] tls_cert_file and tls_key_file go together; set both (serve terminates TLS) or neither (plain HTTP behind a reverse proxy)"
            )),
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
fn check_base_url(v: &str) -> Result<(), SectionError> {
    let url = reqwest::Url::parse(v).map_err(|e| {
        format!("{v:?} is not a URL ({e}); use https://HOST, e.g. \"https://connect.example.com\"")
    })?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(SectionError::from(format!(
            "{v:?} carries a query or fragment; give the bare address"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SectionError::from(format!(
            "{v:?} carries credentials; give the bare address"
        )));
    }
    match (url.scheme(), url.host_str()) {
        ("https", Some(_)) => Ok(()),
        ("http", Some("localhost" | "127.0.0.1")) => Ok(()),
        ("http", _) => Err(SectionError::from(format!(
            "{v:?} must use https:// (customers' browsers carry consent through it); plain http:// is allowed only for localhost and 127.0.0.1"
        ))),
        _ => Err(SectionError::from(format!("{v:?}: expected an https:// URL"))),
    }
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
        assert!(e.0.contains("https://") && e.0.contains("localhost"), "{e}");
        assert!(check_base_url("https://connect.example.com/?next=x").is_err());
        assert!(check_base_url("connect.example.com").is_err());
        let p = PublicConfig {
            listen: Some("127.0.0.1:8080".into()),
            ..PublicConfig::default()
        };
        assert!(p.check().unwrap_err().0.contains("base_url"));
        let p = PublicConfig {
            tls_cert_file: Some("c.pem".into()),
            ..PublicConfig::default()
        };
        assert!(p.check().unwrap_err().0.contains("tls_key_file"));
    }
}
