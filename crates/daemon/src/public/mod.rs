//! The public HTTP listener: what customers' browsers (and Intuit, sending them) reach.
//! Separate from the operators' socket and from `/metrics`.
//!
//! Routes: `GET /connect/{id}` (a reconnect link), the OAuth callback at the path of each
//! environment's `redirect_uri`, and Intuit's Reconnect URL (`GET /intuit/reconnect`) and
//! Disconnect URL (`GET /intuit/disconnect`), both taking `realmId`: anonymous, so they
//! answer alike for every realm, connected or not, in shape and in time (see `connect`),
//! and neither spends a refresh token. `router` returns an
//! `axum::Router` so that other route groups (webhooks) can be merged into it.

mod callback;
pub mod check_gate;
mod connect;
pub mod pages;
pub use pages::harden;
pub mod rate_limit;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use qbo_core::config::{Config, ConfigError};
use qbo_service::consent::Browser;
use qbo_service::Service;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// Where Intuit's Reconnect URL and Disconnect URL are served (register these at Intuit).
pub const RECONNECT_PATH: &str = "/intuit/reconnect";
pub const DISCONNECT_PATH: &str = "/intuit/disconnect";

/// Requests to the public listener carry no body worth more than this.
pub const MAX_BODY_BYTES: u64 = 4096;

#[derive(Clone)]
pub struct PublicState {
    pub service: Service,
    pub settings: Arc<Settings>,
}

pub struct Settings {
    /// The paths of the environments' redirect URIs (the callback), without duplicates.
    pub callback_paths: Vec<String>,
    /// Cookies get `Secure` when the base URL is https.
    pub secure_cookie: bool,
    pub state_lifetime_secs: u64,
    pub trust_forwarded_for: bool,
    pub limiter: rate_limit::RateLimiter,
    /// Bounds the background checks Intuit's Disconnect URL asks for.
    pub disconnect_checks: check_gate::CheckGate,
}

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        let mut callback_paths: Vec<String> = config
            .environments
            .values()
            .map(|e| redirect_path(&e.redirect_uri))
            .collect();
        callback_paths.sort();
        callback_paths.dedup();
        Settings {
            callback_paths,
            secure_cookie: config
                .public
                .base_url
                .as_deref()
                .is_some_and(|b| b.starts_with("https://")),
            state_lifetime_secs: config.public.state_expires.as_secs().max(1),
            trust_forwarded_for: config.public.trust_forwarded_for,
            limiter: rate_limit::RateLimiter::new(config.public.rate_limit_per_minute),
            disconnect_checks: check_gate::CheckGate::default(),
        }
    }
}

/// The path of a redirect URI (validated at config load: absolute, no query).
fn redirect_path(uri: &str) -> String {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    match rest.find('/') {
        Some(i) => rest[i..].to_string(),
        None => "/".to_string(),
    }
}

/// The browsers' routes and `extra` (Intuit's webhooks), all behind one guard.
pub fn router(state: PublicState, extra: Router) -> Router {
    let mut r = Router::new()
        .route("/connect/{id}", get(connect::open))
        .route(RECONNECT_PATH, get(connect::reconnect))
        .route(DISCONNECT_PATH, get(connect::disconnect));
    for path in &state.settings.callback_paths {
        r = r.route(path, get(callback::callback));
    }
    r.with_state(state.clone())
        .merge(extra)
        .fallback(|| async { pages::not_found() })
        .layer(axum::middleware::from_fn_with_state(state, guard))
}

/// The bodies the public listener reads (`http_listener::Bodies`): only the webhooks', up
/// to four times their own limit, so that their route refuses (and counts) an oversized
/// one; beyond that the edge refuses it unread.
pub fn bodies(method: &axum::http::Method, path: &str) -> Option<usize> {
    (method == axum::http::Method::POST && path == crate::webhooks::PATH)
        .then_some(4 * crate::webhooks::MAX_BODY)
}

/// The largest body a request may declare: what `bodies` reads for its route, a little
/// for every route that takes none.
fn body_limit(method: &axum::http::Method, path: &str) -> u64 {
    bodies(method, path).map_or(MAX_BODY_BYTES, |n| n as u64)
}

/// Before every route: the body limit and the per-address budget; after: the headers.
async fn guard(State(s): State<PublicState>, req: Request, next: Next) -> Response {
    let addr = client_ip(
        req.extensions().get::<ConnectInfo<SocketAddr>>(),
        req.headers(),
        s.settings.trust_forwarded_for,
    );
    let too_big = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > body_limit(req.method(), req.uri().path()));
    let mut resp = if too_big {
        pages::page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request too large",
            "This address takes no uploads.",
        )
    } else if let Err(wait) = addr.map_or(Ok(()), |a| s.settings.limiter.check(a, Instant::now())) {
        let mut r = pages::page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "Too many requests from your address. Wait a minute and open the link again.",
        );
        if let Ok(v) = header::HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    } else {
        next.run(req).await
    };
    pages::harden(&mut resp);
    resp
}

/// The browser's address: the peer, or behind a trusted proxy the last `X-Forwarded-For`
/// entry (the one the proxy itself appended) when it is an address. The rate limit and the
/// audit log both use this one answer, so neither counts nor records text a browser wrote.
fn client_ip(
    peer: Option<&ConnectInfo<SocketAddr>>,
    headers: &HeaderMap,
    trust_forwarded_for: bool,
) -> Option<IpAddr> {
    if trust_forwarded_for {
        if let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
        {
            return Some(ip);
        }
    }
    peer.map(|c| c.0.ip())
}

/// The browser as the audit log names it.
fn browser(
    peer: Option<&ConnectInfo<SocketAddr>>,
    headers: &HeaderMap,
    trust_xff: bool,
) -> Browser {
    Browser {
        address: client_ip(peer, headers, trust_xff)
            .map_or_else(|| "unknown".into(), |ip| ip.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default(),
    }
}

/// Logs an error the browser is only told about in general terms.
fn failed(what: &str, e: anyhow::Error) -> Response {
    tracing::error!(error = %qbo_core::text::Safe(&format!("{e:#}")), "{what} failed");
    pages::internal_error().into_response()
}

/// The TLS acceptor for `[public] tls_cert_file` and `tls_key_file`, when both are set:
/// the same loading (and key file mode check) as the token API's listener.
pub fn tls_acceptor(config: &Config) -> Result<Option<tokio_rustls::TlsAcceptor>, ConfigError> {
    let (Some(cert), Some(key)) = (&config.public.tls_cert_file, &config.public.tls_key_file)
    else {
        return Ok(None);
    };
    crate::tls::acceptor(cert, key).map(Some).map_err(|e| {
        ConfigError(format!(
            "config {}: [public] {e:#}",
            config.source.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behind_a_trusted_proxy_the_audit_names_the_address_the_proxy_appended_or_the_peer() {
        let peer = ConnectInfo(SocketAddr::from(([192, 0, 2, 7], 40000)));
        let with_xff = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-for", v.parse().unwrap());
            h
        };
        let h = with_xff("10.0.0.1, 198.51.100.4");
        assert_eq!(browser(Some(&peer), &h, true).address, "198.51.100.4");
        assert_eq!(browser(Some(&peer), &h, false).address, "192.0.2.7");
        // Text that is no address is neither counted nor recorded as one.
        let h = with_xff("198.51.100.4, <script>not-an-address");
        assert_eq!(browser(Some(&peer), &h, true).address, "192.0.2.7");
        assert_eq!(browser(None, &h, true).address, "unknown");
    }

    #[test]
    fn the_callback_is_served_at_the_path_of_the_redirect_uri() {
        assert_eq!(
            super::redirect_path("https://ops.example.com/qbo/callback"),
            "/qbo/callback"
        );
        assert_eq!(
            super::redirect_path("http://localhost:8080/callback"),
            "/callback"
        );
        assert_eq!(super::redirect_path("https://ops.example.com"), "/");
    }
}
