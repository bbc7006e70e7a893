//! The HTTP surface: routes, the `intuit_tid` stamp and request logging.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use super::discovery::{
    self, JWKS_PATH, PRODUCTION_DISCOVERY_PATH, REVOKE_PATH, SANDBOX_DISCOVERY_PATH,
    SANDBOX_USERINFO_PATH, TOKEN_PATH, USERINFO_PATH,
};
use super::{admin, authorize, http, qbo, token, tokens, Shared};

const INTUIT_TID: HeaderName = HeaderName::from_static("intuit_tid");

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(PRODUCTION_DISCOVERY_PATH, get(discovery::production))
        .route(
            &format!("{PRODUCTION_DISCOVERY_PATH}/"),
            get(discovery::production),
        )
        .route(SANDBOX_DISCOVERY_PATH, get(discovery::sandbox))
        .route(
            &format!("{SANDBOX_DISCOVERY_PATH}/"),
            get(discovery::sandbox),
        )
        .route(JWKS_PATH, get(discovery::jwks))
        .route(USERINFO_PATH, get(qbo::userinfo))
        .route(SANDBOX_USERINFO_PATH, get(qbo::userinfo))
        .route(discovery::AUTHORIZE_PATH, get(authorize::page))
        .route("/connect/oauth2/decision", post(authorize::decision))
        .route(TOKEN_PATH, post(token::token))
        .route(REVOKE_PATH, post(token::revoke))
        .route(
            "/v3/company/{realm}/companyinfo/{id}",
            get(qbo::company_info),
        )
        .merge(admin::routes())
        .fallback(not_found)
        .layer(middleware::from_fn(stamp))
        .with_state(shared)
}

async fn not_found() -> Response {
    http::with_type(StatusCode::NOT_FOUND, "text/plain", "not found\n")
}

/// Every answer carries a fresh `intuit_tid`, like Intuit's. The log line has
/// the path only: query strings and bodies may carry codes and tokens.
async fn stamp(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut resp = next.run(req).await;
    let tid = tokens::new_tid();
    if let Ok(v) = HeaderValue::from_str(&tid) {
        resp.headers_mut().insert(INTUIT_TID, v);
    }
    tracing::debug!(
        %method,
        path,
        status = resp.status().as_u16(),
        intuit_tid = tid,
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    resp
}
