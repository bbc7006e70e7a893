//! The Intuit OAuth 2.0 and QBO client, exactly as INTUIT.md describes the wire: Basic
//! auth, form bodies, JSON accepted, the hard-expiry opt-in header, `intuit_tid` kept with
//! every answer. One client per environment: its keys are never used with the other.

mod error;

pub use error::IntuitError;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use qbo_core::config::{ConfigError, EnvironmentConfig, IntuitConfig};
use qbo_core::domain::{Environment, RealmId};
use qbo_core::vault::{AccessToken, RefreshToken};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde::Deserialize;
use std::time::Duration;
use zeroize::Zeroizing;

const HARD_EXPIRY_HEADER: &str = "x-include-refresh-token-hard-expires-in";
const MINOR_VERSION: u32 = 75;

/// A successful token answer.
#[derive(Debug)]
pub struct TokenGrant {
    pub access_token: AccessToken,
    pub refresh_token: RefreshToken,
    /// Seconds the access token lives, as Intuit said (not assumed to be 3600).
    pub expires_in: i64,
    /// Seconds the refresh token lives from now (the rolling 100-day window).
    pub refresh_expires_in: i64,
    /// Seconds to the 5-year hard limit, when asked for and given.
    pub hard_expires_in: Option<i64>,
    pub intuit_tid: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CompanyInfo {
    pub company_name: String,
    pub intuit_tid: Option<String>,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    refresh_token: String,
    expires_in: i64,
    x_refresh_token_expires_in: i64,
    #[serde(default)]
    x_refresh_token_hard_expires_in: Option<i64>,
}

pub struct IntuitClient {
    env: EnvironmentConfig,
    http: reqwest::Client,
    basic_auth: Zeroizing<String>,
    request_hard_expiry: bool,
}

impl std::fmt::Debug for IntuitClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntuitClient")
            .field("environment", &self.env.environment)
            .field("client_id", &self.env.client_id)
            .field("token_endpoint", &self.env.token_endpoint)
            .finish_non_exhaustive()
    }
}

impl IntuitClient {
    /// Builds the client, reading the client secret from where the config says it is.
    pub fn new(
        env: &EnvironmentConfig,
        cfg: &IntuitConfig,
        config_path: &std::path::Path,
    ) -> Result<Self, ConfigError> {
        let secret = env.client_secret.read(&format!(
            "config {}: [environments.{}] client_secret",
            config_path.display(),
            env.environment
        ))?;
        let raw = Zeroizing::new(format!("{}:{}", env.client_id, secret.as_str()));
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.connect_timeout)
            .user_agent(concat!("qbo-console/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| ConfigError(format!("cannot build the HTTP client: {e}")))?;
        Ok(IntuitClient {
            env: env.clone(),
            http,
            basic_auth: Zeroizing::new(format!("Basic {}", B64.encode(raw.as_bytes()))),
            request_hard_expiry: cfg.request_hard_expiry,
        })
    }

    pub fn environment(&self) -> Environment {
        self.env.environment
    }

    /// Where to send the customer's browser to consent.
    pub fn authorization_url(&self, state: &str) -> String {
        // An overridden endpoint may carry a query of its own: extend it, don't break it.
        let joiner = if self.env.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{joiner}client_id={}&response_type=code&scope={}&redirect_uri={}&state={}",
            self.env.authorization_endpoint,
            urlencoding::encode(&self.env.client_id),
            urlencoding::encode(&self.env.scopes.join(" ")),
            urlencoding::encode(&self.env.redirect_uri),
            urlencoding::encode(state)
        )
    }

    pub async fn exchange_code(&self, code: &str) -> Result<TokenGrant, IntuitError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.env.redirect_uri.as_str()),
        ];
        self.token_call(&form).await
    }

    pub async fn refresh(&self, token: &RefreshToken) -> Result<TokenGrant, IntuitError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", token.expose()),
        ];
        self.token_call(&form).await
    }

    async fn token_call(&self, form: &[(&str, &str)]) -> Result<TokenGrant, IntuitError> {
        let mut req = self
            .http
            .post(&self.env.token_endpoint)
            .header(AUTHORIZATION, self.basic_auth.as_str())
            .header(ACCEPT, "application/json")
            .form(form);
        if self.request_hard_expiry {
            req = req.header(HARD_EXPIRY_HEADER, "true");
        }
        let resp = req.send().await.map_err(|e| error::transport(&e))?;
        let status = resp.status().as_u16();
        let (tid, retry_after) = meta(resp.headers());
        let body = resp.text().await.map_err(|e| {
            let mut err = error::transport(&e);
            err.intuit_tid = tid.clone();
            err
        })?;
        let body = Zeroizing::new(body);
        if status != 200 {
            return Err(error::classify_oauth(status, &body, tid, retry_after));
        }
        let parsed: TokenBody = serde_json::from_str(&body)
            .map_err(|_| error::unparsable_success(status, tid.clone()))?;
        let access_token = AccessToken::new(parsed.access_token)
            .map_err(|_| error::unparsable_success(status, tid.clone()))?;
        let refresh_token = RefreshToken::new(parsed.refresh_token)
            .map_err(|_| error::unparsable_success(status, tid.clone()))?;
        Ok(TokenGrant {
            access_token,
            refresh_token,
            expires_in: parsed.expires_in,
            refresh_expires_in: parsed.x_refresh_token_expires_in,
            hard_expires_in: parsed.x_refresh_token_hard_expires_in,
            intuit_tid: tid,
        })
    }

    /// Revokes the grant behind a token (the refresh token ends the whole grant).
    pub async fn revoke(&self, token: &str) -> Result<Option<String>, IntuitError> {
        let body = serde_json::json!({ "token": token });
        let resp = self
            .http
            .post(&self.env.revocation_endpoint)
            .header(AUTHORIZATION, self.basic_auth.as_str())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| error::transport(&e))?;
        let status = resp.status().as_u16();
        let (tid, retry_after) = meta(resp.headers());
        if status == 200 {
            return Ok(tid);
        }
        let text = resp.text().await.unwrap_or_default();
        Err(error::classify_oauth(status, &text, tid, retry_after))
    }

    /// The health check: `GET /v3/company/{realm}/companyinfo/{realm}`.
    pub async fn company_info(
        &self,
        realm: &RealmId,
        token: &AccessToken,
    ) -> Result<CompanyInfo, IntuitError> {
        let url = format!(
            "{}/v3/company/{realm}/companyinfo/{realm}?minorversion={MINOR_VERSION}",
            self.env.api_base
        );
        let resp = self
            .http
            .get(url)
            .header(AUTHORIZATION, format!("Bearer {}", token.expose()))
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| error::transport(&e))?;
        let status = resp.status().as_u16();
        let (tid, retry_after) = meta(resp.headers());
        let text = resp.text().await.map_err(|e| error::transport(&e))?;
        if status != 200 {
            return Err(error::classify_api(status, &text, tid, retry_after));
        }
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|_| error::classify_api(status, &text, tid.clone(), None))?;
        let name = v
            .get("CompanyInfo")
            .and_then(|c| c.get("CompanyName"))
            .and_then(|n| n.as_str())
            .ok_or_else(|| error::classify_api(status, &text, tid.clone(), None))?;
        Ok(CompanyInfo {
            company_name: name.to_string(),
            intuit_tid: tid,
        })
    }
}

fn meta(h: &HeaderMap) -> (Option<String>, Option<Duration>) {
    let tid = h
        .get("intuit_tid")
        .or_else(|| h.get("intuit-tid"))
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(128).collect());
    let retry = h
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    (tid, retry)
}
