//! The token API's routes. `ROUTES` lists each with the status codes it answers; a test
//! holds `assets/openapi.json` to it both ways and drives each route on a real listener.

use super::keys::ServiceKey;
use super::{Fetched, Presenter, Snapshot, TokenApi};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use qbo_core::domain::{Environment, SyncStatus};
use qbo_service::{Action, AuditEvent, Outcome};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Every route the token API serves: method, path, the status codes it may answer.
pub const ROUTES: &[(&str, &str, &[u16])] = &[
    ("get", "/v1/connections", &[200, 401, 500]),
    (
        "get",
        "/v1/connections/{realm}/access-token",
        &[200, 400, 401, 404, 409, 500, 503],
    ),
    (
        "post",
        "/v1/connections/{realm}/sync",
        &[200, 400, 401, 404, 500],
    ),
];

/// The bodies the token API's listener reads (`http_listener::Bodies`): a `sync` report
/// (a few hundred bytes; 64 KiB is ample) and, when they are served here, the webhooks'.
pub fn bodies(method: &axum::http::Method, path: &str) -> Option<usize> {
    if method != axum::http::Method::POST {
        return None;
    }
    if path.starts_with("/v1/connections/") && path.ends_with("/sync") {
        Some(64 * 1024)
    } else {
        crate::public::bodies(method, path)
    }
}

pub fn router(api: Arc<TokenApi>) -> Router {
    Router::new()
        .route("/v1/connections", get(list))
        .route("/v1/connections/{realm}/access-token", get(access_token))
        .route("/v1/connections/{realm}/sync", post(sync))
        .with_state(api)
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

fn internal(e: anyhow::Error) -> Response {
    tracing::warn!(error = %format!("{e:#}"), "token API request failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the daemon could not answer (see its log); try again".into(),
    )
}

fn unauthorized() -> Response {
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing, unknown or revoked API key; send `Authorization: Bearer KEY` with a key from `qbo-console apikey create`".into(),
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

/// The same answer whether the realm has no connection or the key may not see it.
fn not_found(realm: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no connection to realm {:?} that this key may read",
            qbo_core::text::Safe(realm).to_string()
        ),
    )
}

/// Who presents the request: the peer's address (the listener puts it in the
/// extensions) and the bearer key, if any.
fn presenter<'a>(ext: &Extensions, headers: &'a HeaderMap) -> Presenter<'a> {
    Presenter {
        peer: ext
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip()),
        key: super::keys::bearer(
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        ),
    }
}

/// The caller's key, or the 401 (recorded) that refuses it.
async fn authenticate(
    api: &TokenApi,
    headers: &HeaderMap,
    from: &Presenter<'_>,
) -> Result<Arc<ServiceKey>, Response> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match api.keys.check(&api.service, value).await {
        Ok(Ok(k)) => Ok(k),
        Ok(Err((why, rec))) => {
            let account = rec.as_ref().map(|r| r.name.clone());
            let reason = match &rec {
                Some(r) => format!(
                    "{} (api key {} of service {})",
                    why.describe(),
                    r.id,
                    r.name
                ),
                None => why.describe().to_string(),
            };
            let kind = match why {
                super::keys::KeyRefusal::Missing => "missing",
                super::keys::KeyRefusal::Unknown => "unknown",
                super::keys::KeyRefusal::Revoked => "revoked",
            };
            if let Err(e) = api
                .record_refusal(None, account, None, reason, from, kind)
                .await
            {
                return Err(internal(e));
            }
            Err(unauthorized())
        }
        Err(e) => Err(internal(e)),
    }
}

#[derive(Debug, Deserialize)]
struct EnvQuery {
    env: Option<String>,
}

/// The one connection to `realm` the key may read (narrowed by `?env=`), or the refusal.
async fn resolve(
    api: &TokenApi,
    key: &ServiceKey,
    realm: &str,
    env: Option<&str>,
    from: &Presenter<'_>,
) -> Result<Arc<Snapshot>, Response> {
    let env = match env.map(str::parse::<Environment>).transpose() {
        Ok(e) => e,
        Err(m) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("?env=: {m}"),
            ))
        }
    };
    let all = if qbo_core::domain::RealmId::parse(realm).is_ok() {
        api.realm(realm, false).await.map_err(internal)?
    } else {
        Default::default()
    };
    let wanted: Vec<&Arc<Snapshot>> = all
        .iter()
        .filter(|s| env.is_none_or(|e| e == s.environment))
        .collect();
    let visible: Vec<&Arc<Snapshot>> = wanted
        .iter()
        .copied()
        .filter(|s| key.may_read(s.environment, &s.realm_id))
        .collect();
    match visible.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            // Recorded with the connection when there is one: an auditor sees who tried.
            let hidden = wanted.first().map(|s| s.as_ref());
            let reason = match hidden {
                Some(_) => format!("api key {} may not read this connection", key.id),
                None => format!(
                    "api key {} asked for realm {:?}, which has no connection{}",
                    key.id,
                    qbo_core::text::Safe(realm).to_string(),
                    env.map_or(String::new(), |e| format!(" in {e}"))
                ),
            };
            if let Err(e) = api
                .record_refusal(Some(key), None, hidden, reason, from, "not found")
                .await
            {
                return Err(internal(e));
            }
            Err(not_found(realm))
        }
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "ambiguous",
            format!("realm {realm} has a connection in both sandbox and production; add ?env=sandbox or ?env=production"),
        )),
    }
}

async fn access_token(
    State(api): State<Arc<TokenApi>>,
    Path(realm): Path<String>,
    Query(q): Query<EnvQuery>,
    ext: Extensions,
    headers: HeaderMap,
) -> Response {
    let from = presenter(&ext, &headers);
    let key = match authenticate(&api, &headers, &from).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    let conn = match resolve(&api, &key, &realm, q.env.as_deref(), &from).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let conn = match api.fetch(&key, conn).await {
        Ok(Fetched::Token(c)) => c,
        Ok(Fetched::Dead(c)) => {
            return (
                StatusCode::CONFLICT,
                Json(json!({
                    "error": "connection_unusable",
                    "message": format!("the connection is {}; it gives no tokens until it is reconnected", c.status),
                    "status": c.status,
                    "reason": c.status_reason,
                })),
            )
                .into_response()
        }
        Ok(Fetched::Unavailable(why)) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("the access token expired and could not be refreshed: {why}; try again shortly"),
            )
        }
        Err(e) => return internal(e),
    };
    let (Some((token, fp)), Some(expires_at)) = (&conn.token, conn.access_expires_at) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the connection holds no access token yet; try again shortly".into(),
        );
    };
    if let Err(e) = api.record_hand_out(&key, &conn, fp).await {
        return internal(e);
    }
    let now = api.service.now();
    Json(json!({
        "access_token": token.expose(),
        "expires_at": expires_at,
        "expires_in": (expires_at - now).num_seconds().max(0),
        "realm_id": conn.realm_id,
        "environment": conn.environment,
    }))
    .into_response()
}

async fn list(State(api): State<Arc<TokenApi>>, ext: Extensions, headers: HeaderMap) -> Response {
    let from = presenter(&ext, &headers);
    let key = match authenticate(&api, &headers, &from).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    let rows = match api.service.connections_for_keys().await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let out: Vec<serde_json::Value> = rows
        .into_iter()
        .filter(|r| key.may_read(r.environment, r.realm_id.as_str()))
        .map(|r| {
            json!({
                "realm_id": r.realm_id,
                "environment": r.environment,
                "tenant": r.tenant,
                "company_name": r.company_name,
                "status": r.status,
                "status_reason": r.status_reason,
                "access_expires_at": r.access_expires_at,
                "last_sync_at": r.last_sync_at,
                "last_sync_status": r.last_sync_status,
            })
        })
        .collect();
    Json(out).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncReport {
    status: String,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    records: Option<i64>,
    #[serde(default)]
    started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    finished_at: Option<DateTime<Utc>>,
}

const MAX_DETAIL: usize = 2000;

async fn sync(
    State(api): State<Arc<TokenApi>>,
    Path(realm): Path<String>,
    Query(q): Query<EnvQuery>,
    ext: Extensions,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let from = presenter(&ext, &headers);
    let key = match authenticate(&api, &headers, &from).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    let bad = |m: String| error(StatusCode::BAD_REQUEST, "bad_request", m);
    let report: SyncReport = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad(format!("the body is not a sync report ({e}); send {{\"status\": \"ok\"|\"error\", \"detail\", \"records\", \"started_at\", \"finished_at\"}}")),
    };
    let status = match report.status.as_str() {
        "ok" => SyncStatus::Ok,
        "error" => SyncStatus::Failed,
        other => {
            return bad(format!(
                "status {:?}: expected \"ok\" or \"error\"",
                qbo_core::text::Safe(other).to_string()
            ))
        }
    };
    if report.records.is_some_and(|n| n < 0) {
        return bad("records must be 0 or more".into());
    }
    let detail = report.detail.unwrap_or_default();
    if detail.chars().count() > MAX_DETAIL {
        return bad(format!(
            "detail is longer than {MAX_DETAIL} characters; shorten it"
        ));
    }
    let now = api.service.now();
    let finished = report.finished_at.unwrap_or(now).min(now);
    if report.started_at.is_some_and(|s| s > finished) {
        return bad("started_at is after finished_at".into());
    }
    let conn = match resolve(&api, &key, &realm, q.env.as_deref(), &from).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let summary = format!(
        "host app sync {}{}{}",
        report.status,
        report
            .records
            .map_or(String::new(), |n| format!(", {n} records")),
        if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        }
    );
    let mut ev = AuditEvent::new(
        now,
        &api.actor(Some(&key)),
        Action::SyncReported,
        Outcome::Ok,
    )
    .target(
        conn.id,
        conn.environment.as_str(),
        &conn.realm_id,
        &conn.tenant,
    );
    ev.reason = Some(summary.clone());
    let written = api
        .service
        .record_host_sync(conn.id, finished, status, &summary, ev)
        .await;
    if let Err(e) = written {
        return internal(e);
    }
    Json(json!({
        "realm_id": conn.realm_id,
        "environment": conn.environment,
        "last_sync_at": finished,
        "last_sync_status": status,
    }))
    .into_response()
}
