//! The daemon's HTTP listener: `/healthz` and `/metrics` (loopback by default). The OAuth
//! callback, reconnect links, webhooks and the token API will live here too.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use qbo_service::tasks::Scheduler;
use qbo_service::Service;
use std::sync::Arc;

#[derive(Clone)]
pub struct HttpState {
    pub service: Service,
    pub scheduler: Arc<Scheduler>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: this listener serves /healthz and /metrics\n",
            )
        })
        .with_state(state)
}

/// Unhealthy when the database cannot be read, when a write was refused (a full disk
/// still answers reads, so a read alone would say ok) and no write has committed since, or
/// when rows stored past the audit chain's head block the audit log (`audit_log` says
/// which, and the verb that repairs it).
/// A failure older than `FAILURE_HOLD` is put to a probe write, so an idle daemon turns
/// healthy again once there is room.
async fn healthz(State(s): State<HttpState>) -> impl IntoResponse {
    let report = s.service.health().await;
    let (db, audit_log) = (report.database, report.audit_log);
    let paused: Vec<serde_json::Value> = s
        .scheduler
        .paused()
        .into_iter()
        .map(|(env, until, reason)| serde_json::json!({ "environment": env, "until": until, "reason": reason }))
        .collect();
    match (db, audit_log) {
        (Ok(_), Ok(())) => {
            let status = if paused.is_empty() { "ok" } else { "degraded" };
            (
                StatusCode::OK,
                axum::Json(
                    serde_json::json!({ "status": status, "database": "ok", "audit_log": "ok", "paused_environments": paused }),
                ),
            )
        }
        (db, audit_log) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "status": "unavailable",
                "database": db.err().map_or_else(|| "ok".into(), |e| e.0),
                "audit_log": audit_log.err().map_or_else(|| "ok".into(), |e| e.0),
            })),
        ),
    }
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    match s.service.metrics_text().await {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("cannot read the database: {e:#}\n"),
        ),
    }
}
