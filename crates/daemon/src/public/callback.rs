//! The OAuth callback, at the path of each environment's `redirect_uri`.

use super::{browser, failed, pages, PublicState};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, Extensions, HeaderMap, Uri};
use axum::response::Response;
use qbo_service::consent::CallbackQuery;
use std::net::SocketAddr;

pub(super) async fn callback(
    State(s): State<PublicState>,
    uri: Uri,
    ext: Extensions,
    headers: HeaderMap,
) -> Response {
    // A query that does not parse (a repeated parameter, say) is treated as carrying
    // nothing: refused, and recorded, as a missing state.
    let q = Query::<CallbackQuery>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let binding = cookie(&headers, pages::BINDING_COOKIE);
    let b = browser(
        ext.get::<ConnectInfo<SocketAddr>>(),
        &headers,
        s.settings.trust_forwarded_for,
    );
    match s.service.consent_callback(&q, binding.as_deref(), &b).await {
        Ok(a) => pages::answer(a, s.settings.secure_cookie, s.settings.state_lifetime_secs),
        Err(e) => failed("the OAuth callback", e),
    }
}

/// One cookie's value from the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}
