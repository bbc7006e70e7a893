//! `[environments.production]` and `[environments.sandbox]`: an Intuit app's keys, its
//! redirect URI and the endpoints tokens travel to, each held to Intuit's rules.

use super::SectionError;
use super::{ConfigError, SecretSource};
use crate::domain::Environment;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEnvironment {
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

/// Each environment's section, checked and with Intuit's endpoints filled in.
pub(super) fn resolve(
    raw: BTreeMap<String, RawEnvironment>,
    source: &Path,
) -> Result<BTreeMap<Environment, EnvironmentConfig>, ConfigError> {
    let err = |msg: String| ConfigError(format!("config {}: {msg}", source.display()));
    let mut environments = BTreeMap::new();
    for (name, e) in raw {
        let env: Environment = name
            .parse()
            .map_err(|m: crate::domain::InvalidValue| err(format!("[environments.{name}]: {m}")))?;
        let section = format!("[environments.{name}]");
        if e.client_id.trim().is_empty() {
            return Err(err(format!("{section} client_id is empty")));
        }
        let client_secret = SecretSource::from_pair(
            e.client_secret_file,
            e.client_secret_env,
            &format!("{section} client_secret"),
            source,
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

    Ok(environments)
}

/// Intuit's rules: https only, `http://localhost` for sandbox only, no IP addresses, no
/// query string (context travels in `state`).
fn validate_redirect_uri(env: Environment, uri: &str) -> Result<(), SectionError> {
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| format!("{uri:?} is not an absolute URL"))?;
    if uri.contains('?') || uri.contains('#') {
        return Err(SectionError::from(format!(
            "{uri:?} carries a query string or fragment; Intuit requires an exact URI without one (pass context in state)"
        )));
    }
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(authority);
    if host.is_empty() {
        return Err(SectionError::from(format!("{uri:?} has no host")));
    }
    let is_ip = host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[');
    match scheme {
        "https" if is_ip => Err(SectionError::from(format!(
            "{uri:?} uses an IP address; Intuit only accepts host names"
        ))),
        "https" => Ok(()),
        "http" if host == "localhost" && env == Environment::Sandbox => Ok(()),
        "http" if host == "localhost" => Err(SectionError::from(format!(
            "{uri:?}: http://localhost is allowed for sandbox only; production needs https://"
        ))),
        _ => Err(SectionError::from(format!(
            "{uri:?} must use https:// (http://localhost is allowed for sandbox only)"
        ))),
    }
}

/// Refresh tokens and the client secret travel to these endpoints: https only, except on
/// this machine's loopback (the emulator in tests and the demo), which never leaves it.
pub(crate) fn validate_endpoint(v: &str) -> Result<(), SectionError> {
    let url = reqwest::Url::parse(v)
        .map_err(|e| format!("{v:?} is not a URL ({e}); use https://HOST/PATH"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(SectionError::from(format!(
            "{v:?} must use https:// (plain http:// is allowed only on loopback: localhost, \
             127.0.0.0/8, [::1]), or tokens and the client secret would travel in cleartext"
        ))),
        _ => Err(SectionError::from(format!(
            "{v:?}: expected an https:// URL"
        ))),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
