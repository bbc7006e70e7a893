//! `GET /connect/{id}` and Intuit's Reconnect and Disconnect URLs.

use super::{browser, failed, pages, PublicState};
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{Extensions, HeaderMap};
use axum::response::Response;
use std::net::SocketAddr;

pub(super) async fn open(
    State(s): State<PublicState>,
    Path(id): Path<String>,
    ext: Extensions,
    headers: HeaderMap,
) -> Response {
    let b = browser(
        ext.get::<ConnectInfo<SocketAddr>>(),
        &headers,
        s.settings.trust_forwarded_for,
    );
    match s.service.link_open(&id, &b).await {
        Ok(a) => pages::answer(a, s.settings.secure_cookie, s.settings.state_lifetime_secs),
        Err(e) => failed("opening a reconnect link", e),
    }
}

/// The `realmId` of a query, if it has exactly one.
fn realm(q: Option<&str>) -> Option<String> {
    let mut found = q?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == "realmId")
        .map(|(_, v)| v.to_string());
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

pub(super) async fn reconnect(
    State(s): State<PublicState>,
    RawQuery(q): RawQuery,
    ext: Extensions,
    headers: HeaderMap,
) -> Response {
    let b = browser(
        ext.get::<ConnectInfo<SocketAddr>>(),
        &headers,
        s.settings.trust_forwarded_for,
    );
    match s
        .service
        .intuit_reconnect(realm(q.as_deref()).as_deref(), &b)
        .await
    {
        Ok(a) => pages::answer(a, s.settings.secure_cookie, s.settings.state_lifetime_secs),
        Err(e) => failed("Intuit's Reconnect URL", e),
    }
}

pub(super) async fn disconnect(
    State(s): State<PublicState>,
    RawQuery(q): RawQuery,
    ext: Extensions,
    headers: HeaderMap,
) -> Response {
    let b = browser(
        ext.get::<ConnectInfo<SocketAddr>>(),
        &headers,
        s.settings.trust_forwarded_for,
    );
    match s
        .service
        .intuit_disconnect(realm(q.as_deref()).as_deref(), &b)
        .await
    {
        Ok(a) => pages::answer(a, s.settings.secure_cookie, s.settings.state_lifetime_secs),
        Err(e) => failed("Intuit's Disconnect URL", e),
    }
}
