//! `GET /connect/{id}` and Intuit's Reconnect and Disconnect URLs.

use super::{browser, failed, pages, PublicState};
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{Extensions, HeaderMap};
use axum::response::Response;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

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

/// The least time Intuit's Reconnect and Disconnect URLs take to answer. Their work is the
/// same for a connected and an unknown realm (one lookup, one transaction with one audit
/// event), and every answer is then held until this long after the request arrived, so
/// what is left of any difference (a row more, a longer reason) cannot be timed from
/// outside. Well above that work on a loaded machine; a person clicking does not notice it.
pub const ANSWER_FLOOR: Duration = Duration::from_millis(200);

pub(super) async fn reconnect(
    State(s): State<PublicState>,
    RawQuery(q): RawQuery,
    ext: Extensions,
    headers: HeaderMap,
) -> Response {
    let answer_at = Instant::now() + ANSWER_FLOOR;
    let b = browser(
        ext.get::<ConnectInfo<SocketAddr>>(),
        &headers,
        s.settings.trust_forwarded_for,
    );
    let r = match s
        .service
        .intuit_reconnect(realm(q.as_deref()).as_deref(), &b)
        .await
    {
        Ok(a) => pages::answer(a, s.settings.secure_cookie, s.settings.state_lifetime_secs),
        Err(e) => failed("Intuit's Reconnect URL", e),
    };
    tokio::time::sleep_until(answer_at).await;
    r
}

pub(super) async fn disconnect(
    State(s): State<PublicState>,
    RawQuery(q): RawQuery,
    ext: Extensions,
    headers: HeaderMap,
) -> Response {
    let answer_at = Instant::now() + ANSWER_FLOOR;
    let b = browser(
        ext.get::<ConnectInfo<SocketAddr>>(),
        &headers,
        s.settings.trust_forwarded_for,
    );
    let r = match s
        .service
        .intuit_disconnect(realm(q.as_deref()).as_deref(), &b)
        .await
    {
        Ok(d) => {
            // The check runs after the answer and on its own: what it finds is recorded,
            // never shown to whoever opened the URL.
            if let Some(id) = d.check.filter(|id| {
                s.settings
                    .disconnect_checks
                    .admit(*id, std::time::Instant::now())
            }) {
                let service = s.service.clone();
                tokio::spawn(async move {
                    if let Err(e) = service.check_after_disconnect(id).await {
                        tracing::warn!(
                            error = %qbo_core::text::Safe(&format!("{e:#}")),
                            connection = id,
                            "the check after Intuit's Disconnect URL failed"
                        );
                    }
                });
            }
            pages::answer(
                d.answer,
                s.settings.secure_cookie,
                s.settings.state_lifetime_secs,
            )
        }
        Err(e) => failed("Intuit's Disconnect URL", e),
    };
    tokio::time::sleep_until(answer_at).await;
    r
}
